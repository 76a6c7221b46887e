//! The function's entry point, independent of the Lambda runtime: the rule's
//! event directly, or an SQS batch of them (partial batch failures), in;
//! one log line and one metric line per certificate out.

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use serde_json::Value;

use crate::admission::{AllowList, NoAllowList};
use crate::claims::{self, Claims};
use crate::config::Config;
use crate::deadline::Deadline;
use crate::event::{EventError, RegisteredEvent};
use crate::events::{self, EventSink, NoEvents};
use crate::iot::IotApi;
use crate::lane::{self, Decision, Lane};
use crate::outcome::{Kind, Outcome};
use crate::provision::{self, Gates};
use crate::verifier::{NoVerifier, Verifier};

/// Certificates of one SQS batch in flight at once (the templates' batches
/// hold 10 records; a mapping may allow more); as one finishes the next starts, so the
/// calls' round trips (six sequential calls a certificate) overlap until
/// the batch ends. The pacer keeps the calls under the quotas; this only
/// has to cover the latency, so that the rate, not the round trips, binds.
const BATCH_CONCURRENCY: usize = 100;

/// Why an invocation failed (so Lambda retries it, or routes it to the
/// on-failure destination).
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error("malformed event: {0}")]
    BadEvent(#[from] EventError),
    #[error("provisioning {certificate_id} failed: {reason}")]
    Provisioning {
        certificate_id: String,
        reason: String,
    },
    #[error("provisioning {certificate_id} {reason}")]
    Unfinished {
        certificate_id: String,
        reason: String,
    },
}

/// What the function works with besides its settings: the AWS IoT calls,
/// the claims shared by its instances (`JITR_CLAIMS_TABLE`), the admission
/// gates (the allow-list, the verifier hook) and where its events go
/// (`JITR_EVENT_BUS`). [`Services::new`] has no gates and sends no events.
pub struct Services<'a, A, C, L, V, S> {
    pub api: &'a A,
    pub claims: &'a C,
    pub gates: Gates<'a, L, V>,
    pub events: &'a S,
}

impl<'a, A, C> Services<'a, A, C, NoAllowList, NoVerifier, NoEvents> {
    /// `api` and `claims`; no gates, no events.
    pub fn new(api: &'a A, claims: &'a C) -> Self {
        Services {
            api,
            claims,
            gates: Gates::none(),
            events: &NoEvents,
        }
    }
}

