"""Thing-group policies in ministack 1.5.33, as AWS IoT applies them.
Imported by scripts/ministack_loopback.py after its own patches.

1. Its MQTT broker evaluates only the policies attached to the certificate
   (`_mqtt_policy_allows`). AWS also applies the policies attached to the
   thing groups of the thing the connection is associated with (and to their
   ancestors): a thing whose name is the client id and to which the
   certificate is attached ("If your client ID matches your thing's name in
   the registry, after you attach an X.509 certificate to that IoT thing,
   AWS IoT Core will associate the client connection with the thing"; an
   exclusive attachment associates it whatever the client id, which
   ministack does not record). The stacks give devices their policy through
   a thing group only, so without this no device could publish.

2. The launcher authorises AttachPolicy/DetachPolicy against the policy's
   ARN and then the target. AWS authorises them against the target only
   (the IAM Service Authorization Reference: resource types `cert`,
   `thinggroup`; no condition key names the policy), which is why a role
   allowed AttachPolicy on certificates may attach any policy. This checks
   the target alone.

3. Its CloudFormation answers a thing group's `Ref` with the group's id;
   AWS with its name (below).

4. It authorises AttachThingPrincipal against the thing; AWS against the
   certificate (below).
"""
import json

from ministack.core import iam_actions
from ministack.services import iot as _iot

_certificate_policies_allow = _iot._mqtt_policy_allows


def _group_policy_documents(thing_name):
    """The default versions of the policies attached to the thing's groups
    and to each group's ancestors (`GetEffectivePolicies` on AWS)."""
    thing = _iot._things.get(thing_name) or {}
    names, seen = [], set()
    pending = list(thing.get("thingGroupNames", []))
    while pending:
        group_name = pending.pop()
        group = _iot._thing_groups.get(group_name)
        if group is None or group_name in seen:
            continue
        seen.add(group_name)
        names += [p["policyName"] for p in _iot._policies_attached_to(group["thingGroupArn"])]
        parent = (group.get("thingGroupMetadata") or {}).get("parentGroupName")
        if parent:
            pending.append(parent)
    documents = []
    for name in dict.fromkeys(names):
        policy = _iot._policies.get(name)
        if policy:
            documents.append(policy["versions"][policy["defaultVersionId"]]["document"])
    return documents


def _mqtt_policy_allows_with_groups(
    account_id, region, certificate_id, context, action, resource, provisioning_template=None
):
    """The certificate's policies, as ministack evaluates them; when they do
    not allow, the same evaluation over the certificate's and the associated
    thing's group policies (an explicit Deny in any of them still wins)."""
    if provisioning_template is not None:
        return _certificate_policies_allow(
            account_id, region, certificate_id, context, action, resource, provisioning_template
        )
    thing = context.get("iot:connection.thing.thingname")
    if thing is None:
        return _certificate_policies_allow(account_id, region, certificate_id, context, action, resource)
    with _iot.request_scope(account_id, region):
        record = _iot._certificates.get(certificate_id) or {}
        own = [_iot._policies.get(name) for name in record.get("attachedPolicies", [])]
        documents = [p["versions"][p["defaultVersionId"]]["document"] for p in own if p]
        documents += _group_policy_documents(thing)
    ctx = _iot.EvalContext(
        principal_arn=f"arn:aws:iot:{region}:{account_id}:cert/{certificate_id}",
        principal_type="Certificate",
        principal_account=account_id,
        action=action,
        resource_arn=f"arn:aws:iot:{region}:{account_id}:{resource}",
        region=region,
        service_context=context,
    )
    variables = tuple(sorted(context.items()))
    parsed = [_iot._parsed_iot_policy(doc, variables) for doc in documents]
    return _iot.evaluate(ctx, parsed).decision == "Allow"


_iot._mqtt_policy_allows = _mqtt_policy_allows_with_groups

_resource_arns = iam_actions.iot_resource_arns


def _attach_policy_on_its_target(method, path, body, region, account_id):
    """AttachPolicy/DetachPolicy (`PUT|POST /target-policies/NAME`) checked
    on the target they name (a certificate or thing group ARN) only."""
    if method in ("PUT", "POST") and path.startswith("/target-policies/"):
        try:
            target = json.loads(body or b"{}").get("target")
        except (ValueError, AttributeError):
            target = None
        return [target if isinstance(target, str) and target.startswith("arn:") else "*"]
    return _resource_arns(method, path, body, region, account_id)


iam_actions.iot_resource_arns = _attach_policy_on_its_target

# 3. Its CloudFormation gives an AWS::IoT::ThingGroup the group's id as
#    physical id, so `Ref` answers the id. AWS answers the name (the
#    resource's primaryIdentifier is ThingGroupName), which the stacks pass
#    to the function as JITR_DEVICE_GROUP. The group's name as physical id,
#    and the record found by name (or, for stacks made before, by id).
from ministack.services.cloudformation import provisioners as _cfn  # noqa: E402

_find_group_by_id = _cfn._iot_thing_group_record
_create_group = _cfn._iot_thing_group_create
_update_group = _cfn._iot_thing_group_update


def _thing_group_record(physical_id):
    return _iot._thing_groups.get(physical_id) or _find_group_by_id(physical_id)


def _thing_group_create(logical_id, props, stack_name):
    _, attributes = _create_group(logical_id, props, stack_name)
    return attributes["Arn"].rsplit("/", 1)[-1], attributes


def _thing_group_update(physical_id, old_props, new_props, stack_name, logical_id=None):
    physical_id, attributes = _update_group(physical_id, old_props, new_props, stack_name, logical_id)
    record = _thing_group_record(physical_id) or {}
    return record.get("thingGroupName", physical_id), dict(attributes, Id=record.get("thingGroupId", ""))


_cfn._iot_thing_group_record = _thing_group_record
_cfn._RESOURCE_HANDLERS["AWS::IoT::ThingGroup"]["create"] = _thing_group_create
_cfn._RESOURCE_HANDLERS["AWS::IoT::ThingGroup"]["update"] = _thing_group_update

# 4. It authorises AttachThingPrincipal/DetachThingPrincipal
#    (`PUT|DELETE /things/NAME/principals`) against the thing. AWS authorises
#    them against the principal, the certificate (the IAM Service
#    Authorization Reference: resource type `cert`; the thing only through
#    the condition key iot:thingArn), so a role may attach certificates to
#    things by a grant on `cert/*`. The principal header's ARN.
_extract_resource_arn = iam_actions.extract_resource_arn


def _thing_principal_on_the_certificate(service, method, path, headers, body, query_params, region, account_id):
    parts = [p for p in path.split("/") if p]
    if service == "iot" and method in ("PUT", "DELETE") and len(parts) == 3 and parts[0] == "things" \
            and parts[2] == "principals":
        principal = next((v for k, v in (headers or {}).items() if k.lower() == "x-amzn-principal"), None)
        if isinstance(principal, str) and principal.startswith("arn:"):
            return principal
    return _extract_resource_arn(service, method, path, headers, body, query_params, region, account_id)


iam_actions.extract_resource_arn = _thing_principal_on_the_certificate
