//! Events downstream on the deployed stack (issue 26): with `EventBusName`
//! set, the function puts one EventBridge event per final outcome on that
//! bus, through the role's grant on that bus alone (the emulator enforces
//! IAM). A rule on the bus (source `jitr`) delivers to a queue the test
//! reads: of two devices of one CA, the provisioned one and the rejected
//! one each appear there exactly once, with their detail type and detail,
//! although every registered event reaches both lanes and devices retry.

use std::collections::HashMap;
use std::time::Duration;

use jitr_tests::issue_device;
use jitr_tests::rehearsal::Rehearsal;
use serde_json::{json, Value};

const BUS: &str = "jitr-devices";

/// A queue receiving every event of source `jitr` on `BUS`: its URL.
fn queue_for_the_bus(r: &Rehearsal) -> String {
    let ok = |v: Value| {
        assert!(v.get("Error").is_none(), "{v}");
        v
    };
    ok(r.ms.boto3("events", "create_event_bus", json!({ "Name": BUS })));
    let url =
        ok(r.ms.boto3("sqs", "create_queue", json!({ "QueueName": "downstream" })))["QueueUrl"]
            .as_str()
            .unwrap()
            .to_string();
    let arn = ok(r.ms.boto3(
        "sqs",
        "get_queue_attributes",
        json!({ "QueueUrl": url, "AttributeNames": ["QueueArn"] }),
    ))["Attributes"]["QueueArn"]
        .as_str()
        .unwrap()
        .to_string();
    let pattern = json!({ "source": ["jitr"] }).to_string();
    ok(r.ms.boto3(
        "events",
        "put_rule",
        json!({ "Name": "jitr-outcomes", "EventBusName": BUS, "EventPattern": pattern }),
    ));
    ok(r.ms.boto3(
        "events",
        "put_targets",
        json!({ "Rule": "jitr-outcomes", "EventBusName": BUS, "Targets": [{ "Id": "downstream", "Arn": arn }] }),
    ));
    url
}

/// Every message on the queue so far (received once: not deleted, hidden
/// for the rest of the test), as the events they carry.
fn drain(r: &Rehearsal, url: &str, into: &mut Vec<Value>) {
    loop {
        let got = r.ms.boto3(
            "sqs",
            "receive_message",
            json!({ "QueueUrl": url, "MaxNumberOfMessages": 10, "VisibilityTimeout": 3600 }),
        );
        assert!(got.get("Error").is_none(), "{got}");
        let Some(messages) = got["Messages"].as_array().filter(|m| !m.is_empty()) else {
            return;
        };
        for m in messages {
            into.push(serde_json::from_str(m["Body"].as_str().unwrap()).unwrap());
        }
    }
}

/// The one event of `id`.
fn only<'a>(by_certificate: &HashMap<String, Vec<&'a Value>>, id: &str) -> &'a Value {
    let of = by_certificate
        .get(id)
        .map(Vec::as_slice)
        .unwrap_or_default();
    assert_eq!(of.len(), 1, "{id}: {of:#?}");
    of[0]
}

#[test]
fn each_outcome_reaches_the_bus_once_with_its_detail() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let parameters = [
        ("EventBusName", BUS),
        ("ThingNamePattern", "^robot-[0-9]+$"),
    ];
    let r = Rehearsal::with_parameters(d, &parameters);
    let url = queue_for_the_bus(&r);
    let good = issue_device(d, "root", "dev", "robot-1");
    let bad = issue_device(d, "root", "dev", "intruder-1");

    let out = r.connect(&["dev/robot-1"], "60");
    assert_eq!(out.code, Some(0), "{}\n{}", out.stderr, r.ms.log());
    r.assert_refused_then_revoked("dev/intruder-1", &bad, Duration::from_secs(30));
    assert_eq!(r.status(&good), "ACTIVE");

    let mut events: Vec<Value> = Vec::new();
    let both = r.eventually(Duration::from_secs(30), || {
        drain(&r, &url, &mut events);
        events.len() >= 2
    });
    assert!(both, "events: {events:?}\n{}", r.ms.log());
    // Duplicates would come with the other lane's copy of a registered
    // event, or with the device's retries while pending: give them time.
    std::thread::sleep(Duration::from_secs(5));
    drain(&r, &url, &mut events);

    let by_certificate: HashMap<String, Vec<&Value>> =
        events.iter().fold(HashMap::new(), |mut m, e| {
            let id = e["detail"]["certificateId"].as_str().unwrap_or_default();
            m.entry(id.to_string()).or_default().push(e);
            m
        });
    assert_eq!(events.len(), 2, "exactly one each: {events:#?}");
    let provisioned = only(&by_certificate, &good);
    assert_eq!(provisioned["source"], "jitr");
    assert_eq!(provisioned["detail-type"], "Device provisioned");
    assert_eq!(
        provisioned["detail"],
        json!({ "certificateId": good, "caCertificateId": r.ca_id, "thingName": "robot-1",
                "outcome": "Activated", "reason": null })
    );
    let rejected = only(&by_certificate, &bad);
    assert_eq!(rejected["source"], "jitr");
    assert_eq!(rejected["detail-type"], "Device rejected");
    let detail = &rejected["detail"];
    assert_eq!(
        (
            &detail["caCertificateId"],
            &detail["thingName"],
            &detail["outcome"]
        ),
        (&json!(r.ca_id), &Value::Null, &json!("Rejected")),
        "{detail}"
    );
    let reason = detail["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("intruder-1") && reason.contains("robot-"),
        "the reason names the name and the pattern: {detail}"
    );
}
