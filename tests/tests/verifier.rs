//! The verifier hook on the deployed stack (issue 26): a real Lambda
//! function (Python, deployed to the emulator before the stack) named by
//! the stack's `VerifierFunction`, invoked by the deployed function with
//! the grant the template gives it (the emulator enforces IAM). It admits
//! robot-1 under its own thing name and attributes, refuses robot-2 with a
//! reason, answers garbage about robot-3 and fails on robot-4: the first is
//! ACTIVE as the hook's thing, the second REVOKED with the hook's reason in
//! the function's log, the last two stay PENDING_ACTIVATION, their events
//! coming back. A certificate the function's own checks refuse is never
//! asked about.

use std::time::Duration;

use jitr_tests::issue_device;
use jitr_tests::ministack::{Ministack, ACCOUNT, REGION};
use jitr_tests::rehearsal::{cert_arn, Options, Rehearsal};
use serde_json::{json, Value};

const HOOK_NAME: &str = "jitr-verify";

/// The hook's ARN in the emulator's account (the stack's parameter).
fn hook_arn() -> String {
    format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{HOOK_NAME}")
}

/// The hook: checks the question carries the certificate's facts, prints
/// it (`QUESTION <CN>`), and answers by the subject's CN.
const HOOK: &str = r#"
import json

FACTS = ("certificateId", "caCertificateId", "subject", "subjectText", "serial",
         "notBefore", "notAfter", "keyType", "proposed")

def handler(event, context):
    missing = [f for f in FACTS if not event.get(f)]
    if missing:
        raise KeyError("the question lacks " + ", ".join(missing))
    cn = event["subject"].get("CN", "")
    print("QUESTION " + cn + " " + json.dumps(event))
    if cn == "robot-1":
        return {"admit": True, "reason": "in the asset library",
                "thingName": "line4-" + cn, "attributes": {"batch": "B7"}}
    if cn == "robot-2":
        return {"admit": False, "reason": "not in the asset library"}
    if cn == "robot-3":
        return "garbage"
    raise RuntimeError("no such device: " + cn)
"#;

/// Deploys the hook to the emulator (its role, then the function from a
/// zip), before the stack that names it.
fn deploy_hook(ms: &Ministack) {
    const SCRIPT: &str = r#"
import boto3, io, json, sys, zipfile
name, code = sys.argv[1], sys.argv[2]
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w") as z:
    z.writestr("index.py", code)
trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
         "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
role = boto3.client("iam").create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
fn = boto3.client("lambda").create_function(
    FunctionName=name, Runtime="python3.12", Handler="index.handler", Timeout=10,
    Role=role["Role"]["Arn"], Code={"ZipFile": buf.getvalue()})
print(json.dumps({"arn": fn["FunctionArn"]}))
"#;
    let out = ms.python(SCRIPT, &[HOOK_NAME, HOOK]);
    assert!(out.ok(), "{}\n{}", out.stderr, out.stdout);
    assert_eq!(out.json()["arn"], hook_arn().as_str());
}

/// The stack with the hook, CA `root` in `dir`.
fn rehearsal(dir: &std::path::Path) -> Rehearsal {
    let arn = hook_arn();
    let parameters = [
        ("VerifierFunction", arn.as_str()),
        ("ThingNamePattern", "^(line4-)?robot-[0-9]+$"),
    ];
    let deploy: &dyn Fn(&Ministack) = &deploy_hook;
    Rehearsal::start(
        dir,
        Options {
            parameters: &parameters,
            before_deploy: Some(deploy),
            ..Options::default()
        },
    )
}

/// How many times the hook was asked about `cn`.
fn questions(r: &Rehearsal, cn: &str) -> usize {
    r.ms.log().matches(&format!("QUESTION {cn} ")).count()
}

