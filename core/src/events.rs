//! Events for the systems downstream (`JITR_EVENT_BUS`): one EventBridge
//! event per change the function made to a certificate, sent once the
//! outcome is final, batched per invocation. Which outcomes send what is
//! [`events_of`], a pure table; the sending is behind [`EventSink`]
//! ([`crate::events_sdk`]: PutEvents). Sending never changes an answer: a
//! failure is logged and counted, and the device stays provisioned.

use std::future::Future;
use std::time::Duration;

use serde::Serialize;

use crate::deadline::Deadline;
use crate::outcome::{Kind, Outcome};

/// The events' `source`.
pub const SOURCE: &str = "jitr";
/// PutEvents takes at most 10 entries a call ...
pub const MAX_ENTRIES: usize = 10;
/// ... of at most 256 KB together (EventBridge's entry size: the UTF-8
/// bytes of Source, DetailType and Detail, as we send neither Time nor
/// Resources).
pub const MAX_REQUEST_BYTES: usize = 256 * 1024;
/// Calls in flight at once for one invocation's events.
const CALLS_AT_ONCE: usize = 4;
/// The most time sending may take, within the invocation's deadline: the
/// events wait for nothing else, and the answer waits for them.
const SEND_WITHIN: Duration = Duration::from_secs(5);

/// What happened, as the event's `detail-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetailType {
    /// Thing, principal and groups in place, the certificate ACTIVE.
    Provisioned,
    /// Refused admission (REVOKED unless JITR_ON_REJECT=ignore).
    Rejected,
    /// Set INACTIVE by its successor (JITR_ON_ROTATION=retire-previous).
    Retired,
}

impl DetailType {
    /// The wire name rules match on: never derived from `Debug`.
    pub fn name(self) -> &'static str {
        match self {
            DetailType::Provisioned => "Device provisioned",
            DetailType::Rejected => "Device rejected",
            DetailType::Retired => "Certificate retired",
        }
    }
}

/// The event's `detail`: every field always present (null when unknown),
/// so consumers read one schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Detail {
    pub certificate_id: String,
    pub ca_certificate_id: Option<String>,
    pub thing_name: Option<String>,
    /// The outcome's name in the function's log and metrics, or `Retired`.
    pub outcome: String,
    pub reason: Option<String>,
}

/// One event to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceEvent {
    pub detail_type: DetailType,
    pub detail: Detail,
}

impl DeviceEvent {
    /// The detail as PutEvents takes it: a JSON object, as text.
    pub fn detail_json(&self) -> String {
        serde_json::to_string(&self.detail).expect("serialisable")
    }

    /// Its size as EventBridge counts it against a call's 256 KB.
    pub fn size(&self) -> usize {
        SOURCE.len() + self.detail_type.name().len() + self.detail_json().len()
    }
}

/// The events of one outcome, naming its certificate's CA when known. Only
/// changes the function made send events; outcomes that may still change
/// (failed, unfinished: the record comes back) or that another record
/// settles (duplicate, claimed elsewhere, deferred) send none, nor do the
/// ones that change nothing (skipped, inactive, superseded, already active).
pub fn events_of(o: &Outcome) -> Vec<DeviceEvent> {
    let event =
        |detail_type, certificate_id: &str, outcome: &str, reason: Option<String>| DeviceEvent {
            detail_type,
            detail: Detail {
                certificate_id: certificate_id.to_string(),
                ca_certificate_id: o.ca_certificate_id.clone(),
                thing_name: o.thing.clone(),
                outcome: outcome.to_string(),
                reason,
            },
        };
    let provisioned = match o.outcome {
        Kind::Activated => true,
        // Finishing a rotation whose first attempt activated the
        // certificate and then failed (so it sent nothing): provisioned now.
        Kind::AlreadyActive => !o.retired.is_empty(),
        Kind::Rejected => {
            let reason = o.reason.clone();
            return vec![event(
                DetailType::Rejected,
                &o.certificate_id,
                o.outcome.name(),
                reason,
            )];
        }
        Kind::Skipped | Kind::Inactive | Kind::Superseded => false,
        Kind::Failed
        | Kind::Unfinished
        | Kind::Duplicate
        | Kind::ClaimedElsewhere
        | Kind::Deferred => false,
    };
    if !provisioned {
        return Vec::new();
    }
    let mut events = vec![event(
        DetailType::Provisioned,
        &o.certificate_id,
        o.outcome.name(),
        o.reason.clone(),
    )];
    for old in &o.retired {
        let reason = format!(
            "replaced by {} (JITR_ON_ROTATION=retire-previous): now INACTIVE",
            o.certificate_id
        );
        events.push(event(DetailType::Retired, old, "Retired", Some(reason)));
    }
    events
}