impl<'a, A, C, L, V, S> Services<'a, A, C, L, V, S> {
    /// These services sending their events to `events`.
    pub fn with_events<T>(self, events: &'a T) -> Services<'a, A, C, L, V, T> {
        Services {
            api: self.api,
            claims: self.claims,
            gates: self.gates,
            events,
        }
    }
}

/// Handles one invocation with `services`; `now` is Unix seconds. Every
/// certificate either finishes or is reported unfinished (a batch item
/// failure, or the direct invocation's error) before `deadline`; an SQS
/// record whose certificate another record settled (the claims) is
/// acknowledged without an IoT call. The invocation's final outcomes go to
/// the events sink once settled, within the deadline; the answer is the
/// same whether they get there or not.
pub async fn handle<A: IotApi, C: Claims, L: AllowList, V: Verifier, S: EventSink>(
    services: &Services<'_, A, C, L, V, S>,
    config: &Config,
    payload: Value,
    now: i64,
    deadline: Deadline,
) -> Result<Value, HandlerError> {
    if is_sqs(&payload) {
        let batch: SqsEvent =
            serde_json::from_value(payload).map_err(|e| EventError::WrongType {
                field: "Records",
                expected: "an SQS batch",
                got: e.to_string(),
            })?;
        let response = handle_batch(services, config, batch, now, deadline).await;
        return Ok(serde_json::to_value(response).expect("serialisable"));
    }
    let event = RegisteredEvent::parse(&payload)
        .inspect_err(|e| tracing::error!(error = %e, "malformed event: no AWS call made"))?;
    // No claims here: a direct invocation's retry is not queued behind a
    // claimant, so acknowledging it as a duplicate could lose it.
    let (api, gates) = (services.api, services.gates);
    let outcome =
        provision::provision_within(api, gates, config, &event.certificate_id, now, deadline).await;
    report(&outcome);
    send_events(services.events, std::slice::from_ref(&outcome), &deadline).await;
    let (certificate_id, reason) = (
        outcome.certificate_id.clone(),
        outcome.reason.clone().unwrap_or_default(),
    );
    match outcome.outcome {
        Kind::Failed => {
            return Err(HandlerError::Provisioning {
                certificate_id,
                reason,
            })
        }
        Kind::Unfinished => {
            return Err(HandlerError::Unfinished {
                certificate_id,
                reason,
            })
        }
        _ => {}
    }
    Ok(serde_json::json!({ "results": [outcome] }))
}

fn is_sqs(payload: &Value) -> bool {
    payload
        .get("Records")
        .and_then(Value::as_array)
        .is_some_and(|records| {
            records
                .first()
                .is_none_or(|r| r.get("eventSource").and_then(Value::as_str) == Some("aws:sqs"))
        })
}

/// The records of one batch for one certificate: a device retrying while
/// its certificate is pending causes one registered event per attempt, and
/// several can land in one batch. Provisioned once; every record of it is
/// acknowledged or failed together.
#[derive(Debug, PartialEq)]
struct Work {
    certificate_id: String,
    message_ids: Vec<String>,
}

/// Groups a batch's records (message id, certificate id or why the body is
/// malformed) by certificate, in order of first appearance; malformed
/// records are returned apart (batch item failures, no AWS call).
fn group<E>(records: Vec<(String, Result<String, E>)>) -> (Vec<Work>, Vec<(String, E)>) {
    let mut work: Vec<Work> = Vec::new();
    let mut malformed = Vec::new();
    for (message_id, certificate) in records {
        match certificate {
            Err(e) => malformed.push((message_id, e)),
            Ok(id) => match work.iter_mut().find(|w| w.certificate_id == id) {
                Some(w) => w.message_ids.push(message_id),
                None => work.push(Work {
                    certificate_id: id,
                    message_ids: vec![message_id],
                }),
            },
        }
    }
    (work, malformed)
}

/// Provisions every certificate of the batch once; the records of one that
/// fails (and malformed records) are batch item failures, so only they are
/// redelivered (and end in the DLQ if they keep failing). The events of the
/// final outcomes go to `sink`, batched, once all are settled.
async fn handle_batch<A: IotApi, C: Claims, L: AllowList, V: Verifier, S: EventSink>(
    services: &Services<'_, A, C, L, V, S>,
    config: &Config,
    batch: SqsEvent,
    now: i64,
    deadline: Deadline,
) -> SqsBatchResponse {
    let (outcomes, failed) = settle_batch(services, config, batch, now, deadline).await;
    send_events(services.events, &outcomes, &deadline).await;
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failed
        .into_iter()
        .map(|id| {
            let mut f = BatchItemFailure::default();
            f.item_identifier = id;
            f
        })
        .collect();
    response
}

/// The batch's outcomes (each reported as it comes) and the message ids to
/// fail. A fast-lane batch defers to a working bulk lane ([`lane`]).
async fn settle_batch<A: IotApi, C: Claims, L: AllowList, V: Verifier, S>(
    services: &Services<'_, A, C, L, V, S>,
    config: &Config,
    batch: SqsEvent,
    now: i64,
    deadline: Deadline,
) -> (Vec<Outcome>, Vec<String>) {
    use futures::stream::{self, StreamExt};
    let claims = services.claims;
    let lane = Lane::of(
        batch.records.iter().map(|r| r.event_source_arn.as_deref()),
        config.fast_lane_queue_arn.as_deref(),
    );
    let records = batch
        .records
        .into_iter()
        .map(|record| {
            let id = record.message_id.unwrap_or_default();
            let event = RegisteredEvent::parse_text(record.body.as_deref().unwrap_or(""));
            (id, event.map(|e| e.certificate_id))
        })
        .collect();
    let (work, malformed) = group(records);
    let mut failed: Vec<String> = malformed
        .into_iter()
        .map(|(id, e)| {
            tracing::error!(message_id = %id, error = %e, "malformed record: no AWS call made");
            id
        })
        .collect();
    if lane::decide(lane, bulk_working(claims, lane, &deadline).await) == Decision::Defer {
        let outcomes: Vec<Outcome> = work
            .iter()
            .map(|w| lane::deferred(&w.certificate_id))
            .inspect(report)
            .collect();
        return (outcomes, failed);
    }
    // Counted among the instances working before the first call, so one
    // working alone paces at the account's whole rate from its first call;
    // then every second while the batch runs.
    beat(claims, lane, &deadline).await;
    let beating = async {
        loop {
            tokio::time::sleep(claims::BEAT_EVERY).await;
            beat(claims, lane, &deadline).await;
        }
    };
    let provisioning = stream::iter(work)
        .map(|w| async move {
            let outcome = claims::provision_claimed(
                services.api,
                claims,
                services.gates,
                config,
                &w.certificate_id,
                now,
                deadline,
            )
            .await;
            report(&outcome);
            if w.message_ids.len() > 1 {
                tracing::info!(certificateId = %w.certificate_id, records = w.message_ids.len(), "duplicate records merged");
            }
            let failed = outcome.failed().then_some(w.message_ids);
            (outcome, failed)
        })
        .buffer_unordered(BATCH_CONCURRENCY)
        .collect::<Vec<(Outcome, Option<Vec<String>>)>>();
    let settled = tokio::select! {
        settled = provisioning => settled,
        _ = beating => unreachable!("the beats go on until the batch is done"),
    };
    let mut outcomes = Vec::with_capacity(settled.len());
    for (outcome, unfinished) in settled {
        outcomes.push(outcome);
        failed.extend(unfinished.into_iter().flatten());
    }
    (outcomes, failed)
}

/// For a fast-lane batch, whether the bulk lane is working (None: the
/// beats could not be read in time, logged); not asked for the bulk lane.
async fn bulk_working<C: Claims>(claims: &C, lane: Lane, deadline: &Deadline) -> Option<bool> {
    if lane != Lane::Fast {
        return None;
    }
    let now_ms = i64::try_from(crate::clock::unix_millis()).unwrap_or(i64::MAX);
    match deadline.run(claims.bulk_working(now_ms)).await {
        Some(Ok(working)) => Some(working),
        Some(Err(e)) => {
            tracing::warn!(error = %e, "fast lane: heartbeats not read; provisioning");
            None
        }
        None => None,
    }
}

/// This instance is working for `lane`: a beat in the claims, within the
/// deadline. A beat that fails leaves the share as it was (logged).
async fn beat<C: Claims>(claims: &C, lane: Lane, deadline: &Deadline) {
    let now_ms = i64::try_from(crate::clock::unix_millis()).unwrap_or(i64::MAX);
    if let Some(Err(e)) = deadline.run(claims.beat(now_ms, lane)).await {
        tracing::warn!(error = %e, "heartbeat not recorded");
    }
}

/// The events of `outcomes` ([`events::events_of`]) to `sink`, within
/// `deadline`; what is not sent is logged and counted, never an error.
async fn send_events<S: EventSink>(sink: &S, outcomes: &[Outcome], deadline: &Deadline) {
    let all: Vec<events::DeviceEvent> = outcomes.iter().flat_map(events::events_of).collect();
    events::publish(sink, all, deadline).await;
}

/// One structured log line and one EMF metric line per certificate.
fn report(o: &Outcome) {
    let outcome = o.outcome.name();
    if o.failed() {
        tracing::error!(certificateId = %o.certificate_id, thing = o.thing.as_deref(), outcome, reason = o.reason.as_deref(), duration_ms = o.duration_ms, "certificate");
    } else {
        tracing::info!(certificateId = %o.certificate_id, thing = o.thing.as_deref(), outcome, reason = o.reason.as_deref(), duration_ms = o.duration_ms, "certificate");
    }
    println!("{}", provision::emf_line(o, crate::clock::unix_millis()));
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::claims::{Claim, ClaimsError};
    use crate::counting_iot::CountingIot;

    const FAST: &str = "arn:aws:sqs:eu-west-1:123456789012:s-FastLaneQueue-1";
    const BULK: &str = "arn:aws:sqs:eu-west-1:123456789012:s-EventQueue-1";

    /// Claims whose heartbeats say `bulk` (Err: unreadable); every claim
    /// is this instance's; the lanes it beat for are recorded.
    struct Beats {
        bulk: Result<bool, ()>,
        beats: Mutex<Vec<Lane>>,
    }

    impl Beats {
        fn new(bulk: Result<bool, ()>) -> Self {
            Beats {
                bulk,
                beats: Default::default(),
            }
        }
        fn lanes(&self) -> Vec<Lane> {
            self.beats.lock().unwrap().clone()
        }
    }

    impl Claims for Beats {
        async fn claim(&self, _: &str, _: i64, _: i64) -> Result<Claim, ClaimsError> {
            Ok(Claim::Mine)
        }
        async fn finish(&self, _: &str, _: i64) -> Result<(), ClaimsError> {
            Ok(())
        }
        async fn release(&self, _: &str) -> Result<(), ClaimsError> {
            Ok(())
        }
        async fn beat(&self, _: i64, lane: Lane) -> Result<(), ClaimsError> {
            self.beats.lock().unwrap().push(lane);
            Ok(())
        }
        async fn bulk_working(&self, _: i64) -> Result<bool, ClaimsError> {
            self.bulk.map_err(|()| ClaimsError {
                table: "t".into(),
                reason: "unreachable".into(),
            })
        }
    }

    fn config() -> Config {
        Config::from_lookup(|k| match k {
            "JITR_POLICY_NAME" => Some("p".into()),
            "JITR_FAST_LANE_QUEUE_ARN" => Some(FAST.into()),
            _ => None,
        })
        .unwrap()
    }

    /// A batch from the queue `source`: (message id, certificate id), and
    /// one malformed record "bad".
    fn batch(source: &str, records: &[(&str, &[u8; 64])]) -> SqsEvent {
        let mut records: Vec<Value> = records
            .iter()
            .map(|(m, c)| {
                let c = std::str::from_utf8(*c).unwrap();
                let body = serde_json::json!({ "certificateId": c, "certificateStatus": "PENDING_ACTIVATION" });
                serde_json::json!({ "messageId": m, "body": body.to_string(), "eventSource": "aws:sqs", "eventSourceARN": source })
            })
            .collect();
        records.push(serde_json::json!({ "messageId": "bad", "body": "{}", "eventSource": "aws:sqs", "eventSourceARN": source }));
        serde_json::from_value(serde_json::json!({ "Records": records })).unwrap()
    }

    const A: [u8; 64] = [b'a'; 64];
    const B: [u8; 64] = [b'b'; 64];

    async fn settled(claims: &Beats, source: &str) -> (Vec<Outcome>, Vec<String>, usize) {
        // Every certificate pending, with an unreadable PEM: the outcome
        // does not matter here, the calls do.
        let api = CountingIot::default();
        let (outcomes, failed) = settle_batch(
            &Services::new(&api, claims),
            &config(),
            batch(source, &[("m1", &A), ("m2", &B), ("m3", &A)]),
            0,
            Deadline::none(),
        )
        .await;
        (outcomes, failed, api.calls())
    }

    #[tokio::test]
    async fn the_fast_lane_defers_while_the_bulk_lane_works() {
        let claims = Beats::new(Ok(true));
        let (outcomes, failed, calls) = settled(&claims, FAST).await;
        assert_eq!(calls, 0, "no IoT call");
        let kinds: Vec<Kind> = outcomes.iter().map(|o| o.outcome).collect();
        assert_eq!(
            kinds,
            [Kind::Deferred, Kind::Deferred],
            "one per certificate"
        );
        assert_eq!(failed, ["bad"], "every well-formed record acknowledged");
        assert!(
            claims.lanes().is_empty(),
            "a deferring instance does not beat"
        );
    }

    #[tokio::test]
    async fn the_fast_lane_provisions_when_the_bulk_lane_is_idle_or_unknown() {
        for bulk in [Ok(false), Err(())] {
            let claims = Beats::new(bulk);
            let (outcomes, _, calls) = settled(&claims, FAST).await;
            assert!(calls >= 2, "{bulk:?}: described both certificates");
            assert!(
                outcomes.iter().all(|o| o.outcome != Kind::Deferred),
                "{bulk:?}: {outcomes:?}"
            );
            let lanes = claims.lanes();
            assert!(!lanes.is_empty(), "{bulk:?}: a working instance beats");
            assert!(
                lanes.iter().all(|l| *l == Lane::Fast),
                "{bulk:?}: {lanes:?}"
            );
        }
    }

    #[tokio::test]
    async fn the_bulk_lane_never_defers() {
        for source in [BULK, "arn:aws:sqs:eu-west-1:123456789012:other"] {
            let claims = Beats::new(Ok(true));
            let (outcomes, _, calls) = settled(&claims, source).await;
            assert!(calls >= 2, "{source}: described both certificates");
            assert!(
                outcomes.iter().all(|o| o.outcome != Kind::Deferred),
                "{outcomes:?}"
            );
            let lanes = claims.lanes();
            assert!(
                !lanes.is_empty() && lanes.iter().all(|l| *l == Lane::Bulk),
                "{lanes:?}"
            );
        }
    }

    #[test]
    fn records_group_by_certificate_in_order_of_first_appearance() {
        let ok = |m: &str, c: &str| (m.to_string(), Ok::<_, &str>(c.to_string()));
        let bad = |m: &str| (m.to_string(), Err::<String, _>("malformed"));
        let w = |c: &str, ms: &[&str]| Work {
            certificate_id: c.into(),
            message_ids: ms.iter().map(|m| m.to_string()).collect(),
        };
        for (records, want_work, want_malformed) in [
            (vec![], vec![], vec![]),
            (vec![ok("1", "a")], vec![w("a", &["1"])], vec![]),
            (
                vec![ok("1", "a"), ok("2", "b"), ok("3", "a"), ok("4", "a")],
                vec![w("a", &["1", "3", "4"]), w("b", &["2"])],
                vec![],
            ),
            (
                vec![bad("1"), ok("2", "b"), bad("3"), ok("4", "b")],
                vec![w("b", &["2", "4"])],
                vec!["1", "3"],
            ),
        ] {
            let (work, malformed) = group(records);
            assert_eq!(work, want_work);
            let ids: Vec<_> = malformed.iter().map(|(m, _)| m.as_str()).collect();
            assert_eq!(ids, want_malformed);
        }
    }
}
