//! How provisioning one certificate ended ([`Outcome`]): what the log line,
//! the metric, the response and the events say. The plan produces some of
//! these kinds (a skip names its own); the rest come from carrying it out
//! (activated, rejected, failed, unfinished) or from settling an event
//! without it (the claims' duplicates, the fast lane's deferrals).

use serde::Serialize;

/// How provisioning one certificate ended: the outcome of the log line and
/// the name of its metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Kind {
    /// Thing, policy and principal in place; certificate now ACTIVE.
    Activated,
    /// It was ACTIVE already (a duplicate event).
    AlreadyActive,
    /// Left alone (REVOKED, PENDING_TRANSFER, ...).
    Skipped,
    /// INACTIVE (retired by a rotation, or by an administrator): left alone,
    /// never reactivated, and it retires nothing.
    Inactive,
    /// Left pending: a certificate registered later is ACTIVE on the thing
    /// (JITR_ON_ROTATION=retire-previous), so this one is a predecessor.
    Superseded,
    /// Refused admission (and REVOKED unless JITR_ON_REJECT=ignore).
    Rejected,
    /// An AWS call failed: the platform should retry.
    Failed,
    /// Cut short before the invocation's deadline: the platform should
    /// retry (safe: the certificate is activated last).
    Unfinished,
    /// Another event for it was handled a moment ago (the shared claims):
    /// acknowledged without an IoT call.
    Duplicate,
    /// Another instance is provisioning it now (the shared claims):
    /// acknowledged without an IoT call.
    ClaimedElsewhere,
    /// A fast-lane record while the bulk lane works ([`crate::lane`]):
    /// acknowledged without an IoT call; the bulk lane's copy does the work.
    Deferred,
}

impl Kind {
    /// The outcome's name in logs, responses and metrics: a wire format
    /// (dashboards and alarms name these), so never derived from `Debug`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Activated => "Activated",
            Kind::AlreadyActive => "AlreadyActive",
            Kind::Skipped => "Skipped",
            Kind::Inactive => "Inactive",
            Kind::Superseded => "Superseded",
            Kind::Rejected => "Rejected",
            Kind::Failed => "Failed",
            Kind::Unfinished => "Unfinished",
            Kind::Duplicate => "Duplicate",
            Kind::ClaimedElsewhere => "ClaimedElsewhere",
            Kind::Deferred => "Deferred",
        }
    }
}

/// The outcome for one certificate: one log line, one metric, one entry of the response.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    #[serde(rename = "certificateId")]
    pub certificate_id: String,
    pub thing: Option<String>,
    /// The certificate's CA, when provisioning described it: named by the
    /// events ([`crate::events`]); not in the response, log or metric.
    #[serde(skip)]
    pub ca_certificate_id: Option<String>,
    pub outcome: Kind,
    pub reason: Option<String>,
    /// Previous certificates of the thing this run set INACTIVE
    /// (JITR_ON_ROTATION=retire-previous).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub retired: Vec<String>,
    pub duration_ms: u64,
    /// Whether retrying may help (set for Failed).
    #[serde(skip)]
    pub transient: bool,
}

impl Outcome {
    /// Whether the platform should see a failure (and retry).
    pub fn failed(&self) -> bool {
        matches!(self.outcome, Kind::Failed | Kind::Unfinished)
    }

    /// An event settled without an IoT call (a duplicate), for `reason`.
    pub(crate) fn without_calls(certificate_id: &str, outcome: Kind, reason: &str) -> Outcome {
        Outcome {
            certificate_id: certificate_id.to_string(),
            thing: None,
            ca_certificate_id: None,
            outcome,
            reason: Some(reason.to_string()),
            retired: Vec::new(),
            duration_ms: 0,
            transient: false,
        }
    }

    /// A certificate whose provisioning was stopped after `elapsed`, before
    /// the invocation's deadline.
    pub fn unfinished(certificate_id: &str, elapsed: std::time::Duration) -> Outcome {
        Outcome {
            certificate_id: certificate_id.to_string(),
            thing: None,
            ca_certificate_id: None,
            outcome: Kind::Unfinished,
            reason: Some(format!(
                "unfinished after {} ms: stopped before the invocation's deadline; \
                 safe to retry (the certificate is activated last)",
                elapsed.as_millis()
            )),
            retired: Vec::new(),
            duration_ms: elapsed.as_millis() as u64,
            transient: true,
        }
    }
}