/// The events in PutEvents calls: at most [`MAX_ENTRIES`] and
/// [`MAX_REQUEST_BYTES`] each, in order (an event larger than a whole call
/// goes alone, and EventBridge refuses it: logged like any failure).
pub fn chunks(events: Vec<DeviceEvent>) -> Vec<Vec<DeviceEvent>> {
    let mut calls: Vec<Vec<DeviceEvent>> = Vec::new();
    let mut bytes = 0;
    for e in events {
        let size = e.size();
        match calls.last_mut() {
            Some(call) if call.len() < MAX_ENTRIES && bytes + size <= MAX_REQUEST_BYTES => {
                call.push(e);
                bytes += size;
            }
            _ => {
                calls.push(vec![e]);
                bytes = size;
            }
        }
    }
    calls
}

/// What one PutEvents call answered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sent {
    /// Entries EventBridge refused (its FailedEntryCount).
    pub failed: usize,
    /// The first refused entry's ErrorCode.
    pub error_code: Option<String>,
}

/// A PutEvents call that failed as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("PutEvents failed ({code}): {message}")]
pub struct SinkError {
    pub code: String,
    pub message: String,
}

/// Where events go: one call per batch of at most [`MAX_ENTRIES`] events
/// and [`MAX_REQUEST_BYTES`] ([`chunks`]).
pub trait EventSink: Sync {
    fn put(&self, batch: &[DeviceEvent]) -> impl Future<Output = Result<Sent, SinkError>> + Send;
}

/// No bus configured: nothing is sent.
pub struct NoEvents;

impl EventSink for NoEvents {
    async fn put(&self, _: &[DeviceEvent]) -> Result<Sent, SinkError> {
        Ok(Sent::default())
    }
}

/// A sink, or none configured (then as [`NoEvents`]).
impl<S: EventSink> EventSink for Option<S> {
    async fn put(&self, batch: &[DeviceEvent]) -> Result<Sent, SinkError> {
        match self {
            Some(sink) => sink.put(batch).await,
            None => NoEvents.put(batch).await,
        }
    }
}

/// How the sending went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Published {
    pub sent: usize,
    pub failed: usize,
}

/// Sends `events` within `deadline` (and [`SEND_WITHIN`]); what was not
/// sent is logged (a warning with the count and the error code) and
/// counted (the `EventsNotSent` metric), never returned as an error.
pub async fn publish<S: EventSink>(
    sink: &S,
    events: Vec<DeviceEvent>,
    deadline: &Deadline,
) -> Published {
    use futures::stream::{self, StreamExt};
    let total = events.len();
    if total == 0 {
        return Published::default();
    }
    let calls = stream::iter(chunks(events))
        .map(|batch| async move {
            let answer = sink.put(&batch).await;
            (batch.len(), answer)
        })
        .buffer_unordered(CALLS_AT_ONCE)
        .collect::<Vec<_>>();
    let answers = match deadline.run(tokio::time::timeout(SEND_WITHIN, calls)).await {
        Some(Ok(answers)) => answers,
        _ => {
            tracing::warn!(
                count = total,
                error_code = "Timeout",
                "events not sent: no time left before the deadline"
            );
            count_not_sent(total);
            return Published {
                sent: 0,
                failed: total,
            };
        }
    };
    let mut failed = 0;
    for (len, answer) in answers {
        match answer {
            Ok(Sent { failed: 0, .. }) => {}
            Ok(Sent {
                failed: n,
                error_code,
            }) => {
                let n = n.min(len);
                tracing::warn!(
                    count = n,
                    error_code = error_code.as_deref().unwrap_or("Unknown"),
                    "events refused by EventBridge"
                );
                failed += n;
            }
            Err(e) => {
                tracing::warn!(count = len, error_code = %e.code, error = %e.message, "events not sent");
                failed += len;
            }
        }
    }
    if failed > 0 {
        count_not_sent(failed);
    }
    Published {
        sent: total - failed,
        failed,
    }
}

/// One EMF metric line counting events not sent (namespace `jitr`).
fn count_not_sent(n: usize) {
    let line = serde_json::json!({
        "_aws": {
            "Timestamp": crate::clock::unix_millis() as u64,
            "CloudWatchMetrics": [{
                "Namespace": "jitr",
                "Dimensions": [[]],
                "Metrics": [{ "Name": "EventsNotSent", "Unit": "Count" }]
            }]
        },
        "EventsNotSent": n,
    });
    println!("{line}");
}

#[cfg(test)]
#[path = "events_tests.rs"]
mod tests;
