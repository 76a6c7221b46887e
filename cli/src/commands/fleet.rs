//! `jitr fleet status --ca DIR|ID`: the CA's device certificates from AWS
//! IoT (ListCertificatesByCA, then DescribeCertificate for each at --rate per
//! second), and the things named by their CNs (ListThingPrincipals), sorted
//! by [`crate::lifecycle::fleet::classify`].

use clap::Subcommand;
use jitr_core::aws::AwsOptions;
use jitr_core::ratelimit::RateLimiter;

use crate::cloud::Cloud;
use crate::error::CliError;
use crate::issue::progress;
use crate::lifecycle::fleet::{self, Cert, Finding, Window};
use crate::pki::ca_files;
use crate::report::Output;

#[derive(Debug, Subcommand)]
pub(crate) enum FleetCommand {
    /// Per CA: certificates by status, things without certificates, certificates
    /// expiring soon, pending ones stranded, each with the command that fixes it.
    #[command(after_help = "Examples:
  jitr fleet status --ca my-ca
  jitr fleet status --ca my-ca --expiring-within 90 --pending-older-than 30 --json")]
    Status(StatusArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct StatusArgs {
    /// The CA: a CA directory or its certificate id.
    #[arg(long, value_name = "DIR|ID")]
    pub(crate) ca: String,
    /// Report ACTIVE certificates that expire within this many days.
    #[arg(long, value_name = "DAYS", default_value_t = 30)]
    pub(crate) expiring_within: u32,
    /// Report PENDING_ACTIVATION certificates older than this (events lost).
    #[arg(long, value_name = "MINUTES", default_value_t = 10)]
    pub(crate) pending_older_than: u32,
    /// DescribeCertificate calls per second (AWS allows 10/s per account).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=10))]
    pub(crate) rate: u32,
}

/// Runs one `jitr fleet` subcommand.
pub(crate) fn run(command: FleetCommand, aws: &AwsOptions, out: &Output) -> Result<(), CliError> {
    match command {
        FleetCommand::Status(a) => status(&a, aws, out),
    }
}

/// `jitr fleet status --ca DIR|ID`.
fn status(a: &StatusArgs, aws: &AwsOptions, out: &Output) -> Result<(), CliError> {
    let (ca_id, _) = ca_files::resolve(&a.ca)?;
    let cloud = Cloud::connect(aws)?;
    let aws = |what: String| move |e| CliError::aws(what, e);
    let listed = cloud
        .certificates_of_ca(&ca_id)
        .map_err(aws(format!("listing the certificates of CA {ca_id}")))?;
    let pacer = RateLimiter::new(a.rate);
    let mut certs = Vec::with_capacity(listed.len());
    let bar = progress::bar(out.chatty(), listed.len(), "describing");
    for l in &listed {
        pacer.wait();
        bar.inc(1);
        let d = cloud
            .device_certificate(&l.certificate_id)
            .map_err(aws(format!("describing certificate {}", l.certificate_id)))?;
        let facts = d
            .as_ref()
            .and_then(|d| jitr_core::CertFacts::from_pem(d.certificate_pem.as_bytes()).ok());
        certs.push(Cert {
            certificate_id: l.certificate_id.clone(),
            status: d.as_ref().map_or(l.status.clone(), |d| d.status.clone()),
            created: l.created,
            not_after: facts.as_ref().map(|f| f.not_after),
            thing: facts
                .as_ref()
                .and_then(|f| f.common_name())
                .map(str::to_string),
        });
    }
    let mut names: Vec<&str> = certs.iter().filter_map(|c| c.thing.as_deref()).collect();
    names.sort();
    names.dedup();
    bar.finish_and_clear();
    let mut things = Vec::new();
    let bar = progress::bar(out.chatty(), names.len(), "reading things");
    for name in names {
        pacer.wait();
        bar.inc(1);
        if let Some(p) = cloud
            .thing_principals(name)
            .map_err(aws(format!("listing the principals of thing {name}")))?
        {
            things.push((name.to_string(), p.len()));
        }
    }
    bar.finish_and_clear();
    let window = Window {
        now: jitr_core::clock::unix_seconds(),
        expiring_within_days: a.expiring_within,
        pending_older_than_minutes: a.pending_older_than,
        ca: a.ca.clone(),
    };
    let status = fleet::classify(&ca_id, &certs, &things, &window);
    out.result(&status, || text(&status, a));
    Ok(())
}

/// The report as text: the counts, then each kind of finding with its fix.
fn text(status: &fleet::Status, a: &StatusArgs) -> String {
    let counts: Vec<String> = status
        .by_status
        .iter()
        .map(|(s, n)| format!("{n} {s}"))
        .collect();
    let mut text = format!(
        "CA {}: {} certificate(s){}{}\n",
        status.ca_certificate_id,
        status.certificates,
        if counts.is_empty() { "" } else { ": " },
        counts.join(", ")
    );
    let section = |title: String, findings: &[Finding]| {
        let mut t = format!("{title}: {}\n", findings.len());
        for f in findings {
            t += &format!(
                "  {} {}: {}\n    fix: {}\n",
                f.thing.as_deref().unwrap_or("-"),
                f.certificate_id.as_deref().unwrap_or(""),
                f.detail,
                f.fix
            );
        }
        t
    };
    text += &section(
        format!("expiring within {} days", a.expiring_within),
        &status.expiring,
    );
    text += &section(
        format!("pending longer than {} minutes", a.pending_older_than),
        &status.pending,
    );
    text += &section(
        "things without certificates".into(),
        &status.things_without_certificates,
    );
    text
}
