//! `jitr device revoke (NAME | CERT_ID | CERT_FILE)... --ca DIR [--out OUTDIR]
//! [--delete-thing] [--rate N]`. Every item is resolved and checked (known
//! device, registered certificate, issued by the CA) and AWS IoT is read
//! before anything changes; then each certificate is revoked, its policies
//! and things detached (and emptied things deleted with --delete-thing), at
//! --rate certificates per second. Each revocation is recorded in
//! `DIR/revoked.json` (for `jitr ca crl`) and, with --out, in
//! `OUTDIR/revoked.json` (the manifest's `revoked_at`) before AWS IoT is
//! asked to make it: a killed run never leaves a certificate REVOKED in AWS
//! IoT that the CRL misses (at worst one recorded that AWS IoT still holds
//! active, until the run is repeated).

use std::path::{Path, PathBuf};

use jitr_core::aws::{AwsError, AwsOptions};
use jitr_core::iot::Described;
use jitr_core::ratelimit::RateLimiter;
use serde::Serialize;

use crate::cloud::Cloud;
use crate::error::CliError;
use crate::files::{self, DirLock};
use crate::issue::manifest;
use crate::issue::progress;
use crate::lifecycle::revocation::{self, Found, Plan, Target};
use crate::pki::revoked::{self, Revoked};
use crate::pki::{ca_files, ca_write};
use crate::report::{outcomes, Output};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Device names (in --out), certificate ids (64 hex digits) or certificate files.
    /// A NAME means the device's current certificate; a rotated predecessor is revoked
    /// by its file, OUTDIR/NAME/previous/device.crt, or its certificate id.
    #[arg(required = true, value_name = "NAME|CERT_ID|CERT_FILE")]
    pub(crate) items: Vec<String>,
    /// The CA directory that issued them: certificates of other CAs are refused,
    /// and the revocations are recorded in DIR/revoked.json for `jitr ca crl`.
    #[arg(long, value_name = "DIR")]
    pub(crate) ca: PathBuf,
    /// The output directory the devices are in (NAME items; the manifest records the revocation).
    #[arg(long, value_name = "OUTDIR")]
    pub(crate) out: Option<PathBuf>,
    /// Delete each certificate's thing once it has no principal left.
    #[arg(long)]
    pub(crate) delete_thing: bool,
    /// Certificates revoked per second (UpdateCertificate allows 10/s per account).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=10))]
    pub(crate) rate: u32,
    /// Also take the revoked certificates off this stack's allow-list.
    #[arg(long, value_name = "NAME")]
    pub(crate) stack: Option<String>,
}

impl Args {
    /// The flags' one conversion: the command-line items resolved to
    /// certificates (ids, and the certificate itself when it is on disk),
    /// without AWS; duplicates counted once.
    fn items(&self) -> Result<Vec<Item>, CliError> {
        let mut items: Vec<Item> = Vec::new();
        for arg in &self.items {
            let path = Path::new(arg);
            let item = match revocation::target(arg, path.is_file()) {
                Target::File => {
                    let ders =
                        jitr_core::pem::certificates(&files::read_limited(path, files::MAX_PEM)?)
                            .map_err(|e| CliError::invalid(arg, e))?;
                    let der = ders.into_iter().next().expect("at least one certificate");
                    Item {
                        arg: arg.clone(),
                        certificate_id: jitr_core::facts::certificate_id(&der),
                        der: Some(der),
                    }
                }
                Target::Id => Item {
                    arg: arg.clone(),
                    certificate_id: arg.to_ascii_lowercase(),
                    der: None,
                },
                Target::Name => {
                    let Some(outdir) = &self.out else {
                        return Err(CliError::invalid(
                            arg,
                            "is neither a certificate file nor a certificate id (64 hex digits); a device name needs --out OUTDIR",
                        ));
                    };
                    let no_device = || {
                        CliError::invalid(
                            arg,
                            format!(
                                "no device \"{arg}\" in {} (and not a certificate file or id)",
                                outdir.display()
                            ),
                        )
                    };
                    let dir = device_dir(outdir, arg)?.ok_or_else(no_device)?;
                    let (_, der, facts) = manifest::read_device(&dir).ok_or_else(no_device)?;
                    Item {
                        arg: arg.clone(),
                        certificate_id: facts.certificate_id,
                        der: Some(der),
                    }
                }
            };
            if !items
                .iter()
                .any(|i| i.certificate_id == item.certificate_id)
            {
                items.push(item);
            }
        }
        Ok(items)
    }
}

