//! AWS's API models as a second oracle (`scripts/model_check.py`): requests
//! botocore serializes (its own client-side validation off, so anything gets
//! on the wire) checked against the botocore model of their operation, in
//! each protocol the tests use; then the emulators refusing, as AWS would, a
//! request the model refuses, before they handle it.

use jitr_tests::ministack::{venv_program, Ministack};
use jitr_tests::moto::Moto;
use jitr_tests::run;
use serde_json::{json, Value};
use std::process::Command;

const SCRIPTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts");

/// Serializes `service`'s `operation` (snake_case) with botocore, sends
/// nothing, and answers what the checker says of the request.
const SERIALIZE_AND_CHECK: &str = r#"
import json, sys
sys.path.insert(0, sys.argv[1])
import botocore.config, botocore.session
from urllib.parse import urlsplit
import model_check

service, operation, params = sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
client = botocore.session.get_session().create_client(
    service, region_name="eu-west-1", aws_access_key_id="test", aws_secret_access_key="test",
    endpoint_url="http://127.0.0.1:9",
    config=botocore.config.Config(parameter_validation=False, retries={"max_attempts": 0}))
sent = []
class Captured(Exception):
    pass
def capture(request, **_):
    sent.append(request)
    raise Captured()
client.meta.events.register("before-send", capture)
try:
    getattr(client, operation)(**params)
except Captured:
    pass
r = sent[0]
url = urlsplit(r.url)
body = r.body or b""
body = body.encode() if isinstance(body, str) else body
headers = {k.lower(): (v.decode() if isinstance(v, bytes) else v) for k, v in r.headers.items()}
res = model_check.check(r.method, url.path, url.query, headers, body)
print(json.dumps({"operation": res.name, "protocol": res.protocol, "violations": res.violations,
                  "unknown": res.unknown, "unidentified": res.unidentified,
                  "skipped_patterns": res.skipped_patterns}))
"#;

fn check(service: &str, operation: &str, params: Value) -> Value {
    run(Command::new(venv_program("ministack", "python")).args([
        "-c",
        SERIALIZE_AND_CHECK,
        SCRIPTS,
        service,
        operation,
        &params.to_string(),
    ]))
    .json()
}

