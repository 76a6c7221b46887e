//! The handler's events (`JITR_EVENT_BUS`) over an in-memory AWS IoT and a
//! recording sink: one event per final change, none for records that fail,
//! are deferred or are duplicates, each naming its certificate's CA; and a
//! sink that fails leaves the invocation's answer as it was.

use std::collections::HashMap;
use std::sync::Mutex;

use aws_sdk_iot::types::CertificateStatus;
use jitr_core::admission::NoAllowList;
use jitr_core::aws::AwsError;
use jitr_core::claims::{Claim, Claims, ClaimsError, NoClaims};
use jitr_core::config::Config;
use jitr_core::deadline::Deadline;
use jitr_core::events::{DeviceEvent, EventSink, NoEvents, Sent, SinkError};
use jitr_core::handler::{handle_listed, HandlerError};
use jitr_core::iot::{CertStatus, Described, IotApi};
use jitr_core::verifier::NoVerifier;
use serde_json::{json, Value};

const CA: &str = "caca000000000000000000000000000000000000000000000000000000000000";
const GOOD: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const BAD: &str = "2222222222222222222222222222222222222222222222222222222222222222";
const BROKEN: &str = "3333333333333333333333333333333333333333333333333333333333333333";
const OLD: &str = "4444444444444444444444444444444444444444444444444444444444444444";
const FAST: &str = "arn:aws:sqs:eu-west-1:123456789012:jitr-FastLaneQueue-1";
const BULK: &str = "arn:aws:sqs:eu-west-1:123456789012:jitr-EventQueue-1";

fn arn(id: &str) -> String {
    format!("arn:aws:iot:eu-west-1:123456789012:cert/{id}")
}

fn device_pem(cn: &str) -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(rcgen::DnType::CommonName, cn);
    p.self_signed(&key).unwrap().pem()
}

/// AWS IoT in memory: certificates by id, things' principals; describing
/// BROKEN fails (a 5xx), so its record fails and comes back.
#[derive(Default)]
struct Fleet {
    certs: Mutex<HashMap<String, Described>>,
    principals: Mutex<HashMap<String, Vec<String>>>,
    calls: Mutex<usize>,
}

impl Fleet {
    fn add(&self, id: &str, cn: &str, status: &str, created_ms: i64) {
        let d = Described {
            certificate_arn: arn(id),
            status: CertStatus::parse(status),
            ca_certificate_id: Some(CA.into()),
            certificate_pem: device_pem(cn),
            created_ms: Some(created_ms),
        };
        self.certs.lock().unwrap().insert(id.into(), d);
    }
    fn status(&self, id: &str) -> String {
        self.certs.lock().unwrap()[id].status.as_str().to_string()
    }
    fn calls(&self) -> usize {
        *self.calls.lock().unwrap()
    }
    fn note(&self) {
        *self.calls.lock().unwrap() += 1;
    }
}

impl IotApi for Fleet {
    async fn describe_certificate(&self, id: &str) -> Result<Described, AwsError> {
        self.note();
        if id == BROKEN {
            return Err(AwsError::Service {
                code: "InternalFailureException".into(),
                message: "try again".into(),
            });
        }
        let certs = self.certs.lock().unwrap();
        certs
            .get(id)
            .cloned()
            .ok_or_else(|| AwsError::NotFound(id.into()))
    }
    async fn create_thing(
        &self,
        _: &str,
        _: Option<&str>,
        _: &HashMap<String, String>,
    ) -> Result<(), AwsError> {
        self.note();
        Ok(())
    }
    async fn attach_policy(&self, _: &str, _: &str) -> Result<(), AwsError> {
        self.note();
        Ok(())
    }
    async fn attach_thing_principal(
        &self,
        thing: &str,
        principal: &str,
        _: bool,
    ) -> Result<(), AwsError> {
        self.note();
        let mut things = self.principals.lock().unwrap();
        let attached = things.entry(thing.into()).or_default();
        if !attached.iter().any(|p| p == principal) {
            attached.push(principal.into());
        }
        Ok(())
    }
    async fn add_thing_to_thing_group(&self, _: &str, _: &str) -> Result<(), AwsError> {
        self.note();
        Ok(())
    }
    async fn update_certificate(
        &self,
        id: &str,
        status: CertificateStatus,
    ) -> Result<(), AwsError> {
        self.note();
        let mut certs = self.certs.lock().unwrap();
        let d = certs
            .get_mut(id)
            .ok_or_else(|| AwsError::NotFound(id.into()))?;
        d.status = CertStatus::from_sdk(&status);
        Ok(())
    }
    async fn list_pending_certificates(&self, _: &str) -> Result<Vec<String>, AwsError> {
        self.note();
        Ok(vec![])
    }
    async fn list_thing_principals(&self, thing: &str) -> Result<Vec<String>, AwsError> {
        self.note();
        let things = self.principals.lock().unwrap();
        things
            .get(thing)
            .cloned()
            .ok_or_else(|| AwsError::NotFound(thing.into()))
    }
}

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
    let vars: HashMap<&str, &str> = [
        ("JITR_POLICY_NAME", "p"),
        ("JITR_FAST_LANE_QUEUE_ARN", FAST),
    ]
    .into_iter()
    .chain(extra.iter().copied())
    .collect();
    Config::from_lookup(|k| vars.get(k).map(|v| v.to_string())).unwrap()
}

