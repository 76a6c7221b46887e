//! Certificate rotation through the deployed function, on the ministack
//! emulator with IAM enforced: a device rotated with `jitr device rotate`
//! (same CN, same CA, new key) connects with its successor; under `OnRotation=keep` both stay ACTIVE,
//! under `retire-previous` the predecessor goes INACTIVE (the order of the
//! calls is `core/tests/rotation_calls.rs`'s to check), and replayed events
//! of both change nothing.

use std::time::Duration;

use jitr_tests::rehearsal::{cert_arn, Options, Rehearsal};
use jitr_tests::{certificate_id, issue_device, jitr_args};
use serde_json::json;

/// robot-1 online with its first certificate, then rotated with
/// `jitr device rotate`: the successor in fleet/robot-1, the predecessor in
/// fleet/robot-1/previous. Their ids.
fn device_with_successor(r: &Rehearsal) -> (String, String) {
    let d = &r.dir;
    let old = issue_device(d, "root", "fleet", "robot-1");
    // Before the rotation, fleet/robot-1 holds the first certificate.
    let first = r.connect(&[NEW], "60");
    assert_eq!(first.code, Some(0), "{}\n{}", first.stderr, r.ms.log());
    assert_eq!(r.status(&old), "ACTIVE");
    jitr_args(d, "device rotate --ca root --out fleet --name robot-1").success();
    assert_eq!(certificate_id(d, "fleet/robot-1/previous/device.crt"), old);
    let new = certificate_id(d, "fleet/robot-1/device.crt");
    assert_ne!(old, new);
    (old, new)
}

/// The device directory after rotation (the successor) and its predecessor.
const NEW: &str = "fleet/robot-1";
const OLD: &str = "fleet/robot-1/previous";

/// The stack deployed with these template parameters, and the deployed
/// function's environment variables.
fn deployed_with(
    dir: &std::path::Path,
    parameters: &[(&str, &str)],
) -> (Rehearsal, serde_json::Value) {
    let r = Rehearsal::with_parameters(dir, parameters);
    let function = r.ms.boto3(
        "lambda",
        "get_function_configuration",
        json!({ "FunctionName": r.output("FunctionName") }),
    );
    let env = function["Environment"]["Variables"].clone();
    (r, env)
}

#[test]
fn keep_leaves_both_certificates_active_on_the_thing() {
    let tmp = tempfile::tempdir().unwrap();
    let r = Rehearsal::start(tmp.path(), Options::default());
    let (old, new) = device_with_successor(&r);

    let out = r.connect(&[NEW, "--message", "successor"], "60");
    assert_eq!(out.code, Some(0), "{}\n{}", out.stderr, r.ms.log());
    assert_eq!(r.status(&new), "ACTIVE");
    assert_eq!(r.status(&old), "ACTIVE");
    let mut principals = r.thing_principals("robot-1");
    principals.sort();
    let mut both = vec![cert_arn(&old), cert_arn(&new)];
    both.sort();
    assert_eq!(principals, both);
    // Both hold the device policy through the thing's device group, none
    // of their own: the successor needed no new attachment.
    let group = r.iot(
        "list_thing_groups_for_thing",
        json!({ "thingName": "robot-1" }),
    );
    assert_eq!(
        group["thingGroups"][0]["groupName"],
        r.output("DeviceGroupName").as_str(),
        "{group}"
    );
    assert!(r.policies_of(&cert_arn(&new)).is_empty());
    assert!(r.policies_of(&cert_arn(&old)).is_empty());
    let report = r.things_report();
    let policy = r.output("DevicePolicyName");
    for row in report["robot-1"].as_array().unwrap() {
        assert_eq!(row["policies"], json!([&policy]), "{report}");
    }
    // The predecessor still gets in.
    let again = r.connect(&[OLD], "10");
    assert_eq!(again.code, Some(0), "{}", again.stderr);
}