/// The checker's violations for a request of `operation`, which it must identify in `protocol`.
fn violations(service: &str, operation: &str, protocol: &str, params: Value) -> Vec<String> {
    let got = check(service, operation, params);
    assert_eq!(got["protocol"], protocol, "{got}");
    assert_eq!(got["skipped_patterns"], json!([]), "{got}");
    got["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// Exactly one violation, naming `member` and containing `constraint`.
fn refused(
    service: &str,
    operation: &str,
    protocol: &str,
    params: Value,
    member: &str,
    constraint: &str,
) {
    let found = violations(service, operation, protocol, params.clone());
    assert_eq!(found.len(), 1, "{service}.{operation} {params}: {found:?}");
    assert!(
        found[0].contains(&format!("at '{member}'")) && found[0].contains(constraint),
        "{service}.{operation} {params}: expected '{member}' and {constraint:?} in {found:?}"
    );
}

fn accepted(service: &str, operation: &str, protocol: &str, params: Value) {
    let found = violations(service, operation, protocol, params.clone());
    assert!(
        found.is_empty(),
        "{service}.{operation} {params}: {found:?}"
    );
}

const MISSING: &str = "Member must not be null";
const ENUM: &str = "Member must satisfy enum value set";
const PATTERN: &str = "Member must satisfy regular expression pattern";

/// rest-json (AWS IoT, Lambda): URI labels, query string, headers and JSON body.
#[test]
fn rest_json_requests_are_checked_against_the_model() {
    let cert = "a".repeat(64);
    accepted(
        "iot",
        "create_thing",
        "rest-json",
        json!({ "thingName": "robot-1", "attributePayload": { "attributes": { "ca": "root" } } }),
    );
    accepted(
        "iot",
        "update_certificate",
        "rest-json",
        json!({ "certificateId": cert, "newStatus": "ACTIVE" }),
    );
    refused(
        "iot",
        "update_certificate",
        "rest-json",
        json!({ "certificateId": cert }),
        "newStatus",
        MISSING,
    );
    refused(
        "iot",
        "update_certificate",
        "rest-json",
        json!({ "certificateId": cert, "newStatus": "ENABLED" }),
        "newStatus",
        ENUM,
    );
    refused(
        "iot",
        "create_thing",
        "rest-json",
        json!({ "thingName": "r".repeat(129) }),
        "thingName",
        "less than or equal to 128",
    );
    refused(
        "iot",
        "create_thing",
        "rest-json",
        json!({ "thingName": "robot 1" }),
        "thingName",
        PATTERN,
    );
    refused(
        "iot",
        "create_thing",
        "rest-json",
        json!({ "thingName": "r", "attributePayload": { "attributes": { "ca": "a b" } } }),
        "attributePayload.attributes.ca",
        PATTERN,
    );
    refused(
        "iot",
        "describe_certificate",
        "rest-json",
        json!({ "certificateId": "abc" }),
        "certificateId",
        "greater than or equal to 64",
    );
    refused(
        "iot",
        "list_things",
        "rest-json",
        json!({ "maxResults": 0 }),
        "maxResults",
        "value greater than or equal to 1",
    );
    refused(
        "iot",
        "list_things",
        "rest-json",
        json!({ "maxResults": 251 }),
        "maxResults",
        "value less than or equal to 250",
    );
    accepted(
        "iot",
        "attach_thing_principal",
        "rest-json",
        json!({ "thingName": "t", "principal": "arn:aws:iot:eu-west-1:000000000000:cert/x", "thingPrincipalType": "EXCLUSIVE_THING" }),
    );
    refused(
        "iot",
        "attach_thing_principal",
        "rest-json",
        json!({ "thingName": "t", "principal": "p", "thingPrincipalType": "ONLY" }),
        "thingPrincipalType",
        ENUM,
    );
    // A header member (X-Amz-Invocation-Type) and a blob payload.
    accepted(
        "lambda",
        "invoke",
        "rest-json",
        json!({ "FunctionName": "f", "InvocationType": "Event", "Payload": "{}" }),
    );
    refused(
        "lambda",
        "invoke",
        "rest-json",
        json!({ "FunctionName": "f", "InvocationType": "Later" }),
        "InvocationType",
        ENUM,
    );
    refused(
        "lambda",
        "create_event_source_mapping",
        "rest-json",
        json!({ "FunctionName": "f", "EventSourceArn": "arn:aws:sqs:eu-west-1:000000000000:q", "BatchSize": 10001 }),
        "BatchSize",
        "value less than or equal to 10000",
    );
}

/// json (SQS, DynamoDB, KMS, CloudWatch Logs): X-Amz-Target and a JSON body.
#[test]
fn json_requests_are_checked_against_the_model() {
    accepted(
        "sqs",
        "send_message",
        "json",
        json!({ "QueueUrl": "http://q", "MessageBody": "m" }),
    );
    refused(
        "sqs",
        "send_message",
        "json",
        json!({ "MessageBody": "m" }),
        "QueueUrl",
        MISSING,
    );
    refused(
        "sqs",
        "receive_message",
        "json",
        json!({ "QueueUrl": "http://q", "MessageSystemAttributeNames": ["Everything"] }),
        "MessageSystemAttributeNames.1",
        ENUM,
    );
    accepted(
        "dynamodb",
        "put_item",
        "json",
        json!({ "TableName": "claims", "Item": { "k": { "S": "v" } } }),
    );
    refused(
        "dynamodb",
        "put_item",
        "json",
        json!({ "TableName": "claims", "Item": {}, "ReturnValues": "EVERYTHING" }),
        "ReturnValues",
        ENUM,
    );
    refused(
        "dynamodb",
        "put_item",
        "json",
        json!({ "TableName": "t".repeat(1025), "Item": {} }),
        "TableName",
        "less than or equal to 1024",
    );
    refused(
        "dynamodb",
        "query",
        "json",
        json!({ "TableName": "claims", "Limit": 0 }),
        "Limit",
        "value greater than or equal to 1",
    );
    accepted(
        "kms",
        "sign",
        "json",
        json!({ "KeyId": "alias/ca", "Message": "digest", "MessageType": "DIGEST", "SigningAlgorithm": "ECDSA_SHA_256" }),
    );
    refused(
        "kms",
        "sign",
        "json",
        json!({ "KeyId": "alias/ca", "Message": "m", "SigningAlgorithm": "ECDSA_SHA_1" }),
        "SigningAlgorithm",
        ENUM,
    );
    refused(
        "kms",
        "get_public_key",
        "json",
        json!({ "KeyId": "" }),
        "KeyId",
        "greater than or equal to 1",
    );
    accepted(
        "logs",
        "filter_log_events",
        "json",
        json!({ "logGroupName": "/aws/lambda/jitr", "limit": 100 }),
    );
    refused(
        "logs",
        "filter_log_events",
        "json",
        json!({ "logGroupName": "/aws/lambda/jitr", "limit": 10001 }),
        "limit",
        "value less than or equal to 10000",
    );
    refused(
        "logs",
        "filter_log_events",
        "json",
        json!({ "logGroupName": "a group" }),
        "logGroupName",
        PATTERN,
    );
}

/// query (IAM, CloudFormation, STS): form parameters, lists as `Name.member.N`.
#[test]
fn query_requests_are_checked_against_the_model() {
    let trust = "{}";
    accepted(
        "iam",
        "create_role",
        "query",
        json!({ "RoleName": "jitr-rule", "AssumeRolePolicyDocument": trust, "Tags": [{ "Key": "Zweck", "Value": "Gerät" }] }),
    );
    refused(
        "iam",
        "create_role",
        "query",
        json!({ "RoleName": "jitr-rule" }),
        "AssumeRolePolicyDocument",
        MISSING,
    );
    refused(
        "iam",
        "create_role",
        "query",
        json!({ "RoleName": "jitr rule", "AssumeRolePolicyDocument": trust }),
        "RoleName",
        PATTERN,
    );
    refused(
        "iam",
        "create_role",
        "query",
        json!({ "RoleName": "r", "AssumeRolePolicyDocument": trust, "MaxSessionDuration": 60 }),
        "MaxSessionDuration",
        "value greater than or equal to 3600",
    );
    // Java's \p{L}: any letter is accepted (above), a `*` is not.
    refused(
        "iam",
        "create_role",
        "query",
        json!({ "RoleName": "r", "AssumeRolePolicyDocument": trust, "Tags": [{ "Key": "a*", "Value": "v" }] }),
        "Tags.1.Key",
        PATTERN,
    );
    refused(
        "iam",
        "create_role",
        "query",
        json!({ "RoleName": "r", "AssumeRolePolicyDocument": trust, "Path": "no-slashes" }),
        "Path",
        PATTERN,
    );
    accepted(
        "cloudformation",
        "create_stack",
        "query",
        json!({ "StackName": "jitr", "TemplateBody": "{}", "Capabilities": ["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"], "Parameters": [{ "ParameterKey": "CaCertificateId", "ParameterValue": "x" }] }),
    );
    refused(
        "cloudformation",
        "create_stack",
        "query",
        json!({ "StackName": "jitr", "Capabilities": ["CAPABILITY_IAM", "CAPABILITY_ALL"] }),
        "Capabilities.2",
        ENUM,
    );
    refused(
        "cloudformation",
        "create_stack",
        "query",
        json!({ "StackName": "jitr", "TimeoutInMinutes": 0 }),
        "TimeoutInMinutes",
        "value greater than or equal to 1",
    );
    refused(
        "cloudformation",
        "describe_stack_events",
        "query",
        json!({ "StackName": "jitr", "NextToken": "" }),
        "NextToken",
        "greater than or equal to 1",
    );
    accepted("sts", "get_caller_identity", "query", json!({}));
    refused(
        "sts",
        "assume_role",
        "query",
        json!({ "RoleArn": "arn:aws:iam::000000000000:role/r", "RoleSessionName": "jitr", "DurationSeconds": 60 }),
        "DurationSeconds",
        "value greater than or equal to 900",
    );
    refused(
        "sts",
        "assume_role",
        "query",
        json!({ "RoleArn": "arn:aws:iam::000000000000:role/r", "RoleSessionName": "j" }),
        "RoleSessionName",
        "greater than or equal to 2",
    );
}

/// Members the model does not know are reported, not refused (AWS ignores
/// them); requests of a protocol the checker does not read are unidentified.
#[test]
fn unknown_members_pass_and_unchecked_protocols_are_named() {
    let got = check("s3", "list_buckets", json!({}));
    assert_eq!(got["operation"], Value::Null, "{got}");
    assert!(
        got["unidentified"].as_str().unwrap().contains("rest-xml"),
        "{got}"
    );
}

/// The emulator answers a request AWS's model refuses as AWS would (HTTP
/// 400, the protocol's validation error, "jitr model check: ..." naming the
/// member and the constraint) without handling it, handles the valid one,
/// and records both.
/// Services whose SigV4 signing name is not their botocore directory's
/// (the IoT data plane signs as `iotdata`, its models live in `iot-data`)
/// are identified and checked, not passed through as unidentified.
#[test]
fn services_signing_under_another_name_are_checked() {
    accepted(
        "iot-data",
        "publish",
        "rest-json",
        json!({ "topic": "things/a/hello", "qos": 1 }),
    );
    refused(
        "iot-data",
        "publish",
        "rest-json",
        json!({ "topic": "things/a/hello", "qos": 7 }),
        "qos",
        "less than or equal to 1",
    );
}

#[test]
fn ministack_refuses_what_the_model_refuses_before_handling_it() {
    let records = tempfile::tempdir().unwrap();
    let dir = records.path().to_str().unwrap();
    let ms = Ministack::start_with(&[("IOT_MTLS_ENABLED", "0"), ("JITR_MODEL_CHECK_DIR", dir)]);
    let long = "r".repeat(129);
    let refused = ms.boto3("iot", "create_thing", json!({ "thingName": long }));
    assert_eq!(refused["Error"], "InvalidRequestException", "{refused}");
    let message = refused["Message"].as_str().unwrap();
    assert!(
        message.starts_with("jitr model check: ")
            && message.contains("iot.CreateThing")
            && message.contains("at 'thingName'")
            && message.contains("less than or equal to 128"),
        "{message}"
    );
    let made = ms.boto3("iot", "create_thing", json!({ "thingName": "robot-1" }));
    assert_eq!(made["thingName"], "robot-1", "{made}");
    let things = ms.boto3("iot", "list_things", json!({}));
    assert_eq!(things["things"].as_array().unwrap().len(), 1, "{things}");

    let role = ms.boto3(
        "iam",
        "create_role",
        json!({ "RoleName": "jitr rule", "AssumeRolePolicyDocument": "{}" }),
    );
    assert_eq!(role["Error"], "ValidationError", "{role}");
    assert!(
        role["Message"].as_str().unwrap().contains("at 'RoleName'"),
        "{role}"
    );
    let sign = ms.boto3(
        "kms",
        "sign",
        json!({ "KeyId": "alias/x", "Message": "m", "SigningAlgorithm": "ECDSA_SHA_1" }),
    );
    assert_eq!(sign["Error"], "ValidationException", "{sign}");
    assert!(
        sign["Message"]
            .as_str()
            .unwrap()
            .starts_with("jitr model check: "),
        "{sign}"
    );

    let summary = run(Command::new(venv_program("ministack", "python")).args([
        &format!("{SCRIPTS}/model_check_server.py"),
        "summary",
        dir,
    ]));
    // Refused requests fail the run (`make test`), with the totals printed.
    assert_eq!(summary.code, Some(1), "{summary:?}");
    assert!(summary.stdout.contains("3 refused"), "{summary:?}");
    assert!(
        summary.stderr.contains("3 request(s) AWS's models refuse"),
        "{summary:?}"
    );
    let totals: Value = serde_json::from_str(
        &std::fs::read_to_string(records.path().join("summary.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(totals["per_operation"]["iot.CreateThing"], 2, "{totals}");
    assert_eq!(totals["per_operation"]["iot.ListThings"], 1, "{totals}");
    assert!(
        totals["unidentified"]
            .as_object()
            .unwrap()
            .keys()
            .any(|k| k.contains("/_ministack/health")),
        "{totals}"
    );
    let log = std::fs::read_to_string(records.path().join("violations.log")).unwrap();
    assert_eq!(log.matches("jitr model check: ").count(), 3, "{log}");
    assert!(log.contains("RoleName=jitr+rule"), "{log}");
}

/// moto server, the other stand-in, checks the same way.
#[test]
fn moto_refuses_what_the_model_refuses() {
    let records = tempfile::tempdir().unwrap();
    let moto = Moto::start_with(&[("JITR_MODEL_CHECK_DIR", records.path().to_str().unwrap())]);
    // botocore itself refuses a too-short id; it lets a non-hex one through.
    let refused = moto.boto3(
        "describe_certificate",
        json!({ "certificateId": "z".repeat(64) }),
    );
    assert_eq!(refused["Error"], "InvalidRequestException", "{refused}");
    let message = refused["Message"].as_str().unwrap();
    assert!(
        message.starts_with("jitr model check: ") && message.contains("at 'certificateId'"),
        "{message}"
    );
    let missing = moto.boto3(
        "describe_certificate",
        json!({ "certificateId": "a".repeat(64) }),
    );
    assert_eq!(missing["Error"], "ResourceNotFoundException", "{missing}");
    let log = std::fs::read_to_string(records.path().join("violations.log")).unwrap();
    assert!(log.contains("moto enforce jitr model check"), "{log}");
}
