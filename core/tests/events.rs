//! The handler's events (`JITR_EVENT_BUS`) over an in-memory AWS IoT and a
//! recording sink: one event per final change, none for records that fail,
//! are deferred or are duplicates, each naming its certificate's CA; and a
//! sink that fails leaves the invocation's answer as it was.

use std::sync::Mutex;

use jitr_core::claims::{Claim, Claims, ClaimsError, NoClaims};
use jitr_core::config::Config;
use jitr_core::deadline::Deadline;
use jitr_core::events::{DeviceEvent, EventSink, NoEvents, Sent, SinkError};
use jitr_core::handler::{handle, HandlerError, Services};
use serde_json::{json, Value};

use crate::support::registry::Registry;
use crate::support::{self, now, CA};

const GOOD: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const BAD: &str = "2222222222222222222222222222222222222222222222222222222222222222";
const BROKEN: &str = "3333333333333333333333333333333333333333333333333333333333333333";
const OLD: &str = "4444444444444444444444444444444444444444444444444444444444444444";
const FAST: &str = "arn:aws:sqs:eu-west-1:123456789012:jitr-FastLaneQueue-1";
const BULK: &str = "arn:aws:sqs:eu-west-1:123456789012:jitr-EventQueue-1";

/// Records every batch it is given; answers with `answer`.
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
    fn ok() -> Self {
        Self::answering(Ok(Sent::default()))
    }
    /// (detail type, certificate id, CA id, thing, outcome) of every event sent.
    fn sent(&self) -> Vec<(String, String, Value, Value, String)> {
        let mut all: Vec<_> = self
            .batches
            .lock()
            .unwrap()
            .iter()
            .flatten()
            .map(|e| {
                let d: Value = serde_json::from_str(&e.detail_json()).unwrap();
                (
                    e.detail_type.name().to_string(),
                    d["certificateId"].as_str().unwrap().to_string(),
                    d["caCertificateId"].clone(),
                    d["thingName"].clone(),
                    d["outcome"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        all.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        all
    }
}

impl EventSink for Recording {
    async fn put(&self, batch: &[DeviceEvent]) -> Result<Sent, SinkError> {
        self.batches.lock().unwrap().push(batch.to_vec());
        self.answer.clone()
    }
}

/// Claims that answer `claim` for every certificate, with the bulk lane working.
struct Settled(Claim);

impl Claims for Settled {
    async fn claim(&self, _: &str, _: i64, _: i64) -> Result<Claim, ClaimsError> {
        Ok(self.0)
    }
    async fn finish(&self, _: &str, _: i64) -> Result<(), ClaimsError> {
        Ok(())
    }
    async fn release(&self, _: &str) -> Result<(), ClaimsError> {
        Ok(())
    }
    async fn bulk_working(&self, _: i64) -> Result<bool, ClaimsError> {
        Ok(true)
    }
}

fn config(extra: &[(&str, &str)]) -> Config {
    support::config(&[&[("JITR_FAST_LANE_QUEUE_ARN", FAST)][..], extra].concat())
}

/// The handler's answer to `payload` under `claims` and `config` (no
/// gates, no deadline).
async fn handled_with<C: Claims, S: EventSink>(
    api: &Registry,
    claims: &C,
    sink: &S,
    config: &Config,
    payload: Value,
) -> Result<Value, HandlerError> {
    let services = Services::new(api, claims).with_events(sink);
    handle(&services, config, payload, now(), Deadline::none()).await
}

/// The handler's answer to `payload` without claims, under the plain
/// configuration.
async fn handled<S: EventSink>(
    api: &Registry,
    sink: &S,
    payload: Value,
) -> Result<Value, HandlerError> {
    handled_with(api, &NoClaims, sink, &config(&[]), payload).await
}

/// An SQS batch from the bulk queue: (message id, certificate id) records.
fn bulk(records: &[(&str, &str)]) -> Value {
    support::batch(Some(BULK), records)
}

/// A direct invocation for certificate `id`.
fn direct(id: &str) -> Value {
    json!({ "certificateId": id })
}

/// A fleet of one good device (robot-1), one whose name fails the pattern,
/// one whose DescribeCertificate fails.
fn fleet() -> Registry {
    let f = Registry::default();
    f.add(GOOD, "robot-1", "PENDING_ACTIVATION", 1_000);
    f.add(BAD, "bad name", "PENDING_ACTIVATION", 1_000);
    f.break_describe(BROKEN);
    f
}

fn ev(kind: &str, id: &str, thing: Value, outcome: &str) -> (String, String, Value, Value, String) {
    (kind.into(), id.into(), json!(CA), thing, outcome.into())
}

#[tokio::test]
async fn one_event_per_final_outcome_of_a_batch_none_for_failed_records() {
    let api = fleet();
    let sink = Recording::ok();
    let records = [("m1", GOOD), ("m2", BAD), ("m3", BROKEN), ("m4", GOOD)];
    let answer = handled(&api, &sink, bulk(&records)).await.unwrap();
    assert_eq!(
        answer["batchItemFailures"],
        json!([{ "itemIdentifier": "m3" }]),
        "{answer}"
    );
    assert_eq!(
        (api.status(GOOD).as_str(), api.status(BAD).as_str()),
        ("ACTIVE", "REVOKED")
    );
    assert_eq!(
        sink.sent(),
        [
            ev("Device provisioned", GOOD, json!("robot-1"), "Activated"),
            ev("Device rejected", BAD, Value::Null, "Rejected"),
        ],
    );
    assert_eq!(sink.batches.lock().unwrap().len(), 1, "both in one call");

    // A later event of the good device: already active, nothing changed, no event.
    let retried = Recording::ok();
    let answer = handled(&api, &retried, bulk(&[("m5", GOOD)]))
        .await
        .unwrap();
    assert_eq!(answer["batchItemFailures"], json!([]), "{answer}");
    assert_eq!(retried.sent(), []);
}

#[tokio::test]
async fn deferred_and_duplicate_records_send_nothing() {
    for (claims, queue, kind) in [
        (Settled(Claim::Mine), FAST, "Deferred"),
        (Settled(Claim::Done), BULK, "Duplicate"),
        (Settled(Claim::Elsewhere), BULK, "ClaimedElsewhere"),
    ] {
        let api = fleet();
        let sink = Recording::ok();
        let records = support::batch(Some(queue), &[("m1", GOOD), ("m2", BAD)]);
        let answer = handled_with(&api, &claims, &sink, &config(&[]), records)
            .await
            .unwrap();
        assert_eq!(answer["batchItemFailures"], json!([]), "{kind}: {answer}");
        assert!(api.calls().is_empty(), "{kind}: settled without AWS IoT");
        assert!(
            sink.batches.lock().unwrap().is_empty(),
            "{kind}: {:?}",
            sink.sent()
        );
    }
}

#[tokio::test]
async fn a_rotation_sends_the_new_certificate_provisioned_and_the_old_one_retired() {
    let api = Registry::default();
    api.add(OLD, "robot-1", "ACTIVE", 500);
    api.attach("robot-1", OLD);
    api.add(GOOD, "robot-1", "PENDING_ACTIVATION", 1_000);
    let sink = Recording::ok();
    let config = config(&[("JITR_ON_ROTATION", "retire-previous")]);
    handled_with(&api, &NoClaims, &sink, &config, bulk(&[("m1", GOOD)]))
        .await
        .unwrap();
    assert_eq!(
        (api.status(GOOD).as_str(), api.status(OLD).as_str()),
        ("ACTIVE", "INACTIVE")
    );
    assert_eq!(
        sink.sent(),
        [
            ev("Certificate retired", OLD, json!("robot-1"), "Retired"),
            ev("Device provisioned", GOOD, json!("robot-1"), "Activated"),
        ],
    );
}

#[tokio::test]
async fn a_direct_invocation_sends_its_event_unless_it_failed() {
    let api = fleet();
    let sink = Recording::ok();
    let ok = handled(&api, &sink, direct(GOOD)).await.unwrap();
    assert_eq!(ok["results"][0]["outcome"], "Activated");
    let failed = handled(&api, &sink, direct(BROKEN)).await;
    assert!(failed.is_err());
    let provisioned = ev("Device provisioned", GOOD, json!("robot-1"), "Activated");
    assert_eq!(sink.sent(), [provisioned]);
}

/// The answer with events that cannot be sent, or are refused, is the
/// answer without events: nothing provisioned fails because of them.
#[tokio::test]
async fn a_failing_sink_leaves_the_answer_unchanged() {
    let records = [("m1", GOOD), ("m2", BAD), ("m3", BROKEN)];
    let baseline = handled(&fleet(), &NoEvents, bulk(&records)).await.unwrap();
    let down = Recording::answering(Err(SinkError {
        code: "AccessDeniedException".into(),
        message: "not authorized to put events".into(),
    }));
    let refusing = Recording::answering(Ok(Sent {
        failed: 2,
        error_code: Some("InternalFailure".into()),
    }));
    for (name, sink) in [("down", down), ("refusing", refusing)] {
        let api = fleet();
        let answer = handled(&api, &sink, bulk(&records)).await.unwrap();
        assert_eq!(answer, baseline, "{name}");
        assert_eq!(api.status(GOOD), "ACTIVE", "{name}");
        assert_eq!(
            sink.batches.lock().unwrap().len(),
            1,
            "{name}: it was tried"
        );
        // A direct invocation: its answer is the outcome still.
        let answered = handled(&fleet(), &sink, direct(GOOD)).await.unwrap();
        assert_eq!(answered["results"][0]["outcome"], "Activated", "{name}");
        assert_eq!(sink.batches.lock().unwrap().len(), 2, "{name}: tried again");
    }
}
