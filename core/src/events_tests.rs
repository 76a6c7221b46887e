//! Tests of [`super`]: which outcomes send which events, the calls they
//! are cut into, and sending that never fails the invocation.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::*;

const NEW: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const OLD: &str = "2222222222222222222222222222222222222222222222222222222222222222";
const CA: &str = "caca000000000000000000000000000000000000000000000000000000000000";

fn outcome(kind: Kind, thing: Option<&str>, reason: Option<&str>, retired: &[&str]) -> Outcome {
    let mut o = Outcome::without_calls(NEW, kind, "");
    o.ca_certificate_id = Some(CA.to_string());
    o.thing = thing.map(str::to_string);
    o.reason = reason.map(str::to_string);
    o.retired = retired.iter().map(|s| s.to_string()).collect();
    o
}

/// (detail type, certificate id) of each event.
fn summary(events: &[DeviceEvent]) -> Vec<(&'static str, String)> {
    events
        .iter()
        .map(|e| (e.detail_type.name(), e.detail.certificate_id.clone()))
        .collect()
}

#[test]
fn each_final_change_sends_its_events_and_nothing_else_sends_any() {
    let t = Some("robot-1");
    let provisioned = ("Device provisioned", NEW.to_string());
    let rejected = ("Device rejected", NEW.to_string());
    let retired = ("Certificate retired", OLD.to_string());
    for (o, expected) in [
        (
            outcome(Kind::Activated, t, None, &[]),
            vec![provisioned.clone()],
        ),
        (
            outcome(Kind::Activated, t, Some("retired"), &[OLD]),
            vec![provisioned.clone(), retired.clone()],
        ),
        // A rotation finished by a retry: its first attempt sent nothing.
        (
            outcome(Kind::AlreadyActive, t, Some("retired"), &[OLD]),
            vec![provisioned.clone(), retired.clone()],
        ),
        (
            outcome(Kind::AlreadyActive, t, Some("already active"), &[]),
            vec![],
        ),
        (
            outcome(Kind::Rejected, None, Some("bad name"), &[]),
            vec![rejected],
        ),
        (outcome(Kind::Skipped, None, Some("revoked"), &[]), vec![]),
        (outcome(Kind::Inactive, None, Some("inactive"), &[]), vec![]),
        (
            outcome(Kind::Superseded, None, Some("successor"), &[]),
            vec![],
        ),
        (
            outcome(Kind::Failed, t, Some("CreateThing: throttled"), &[]),
            vec![],
        ),
        (
            outcome(Kind::Unfinished, None, Some("unfinished"), &[]),
            vec![],
        ),
        (outcome(Kind::Duplicate, None, Some("dup"), &[]), vec![]),
        (
            outcome(Kind::ClaimedElsewhere, None, Some("claimed"), &[]),
            vec![],
        ),
        (
            outcome(Kind::Deferred, None, Some("fast lane"), &[]),
            vec![],
        ),
    ] {
        assert_eq!(summary(&events_of(&o)), expected, "{o:?}");
    }
}

#[test]
fn the_detail_names_certificate_ca_thing_outcome_and_reason() {
    let o = outcome(
        Kind::Activated,
        Some("robot-1"),
        Some("retired the previous"),
        &[OLD],
    );
    let events = events_of(&o);
    let details: Vec<serde_json::Value> = events
        .iter()
        .map(|e| serde_json::from_str(&e.detail_json()).unwrap())
        .collect();
    assert_eq!(
        details[0],
        serde_json::json!({
            "certificateId": NEW, "caCertificateId": CA, "thingName": "robot-1",
            "outcome": "Activated", "reason": "retired the previous",
        })
    );
    assert_eq!(details[1]["certificateId"], OLD);
    assert_eq!(details[1]["caCertificateId"], CA);
    assert_eq!(details[1]["thingName"], "robot-1");
    assert_eq!(details[1]["outcome"], "Retired");
    assert!(
        details[1]["reason"].as_str().unwrap().contains(NEW),
        "{}",
        details[1]
    );
    // A rejection: no thing, the CA unknown when it was not described; every field present.
    let mut undescribed = outcome(Kind::Rejected, None, Some("not on the allow-list"), &[]);
    undescribed.ca_certificate_id = None;
    let rejected = events_of(&undescribed);
    let detail: serde_json::Value = serde_json::from_str(&rejected[0].detail_json()).unwrap();
    assert_eq!(
        detail,
        serde_json::json!({
            "certificateId": NEW, "caCertificateId": null, "thingName": null,
            "outcome": "Rejected", "reason": "not on the allow-list",
        })
    );
}

