//! `jitr ca crl DIR [--out FILE] [--days N] [--force]`: a CRL signed by the
//! CA, through its key store (file, encrypted, pkcs11 or kms: whatever signs
//! its certificates), listing the serials `jitr device revoke` recorded in
//! `DIR/revoked.json`, for relying parties other than AWS IoT. CRL numbers
//! strictly increase per CA (`DIR/crl-number` keeps the last).

use std::path::{Path, PathBuf};

use jitr_core::aws::AwsOptions;
use rcgen::{CertificateRevocationListParams, KeyIdMethod, RevokedCertParams, SerialNumber};
use serde::Serialize;
use time::{Duration, OffsetDateTime};

use crate::error::CliError;
use crate::files::NewFile;
use crate::flags::UnlockArgs;
use crate::pki::ca_dir::{self, CaDir};
use crate::pki::ca_write;
use crate::pki::revoked::{self, Revoked};
use crate::report::Output;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The CA directory (its key signs the CRL; its revoked.json lists the serials).
    pub(crate) dir: PathBuf,
    /// Where to write the CRL (PEM; default: DIR/crl.pem).
    #[arg(long, value_name = "FILE")]
    pub(crate) out: Option<PathBuf>,
    /// Days until nextUpdate: relying parties fetch a new CRL by then.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub(crate) days: u32,
    #[command(flatten)]
    pub(crate) unlock: UnlockArgs,
    /// Replace an existing FILE (never one of a CA directory's own files).
    #[arg(long)]
    pub(crate) force: bool,
}

#[derive(Debug, Serialize)]
struct Report {
    file: String,
    revoked: usize,
    crl_number: String,
    this_update: String,
    next_update: String,
}

/// `jitr ca crl DIR`.
pub(crate) fn run(a: &Args, aws: &AwsOptions, out: &Output) -> Result<(), CliError> {
    let path = a.out.clone().unwrap_or_else(|| a.dir.join("crl.pem"));
    ca_dir::check_output(&path, "--out", a.force)?;
    let ca = CaDir::load(&a.dir, "DIR", &a.unlock.unlock(aws))?;
    // Under DIR's lock, from reading the revocations to writing the CRL: a
    // higher number never lists fewer, nor lands before a lower one.
    let report = ca_write::under_same_ca(&a.dir, ca.certificate_id(), "no CRL written", |_| {
        sign_and_write(a, &ca, &path)
    })?;
    out.result(&report, || {
        format!(
            "wrote {}: {} revoked certificate(s), CRL number {}, next update {}\n",
            report.file, report.revoked, report.crl_number, report.next_update
        )
    });
    Ok(())
}

/// Signs the CRL of the revocations in `DIR/revoked.json`, numbered above
/// the last one, and writes it to `path`; the caller holds DIR's lock.
fn sign_and_write(a: &Args, ca: &CaDir, path: &Path) -> Result<Report, CliError> {
    let list_path = a.dir.join(revoked::FILE);
    let list = revoked::read(&list_path)?;
    let entries = entries(&list, &list_path.display().to_string())?;
    let now = OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .expect("zero nanoseconds");
    let next_update = now + Duration::days(a.days.into());
    let number = ca_dir::take_crl_number(&a.dir, now.unix_timestamp().max(1) as u64)?;
    let params = CertificateRevocationListParams {
        this_update: now,
        next_update,
        crl_number: SerialNumber::from_slice(minimal(&number.to_be_bytes())),
        issuing_distribution_point: None,
        revoked_certs: entries,
        key_identifier_method: KeyIdMethod::Sha256,
    };
    let crl = params.signed_by(&ca.issuer).map_err(|e| {
        CliError::signing(
            format!("the CRL of {}", a.dir.display()),
            ca.issuer.key().explain(&e),
        )
    })?;
    let pem = crl
        .pem()
        .map_err(|e| CliError::signing("the CRL (PEM encoding)", e))?;
    ca_dir::write_output(NewFile::public(path.to_path_buf(), pem), "--out", a.force)?;
    Ok(Report {
        file: path.display().to_string(),
        revoked: list.len(),
        crl_number: number.to_string(),
        this_update: jitr_core::facts::rfc3339(now.unix_timestamp()),
        next_update: jitr_core::facts::rfc3339(next_update.unix_timestamp()),
    })
}

/// A big-endian integer without its leading zero bytes (DER is minimal).
fn minimal(bytes: &[u8]) -> &[u8] {
    let first = bytes
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(bytes.len() - 1);
    &bytes[first..]
}

/// The CRL entries of the revocation list; `what` names the file in errors.
fn entries(list: &[Revoked], what: &str) -> Result<Vec<RevokedCertParams>, CliError> {
    list.iter()
        .enumerate()
        .map(|(i, r)| {
            let bad = |problem| {
                CliError::invalid(
                    what,
                    format!(
                        "entry {} (certificate {}): {problem}",
                        i + 1,
                        r.certificate_id
                    ),
                )
            };
            Ok(RevokedCertParams {
                serial_number: SerialNumber::from_slice(&r.serial_bytes().map_err(bad)?),
                revocation_time: r.revoked_time().map_err(bad)?,
                reason_code: None,
                invalidity_date: None,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_come_from_the_list_and_bad_ones_are_named() {
        let r = |serial: &str, at: &str| Revoked {
            certificate_id: "x".into(),
            serial: serial.into(),
            name: "d".into(),
            revoked_at: at.into(),
        };
        let got = entries(&[r("01ab", "2026-11-23T05:00:00Z")], "f").unwrap();
        assert_eq!(got[0].serial_number.to_bytes(), [0x01, 0xab]);
        assert_eq!(got[0].revocation_time.unix_timestamp(), 1_795_410_000);
        let err = entries(&[r("zz", "2026-11-23T05:00:00Z")], "f").unwrap_err();
        assert!(
            err.to_string()
                .contains("f: entry 1 (certificate x): serial \"zz\" is not a serial number"),
            "{err}"
        );
        let err = entries(&[r("01", "yesterday")], "f").unwrap_err();
        assert!(err.to_string().contains("is not an RFC 3339 time"), "{err}");
    }
}
