#!/usr/bin/env python3
"""Deploys jitr's real templates through the emulator's CloudFormation, and removes them.

Run with the ministack venv's python (it has boto3), AWS_ENDPOINT_URL and
credentials aimed at the emulator. Used by `make demo` (scripts/demo.sh) and
the first-connect tests (tests/src/rehearsal.rs), so both deploy the same way:

  emulator_deploy.py sam  --stack NAME (--zip FN.zip | --bootstrap EXE) [--param K=V ...]
  emulator_deploy.py cdk  --stack NAME (--zip FN.zip | --bootstrap EXE) --cdk-out DIR [--param K=V ...]
  emulator_deploy.py delete --stack NAME

Packaging is what the tools do before CloudFormation sees a template, nothing
more: for SAM, what `sam deploy` does (the function zip uploaded to a bucket,
the local `CodeUri` replaced by its s3:// address); for CDK, what
`cdk bootstrap` + `cdk deploy` do (the bootstrap bucket and version
parameter, the asset uploaded under the key its manifest names). Resources,
properties and parameters are the templates' own. A template larger than
CloudFormation's 51,200-byte TemplateBody is uploaded and passed by
TemplateURL, as both tools do (SAM to its artifacts bucket, CDK as the
template asset its manifest names). Prints one JSON document: the stack's
status, outputs and resources.
"""
import argparse
import json
import os
import re
import sys
import time

import boto3

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# JITR_SAM_TEMPLATE: another SAM template, for benchmarks comparing designs
# (scripts/bench_burst.sh); the tests and the demo deploy the project's.
SAM_TEMPLATE = os.environ.get("JITR_SAM_TEMPLATE") or os.path.join(ROOT, "infra", "sam", "template.yaml")
CDK_QUALIFIER = "hnb659fds"  # CDK's default bootstrap qualifier
CDK_BOOTSTRAP_VERSION = "21"
# CreateStack's TemplateBody quota; larger templates go by TemplateURL.
TEMPLATE_BODY_MAX_BYTES = 51200


def client(name):
    return boto3.client(name)


def account_and_region():
    region = boto3.session.Session().region_name
    account = client("sts").get_caller_identity()["Account"]
    return account, region


def ensure_bucket(bucket, region):
    s3 = client("s3")
    try:
        s3.head_bucket(Bucket=bucket)
    except Exception:
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})


def template_source(body, bucket, key):
    """CreateStack's template argument: the body, or, past the body quota,
    the body uploaded to `bucket`/`key` and its (path-style) S3 URL."""
    if len(body.encode()) <= TEMPLATE_BODY_MAX_BYTES:
        return {"TemplateBody": body}
    _, region = account_and_region()
    ensure_bucket(bucket, region)
    client("s3").put_object(Bucket=bucket, Key=key, Body=body.encode())
    return {"TemplateURL": f"https://s3.{region}.amazonaws.com/{bucket}/{key}"}


def sam_body(zip_path, stack):
    """The SAM template as `sam deploy` hands it over: CodeUri -> the uploaded
    zip; the template itself uploaded beside it if it is too large to pass."""
    account, region = account_and_region()
    bucket = f"jitr-artifacts-{account}-{region}"
    key = f"{stack}/function.zip"
    ensure_bucket(bucket, region)
    client("s3").upload_file(zip_path, bucket, key)
    text = open(SAM_TEMPLATE).read()
    body, n = re.subn(r"(?m)^(\s+CodeUri:) .*$", rf"\1 s3://{bucket}/{key}", text)
    if n != 1:
        sys.exit(f"{SAM_TEMPLATE}: expected one CodeUri, found {n}")
    return template_source(body, bucket, f"{stack}/template.yaml")


def cdk_body(zip_path, cdk_out, stack_template):
    """The synthesized template as `cdk deploy` deploys it, its assets uploaded."""
    account, region = account_and_region()
    # What `cdk bootstrap` leaves in an account that the template relies on.
    client("ssm").put_parameter(
        Name=f"/cdk-bootstrap/{CDK_QUALIFIER}/version",
        Value=CDK_BOOTSTRAP_VERSION,
        Type="String",
        Overwrite=True,
    )
    manifest = json.load(open(os.path.join(cdk_out, stack_template.replace(".template.json", ".assets.json"))))
    uploaded, template_at = 0, None
    for asset in manifest.get("files", {}).values():
        for dest in asset["destinations"].values():
            bucket = dest["bucketName"].replace("${AWS::AccountId}", account).replace("${AWS::Region}", region)
            if asset["source"].get("packaging") != "zip":
                template_at = (bucket, dest["objectKey"])  # the template itself: below
                continue
            ensure_bucket(bucket, region)
            client("s3").upload_file(zip_path, bucket, dest["objectKey"])
            uploaded += 1
    if uploaded != 1:
        sys.exit(f"{cdk_out}: expected one zip asset (the function), found {uploaded}")
    body = open(os.path.join(cdk_out, stack_template)).read()
    if template_at is None:
        return {"TemplateBody": body}
    return template_source(body, *template_at)


def wait_stack(cfn, stack, until, timeout=300):
    deadline = time.monotonic() + timeout
    while True:
        try:
            s = cfn.describe_stacks(StackName=stack)["Stacks"][0]
        except cfn.exceptions.ClientError as e:
            if "does not exist" in str(e) and until == "DELETE_COMPLETE":
                return {"StackStatus": "DELETE_COMPLETE"}
            raise
        status = s["StackStatus"]
        if not status.endswith("_IN_PROGRESS"):
            return s
        if time.monotonic() > deadline:
            sys.exit(f"stack {stack}: still {status} after {timeout} s")
        time.sleep(0.5)