#[test]
fn the_hook_admits_one_device_and_refuses_another_with_its_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let r = rehearsal(d);
    let one = issue_device(d, "root", "dev", "robot-1");
    let two = issue_device(d, "root", "other", "robot-2");
    let nine = issue_device(d, "root", "odd", "sensor-9");

    // Admitted: ACTIVE as the hook's thing, with its attributes; the device
    // connects under that name (its client id is the thing's name).
    let out = r.connect(&["dev/robot-1", "--client-id", "line4-robot-1"], "60");
    assert_eq!(out.code, Some(0), "{}\n{}", out.stderr, r.ms.log());
    assert_eq!(r.status(&one), "ACTIVE");
    assert_eq!(r.thing_principals("line4-robot-1"), vec![cert_arn(&one)]);
    let thing = r.iot("describe_thing", json!({ "thingName": "line4-robot-1" }));
    assert_eq!(thing["attributes"]["batch"], "B7", "{thing}");
    let question =
        r.ms.log()
            .lines()
            .find_map(|l| {
                l.split_once("QUESTION robot-1 ")
                    .map(|(_, q)| q.to_string())
            })
            .expect("the hook was asked about robot-1");
    let question: Value = serde_json::from_str(&question).unwrap();
    assert_eq!(question["certificateId"], one.as_str());
    assert_eq!(question["caCertificateId"], r.ca_id.as_str());
    assert_eq!(question["proposed"]["thingName"], "robot-1");

    // Refused: REVOKED, the hook's reason in the function's outcome, no thing.
    r.assert_refused_then_revoked("other/robot-2", &two, Duration::from_secs(15));
    let lines = r.outcome_lines(&two);
    assert!(
        lines.iter().any(|l| l.contains("Rejected")
            && l.contains("rejected by the verifier hook: not in the asset library")),
        "{lines:?}"
    );
    assert!(r.thing_principals("robot-2").is_empty());

    // Refused by the function's own checks (ThingNamePattern): never asked.
    r.assert_refused_then_revoked("odd/sensor-9", &nine, Duration::from_secs(15));
    let lines = r.outcome_lines(&nine);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("Rejected") && l.contains("does not match")),
        "{lines:?}"
    );
    assert_eq!(questions(&r, "sensor-9"), 0);
    assert_eq!(questions(&r, "robot-2"), 1, "asked once, then REVOKED");

    assert_eq!(r.thing_names(), ["line4-robot-1"]);
}

/// A hook answering garbage, or failing (a FunctionError), fails the
/// record: the certificate stays PENDING_ACTIVATION (never admitted, never
/// revoked) and its records come back (the queues' visibility shortened to
/// 2 s here: each comes back, is asked about again and fails again).
#[test]
fn a_garbage_answer_or_a_failing_hook_fails_the_record_and_it_comes_back() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let r = rehearsal(d);
    // Time compression, test-only: the template's 2700 s visibility timeout.
    for queue in [r.output("EventQueueUrl"), r.output("FastLaneQueueUrl")] {
        let set = r.ms.boto3(
            "sqs",
            "set_queue_attributes",
            json!({ "QueueUrl": queue, "Attributes": { "VisibilityTimeout": "2" } }),
        );
        assert!(set.get("Error").is_none(), "{set}");
    }
    let three = issue_device(d, "root", "dev", "robot-3");
    let four = issue_device(d, "root", "other", "robot-4");
    for (device, id, cn, reason) in [
        (
            "dev/robot-3",
            &three,
            "robot-3",
            "malformed answer: expected a JSON object, got",
        ),
        (
            "other/robot-4",
            &four,
            "robot-4",
            "the function failed (Unhandled)",
        ),
    ] {
        // One connect: one registered event (a record in each lane).
        let out = r.connect(&[device], "3");
        assert_eq!(out.code, Some(1), "{}", out.stdout);
        let came_back = r.eventually(Duration::from_secs(60), || {
            questions(&r, cn) >= 3
                && r.outcome_lines(id)
                    .iter()
                    .filter(|l| l.contains("Failed"))
                    .count()
                    >= 3
        });
        let lines = r.outcome_lines(id);
        assert!(
            came_back,
            "{cn}: asked {} times: {lines:?}\n{}",
            questions(&r, cn),
            r.ms.log()
        );
        assert!(
            lines
                .iter()
                .any(|l| l.contains("Failed") && l.contains(reason)),
            "{cn}: {lines:?}"
        );
        assert!(
            !lines
                .iter()
                .any(|l| l.contains("Rejected") || l.contains("Activated")),
            "{lines:?}"
        );
        assert_eq!(r.status(id), "PENDING_ACTIVATION", "{cn}");
    }
    assert_eq!(r.thing_names(), Vec::<String>::new());
}