outcomes! {
    /// What happened to one certificate.
    enum Outcome {
        Revoked => "revoked",
        AlreadyRevoked => "already revoked",
        RegisteredAsRevoked => "registered as revoked",
        Failed => "failed",
    }
}

/// One certificate to revoke, resolved from the command line.
struct Item {
    /// The command-line item.
    arg: String,
    certificate_id: String,
    /// The certificate, when known locally (a file or a device in OUTDIR).
    der: Option<Vec<u8>>,
}

/// An item with what AWS IoT holds of it, ready to act on.
struct Checked {
    item: Item,
    serial: String,
    thing: String,
    pem: String,
    /// `None`: AWS IoT has never registered it.
    found: Option<Found>,
}

/// One certificate's outcome, as reported.
#[derive(Debug, Serialize)]
struct Revocation {
    item: String,
    certificate_id: String,
    serial: String,
    name: String,
    outcome: Outcome,
    /// What this run changed, in order.
    changes: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    kept_things: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// `jitr device revoke`.
pub(crate) fn run(a: &Args, aws: &AwsOptions, out: &Output) -> Result<(), CliError> {
    let ca_cert_path = a.ca.join(ca_files::CERT_FILE);
    let (ca_der, ca_facts) =
        ca_files::read_ca_certificate(&files::read(&ca_cert_path)?, &ca_cert_path)?;
    let ca_pem = jitr_core::pem::encode_certificate(&ca_der);
    let items = a.items()?;
    let cloud = Cloud::connect(aws)?;
    let mut checked = Vec::new();
    let bar = progress::bar(out.chatty(), items.len(), "checking");
    for item in items {
        checked.push(check(&cloud, item, &ca_der, a)?);
        bar.inc(1);
    }
    bar.finish_and_clear();

    let pacer = RateLimiter::new(a.rate);
    let mut outcomes = Vec::with_capacity(checked.len());
    let bar = progress::bar(out.chatty(), checked.len(), "revoking");
    for c in &checked {
        pacer.wait();
        record(a, &ca_facts.certificate_id, c)?;
        outcomes.push(act(&cloud, c, &ca_pem, a.delete_thing));
        bar.inc(1);
    }
    bar.finish_and_clear();
    if let Some(outdir) = &a.out {
        let _lock = DirLock::acquire(outdir)?;
        manifest::update(outdir)?;
    }

    // Revoked certificates leave the stack's allow-list too (--stack).
    if let Some(stack) = &a.stack {
        let revoked: Vec<String> = outcomes
            .iter()
            .filter(|o| o.outcome != Outcome::Failed)
            .map(|o| o.certificate_id.clone())
            .collect();
        let aws = |e| CliError::aws(format!("allow-list of stack {stack}"), e);
        let list = cloud.stack_allow_list(stack).map_err(aws)?;
        let list =
            list.ok_or_else(|| CliError::invalid("--stack", "the stack has no allow-list"))?;
        list.take_off(&revoked).map_err(aws)?;
    }
    let failed = outcomes
        .iter()
        .filter(|o| o.outcome == Outcome::Failed)
        .count();
    out.result(&outcomes, || text(&outcomes, &a.ca));
    if failed > 0 {
        return Err(CliError::Partial(format!(
            "{failed} of {} certificate(s) failed; run again to finish them",
            outcomes.len()
        )));
    }
    Ok(())
}

/// The report as text: a line per certificate, then the counts; `ca_dir`
/// is where the revocations are recorded.
fn text(outcomes: &[Revocation], ca_dir: &Path) -> String {
    let count = |o: Outcome| outcomes.iter().filter(|x| x.outcome == o).count();
    let mut text = String::new();
    for o in outcomes {
        text += &format!(
            "  {:<22} {}  {}{}{}\n",
            o.outcome,
            o.certificate_id,
            o.item,
            if o.changes.is_empty() {
                String::new()
            } else {
                format!(" ({})", o.changes.join(", "))
            },
            o.error
                .as_ref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        );
        for kept in &o.kept_things {
            text += &format!("      kept {kept}\n");
        }
    }
    text + &format!(
        "{} revoked, {} already revoked, {} registered as revoked, {} failed; recorded in {} for `jitr ca crl`\n",
        count(Outcome::Revoked),
        count(Outcome::AlreadyRevoked),
        count(Outcome::RegisteredAsRevoked),
    count(Outcome::Failed),
        ca_dir.join(revoked::FILE).display()
    )
}

/// Records `c` as revoked (CA directory, and OUTDIR with --out), each file
/// under its directory's lock, before AWS IoT is asked to revoke it. A
/// certificate recorded earlier keeps its first time.
fn record(a: &Args, ca_id: &str, c: &Checked) -> Result<(), CliError> {
    let record = [Revoked {
        certificate_id: c.item.certificate_id.clone(),
        serial: c.serial.clone(),
        name: c.thing.clone(),
        revoked_at: jitr_core::facts::rfc3339(jitr_core::clock::unix_seconds()),
    }];
    ca_write::record_revoked(&a.ca, ca_id, &record)?;
    if let Some(outdir) = &a.out {
        let _lock = DirLock::acquire(outdir)?;
        revoked::add_to(outdir, &record)?;
    }
    Ok(())
}

/// Where device `arg` of `outdir` is, symbolic links followed (`None`: no
/// such directory); a path that leads outside `outdir` is refused.
fn device_dir(outdir: &Path, arg: &str) -> Result<Option<PathBuf>, CliError> {
    let root = std::fs::canonicalize(outdir).map_err(|e| CliError::read(outdir, e))?;
    let Ok(dir) = std::fs::canonicalize(outdir.join(arg)) else {
        return Ok(None);
    };
    if dir == root {
        return Ok(None);
    }
    if !dir.starts_with(&root) {
        return Err(CliError::invalid(
            arg,
            format!(
                "resolves to {}, outside --out {} (expected a device directory in OUTDIR); nothing was changed",
                dir.display(),
                outdir.display()
            ),
        ));
    }
    Ok(Some(dir))
}

/// Reads what AWS IoT holds of an item and checks the CA issued it; any
/// problem stops the run before a change.
fn check(cloud: &Cloud, item: Item, ca_der: &[u8], a: &Args) -> Result<Checked, CliError> {
    let aws =
        |e: AwsError| CliError::aws(format!("reading certificate {}", item.certificate_id), e);
    let described: Option<Described> = cloud
        .device_certificate(&item.certificate_id)
        .map_err(aws)?;
    let der = match (&item.der, &described) {
        (Some(der), _) => der.clone(),
        (None, Some(d)) => jitr_core::pem::certificates(d.certificate_pem.as_bytes())
            .map_err(|e| CliError::invalid(&item.arg, format!("AWS IoT's PEM of it: {e}")))?
            .remove(0),
        (None, None) => {
            return Err(CliError::invalid(
                &item.arg,
                format!(
                    "no such certificate in AWS IoT ({}); nothing was changed",
                    cloud.region
                ),
            ))
        }
    };
    let facts =
        jitr_core::CertFacts::from_der(&der).map_err(|e| CliError::invalid(&item.arg, e))?;
    if facts.is_ca() {
        return Err(CliError::invalid(
            &item.arg,
            "is a CA certificate, not a device's",
        ));
    }
    if let Err(why) = jitr_core::facts::verify_issued_by(&der, ca_der) {
        return Err(CliError::invalid(
            &item.arg,
            format!(
                "\"{}\" (issuer \"{}\") was not issued by the CA in {} ({why}); nothing was changed",
                facts.subject_text,
                facts.issuer_text,
                a.ca.display()
            ),
        ));
    }
    let thing = facts.common_name().unwrap_or_default().to_string();
    let found = match described {
        None => None,
        Some(d) => {
            let (things, policies) = cloud.attachments(&d.certificate_arn).map_err(aws)?;
            let mut thing_principals = Vec::new();
            if a.delete_thing {
                let mut candidates = things.clone();
                if !thing.is_empty() && !candidates.contains(&thing) {
                    candidates.push(thing.clone());
                }
                for t in candidates {
                    if let Some(p) = cloud.thing_principals(&t).map_err(aws)? {
                        thing_principals.push((t, p));
                    }
                }
            }
            Some(Found {
                status: d.status,
                arn: d.certificate_arn,
                things,
                policies,
                thing_principals,
            })
        }
    };
    Ok(Checked {
        serial: facts.serial_hex,
        pem: jitr_core::pem::encode_certificate(&der),
        thing,
        found,
        item,
    })
}

/// Makes the changes for one certificate; a failure is its outcome.
fn act(cloud: &Cloud, c: &Checked, ca_pem: &str, delete_thing: bool) -> Revocation {
    let mut outcome = Revocation {
        item: c.item.arg.clone(),
        certificate_id: c.item.certificate_id.clone(),
        serial: c.serial.clone(),
        name: c.thing.clone(),
        outcome: Outcome::Failed,
        changes: Vec::new(),
        kept_things: Vec::new(),
        error: None,
    };
    let Some(found) = &c.found else {
        match cloud.register_revoked(&c.pem, ca_pem) {
            Ok(()) => {
                outcome.outcome = Outcome::RegisteredAsRevoked;
                outcome.changes.push("registered REVOKED".into());
            }
            Err(e) => outcome.error = Some(e.to_string()),
        }
        return outcome;
    };
    let plan = revocation::plan(found, delete_thing);
    outcome.kept_things = plan
        .kept_things
        .iter()
        .map(|(t, n)| format!("thing {t}: {n} other principal(s) attached"))
        .collect();
    if plan.changes_nothing() {
        outcome.outcome = Outcome::AlreadyRevoked;
        return outcome;
    }
    match apply(
        cloud,
        &plan,
        &c.item.certificate_id,
        &found.arn,
        &mut outcome.changes,
    ) {
        Ok(()) => outcome.outcome = Outcome::Revoked,
        Err(e) => outcome.error = Some(e.to_string()),
    }
    outcome
}

/// Revoke first (the certificate is useless from then on), then detach,
/// then delete emptied things.
fn apply(
    cloud: &Cloud,
    plan: &Plan,
    id: &str,
    arn: &str,
    changes: &mut Vec<String>,
) -> Result<(), AwsError> {
    if plan.set_revoked {
        cloud.revoke_certificate(id)?;
        changes.push("REVOKED".into());
    }
    for policy in &plan.detach_policies {
        cloud.detach_policy(policy, arn)?;
        changes.push(format!("policy {policy} detached"));
    }
    for thing in &plan.detach_things {
        cloud.detach_thing(thing, arn)?;
        changes.push(format!("thing {thing} detached"));
    }
    for thing in &plan.delete_things {
        // Read again: a successor may have attached since the plan was made.
        let others = cloud
            .thing_principals(thing)?
            .unwrap_or_default()
            .into_iter()
            .filter(|p| p != arn)
            .count();
        if others > 0 {
            changes.push(format!(
                "thing {thing} kept: {others} other certificate(s) attached"
            ));
            continue;
        }
        cloud.delete_thing(thing)?;
        changes.push(format!("thing {thing} deleted"));
    }
    Ok(())
}