def fix_event_source_mappings(function_name):
    """ministack 1.5.33 workaround, in this one place.

    An event source mapping CloudFormation creates with
    `ScalingConfig.MaximumConcurrency` taken from a parameter keeps the value
    as a string, and its SQS poller then fails every second and delivers
    nothing. AWS stores the number. Setting the same value again through
    UpdateEventSourceMapping stores it as a number; nothing else changes.
    """
    lam = client("lambda")
    for m in lam.list_event_source_mappings(FunctionName=function_name)["EventSourceMappings"]:
        value = (m.get("ScalingConfig") or {}).get("MaximumConcurrency")
        if value is not None:
            lam.update_event_source_mapping(UUID=m["UUID"], ScalingConfig={"MaximumConcurrency": int(value)})


def zip_bootstrap(exe, out):
    """A Lambda zip of one executable, named `bootstrap` (provided.al2023)."""
    import zipfile

    info = zipfile.ZipInfo("bootstrap", date_time=(2020, 1, 1, 0, 0, 0))
    info.external_attr = 0o755 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(out, "w", compresslevel=1) as z, open(exe, "rb") as f:
        z.writestr(info, f.read())
    return out


def deploy(args):
    cfn = client("cloudformation")
    if args.bootstrap:
        import tempfile

        tmp = tempfile.mkdtemp()
        args.zip = zip_bootstrap(args.bootstrap, os.path.join(tmp, "function.zip"))
    if args.kind == "sam":
        body = sam_body(args.zip, args.stack)
    else:
        body = cdk_body(args.zip, args.cdk_out, args.template)
    params = []
    for p in args.param:
        k, _, v = p.partition("=")
        params.append({"ParameterKey": k, "ParameterValue": v})
    cfn.create_stack(
        StackName=args.stack,
        **body,
        Parameters=params,
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    stack = wait_stack(cfn, args.stack, "CREATE_COMPLETE")
    report = describe(cfn, args.stack, stack)
    if stack["StackStatus"] != "CREATE_COMPLETE":
        print(json.dumps(report, indent=1, default=str))
        sys.exit(f"stack {args.stack}: {stack['StackStatus']}: {stack.get('StackStatusReason', '')}")
    fix_event_source_mappings(report["outputs"]["FunctionName"])
    print(json.dumps(report, indent=1, default=str))


def describe(cfn, name, stack):
    resources = cfn.describe_stack_resources(StackName=name)["StackResources"]
    events = []
    if stack["StackStatus"] != "CREATE_COMPLETE":
        events = [
            f"{e['LogicalResourceId']} {e['ResourceStatus']} {e.get('ResourceStatusReason', '')}"
            for e in cfn.describe_stack_events(StackName=name)["StackEvents"]
            if e["ResourceStatus"].endswith("FAILED")
        ]
    return {
        "stack": name,
        "status": stack["StackStatus"],
        "outputs": {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])},
        "resources": [
            {"logical": r["LogicalResourceId"], "type": r["ResourceType"], "physical": r.get("PhysicalResourceId"),
             "status": r["ResourceStatus"]}
            for r in resources
        ],
        "failures": events,
    }


def delete(args):
    """Deletes the stack; with --device-policy also the policy and the device
    group the template retains: the policy detached from every target (the
    group) first, as AWS requires (`aws iot list-targets-for-policy`,
    `detach-policy`, `delete-policy`), then the group (`delete-thing-group`)."""
    cfn = client("cloudformation")
    outputs = describe(cfn, args.stack, cfn.describe_stacks(StackName=args.stack)["Stacks"][0])["outputs"]
    cfn.delete_stack(StackName=args.stack)
    s = wait_stack(cfn, args.stack, "DELETE_COMPLETE")
    report = {"stack": args.stack, "status": s["StackStatus"]}
    if s["StackStatus"] != "DELETE_COMPLETE":
        print(json.dumps(report))
        sys.exit(f"stack {args.stack}: {s['StackStatus']}: {s.get('StackStatusReason', '')}")
    if args.device_policy:
        iot = client("iot")
        policy = outputs["DevicePolicyName"]
        targets = []
        for page in iot.get_paginator("list_targets_for_policy").paginate(policyName=policy):
            targets += page["targets"]
        for target in targets:
            iot.detach_policy(policyName=policy, target=target)
        iot.delete_policy(policyName=policy)
        report["device_policy"] = {"name": policy, "detached_from": len(targets), "deleted": True}
        group = outputs["DeviceGroupName"]
        iot.delete_thing_group(thingGroupName=group)
        report["device_group"] = {"name": group, "deleted": True}
    print(json.dumps(report))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for kind in ("sam", "cdk"):
        p = sub.add_parser(kind)
        p.add_argument("--stack", required=True)
        code = p.add_mutually_exclusive_group(required=True)
        code.add_argument("--zip", help="the function zip (bootstrap at its root)")
        code.add_argument("--bootstrap", help="the function's executable, zipped as bootstrap")
        p.add_argument("--param", action="append", default=[], metavar="K=V")
        if kind == "cdk":
            p.add_argument("--cdk-out", required=True)
            p.add_argument("--template", default="jitr.template.json")
        p.set_defaults(func=deploy, kind=kind)
    p = sub.add_parser("delete")
    p.add_argument("--stack", required=True)
    p.add_argument("--device-policy", action="store_true", help="also detach and delete the retained device policy, and delete the device group")
    p.set_defaults(func=delete)
    args = ap.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