fn event(reason_bytes: usize) -> DeviceEvent {
    let o = outcome(Kind::Rejected, None, Some(&"r".repeat(reason_bytes)), &[]);
    events_of(&o).remove(0)
}

#[test]
fn calls_hold_at_most_ten_events_and_256_kb() {
    let lens =
        |events: Vec<DeviceEvent>| -> Vec<usize> { chunks(events).iter().map(Vec::len).collect() };
    assert_eq!(lens(vec![]), Vec::<usize>::new());
    assert_eq!(lens(vec![event(10); 1]), [1]);
    assert_eq!(lens(vec![event(10); 10]), [10]);
    assert_eq!(lens(vec![event(10); 11]), [10, 1]);
    assert_eq!(lens(vec![event(10); 25]), [10, 10, 5]);
    // 30 KB each: eight fit in 256 KB, nine do not.
    let big = event(30 * 1024);
    assert!(8 * big.size() <= MAX_REQUEST_BYTES && 9 * big.size() > MAX_REQUEST_BYTES);
    assert_eq!(lens(vec![big.clone(); 20]), [8, 8, 4]);
    // Larger than a whole call: alone (EventBridge refuses it; logged).
    let huge = event(MAX_REQUEST_BYTES);
    assert_eq!(lens(vec![event(10), huge, event(10)]), [1, 1, 1]);
    // Order kept.
    let mut ordered = vec![event(1), event(2), event(3)];
    ordered[1].detail.certificate_id = OLD.into();
    let calls = chunks(ordered.clone());
    assert_eq!(calls, vec![ordered]);
}

/// Records every batch; answers each with `answer`.
struct Recording {
    batches: Mutex<Vec<Vec<DeviceEvent>>>,
    answer: Result<Sent, SinkError>,
}

impl Recording {
    fn answering(answer: Result<Sent, SinkError>) -> Self {
        Recording {
            batches: Mutex::default(),
            answer,
        }
    }
}

impl EventSink for Recording {
    async fn put(&self, batch: &[DeviceEvent]) -> Result<Sent, SinkError> {
        self.batches.lock().unwrap().push(batch.to_vec());
        self.answer.clone()
    }
}

#[tokio::test]
async fn every_event_is_sent_once_in_calls_of_ten() {
    let sink = Recording::answering(Ok(Sent::default()));
    let published = publish(&sink, vec![event(5); 23], &Deadline::none()).await;
    assert_eq!(
        published,
        Published {
            sent: 23,
            failed: 0
        }
    );
    let mut sizes: Vec<usize> = sink.batches.lock().unwrap().iter().map(Vec::len).collect();
    sizes.sort();
    assert_eq!(sizes, [3, 10, 10]);
    // Nothing to send: no call.
    let idle = Recording::answering(Ok(Sent::default()));
    assert_eq!(
        publish(&idle, vec![], &Deadline::none()).await,
        Published::default()
    );
    assert!(idle.batches.lock().unwrap().is_empty());
}

#[tokio::test]
async fn failures_are_counted_never_raised() {
    let down = Recording::answering(Err(SinkError {
        code: "AccessDeniedException".into(),
        message: "not authorized".into(),
    }));
    let published = publish(&down, vec![event(5); 12], &Deadline::none()).await;
    assert_eq!(
        published,
        Published {
            sent: 0,
            failed: 12
        }
    );
    // Entries refused in an accepted call.
    let partly = Recording::answering(Ok(Sent {
        failed: 2,
        error_code: Some("InternalFailure".into()),
    }));
    let published = publish(&partly, vec![event(5); 5], &Deadline::none()).await;
    assert_eq!(published, Published { sent: 3, failed: 2 });
}

/// Never answers.
struct Hung;

impl EventSink for Hung {
    async fn put(&self, _: &[DeviceEvent]) -> Result<Sent, SinkError> {
        std::future::pending().await
    }
}

#[tokio::test]
async fn a_hung_bus_is_given_up_before_the_deadline() {
    let started = Instant::now();
    let deadline = Deadline::after(Duration::from_millis(400));
    let published = publish(&Hung, vec![event(5); 3], &deadline).await;
    assert_eq!(published, Published { sent: 0, failed: 3 });
    assert!(
        started.elapsed() < Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );
    // Without a deadline, within SEND_WITHIN.
    tokio::time::pause();
    let published = publish(&Hung, vec![event(5)], &Deadline::none()).await;
    assert_eq!(published, Published { sent: 0, failed: 1 });
}
