# Custom resource: attaches the device policy to the device group (Create,
# Update) and detaches it (Delete). CloudFormation has no resource for it:
# AWS::IoT::PolicyPrincipalAttachment takes certificates only.
import json
import urllib.request

import boto3


def handler(event, context):
    props = event["ResourceProperties"]
    policy, group = props["PolicyName"], props["ThingGroupArn"]
    status, reason = "SUCCESS", "attached"
    try:
        iot = boto3.client("iot")
        if event["RequestType"] == "Delete":
            try:
                iot.detach_policy(policyName=policy, target=group)
            except iot.exceptions.ResourceNotFoundException:
                pass
            reason = "detached"
        else:
            iot.attach_policy(policyName=policy, target=group)
    except Exception as e:  # reported to CloudFormation, which fails the stack
        status, reason = "FAILED", str(e)[:400]
    print(json.dumps({"request": event["RequestType"], "status": status, "reason": reason}))
    body = json.dumps({
        "Status": status,
        "Reason": reason,
        "PhysicalResourceId": f"{group}|{policy}",
        "StackId": event["StackId"],
        "RequestId": event["RequestId"],
        "LogicalResourceId": event["LogicalResourceId"],
    }).encode()
    request = urllib.request.Request(
        event["ResponseURL"], data=body, method="PUT", headers={"Content-Type": ""}
    )
    urllib.request.urlopen(request, timeout=30)
