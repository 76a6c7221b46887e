//! The function's entry point, independent of the Lambda runtime: the rule's
//! event directly, or an SQS batch of them (partial batch failures), in;
//! one log line and one metric line per certificate out.

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use serde_json::Value;

use crate::claims::{self, Claims};
use crate::config::Config;
use crate::deadline::Deadline;
use crate::event::{EventError, RegisteredEvent};
use crate::iot::IotApi;
use crate::provision::{self, Kind, Outcome};

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

/// Handles one invocation; `now` is Unix seconds. Every certificate either
/// finishes or is reported unfinished (a batch item failure, or the direct
/// invocation's error) before `deadline`; an SQS record whose certificate
/// another record settled (`claims`) is acknowledged without an IoT call.
pub async fn handle<A: IotApi, C: Claims>(
    api: &A,
    claims: &C,
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
        let response = handle_batch(api, claims, config, batch, now, deadline).await;
        return Ok(serde_json::to_value(response).expect("serialisable"));
    }
    let event = RegisteredEvent::parse(&payload)
        .inspect_err(|e| tracing::error!(error = %e, "malformed event: no AWS call made"))?;
    // No claims here: a direct invocation's retry is not queued behind a
    // claimant, so acknowledging it as a duplicate could lose it.
    let outcome =
        provision::provision_within(api, config, &event.certificate_id, now, deadline).await;
    report(&outcome);
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
/// redelivered (and end in the DLQ if they keep failing).
async fn handle_batch<A: IotApi, C: Claims>(
    api: &A,
    claims: &C,
    config: &Config,
    batch: SqsEvent,
    now: i64,
    deadline: Deadline,
) -> SqsBatchResponse {
    use futures::stream::{self, StreamExt};
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
    // Counted among the instances working before the first call, so one
    // working alone paces at the account's whole rate from its first call;
    // then every second while the batch runs.
    beat(claims, &deadline).await;
    let beating = async {
        loop {
            tokio::time::sleep(claims::BEAT_EVERY).await;
            beat(claims, &deadline).await;
        }
    };
    let provisioning = stream::iter(work)
        .map(|w| async move {
            let outcome = claims::provision_claimed(
                api,
                claims,
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
            outcome.failed().then_some(w.message_ids)
        })
        .buffer_unordered(BATCH_CONCURRENCY)
        .filter_map(|failed| async move { failed })
        .collect::<Vec<Vec<String>>>();
    let unfinished = tokio::select! {
        unfinished = provisioning => unfinished,
        _ = beating => unreachable!("the beats go on until the batch is done"),
    };
    failed.extend(unfinished.into_iter().flatten());
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

/// This instance is working: a beat in the claims, within the deadline. A
/// beat that fails leaves the share as it was (logged).
async fn beat<C: Claims>(claims: &C, deadline: &Deadline) {
    let now_ms = i64::try_from(crate::clock::unix_millis()).unwrap_or(i64::MAX);
    if let Some(Err(e)) = deadline.run(claims.beat(now_ms)).await {
        tracing::warn!(error = %e, "heartbeat not recorded");
    }
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
    use super::*;

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
