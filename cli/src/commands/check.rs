//! `jitr check FILE|DEVICE_DIR... [--ca DIR]`.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::CliError;
use crate::issue::layout::Layout;
use crate::lint::{self, RuleResult};
use crate::pki::ca_files;
use crate::report::Output;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Certificate files (PEM or DER), or device directories (their bundle); a bundle
    /// is checked as leaf + chain.
    #[arg(required = true, value_name = "FILE|DEVICE_DIR")]
    pub(crate) files: Vec<PathBuf>,
    /// Also check that each certificate chains to this CA directory.
    #[arg(long, value_name = "DIR")]
    pub(crate) ca: Option<PathBuf>,
}

#[derive(Serialize)]
struct FileReport {
    file: String,
    kind: &'static str,
    subject: String,
    certificate_id: String,
    pass: bool,
    rules: Vec<RuleResult>,
    /// Not failures: e.g. the certificate expires within 30 days.
    warnings: Vec<String>,
}

/// Days before expiry from which `jitr check` warns (time to rotate).
const EXPIRY_WARNING_DAYS: i64 = 30;

/// The warning for a certificate valid until `not_after` (unix seconds) at
/// `now`: within [`EXPIRY_WARNING_DAYS`] of expiry, not yet expired (that is
/// the validity rule's failure).
fn expiry_warning(not_after: i64, now: i64, device: bool) -> Option<String> {
    let left = not_after - now;
    if left <= 0 || left > EXPIRY_WARNING_DAYS * 86_400 {
        return None;
    }
    let fix = if device {
        "; rotate it: jitr device rotate --ca DIR --out OUTDIR --name NAME"
    } else {
        ""
    };
    Some(format!(
        "expires {} (in {} days, within {EXPIRY_WARNING_DAYS}){fix}",
        jitr_core::facts::rfc3339(not_after),
        left / 86_400
    ))
}

/// Lints every file; prints a pass/fail line per rule; fails if any rule failed.
pub(crate) fn run(a: &Args, out: &Output) -> Result<(), CliError> {
    let anchors = match &a.ca {
        Some(dir) => Some(ca_anchors(dir)?),
        None => None,
    };
    let now = jitr_core::clock::unix_seconds();
    let mut reports = Vec::new();
    for given in &a.files {
        let path = &bundle_of(given)?;
        let bytes = crate::files::read(path)?;
        let chain = jitr_core::pem::certificates(&bytes)
            .map_err(|e| CliError::invalid(path.display(), e))?;
        let (facts, rules) = lint::lint(&chain, anchors.as_deref(), now)
            .map_err(|e| CliError::invalid(path.display(), e))?;
        reports.push(FileReport {
            file: path.display().to_string(),
            kind: if facts.is_ca() { "CA" } else { "device" },
            subject: facts.subject_text.clone(),
            certificate_id: facts.certificate_id.clone(),
            pass: rules.iter().all(|r| r.pass),
            rules,
            warnings: expiry_warning(facts.not_after, now, !facts.is_ca())
                .into_iter()
                .collect(),
        });
    }
    let failures: usize = reports
        .iter()
        .flat_map(|r| &r.rules)
        .filter(|r| !r.pass)
        .count();
    out.result(&reports, || {
        let mut text = String::new();
        for r in &reports {
            text += &format!("{}: {} certificate \"{}\"\n", r.file, r.kind, r.subject);
            for rule in &r.rules {
                text += &format!(
                    "  {} {:<18} {}\n",
                    if rule.pass { "PASS" } else { "FAIL" },
                    rule.rule,
                    rule.detail
                );
            }
            for w in &r.warnings {
                text += &format!("  WARN {:<18} {w}\n", "expiry");
            }
        }
        text
    });
    if failures > 0 {
        return Err(CliError::ChecksFailed(failures));
    }
    Ok(())
}

/// The file to check for `path`: itself, or for a device directory (any
/// layout, as `jitr connect` and `jitr doctor` read it) its bundle.
fn bundle_of(path: &Path) -> Result<PathBuf, CliError> {
    if !path.is_dir() {
        return Ok(path.to_path_buf());
    }
    let names: Vec<&str> = Layout::all().iter().map(|l| l.files().bundle).collect();
    names
        .iter()
        .map(|name| path.join(name))
        .find(|bundle| bundle.is_file())
        .ok_or_else(|| {
            CliError::invalid(
                path.display(),
                format!(
                    "is a directory without a device's certificate bundle (expected {})",
                    names.join(" or ")
                ),
            )
        })
}

/// The CA directory's chain for `--ca`: its certificate first. Only the
/// certificate is needed, so a CA directory without its key works too.
fn ca_anchors(dir: &std::path::Path) -> Result<Vec<Vec<u8>>, CliError> {
    let cert_path = dir.join(ca_files::CERT_FILE);
    let (ca_der, _) = ca_files::read_ca_certificate(&crate::files::read(&cert_path)?, &cert_path)?;
    let chain_path = dir.join(ca_files::CHAIN_FILE);
    let mut anchors = vec![ca_der];
    if let Ok(chain) = std::fs::read(&chain_path) {
        let rest = jitr_core::pem::certificates(&chain)
            .map_err(|e| CliError::invalid(chain_path.display(), e))?;
        anchors.extend(rest.into_iter().skip(1));
    }
    Ok(anchors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warns_within_thirty_days_of_expiry() {
        const DAY: i64 = 86_400;
        let now = 1_000 * DAY;
        // (days left, warned)
        for (left, warned) in [(-1, false), (0, false), (1, true), (30, true), (31, false)] {
            let got = expiry_warning(now + left * DAY, now, true);
            assert_eq!(got.is_some(), warned, "{left}: {got:?}");
        }
        let w = expiry_warning(now + 10 * DAY, now, true).unwrap();
        assert!(
            w.contains("in 10 days") && w.contains("jitr device rotate"),
            "{w}"
        );
        assert!(!expiry_warning(now + DAY, now, false)
            .unwrap()
            .contains("rotate"));
    }
}
