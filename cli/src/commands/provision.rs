//! `jitr provision ID` and `jitr reconcile --ca DIR|ID [--dry-run]`: the
//! Lambda's provisioning (jitr-core), run from an administrator's machine.

use jitr_core::config::Config;
use jitr_core::iot::IotApi;
use jitr_core::pacing::Paced;
use jitr_core::plan::Plan;
use jitr_core::provision::{self, Kind, Outcome};
use jitr_core::ratelimit::RateLimiter;

use crate::args::{CaTarget, Global, ProvisionArgs, ProvisioningSettings, ReconcileArgs};
use crate::cloud::Cloud;
use crate::error::CliError;
use crate::report::Output;

/// The Lambda's configuration: JITR_* variables, with `--policy` on top.
/// With JITR_DEVICE_GROUP (the stack's DeviceGroupName) things join that
/// group, as the function does; without it the certificate gets the policy.
fn config(s: &ProvisioningSettings) -> Result<Config, CliError> {
    let policy = s.policy.clone();
    Config::from_lookup(|name| match (name, &policy) {
        ("JITR_POLICY_NAME", Some(p)) => Some(p.clone()),
        _ => std::env::var(name).ok(),
    })
    .map_err(|e| {
        CliError::invalid(
            if e.variable == "JITR_POLICY_NAME" {
                "--policy / JITR_POLICY_NAME"
            } else {
                e.variable
            },
            e.problem,
        )
    })
}

fn outcome_line(o: &Outcome) -> String {
    format!(
        "  {:<14} {}  {}{}\n",
        o.outcome.name(),
        o.certificate_id,
        o.thing.as_deref().unwrap_or("-"),
        o.reason
            .as_ref()
            .map(|r| format!("  ({r})"))
            .unwrap_or_default()
    )
}

/// `jitr provision CERTIFICATE_ID`.
pub fn provision(a: &ProvisionArgs, global: &Global, out: &Output) -> Result<(), CliError> {
    let id = a.certificate_id.to_ascii_lowercase();
    if !jitr_core::rules::is_certificate_id(&id) {
        return Err(CliError::invalid(
            "CERTIFICATE_ID",
            format!(
                "\"{}\" is not a certificate id (64 hex digits)",
                a.certificate_id
            ),
        ));
    }
    let config = config(&a.settings)?;
    let cloud = Cloud::connect(&global.aws())?;
    let outcome = cloud.block_on(provision::provision(
        &cloud.provisioning_api(),
        &config,
        &id,
        jitr_core::clock::unix_seconds(),
    ));
    out.result(&outcome, || outcome_line(&outcome));
    if outcome.failed() {
        return Err(CliError::Partial(format!(
            "provisioning {id} failed: {}",
            outcome.reason.unwrap_or_default()
        )));
    }
    Ok(())
}

/// `jitr reconcile --ca DIR|ID [--dry-run]`.
pub fn reconcile(a: &ReconcileArgs, global: &Global, out: &Output) -> Result<(), CliError> {
    let (ca_id, _) = super::ca_aws::resolve(&CaTarget {
        target: a.ca.clone(),
    })?;
    let config = config(&a.settings)?;
    let cloud = Cloud::connect(&global.aws())?;
    // Each operation kept under the account's quota (JITR_API_RATES, AWS's
    // defaults otherwise), on top of --rate certificates per second.
    let api = Paced::new(cloud.provisioning_api(), &config.api_rates);
    let pending = cloud
        .block_on(api.list_pending_certificates(&ca_id))
        .map_err(|e| CliError::aws(format!("listing the certificates of CA {ca_id}"), e))?;
    let now = jitr_core::clock::unix_seconds();

    let bar = crate::issue::progress::bar(out.chatty(), pending.len(), "reconciling");
    if a.dry_run {
        let mut plans: Vec<(String, Plan)> = Vec::new();
        for id in &pending {
            let plan = cloud
                .block_on(provision::dry_run(&api, &config, id, now))
                .map_err(|e| CliError::aws(format!("describing {id}"), e))?;
            plans.push((id.clone(), plan));
            bar.inc(1);
        }
        bar.finish_and_clear();
        let report: Vec<serde_json::Value> = plans
            .iter()
            .map(|(id, plan)| serde_json::json!({ "certificateId": id, "plan": plan }))
            .collect();
        out.result(&report, || {
            let mut text = format!(
                "{} PENDING_ACTIVATION certificate(s) of CA {ca_id} (dry run: nothing changed)\n",
                pending.len()
            );
            for (id, plan) in &plans {
                let line = match plan {
                    Plan::Activate(act) => format!("would activate as thing {}", act.thing_name),
                    Plan::Reject { reason, revoke } => format!(
                        "would {} ({reason})",
                        if *revoke { "revoke" } else { "leave pending" }
                    ),
                    Plan::Skip { reason, .. } => format!("would skip ({reason})"),
                };
                text += &format!("  {id}  {line}\n");
            }
            text
        });
        return Ok(());
    }

    let limiter = RateLimiter::new(a.rate);
    let outcomes: Vec<Outcome> = cloud.block_on(limiter.run_all(&pending, |id| {
        let (call, bar) = (provision::provision(&api, &config, id, now), &bar);
        async move {
            let outcome = call.await;
            bar.inc(1);
            outcome
        }
    }));
    bar.finish_and_clear();
    let failed = outcomes
        .iter()
        .filter(|o| o.outcome == Kind::Failed)
        .count();
    out.result(&outcomes, || {
        let mut text = format!(
            "{} PENDING_ACTIVATION certificate(s) of CA {ca_id}\n",
            outcomes.len()
        );
        for o in &outcomes {
            text += &outcome_line(o);
        }
        let count = |k: Kind| outcomes.iter().filter(|o| o.outcome == k).count();
        text + &format!(
            "{} activated, {} rejected, {} failed\n",
            count(Kind::Activated),
            count(Kind::Rejected),
            failed
        )
    });
    if failed > 0 {
        return Err(CliError::Partial(format!(
            "{failed} certificate(s) failed; run again to retry them"
        )));
    }
    Ok(())
}