/// The handler's answer to `payload` (no allow-list, no deadline).
async fn handled<C: Claims, S: EventSink>(
    api: &Fleet,
    claims: &C,
    sink: &S,
    config: &Config,
    payload: Value,
) -> Result<Value, HandlerError> {
    let now = jitr_core::clock::unix_seconds();
    handle_listed(
        api,
        claims,
        &NoAllowList,
        &NoVerifier,
        sink,
        config,
        payload,
        now,
        Deadline::none(),
    )
    .await
}

/// An SQS batch from `queue`: (message id, certificate id) records.
fn batch(queue: &str, records: &[(&str, &str)]) -> Value {
    let records: Vec<Value> = records
        .iter()
        .map(|(m, c)| {
            let body = json!({ "certificateId": c, "certificateStatus": "PENDING_ACTIVATION" });
            json!({ "messageId": m, "body": body.to_string(), "eventSource": "aws:sqs", "eventSourceARN": queue })
        })
        .collect();
    json!({ "Records": records })
}

/// A fleet of one good device (robot-1), one whose name fails the pattern,
/// one whose DescribeCertificate fails.
fn fleet() -> Fleet {
    let f = Fleet::default();
    f.add(GOOD, "robot-1", "PENDING_ACTIVATION", 1_000);
    f.add(BAD, "bad name", "PENDING_ACTIVATION", 1_000);
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
    let answer = handled(&api, &NoClaims, &sink, &config(&[]), batch(BULK, &records))
        .await
        .unwrap();
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
    let answer = handled(
        &api,
        &NoClaims,
        &retried,
        &config(&[]),
        batch(BULK, &[("m5", GOOD)]),
    )
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
        let answer = handled(
            &api,
            &claims,
            &sink,
            &config(&[]),
            batch(queue, &[("m1", GOOD), ("m2", BAD)]),
        )
        .await
        .unwrap();
        assert_eq!(answer["batchItemFailures"], json!([]), "{kind}: {answer}");
        assert_eq!(api.calls(), 0, "{kind}: settled without AWS IoT");
        assert!(
            sink.batches.lock().unwrap().is_empty(),
            "{kind}: {:?}",
            sink.sent()
        );
    }
}

#[tokio::test]
async fn a_rotation_sends_the_new_certificate_provisioned_and_the_old_one_retired() {
    let api = Fleet::default();
    api.add(OLD, "robot-1", "ACTIVE", 500);
    api.principals
        .lock()
        .unwrap()
        .insert("robot-1".into(), vec![arn(OLD)]);
    api.add(GOOD, "robot-1", "PENDING_ACTIVATION", 1_000);
    let sink = Recording::ok();
    let config = config(&[("JITR_ON_ROTATION", "retire-previous")]);
    handled(
        &api,
        &NoClaims,
        &sink,
        &config,
        batch(BULK, &[("m1", GOOD)]),
    )
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
    let ok = handled(
        &api,
        &NoClaims,
        &sink,
        &config(&[]),
        json!({ "certificateId": GOOD }),
    )
    .await
    .unwrap();
    assert_eq!(ok["results"][0]["outcome"], "Activated");
    let failed = handled(
        &api,
        &NoClaims,
        &sink,
        &config(&[]),
        json!({ "certificateId": BROKEN }),
    )
    .await;
    assert!(failed.is_err());
    assert_eq!(
        sink.sent(),
        [ev(
            "Device provisioned",
            GOOD,
            json!("robot-1"),
            "Activated"
        )]
    );
}

/// The answer with events that cannot be sent, or are refused, is the
/// answer without events: nothing provisioned fails because of them.
#[tokio::test]
async fn a_failing_sink_leaves_the_answer_unchanged() {
    let records = [("m1", GOOD), ("m2", BAD), ("m3", BROKEN)];
    let baseline = {
        let api = fleet();
        handled(
            &api,
            &NoClaims,
            &NoEvents,
            &config(&[]),
            batch(BULK, &records),
        )
        .await
        .unwrap()
    };
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
        let answer = handled(&api, &NoClaims, &sink, &config(&[]), batch(BULK, &records))
            .await
            .unwrap();
        assert_eq!(answer, baseline, "{name}");
        assert_eq!(api.status(GOOD), "ACTIVE", "{name}");
        assert_eq!(
            sink.batches.lock().unwrap().len(),
            1,
            "{name}: it was tried"
        );
        // A direct invocation: its answer is the outcome still.
        let fresh = fleet();
        let direct = handled(
            &fresh,
            &NoClaims,
            &sink,
            &config(&[]),
            json!({ "certificateId": GOOD }),
        )
        .await
        .unwrap();
        assert_eq!(direct["results"][0]["outcome"], "Activated", "{name}");
        assert_eq!(sink.batches.lock().unwrap().len(), 2, "{name}: tried again");
    }
}
