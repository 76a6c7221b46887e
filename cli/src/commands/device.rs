//! `jitr device issue`.

use crate::args::{DeviceIssueArgs, Global};
use crate::error::CliError;
use crate::issue::batch::{Batch, KeySource};
use crate::issue::csr;
use crate::issue::names::{self, DeviceSpec, Template};
use crate::pki::ca_dir::CaDir;
use crate::pki::store::StoreKind;
use crate::pki::subject;
use crate::report::Output;

/// `jitr device issue --ca DIR --out OUTDIR (--name | --count | --names | --csr)`.
pub fn issue(a: &DeviceIssueArgs, g: &Global, out: &Output) -> Result<(), CliError> {
    // Everything is validated before the first file is written.
    let subject_extra = match &a.subject_extra {
        Some(text) => subject::parse(text).map_err(|e| CliError::invalid("--subject-extra", e))?,
        None => Vec::new(),
    };
    if subject_extra.iter().any(|attr| attr.name == "CN") {
        return Err(CliError::invalid(
            "--subject-extra",
            "CN is the device name; give it with --name",
        ));
    }
    let specs = device_specs(a)?;
    let keys = match &a.csr {
        Some(path) => KeySource::Csr(csr::read(path)?),
        None => KeySource::Generate(a.key),
    };
    let ca = CaDir::load(&a.ca, "--ca", &a.unlock.unlock(g))?;
    let sign_rate = a.sign_rate.or(ca.issuer.key().default_sign_rate());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let jobs = a
        .jobs
        .unwrap_or_else(|| default_jobs(ca.issuer.key().store(), sign_rate, cores));
    if jobs == 0 {
        return Err(CliError::invalid("--jobs", "must be at least 1"));
    }
    let batch = Batch {
        ca: &ca,
        out: &a.out,
        keys,
        days: a.days,
        subject_extra,
        layout: a.layout,
        force: a.force,
        jobs,
        progress: out.chatty(),
        sign_rate,
    };
    let outcome = batch.run(specs)?;
    out.result(&outcome, || {
        let rate = outcome.issued.len() as f64 / outcome.seconds.max(1e-9);
        let mut text = format!(
            "issued {} device(s) in {:.2} s ({:.0}/s), skipped {} already present",
            outcome.issued.len(),
            outcome.seconds,
            rate,
            outcome.skipped.len()
        );
        if !outcome.skipped.is_empty() {
            let shown: Vec<&str> = outcome.skipped.iter().take(5).map(String::as_str).collect();
            let more = outcome.skipped.len().saturating_sub(shown.len());
            text += &format!(
                " ({}{}; --force re-issues)",
                shown.join(", "),
                if more > 0 {
                    format!(", and {more} more")
                } else {
                    String::new()
                }
            );
        }
        if let Some(limit) = outcome.sign_rate {
            text += &format!(
                "\nsigned in key store {} at {rate:.0} signatures/s ({:.0}% of the {limit}/s limit)",
                outcome.key_store.name(),
                100.0 * rate / f64::from(limit)
            );
        }
        text += &format!(
            "\nmanifest: {} ({} devices)\n",
            outcome.manifest, outcome.manifest_rows
        );
        if outcome.issued.len() == 1 {
            let row = &outcome.issued[0];
            text += &format!("  {}: certificate id {}\n", row.name, row.certificate_id);
        }
        text
    });
    if outcome.interrupted {
        return Err(CliError::Interrupted);
    }
    Ok(())
}

/// Worker threads: one per core for local signing; for a remote store, where
/// each signature waits on the network, enough to keep the rate's worth of
/// requests in flight (up to 200 ms each), capped at 128.
fn default_jobs(store: StoreKind, sign_rate: Option<u32>, cores: usize) -> usize {
    match (store, sign_rate) {
        (StoreKind::Kms, Some(rate)) => (rate as usize / 5).clamp(cores, 128),
        _ => cores,
    }
}

fn device_specs(a: &DeviceIssueArgs) -> Result<Vec<DeviceSpec>, CliError> {
    if let Some(count) = a.count {
        let template = Template::parse(a.name_template.as_deref().unwrap_or_default())?;
        return names::from_template(&template, a.start, count);
    }
    if let Some(path) = &a.names {
        return names::from_file(path);
    }
    let name = a.name.as_deref().expect("clap requires one source");
    names::check_name(name, "--name")?;
    Ok(vec![DeviceSpec::named(name)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_follow_the_store() {
        // (store, sign rate, cores, expected workers)
        let cases = [
            (StoreKind::File, None, 2, 2),
            (StoreKind::File, Some(10), 8, 8),
            (StoreKind::Pkcs11, None, 4, 4),
            (StoreKind::Kms, Some(300), 2, 60),
            (StoreKind::Kms, Some(500), 2, 100),
            (StoreKind::Kms, Some(5), 4, 4),
            (StoreKind::Kms, Some(100_000), 2, 128),
        ];
        for (store, rate, cores, expected) in cases {
            assert_eq!(
                default_jobs(store, rate, cores),
                expected,
                "{store:?} {rate:?} {cores}"
            );
        }
    }
}
