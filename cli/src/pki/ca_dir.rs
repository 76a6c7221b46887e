//! The CA directory: `ca.crt` (PEM), the key's store (`ca.key`, PKCS#8 PEM
//! 0600, maybe encrypted; or `key.json`, a reference into an HSM) and
//! `chain.pem` (this CA followed by its issuers up to the root); later
//! `aws.json`, `revoked.json` and `crl-number` ([`super::ca_files`] names
//! them all): no command writes its output over one of them.

use std::path::{Path, PathBuf};

use jitr_core::CertFacts;
use rcgen::Issuer;
use time::OffsetDateTime;

use super::ca_files::{holds_a_ca, owned_role, read_ca_certificate};
use super::ca_files::{CERT_FILE, CHAIN_FILE, CRL_NUMBER_FILE, KEY_FILE};
use super::store::{self, CaKey, Unlock};
use super::{ca_write, keys, profile};
use crate::error::CliError;
use crate::files::{self, NewFile};

/// A CA loaded from disk, ready to sign.
pub(crate) struct CaDir {
    pub(crate) dir: PathBuf,
    pub(crate) cert_der: Vec<u8>,
    /// This CA followed by its issuers, PEM.
    pub(crate) chain_pem: String,
    pub(crate) facts: CertFacts,
    pub(crate) issuer: Issuer<'static, CaKey>,
}

impl CaDir {
    /// Loads and checks the CA in `dir`, opening its key store with the
    /// secrets `unlock` names; `flag` (e.g. `--ca`) names where the
    /// directory came from in errors.
    pub(crate) fn load(dir: &Path, flag: &str, unlock: &Unlock) -> Result<Self, CliError> {
        let _reading = ca_write::lock_for_reading(dir);
        let cert_path = dir.join(CERT_FILE);
        if !dir.is_dir() || !cert_path.exists() {
            let what = if dir.is_dir() {
                "has no ca.crt"
            } else {
                "is not a directory"
            };
            return Err(CliError::invalid(
                format!("{flag} {}", dir.display()),
                format!(
                    "{what} (expected a CA directory made by `jitr ca create` or `jitr ca import`)"
                ),
            ));
        }
        let cert_bytes = files::read_limited(&cert_path, files::MAX_PEM)?;
        let (cert_der, facts) = read_ca_certificate(&cert_bytes, &cert_path)?;
        let key = store::open(dir, unlock)?;
        if !keys::matches_certificate(&key, &facts.public_key) {
            let key_path = match key.store() {
                store::StoreKind::File => dir.join(KEY_FILE),
                _ => dir.join(store::REF_FILE),
            };
            return Err(CliError::invalid(
                key_path.display(),
                format!("does not match the certificate in {}", cert_path.display()),
            ));
        }
        let chain_path = dir.join(CHAIN_FILE);
        let chain_pem = match chain_path.try_exists() {
            Ok(false) => jitr_core::pem::encode_certificate(&cert_der),
            _ => validate_chain(&cert_der, &chain_path)?,
        };
        let issuer = Issuer::from_ca_cert_der(&cert_der.clone().into(), key).map_err(|e| {
            CliError::invalid(
                cert_path.display(),
                format!("cannot sign with this CA: {e}"),
            )
        })?;
        Ok(CaDir {
            dir: dir.to_path_buf(),
            cert_der,
            chain_pem,
            facts,
            issuer,
        })
    }

    /// The CA's not-after, the latest any certificate it issues may expire.
    pub(crate) fn not_after(&self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(self.facts.not_after)
            .unwrap_or(OffsetDateTime::now_utc())
    }

    /// Refuses a CA that cannot issue now: expired or not yet valid (what it
    /// signed would have notAfter before notBefore, or be unusable).
    /// `flag` names where the CA came from (e.g. `--ca`).
    pub(crate) fn check_valid_now(&self, flag: &str) -> Result<(), CliError> {
        let now = jitr_core::clock::unix_seconds();
        let problem = validity_problem(self.facts.not_before, self.facts.not_after, now);
        match problem {
            None => Ok(()),
            Some(problem) => Err(CliError::invalid(
                format!("{flag} {}", self.dir.display()),
                format!(
                    "the CA \"{}\" {problem}; it cannot issue certificates",
                    self.facts.subject_text
                ),
            )),
        }
    }

    /// The certificate id AWS IoT gives this CA.
    pub(crate) fn certificate_id(&self) -> &str {
        &self.facts.certificate_id
    }

