//! The function's entry point, independent of the Lambda runtime: the rule's
//! event directly, or an SQS batch of them (partial batch failures), in;
//! one log line and one metric line per certificate out.

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use serde_json::Value;

use crate::config::Config;
use crate::deadline::Deadline;
use crate::event::{EventError, RegisteredEvent};
use crate::iot::IotApi;
use crate::provision::{self, Kind, Outcome};

/// Certificates of one SQS batch provisioned at once (the event source
/// mapping's maximum concurrency caps the functions).
const BATCH_CONCURRENCY: usize = 5;

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
/// invocation's error) before `deadline`.
pub async fn handle<A: IotApi>(
    api: &A,
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
        let response = handle_batch(api, config, batch, now, deadline).await;
        return Ok(serde_json::to_value(response).expect("serialisable"));
    }
    let event = RegisteredEvent::parse(&payload)
        .inspect_err(|e| tracing::error!(error = %e, "malformed event: no AWS call made"))?;
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

/// Provisions every record; a record that fails (or cannot be parsed) is a
/// batch item failure, so only it is redelivered (and ends in the DLQ if
/// it keeps failing).
async fn handle_batch<A: IotApi>(
    api: &A,
    config: &Config,
    batch: SqsEvent,
    now: i64,
    deadline: Deadline,
) -> SqsBatchResponse {
    use futures::stream::{self, StreamExt};
    let failures: Vec<BatchItemFailure> = stream::iter(batch.records)
        .map(|record| async move {
            let id = record.message_id.clone().unwrap_or_default();
            let event = match RegisteredEvent::parse_text(record.body.as_deref().unwrap_or("")) {
                Ok(e) => e,
                Err(e) => {
                    tracing::error!(message_id = %id, error = %e, "malformed record: no AWS call made");
                    return Some(id);
                }
            };
            let outcome =
                provision::provision_within(api, config, &event.certificate_id, now, deadline)
                    .await;
            report(&outcome);
            outcome.failed().then_some(id)
        })
        .buffer_unordered(BATCH_CONCURRENCY)
        .filter_map(|failed| async move { failed })
        .map(|id| {
            let mut f = BatchItemFailure::default();
            f.item_identifier = id;
            f
        })
        .collect()
        .await;
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures;
    response
}

/// One structured log line and one EMF metric line per certificate.
fn report(o: &Outcome) {
    let outcome = format!("{:?}", o.outcome);
    if o.failed() {
        tracing::error!(certificateId = %o.certificate_id, thing = o.thing.as_deref(), outcome, reason = o.reason.as_deref(), duration_ms = o.duration_ms, "certificate");
    } else {
        tracing::info!(certificateId = %o.certificate_id, thing = o.thing.as_deref(), outcome, reason = o.reason.as_deref(), duration_ms = o.duration_ms, "certificate");
    }
    println!("{}", provision::emf_line(o, crate::clock::unix_millis()));
}
