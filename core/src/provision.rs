//! Carrying out the plan against AWS IoT, in the order that keeps devices
//! safe: DescribeCertificate; ListThingPrincipals (and, for a thing that
//! has principals, their DescribeCertificate: is it another CA's thing?);
//! CreateThing (with AttachPolicy alongside, only without a device group);
//! AttachThingPrincipal with AddThingToThingGroup alongside (the device
//! group, whose policy is the device's, and JITR_THING_GROUPS);
//! UpdateCertificate ACTIVE last. Five
//! sequential round trips for a new thing; a rotation under
//! JITR_ON_ROTATION=retire-previous adds one: the thing's older
//! certificates INACTIVE, only after the new one is ACTIVE.

use std::collections::HashMap;
use std::time::Instant;

use aws_sdk_iot::types::CertificateStatus;

use crate::admission::{AllowList, Listing, NoAllowList};
use crate::aws::AwsError;
use crate::config::Config;
use crate::deadline::Deadline;
use crate::facts::CertFacts;
use crate::iot::IotApi;
use crate::outcome::{Kind, Outcome};
use crate::plan::{self, Observed, Plan, Principal};
use crate::verifier::{NoVerifier, Proposed, Question, Verdict, Verifier};

/// The AWS IoT operations provisioning calls with a device group, as the
/// templates deploy it: what the function's role must allow, and all it
/// may (`tests/tests/iam.rs` holds both templates to it;
/// `core/tests/function_operations.rs` pins it to the calls made).
pub const FUNCTION_IOT_OPERATIONS: [&str; 6] = [
    "DescribeCertificate",
    "ListThingPrincipals",
    "CreateThing",
    "AttachThingPrincipal",
    "AddThingToThingGroup",
    "UpdateCertificate",
];

/// The admission gates a pending certificate passes besides the
/// function's own checks: the allow-list `list` (`JITR_ADMISSION=allow-list`)
/// and the verifier hook `verifier` (`JITR_VERIFIER_FUNCTION`), asked about
/// what the function's own checks admit. [`Gates::none`] has neither.
pub struct Gates<'a, L, V> {
    pub list: &'a L,
    pub verifier: &'a V,
}

impl Gates<'static, NoAllowList, NoVerifier> {
    /// No allow-list, no verifier hook: the function's own checks decide.
    pub fn none() -> Self {
        Gates {
            list: &NoAllowList,
            verifier: &NoVerifier,
        }
    }
}

impl<'a, L, V> Gates<'a, L, V> {
    /// These gates with the allow-list `list`.
    pub fn with_list<'b, M>(self, list: &'b M) -> Gates<'b, M, V>
    where
        'a: 'b,
    {
        Gates {
            list,
            verifier: self.verifier,
        }
    }

    /// These gates with the verifier hook `verifier`.
    pub fn with_verifier<'b, W>(self, verifier: &'b W) -> Gates<'b, L, W>
    where
        'a: 'b,
    {
        Gates {
            list: self.list,
            verifier,
        }
    }
}

// Two references: copied whatever they point to (a derive would ask L and V
// to be Copy).
impl<L, V> Clone for Gates<'_, L, V> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<L, V> Copy for Gates<'_, L, V> {}

