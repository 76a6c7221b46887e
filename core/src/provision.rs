//! Carrying out the plan against AWS IoT, in the order that keeps devices
//! safe: DescribeCertificate; CreateThing and AttachPolicy together;
//! AttachThingPrincipal (with AddThingToThingGroup alongside);
//! UpdateCertificate ACTIVE last. Four sequential round trips.

use std::collections::HashMap;
use std::time::Instant;

use aws_sdk_iot::types::CertificateStatus;
use serde::Serialize;

use crate::aws::AwsError;
use crate::config::Config;
use crate::facts::CertFacts;
use crate::iot::IotApi;
use crate::plan::{self, Observed, Plan};

/// How provisioning one certificate ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Kind {
    /// Thing, policy and principal in place; certificate now ACTIVE.
    Activated,
    /// It was ACTIVE already (a duplicate event).
    AlreadyActive,
    /// Left alone (INACTIVE, REVOKED, ...).
    Skipped,
    /// Refused admission (and REVOKED unless JITR_ON_REJECT=ignore).
    Rejected,
    /// An AWS call failed: the platform should retry.
    Failed,
}

/// The outcome for one certificate: one log line, one metric, one entry of the response.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    #[serde(rename = "certificateId")]
    pub certificate_id: String,
    pub thing: Option<String>,
    pub outcome: Kind,
    pub reason: Option<String>,
    pub duration_ms: u64,
    /// Whether retrying may help (set for Failed).
    #[serde(skip)]
    pub transient: bool,
}

impl Outcome {
    /// Whether the platform should see a failure (and retry).
    pub fn failed(&self) -> bool {
        self.outcome == Kind::Failed
    }
}

/// Already-there answers are success: a retried or duplicate run finds its
/// own earlier work.
fn tolerate_existing(r: Result<(), AwsError>) -> Result<(), AwsError> {
    match r {
        Err(AwsError::AlreadyExists { .. }) => Ok(()),
        other => other,
    }
}

/// Provisions one certificate; never panics, always answers with an outcome.
pub async fn provision<A: IotApi>(
    api: &A,
    config: &Config,
    certificate_id: &str,
    now: i64,
) -> Outcome {
    let started = Instant::now();
    let (thing, result) = run(api, config, certificate_id, now).await;
    let (outcome, reason, transient) = match result {
        Ok((kind, reason)) => (kind, reason, false),
        Err((step, e)) => (Kind::Failed, Some(format!("{step}: {e}")), e.is_transient()),
    };
    Outcome {
        certificate_id: certificate_id.to_string(),
        thing,
        outcome,
        reason,
        duration_ms: started.elapsed().as_millis() as u64,
        transient,
    }
}

type StepResult = Result<(Kind, Option<String>), (&'static str, AwsError)>;

async fn run<A: IotApi>(
    api: &A,
    config: &Config,
    id: &str,
    now: i64,
) -> (Option<String>, StepResult) {
    let (arn, plan) = match describe_and_decide(api, config, id, now).await {
        Ok(answer) => answer,
        Err(e) => return (None, Err(("DescribeCertificate", e))),
    };
    match plan {
        Plan::Activate(a) => {
            let thing = Some(a.thing_name.clone());
            let attributes: HashMap<String, String> = a.attributes.clone().into_iter().collect();
            // Round trip 2: the thing and the policy, together.
            let (thing_made, policy_attached) = tokio::join!(
                api.create_thing(&a.thing_name, a.thing_type.as_deref(), &attributes),
                api.attach_policy(&a.policy_name, &arn),
            );
            if let Err(e) = tolerate_existing(thing_made) {
                return (thing, Err(("CreateThing", e)));
            }
            if let Err(e) = tolerate_existing(policy_attached) {
                return (thing, Err(("AttachPolicy", e)));
            }
            // Round trip 3: the principal, and the groups alongside.
            let groups = async {
                for g in &a.thing_groups {
                    tolerate_existing(api.add_thing_to_thing_group(&a.thing_name, g).await)?;
                }
                Ok::<(), AwsError>(())
            };
            let (principal, grouped) =
                tokio::join!(api.attach_thing_principal(&a.thing_name, &arn), groups);
            if let Err(e) = tolerate_existing(principal) {
                return (thing, Err(("AttachThingPrincipal", e)));
            }
            if let Err(e) = grouped {
                return (thing, Err(("AddThingToThingGroup", e)));
            }
            // Round trip 4: activation, last.
            match api.update_certificate(id, CertificateStatus::Active).await {
                Ok(()) => (thing, Ok((Kind::Activated, None))),
                Err(e) => (thing, Err(("UpdateCertificate", e))),
            }
        }
        Plan::Skip { status, reason } => {
            let kind = if status == "ACTIVE" {
                Kind::AlreadyActive
            } else {
                Kind::Skipped
            };
            (None, Ok((kind, Some(reason))))
        }
        Plan::Reject { reason, revoke } => (None, reject(api, id, reason, revoke).await),
    }
}

/// DescribeCertificate, then the decision: the certificate's ARN and the plan.
async fn describe_and_decide<A: IotApi>(
    api: &A,
    config: &Config,
    id: &str,
    now: i64,
) -> Result<(String, Plan), AwsError> {
    let d = api.describe_certificate(id).await?;
    let plan = match CertFacts::from_pem(d.certificate_pem.as_bytes()) {
        Ok(facts) => plan::decide(
            &Observed {
                certificate_id: id.into(),
                certificate_arn: d.certificate_arn.clone(),
                status: d.status,
                ca_certificate_id: d.ca_certificate_id,
                facts,
            },
            config,
            now,
        ),
        // AWS holds something we cannot parse: refuse it like any bad certificate.
        Err(e) => Plan::Reject {
            reason: format!("certificate cannot be parsed: {e}"),
            revoke: config.on_reject == crate::config::OnReject::Revoke,
        },
    };
    Ok((d.certificate_arn, plan))
}

/// What provisioning would do, without changing anything (for `--dry-run`).
pub async fn dry_run<A: IotApi>(
    api: &A,
    config: &Config,
    id: &str,
    now: i64,
) -> Result<Plan, AwsError> {
    describe_and_decide(api, config, id, now)
        .await
        .map(|(_, plan)| plan)
}

/// Refuses admission: REVOKED when `revoke`, the reason reported either way.
async fn reject<A: IotApi>(api: &A, id: &str, reason: String, revoke: bool) -> StepResult {
    if revoke {
        if let Err(e) = api.update_certificate(id, CertificateStatus::Revoked).await {
            return Err(("UpdateCertificate REVOKED", e));
        }
    }
    Ok((Kind::Rejected, Some(reason)))
}

/// A CloudWatch Embedded Metric Format line counting one outcome
/// (namespace `jitr`, metric named after the outcome; no API call).
pub fn emf_line(outcome: &Outcome, timestamp_ms: u128) -> String {
    let name = format!("{:?}", outcome.outcome);
    serde_json::json!({
        "_aws": {
            "Timestamp": timestamp_ms as u64,
            "CloudWatchMetrics": [{
                "Namespace": "jitr",
                "Dimensions": [[]],
                "Metrics": [{ "Name": name, "Unit": "Count" }, { "Name": "ProvisioningDuration", "Unit": "Milliseconds" }]
            }]
        },
        name: 1,
        "ProvisioningDuration": outcome.duration_ms,
        "certificateId": outcome.certificate_id,
    })
    .to_string()
}