    /// A verification certificate for `code`, signed by the CA with a fresh,
    /// discarded key: the proof of possession of `ca verification-cert` and
    /// `ca register`.
    pub(crate) fn verification_certificate(&self, code: &str) -> Result<String, CliError> {
        if code.is_empty()
            || code.len() > 64
            || !code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(CliError::invalid(
                "--code",
                format!("\"{code}\" is not a registration code (expected 1-64 letters, digits or dashes, as GetRegistrationCode returns)"),
            ));
        }
        let key = keys::KeyAlg::EcP256.generate()?;
        let cert = profile::verification(code, Some(self.not_after()))
            .signed_by(&key, &self.issuer)
            .map_err(|e| {
                CliError::signing(
                    "the verification certificate",
                    self.issuer.key().explain(&e),
                )
            })?;
        Ok(cert.pem())
    }
}

/// Refuses `path`, an output the user named with `flag` (e.g. `--out`), when
/// it is one of the files a CA directory keeps for itself (whatever `force`
/// says), and without `force` when it exists. Checked before any work, and
/// again by [`write_output`].
pub(crate) fn check_output(path: &Path, flag: &str, force: bool) -> Result<(), CliError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if let Some(role) = path.file_name().and_then(owned_role) {
        if holds_a_ca(dir) {
            return Err(CliError::invalid(
                format!("{flag} {}", path.display()),
                format!(
                    "is the {role} of the CA directory {}, and jitr never writes a command's output over a CA directory's own files, not even with --force",
                    dir.display()
                ),
            ));
        }
    }
    if !force && path.symlink_metadata().is_ok() {
        return Err(CliError::Exists {
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

/// Writes a command's output to the path the user named with `flag`:
/// atomically (temp file + rename), never over a CA directory's own files,
/// over an existing file only with `force`.
pub(crate) fn write_output(file: NewFile, flag: &str, force: bool) -> Result<(), CliError> {
    check_output(&file.path, flag, force)?;
    files::write_all(&[file], force)
}

/// Takes the number of the next CRL of the CA in `dir` and records it in
/// [`CRL_NUMBER_FILE`] before returning, so no two CRLs share one even if
/// signing fails after. The caller holds DIR's lock (exclusively).
/// `now` (seconds since the epoch) is the least number: what CRLs were
/// numbered by before the file existed.
pub(crate) fn take_crl_number(dir: &Path, now: u64) -> Result<u64, CliError> {
    let path = dir.join(CRL_NUMBER_FILE);
    let last = match path.try_exists() {
        Err(e) => return Err(CliError::read(&path, e)),
        Ok(false) => None,
        Ok(true) => {
            let bytes = files::read_limited(&path, 64)?;
            let text = String::from_utf8_lossy(&bytes);
            let number = text.trim().parse::<u64>().map_err(|_| {
                CliError::invalid(
                    path.display(),
                    format!(
                        "\"{}\" is not a CRL number (expected the decimal number of the last CRL `jitr ca crl` signed)",
                        text.trim()
                    ),
                )
            })?;
            Some(number)
        }
    };
    let next = next_crl_number(last, now)
        .ok_or_else(|| CliError::invalid(path.display(), "the CRL numbers are used up"))?;
    files::write_all(&[NewFile::public(path, format!("{next}\n"))], true)?;
    Ok(next)
}

/// The CRL number after `last`: strictly higher, and at least `now`.
fn next_crl_number(last: Option<u64>, now: u64) -> Option<u64> {
    match last {
        None => Some(now),
        Some(last) => last.checked_add(1).map(|n| n.max(now)),
    }
}

/// Why a CA valid from `not_before` to `not_after` (unix seconds) cannot
/// issue at `now`, with its dates; `None` when it can.
pub(crate) fn validity_problem(not_before: i64, not_after: i64, now: i64) -> Option<String> {
    use jitr_core::facts::rfc3339;
    if now >= not_after {
        Some(format!(
            "expired on {} (valid {} to {})",
            rfc3339(not_after),
            rfc3339(not_before),
            rfc3339(not_after)
        ))
    } else if now < not_before {
        Some(format!(
            "is not valid before {} (valid {} to {})",
            rfc3339(not_before),
            rfc3339(not_before),
            rfc3339(not_after)
        ))
    } else {
        None
    }
}

/// Reads `chain.pem` and checks it is this CA's chain: its first
/// certificate is `ca.crt` (`cert_der`) and each is issued by the next.
/// Returns the chain as PEM, re-encoded from what was verified.
pub(crate) fn validate_chain(cert_der: &[u8], chain_path: &Path) -> Result<String, CliError> {
    let bytes = files::read_limited(chain_path, files::MAX_PEM)?;
    let bad = |problem: String| {
        CliError::invalid(
            chain_path.display(),
            format!(
                "{problem} (expected this CA's certificate followed by its issuers up to the root)"
            ),
        )
    };
    let chain =
        jitr_core::pem::certificates(&bytes).map_err(|e| bad(format!("not a PEM chain: {e}")))?;
    if chain[0] != cert_der {
        return Err(bad(format!(
            "does not start with the certificate in {CERT_FILE}"
        )));
    }
    for (i, pair) in chain.windows(2).enumerate() {
        jitr_core::facts::verify_issued_by(&pair[0], &pair[1]).map_err(|e| {
            bad(format!(
                "certificate {} is not issued by certificate {}: {e}",
                i + 1,
                i + 2
            ))
        })?;
    }
    Ok(chain
        .iter()
        .map(|der| jitr_core::pem::encode_certificate(der))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::ca_files::{describes_the_ca, OWNED};
    use std::ffi::OsStr;

    #[test]
    fn crl_numbers_only_increase() {
        assert_eq!(next_crl_number(None, 1_000), Some(1_000));
        assert_eq!(next_crl_number(Some(1_000), 1_000), Some(1_001));
        assert_eq!(next_crl_number(Some(5_000), 1_000), Some(5_001));
        assert_eq!(next_crl_number(Some(999), 2_000), Some(2_000));
        assert_eq!(next_crl_number(Some(u64::MAX), 2_000), None);
        let dir = tempfile::tempdir().unwrap();
        let taken: Vec<u64> = (0..3)
            .map(|_| take_crl_number(dir.path(), 7).unwrap())
            .collect();
        assert_eq!(taken, [7, 8, 9]);
        std::fs::write(dir.path().join(CRL_NUMBER_FILE), "ten\n").unwrap();
        let err = take_crl_number(dir.path(), 7).unwrap_err().to_string();
        assert!(
            err.contains("crl-number: \"ten\" is not a CRL number"),
            "{err}"
        );
    }

    #[test]
    fn outputs_never_land_on_a_ca_directorys_own_files() {
        let tmp = tempfile::tempdir().unwrap();
        let (ca, plain) = (tmp.path().join("ca"), tmp.path().join("plain"));
        std::fs::create_dir(&ca).unwrap();
        std::fs::create_dir(&plain).unwrap();
        std::fs::write(ca.join(CERT_FILE), "cert").unwrap();
        for (name, _) in OWNED {
            for force in [false, true] {
                let err = check_output(&ca.join(name), "--out", force).unwrap_err();
                assert!(
                    err.to_string().contains("not even with --force"),
                    "{name}: {err}"
                );
            }
            // The same name outside a CA directory is an output like any.
            check_output(&plain.join(name), "--out", false).unwrap();
        }
        check_output(&ca.join("crl.pem"), "--out", false).unwrap();
        let err = check_output(&ca.join(CERT_FILE), "--out", true).unwrap_err();
        assert!(
            err.to_string()
                .contains("ca/ca.crt: is the certificate of the CA directory"),
            "{err}"
        );
        std::fs::write(plain.join("x"), "x").unwrap();
        assert!(matches!(
            check_output(&plain.join("x"), "--out", false),
            Err(CliError::Exists { .. })
        ));
        check_output(&plain.join("x"), "--out", true).unwrap();
        assert!(describes_the_ca(OsStr::new(KEY_FILE)));
        assert!(!describes_the_ca(OsStr::new(CRL_NUMBER_FILE)));
        assert!(!describes_the_ca(OsStr::new("crl.pem")));
    }

    #[test]
    fn a_ca_issues_only_inside_its_validity() {
        let (nb, na) = (1_000, 2_000);
        for (now, needle) in [
            (999, Some("is not valid before 1970-01-01T00:16:40Z")),
            (1_000, None),
            (1_999, None),
            (2_000, Some("expired on 1970-01-01T00:33:20Z")),
            (5_000, Some("expired on")),
        ] {
            let got = validity_problem(nb, na, now);
            match needle {
                None => assert_eq!(got, None, "{now}"),
                Some(n) => {
                    let got = got.unwrap_or_default();
                    assert!(got.contains(n), "{now}: {got}");
                    assert!(
                        got.contains("1970-01-01T00:16:40Z to 1970-01-01T00:33:20Z"),
                        "{got}"
                    );
                }
            }
        }
    }
}