/// [`provision`] within `deadline`: an [`Outcome`] either way. The gates'
/// answers are part of the work, so they count against the deadline too: an
/// answer later than it leaves the record unfinished (it comes back).
pub async fn provision_within<A: IotApi, L: AllowList, V: Verifier>(
    api: &A,
    gates: Gates<'_, L, V>,
    config: &Config,
    certificate_id: &str,
    now: i64,
    deadline: Deadline,
) -> Outcome {
    let started = Instant::now();
    // Boxed: keeps the nested futures' type shallow for the Lambda runtime.
    let work = Box::pin(provision(api, gates, config, certificate_id, now));
    match deadline.run(work).await {
        Some(outcome) => outcome,
        None => Outcome::unfinished(certificate_id, started.elapsed()),
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

/// Provisions one certificate past `gates`; never panics, always answers
/// with an outcome.
pub async fn provision<A: IotApi, L: AllowList, V: Verifier>(
    api: &A,
    gates: Gates<'_, L, V>,
    config: &Config,
    certificate_id: &str,
    now: i64,
) -> Outcome {
    let started = Instant::now();
    let (named, result) = run(api, gates, config, certificate_id, now).await;
    let (done, transient) = match result {
        Ok(done) => (done, false),
        Err((step, e)) => {
            let transient = e.is_transient();
            (
                Done::new(Kind::Failed, Some(format!("{step}: {e}"))),
                transient,
            )
        }
    };
    Outcome {
        certificate_id: certificate_id.to_string(),
        thing: named.thing,
        ca_certificate_id: named.ca_certificate_id,
        outcome: done.kind,
        reason: done.reason,
        retired: done.retired,
        duration_ms: started.elapsed().as_millis() as u64,
        transient,
    }
}

/// What a run learned on its way, however it ended: for the outcome.
#[derive(Default)]
struct Named {
    /// The thing it provisioned (or finished rotating).
    thing: Option<String>,
    /// The certificate's CA, once described (for the events).
    ca_certificate_id: Option<String>,
}

/// How the steps ended, short of a failure.
struct Done {
    kind: Kind,
    reason: Option<String>,
    /// Previous certificates set INACTIVE.
    retired: Vec<String>,
}

impl Done {
    fn new(kind: Kind, reason: Option<String>) -> Self {
        Done {
            kind,
            reason,
            retired: Vec::new(),
        }
    }
}

type StepResult = Result<Done, (&'static str, AwsError)>;

async fn run<A: IotApi, L: AllowList, V: Verifier>(
    api: &A,
    gates: Gates<'_, L, V>,
    config: &Config,
    id: &str,
    now: i64,
) -> (Named, StepResult) {
    let Decided {
        arn,
        plan,
        ca_certificate_id,
    } = match describe_and_decide(api, gates, config, id, now).await {
        Ok(answer) => answer,
        Err(failed) => return (Named::default(), Err(failed)),
    };
    let named = |thing| Named {
        thing,
        ca_certificate_id,
    };
    match plan {
        Plan::Activate(a) => {
            let thing = Some(a.thing_name.clone());
            let activated = activate(api, config, id, &arn, &a).await;
            (named(thing), activated)
        }
        Plan::Skip {
            reason, outcome, ..
        } => (named(None), Ok(Done::new(outcome, Some(reason)))),
        // An ACTIVE certificate whose rotation was interrupted before the
        // previous certificates were retired: finish it.
        Plan::FinishRotation {
            thing_name,
            retire: previous,
            reason,
            outcome,
            ..
        } => {
            let retired = retire(api, previous).await;
            let result = retired.map(|ids| Done {
                reason: Some(format!("{reason}; {}", retired_reason(&ids))),
                retired: ids,
                kind: outcome,
            });
            (named(Some(thing_name)), result)
        }
        Plan::Reject { reason, revoke } => (named(None), reject(api, id, reason, revoke).await),
    }
}

/// The activation: thing (and, without a device group, the certificate's
/// policy), principal and groups, ACTIVE last;
/// then, under retire-previous, the previous certificates INACTIVE.
async fn activate<A: IotApi>(
    api: &A,
    config: &Config,
    id: &str,
    arn: &str,
    a: &plan::Activation,
) -> StepResult {
    let attributes: HashMap<String, String> = a.attributes.clone().into_iter().collect();
    // Round trip 2: the thing (and the certificate's policy, without a
    // device group), together.
    let policy = async {
        match &a.policy_name {
            Some(policy) => api.attach_policy(policy, arn).await,
            None => Ok(()),
        }
    };
    let (thing_made, policy_attached) = tokio::join!(
        api.create_thing(&a.thing_name, a.thing_type.as_deref(), &attributes),
        policy,
    );
    tolerate_existing(thing_made).map_err(|e| ("CreateThing", e))?;
    tolerate_existing(policy_attached).map_err(|e| ("AttachPolicy", e))?;
    // Round trip 3: the principal, and the groups alongside (the device
    // group first: its policy is the device's, before it is ACTIVE).
    let groups = async {
        for g in &a.thing_groups {
            tolerate_existing(api.add_thing_to_thing_group(&a.thing_name, g).await)?;
        }
        Ok::<(), AwsError>(())
    };
    let (principal, grouped) = tokio::join!(
        api.attach_thing_principal(&a.thing_name, arn, config.exclusive_thing),
        groups
    );
    tolerate_existing(principal).map_err(|e| ("AttachThingPrincipal", e))?;
    grouped.map_err(|e| ("AddThingToThingGroup", e))?;
    // Round trip 4: activation, last.
    api.update_certificate(id, CertificateStatus::Active)
        .await
        .map_err(|e| ("UpdateCertificate", e))?;
    // Round trip 5 (rotation): the device connected with the new key, so
    // the previous certificates go. A failure here is retried through the
    // event, which then finds this certificate ACTIVE and finishes.
    let retired = retire(api, a.retire.clone()).await?;
    let reason = (!retired.is_empty()).then(|| retired_reason(&retired));
    Ok(Done {
        kind: Kind::Activated,
        reason,
        retired,
    })
}

/// Sets each certificate INACTIVE; the ids, once all are.
async fn retire<A: IotApi>(
    api: &A,
    ids: Vec<String>,
) -> Result<Vec<String>, (&'static str, AwsError)> {
    let calls = ids
        .iter()
        .map(|id| api.update_certificate(id, CertificateStatus::Inactive));
    futures::future::try_join_all(calls)
        .await
        .map_err(|e| ("UpdateCertificate INACTIVE (previous certificate)", e))?;
    Ok(ids)
}

fn retired_reason(ids: &[String]) -> String {
    format!(
        "retired the previous certificate(s) {} (now INACTIVE, JITR_ON_ROTATION=retire-previous)",
        ids.join(", ")
    )
}

/// What [`describe_and_decide`] found.
struct Decided {
    arn: String,
    plan: Plan,
    ca_certificate_id: Option<String>,
}

/// DescribeCertificate, then (a pending certificate under
/// JITR_ADMISSION=allow-list) the allow-list, then the decision, then (for
/// an activation, or an ACTIVE certificate under retire-previous) the
/// thing's principals.
async fn describe_and_decide<A: IotApi, L: AllowList, V: Verifier>(
    api: &A,
    gates: Gates<'_, L, V>,
    config: &Config,
    id: &str,
    now: i64,
) -> Result<Decided, (&'static str, AwsError)> {
    let d = api
        .describe_certificate(id)
        .await
        .map_err(|e| ("DescribeCertificate", e))?;
    let observed = Observed {
        certificate_id: id.into(),
        certificate_arn: d.certificate_arn.clone(),
        status: d.status,
        ca_certificate_id: d.ca_certificate_id,
        facts: CertFacts::from_pem(d.certificate_pem.as_bytes()).map_err(|e| e.to_string()),
        created_ms: d.created_ms,
    };
    // A list that cannot be read fails the record (it comes back): never
    // admitted, never revoked, on a guess.
    let listing = if plan::needs_listing(&observed, config) {
        gates.list.lookup(id).await.map_err(|e| {
            let reason = AwsError::Service {
                code: "AllowListUnreadable".into(),
                message: e.to_string(),
            };
            ("GetItem (allow-list)", reason)
        })?
    } else {
        Listing::NotAsked
    };
    let plan = match plan::decide(&observed, &listing, config, now) {
        // Admitted by the function's own checks: the hook (if any) has its
        // say, then the thing it names is looked at.
        Plan::Activate(a) => match verified(gates.verifier, &observed, a, config).await? {
            Plan::Activate(a) => {
                let principals = thing_principals(api, &observed, &a.thing_name).await?;
                plan::may_take(&observed, a, &principals, config)
            }
            other => other,
        },
        // An ACTIVE certificate under retire-previous: the thing it names
        // is looked at, for a rotation cut short.
        other => match plan::rotation_thing(&observed, config) {
            Some(thing) => {
                let principals = thing_principals(api, &observed, &thing).await?;
                plan::finish_rotation(other, &observed, thing, &principals, config)
            }
            None => other,
        },
    };
    Ok(Decided {
        arn: d.certificate_arn,
        plan,
        ca_certificate_id: observed.ca_certificate_id,
    })
}

/// The activation as the verifier hook's verdict leaves it
/// ([`plan::verified`]), the hook asked when [`plan::needs_verdict`]. A hook
/// that cannot be asked, fails, or answers malformed or against the rules
/// fails the record (it comes back): never admitted, never revoked.
async fn verified<V: Verifier>(
    verifier: &V,
    observed: &Observed,
    activation: plan::Activation,
    config: &Config,
) -> Result<Plan, (&'static str, AwsError)> {
    let failed = |code: &str, message: String| AwsError::Hook {
        code: code.into(),
        message,
    };
    let verdict = if plan::needs_verdict(config) {
        // Admitted, so its facts were read.
        let facts = observed.facts.as_ref().map_err(|e| {
            let reason = failed("VerifierNotAsked", e.clone());
            ("Invoke (verifier hook)", reason)
        })?;
        let proposed = Proposed {
            thing_name: activation.thing_name.clone(),
            attributes: activation.attributes.clone(),
            thing_groups: activation.thing_groups.clone(),
        };
        let question = Question::new(
            &observed.certificate_id,
            observed.ca_certificate_id.as_deref(),
            facts,
            proposed,
        );
        verifier.verify(&question).await.map_err(|e| {
            let reason = failed("VerifierFailed", e.to_string());
            ("Invoke (verifier hook)", reason)
        })?
    } else {
        Verdict::NotAsked
    };
    plan::verified(activation, &verdict, config)
        .map_err(|e| ("verifier hook's answer", failed("VerifierAnswerRefused", e)))
}

/// The principals already attached to `thing` (none if it does not exist),
/// each with the CA, status and registration time of its certificate: the
/// facts [`plan::may_take`] and [`plan::rotation`] decide on.
async fn thing_principals<A: IotApi>(
    api: &A,
    observed: &Observed,
    thing: &str,
) -> Result<Vec<Principal>, (&'static str, AwsError)> {
    let arns = match api.list_thing_principals(thing).await {
        Ok(arns) => arns,
        Err(AwsError::NotFound(_)) => return Ok(Vec::new()),
        Err(e) => return Err(("ListThingPrincipals", e)),
    };
    let described = arns.into_iter().map(|arn| async move {
        let Some(cert) = plan::certificate_id_of(&arn).map(str::to_string) else {
            return Ok(Some(Principal {
                arn,
                certificate_id: None,
                ca_certificate_id: None,
                status: None,
                created_ms: None,
            }));
        };
        let (ca_certificate_id, status, created_ms) =
            if cert.eq_ignore_ascii_case(&observed.certificate_id) {
                let o = observed;
                (o.ca_certificate_id.clone(), o.status.clone(), o.created_ms)
            } else {
                match api.describe_certificate(&cert).await {
                    Ok(d) => (d.ca_certificate_id, d.status, d.created_ms),
                    // Deleted since it was listed: it no longer owns anything.
                    Err(AwsError::NotFound(_)) => return Ok(None),
                    Err(e) => return Err(("DescribeCertificate (thing principal)", e)),
                }
            };
        Ok(Some(Principal {
            arn,
            certificate_id: Some(cert),
            ca_certificate_id,
            status: Some(status),
            created_ms,
        }))
    });
    let principals = futures::future::try_join_all(described).await?;
    Ok(principals.into_iter().flatten().collect())
}

/// What provisioning would do past the allow-list `list`, without changing
/// anything (for `--dry-run`): it only reads, so the verifier hook, which
/// may act on what it is asked, is not asked.
pub async fn dry_run<A: IotApi, L: AllowList>(
    api: &A,
    list: &L,
    config: &Config,
    id: &str,
    now: i64,
) -> Result<Plan, AwsError> {
    let gates = Gates::none().with_list(list);
    describe_and_decide(api, gates, config, id, now)
        .await
        .map(|decided| decided.plan)
        .map_err(|(_, e)| e)
}

/// Refuses admission: REVOKED when `revoke`, the reason reported either way.
async fn reject<A: IotApi>(api: &A, id: &str, reason: String, revoke: bool) -> StepResult {
    if revoke {
        if let Err(e) = api.update_certificate(id, CertificateStatus::Revoked).await {
            return Err(("UpdateCertificate REVOKED", e));
        }
    }
    Ok(Done::new(Kind::Rejected, Some(reason)))
}

/// A CloudWatch Embedded Metric Format line counting one outcome
/// (namespace `jitr`, metric named after the outcome; no API call).
pub fn emf_line(outcome: &Outcome, timestamp_ms: u128) -> String {
    let name = outcome.outcome.name();
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
