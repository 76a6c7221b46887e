//! The CA directory: `ca.crt` (PEM), the key's store (`ca.key`, PKCS#8 PEM
//! 0600, maybe encrypted; or `key.json`, a reference into an HSM) and
//! `chain.pem` (this CA followed by its issuers up to the root).

use std::path::{Path, PathBuf};

use jitr_core::CertFacts;
use rcgen::Issuer;
use time::OffsetDateTime;

use super::keys;
use super::store::{self, CaKey, Unlock};
use crate::error::CliError;
use crate::files::{self, NewFile};

pub(crate) const CERT_FILE: &str = "ca.crt";
pub(crate) const KEY_FILE: &str = store::KEY_FILE;
pub(crate) const CHAIN_FILE: &str = "chain.pem";

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
        let _reading = super::ca_write::lock_for_reading(dir);
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

/// Reads a certificate file and insists it is a CA (basicConstraints CA:TRUE).
pub(crate) fn read_ca_certificate(
    bytes: &[u8],
    path: &Path,
) -> Result<(Vec<u8>, CertFacts), CliError> {
    let ders =
        jitr_core::pem::certificates(bytes).map_err(|e| CliError::invalid(path.display(), e))?;
    let facts = CertFacts::from_der(&ders[0]).map_err(|e| CliError::invalid(path.display(), e))?;
    if !facts.is_ca() {
        return Err(CliError::invalid(
            path.display(),
            format!(
                "\"{}\" is not a CA certificate (basicConstraints CA:TRUE is missing; AWS IoT refuses such CAs)",
                facts.subject_text
            ),
        ));
    }
    Ok((ders.into_iter().next().unwrap(), facts))
}

/// The files of a CA directory, ready for [`files::write_all`]; `key` is
/// what the key store keeps in the directory (`ca.key` or `key.json`).
pub(crate) fn files(dir: &Path, cert_pem: &str, key: NewFile, chain_pem: &str) -> Vec<NewFile> {
    vec![
        key,
        NewFile::public(dir.join(CERT_FILE), cert_pem),
        NewFile::public(dir.join(CHAIN_FILE), chain_pem),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

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
