//! `jitr reconcile --ca DIR|ID [--dry-run]`: the Lambda's provisioning
//! (jitr-core) of every PENDING_ACTIVATION certificate of a CA, for events
//! that were lost, run from an administrator's machine.

use jitr_core::aws::AwsOptions;
use jitr_core::iot::IotApi;
use jitr_core::outcome::{Kind, Outcome};
use jitr_core::pacing::Paced;
use jitr_core::plan::Plan;
use jitr_core::provision::{self, Gates};
use jitr_core::ratelimit::RateLimiter;

use crate::cloud::Cloud;
use crate::error::CliError;
use crate::flags::ProvisioningSettings;
use crate::pki::ca_files;
use crate::report::{provisioned, Output};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The CA: a CA directory or its certificate id.
    #[arg(long, value_name = "DIR|ID")]
    pub(crate) ca: String,
    /// Show what would be done; change nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Certificates provisioned per second (UpdateCertificate allows 10/s per account).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=10))]
    pub(crate) rate: u32,
    #[command(flatten)]
    pub(crate) settings: ProvisioningSettings,
}

/// `jitr reconcile --ca DIR|ID [--dry-run]`.
pub(crate) fn run(a: &Args, aws: &AwsOptions, out: &Output) -> Result<(), CliError> {
    let (ca_id, _) = ca_files::resolve(&a.ca)?;
    let config = a.settings.config(|name| std::env::var(name).ok())?;
    let cloud = Cloud::connect(aws)?;
    // Each operation kept under the account's quota (JITR_API_RATES, AWS's
    // defaults otherwise), on top of --rate certificates per second.
    let api = Paced::new(cloud.provisioning_api(), &config.api_rates);
    // Under JITR_ADMISSION=allow-list the stack's list decides, as in the function.
    let list = jitr_core::allow_list_table::AllowListTable::for_config(cloud.config(), &config);
    let pending = cloud
        .block_on(api.list_pending_certificates(&ca_id))
        .map_err(|e| CliError::aws(format!("listing the certificates of CA {ca_id}"), e))?;
    let now = jitr_core::clock::unix_seconds();

    let bar = crate::issue::progress::bar(out.chatty(), pending.len(), "reconciling");
    if a.dry_run {
        let mut plans: Vec<(String, Plan)> = Vec::new();
        for id in &pending {
            let plan = cloud
                .block_on(provision::dry_run(&api, &list, &config, id, now))
                .map_err(|e| CliError::aws(format!("describing {id}"), e))?;
            plans.push((id.clone(), plan));
            bar.inc(1);
        }
        bar.finish_and_clear();
        let report: Vec<serde_json::Value> = plans
            .iter()
            .map(|(id, plan)| serde_json::json!({ "certificateId": id, "plan": plan }))
            .collect();
        out.result(&report, || dry_run_text(&ca_id, &plans));
        return Ok(());
    }

    let gates = Gates::none().with_list(&list);
    let limiter = RateLimiter::new(a.rate);
    let outcomes: Vec<Outcome> = cloud.block_on(limiter.run_all(&pending, |id| {
        let (call, bar) = (provision::provision(&api, gates, &config, id, now), &bar);
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
    out.result(&outcomes, || text(&ca_id, &outcomes));
    if failed > 0 {
        return Err(CliError::Partial(format!(
            "{failed} certificate(s) failed; run again to retry them"
        )));
    }
    Ok(())
}

/// The dry run as text: what each certificate's plan would do.
fn dry_run_text(ca_id: &str, plans: &[(String, Plan)]) -> String {
    let mut text = format!(
        "{} PENDING_ACTIVATION certificate(s) of CA {ca_id} (dry run: nothing changed)\n",
        plans.len()
    );
    for (id, plan) in plans {
        let line = match plan {
            Plan::Activate(act) => format!("would activate as thing {}", act.thing_name),
            Plan::Reject { reason, revoke } => format!(
                "would {} ({reason})",
                if *revoke { "revoke" } else { "leave pending" }
            ),
            Plan::Skip { reason, .. } => format!("would skip ({reason})"),
            Plan::FinishRotation { reason, retire, .. } => {
                format!("would retire {} ({reason})", retire.join(", "))
            }
        };
        text += &format!("  {id}  {line}\n");
    }
    text
}

/// The outcomes as text: a line each, then the counts.
fn text(ca_id: &str, outcomes: &[Outcome]) -> String {
    let mut text = format!(
        "{} PENDING_ACTIVATION certificate(s) of CA {ca_id}\n",
        outcomes.len()
    );
    for o in outcomes {
        text += &provisioned(o);
    }
    let count = |k: Kind| outcomes.iter().filter(|o| o.outcome == k).count();
    text + &format!(
        "{} activated, {} rejected, {} failed\n",
        count(Kind::Activated),
        count(Kind::Rejected),
        count(Kind::Failed)
    )
}