/// `OnRotation=retire-previous` through the deployed stack: the successor
/// connects, the predecessor ends INACTIVE and is refused, and replays change
/// nothing. The order (the predecessor retired only after the successor is
/// ACTIVE) is not observable from here: statuses sampled by separate
/// processes can miss a moment between two calls.
/// `core/tests/rotation_calls.rs` holds the calls to that order
/// (`retire_previous_sets_the_old_certificate_inactive_only_after_the_new_one_is_active`).
#[test]
fn retire_previous_deactivates_the_old_certificate_and_replays_change_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (r, env) = deployed_with(tmp.path(), &[("OnRotation", "retire-previous")]);
    assert_eq!(env["JITR_ON_ROTATION"], "retire-previous", "{env}");
    let (old, new) = device_with_successor(&r);

    let out = r.connect(&[NEW, "--message", "via successor"], "60");
    assert_eq!(out.code, Some(0), "{}\n{}", out.stderr, r.ms.log());
    assert_eq!(r.status(&new), "ACTIVE");
    assert!(
        r.eventually(Duration::from_secs(10), || r.status(&old) == "INACTIVE"),
        "{}\n{}",
        r.status(&old),
        r.ms.log()
    );
    // The function said which certificate it retired.
    let lines = r.outcome_lines(&new);
    assert!(
        lines.iter().any(|l| l.contains("Activated")
            && l.contains(&format!("retired the previous certificate(s) {old}"))),
        "{lines:#?}"
    );

    // The device is online through the new certificate; the old one is refused.
    assert!(r.eventually(Duration::from_secs(5), || r
        .received()
        .contains("things/robot-1/hello via successor")));
    let again = r.connect(&[NEW, "--message", "still here"], "10");
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    let refused = r.connect(&[OLD], "3");
    assert_eq!(refused.code, Some(1), "{}", refused.stdout);

    // Replaying both certificates' events changes nothing: within ten
    // minutes the claims settle them (Duplicate), later the plan does (the
    // old one Inactive, the new one AlreadyActive).
    let before = r.things_report();
    let settled = |id: &str, outcome: &str| {
        r.outcome_lines(id)
            .iter()
            .filter(|l| l.contains(outcome) || l.contains("outcome=\"Duplicate\""))
            .count()
    };
    let (old_settled, new_settled) = (settled(&old, "Inactive"), settled(&new, "AlreadyActive"));
    let queue = r.output("EventQueueUrl");
    for id in [&old, &new] {
        let event = json!({ "certificateId": id, "caCertificateId": r.ca_id,
            "certificateStatus": "PENDING_ACTIVATION", "timestamp": 1_700_000_000_000_i64 });
        for _ in 0..2 {
            let sent = r.ms.boto3(
                "sqs",
                "send_message",
                json!({ "QueueUrl": queue, "MessageBody": event.to_string() }),
            );
            assert!(sent.get("Error").is_none(), "{sent}");
        }
    }
    let replayed = r.eventually(Duration::from_secs(60), || {
        settled(&old, "Inactive") >= old_settled + 2
            && settled(&new, "AlreadyActive") >= new_settled + 2
    });
    assert!(
        replayed,
        "{:#?}\n{:#?}",
        r.outcome_lines(&old),
        r.outcome_lines(&new)
    );
    assert_eq!(r.things_report(), before);
    assert_eq!(r.status(&old), "INACTIVE");
    assert_eq!(r.status(&new), "ACTIVE");
    let policy = r.output("DevicePolicyName");
    let expected = json!({ "robot-1": [
        { "arn": cert_arn(&old), "status": "INACTIVE", "policies": [&policy] },
        { "arn": cert_arn(&new), "status": "ACTIVE", "policies": [&policy] },
    ]});
    assert_eq!(before, expected);
    let still = r.connect(&[NEW], "10");
    assert_eq!(still.code, Some(0), "{}", still.stderr);
}

/// `ExclusiveThing=true` reaches the function, and a device still gets in:
/// the function attaches with `thingPrincipalType=EXCLUSIVE_THING` (the
/// request is checked on the wire in core/tests/rotation_calls.rs), which
/// ministack 1.5.33 accepts and ignores (it does not enforce exclusivity).
#[test]
fn exclusive_thing_reaches_the_function_and_devices_get_in() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let (r, env) = deployed_with(d, &[("ExclusiveThing", "true")]);
    assert_eq!(env["JITR_EXCLUSIVE_THING"], "true", "{env}");
    assert_eq!(env["JITR_ON_ROTATION"], "keep", "{env}");
    let id = issue_device(d, "root", "dev", "robot-1");
    let out = r.connect(&["dev/robot-1"], "60");
    assert_eq!(out.code, Some(0), "{}\n{}", out.stderr, r.ms.log());
    assert_eq!(r.status(&id), "ACTIVE");
    assert_eq!(r.thing_principals("robot-1"), [cert_arn(&id)]);
}
