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

pub const CERT_FILE: &str = "ca.crt";
pub const KEY_FILE: &str = store::KEY_FILE;
pub const CHAIN_FILE: &str = "chain.pem";

/// A CA loaded from disk, ready to sign.
pub struct CaDir {
    pub dir: PathBuf,
    pub cert_der: Vec<u8>,
    pub cert_pem: String,
    /// This CA followed by its issuers, PEM.
    pub chain_pem: String,
    pub facts: CertFacts,
    pub issuer: Issuer<'static, CaKey>,
}

impl CaDir {
    /// Loads and checks the CA in `dir`, opening its key store with the
    /// secrets `unlock` names; `flag` (e.g. `--ca`) names where the
    /// directory came from in errors.
    pub fn load(dir: &Path, flag: &str, unlock: &Unlock) -> Result<Self, CliError> {
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
        let cert_bytes = files::read(&cert_path)?;
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
        let cert_pem = jitr_core::pem::encode_certificate(&cert_der);
        let chain_pem = match std::fs::read_to_string(&chain_path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => cert_pem.clone(),
            Err(e) => return Err(CliError::read(&chain_path, e)),
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
            cert_pem,
            chain_pem,
            facts,
            issuer,
        })
    }

    /// The CA's not-after, the latest any certificate it issues may expire.
    pub fn not_after(&self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(self.facts.not_after)
            .unwrap_or(OffsetDateTime::now_utc())
    }

    /// The certificate id AWS IoT gives this CA.
    pub fn certificate_id(&self) -> &str {
        &self.facts.certificate_id
    }
}

/// Reads a certificate file and insists it is a CA (basicConstraints CA:TRUE).
pub fn read_ca_certificate(bytes: &[u8], path: &Path) -> Result<(Vec<u8>, CertFacts), CliError> {
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
pub fn files(dir: &Path, cert_pem: &str, key: NewFile, chain_pem: &str) -> Vec<NewFile> {
    vec![
        key,
        NewFile::public(dir.join(CERT_FILE), cert_pem),
        NewFile::public(dir.join(CHAIN_FILE), chain_pem),
    ]
}
