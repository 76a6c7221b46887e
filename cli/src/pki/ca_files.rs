//! The CA directory's files: their names, what each is to the CA, and its
//! certificate read from `ca.crt`. Below [`super::ca_dir`] (loading a CA to
//! sign) and [`super::ca_write`] (writing one), which both name them.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use jitr_core::CertFacts;

use super::store;
use crate::error::CliError;
use crate::files;

pub(crate) const CERT_FILE: &str = "ca.crt";
pub(crate) const KEY_FILE: &str = store::KEY_FILE;
pub(crate) const CHAIN_FILE: &str = "chain.pem";
/// The number of the last CRL `jitr ca crl` signed (decimal): the next one's
/// is higher, as RFC 5280 (5.2.3) requires.
pub(crate) const CRL_NUMBER_FILE: &str = "crl-number";
/// What `DIR/aws.json` records after `ca register`.
pub const AWS_FILE: &str = "aws.json";

/// The files a CA directory keeps for itself, with what each is to the CA.
/// The one list of them: outputs the user names are checked against it
/// ([`super::ca_dir::check_output`]), and a new CA written over the
/// directory drops those that described the old one ([`describes_the_ca`]).
pub(crate) const OWNED: [(&str, &str); 7] = [
    (KEY_FILE, "private key"),
    (store::REF_FILE, "key store reference"),
    (CERT_FILE, "certificate"),
    (CHAIN_FILE, "certificate chain"),
    (crate::pki::revoked::FILE, "revocation list"),
    (AWS_FILE, "AWS IoT registration record"),
    (CRL_NUMBER_FILE, "last CRL number"),
];

/// What a file named `name` is to the CA directory it is in; `None` when it
/// is not one of the directory's own files.
pub(crate) fn owned_role(name: &OsStr) -> Option<&'static str> {
    OWNED
        .iter()
        .find(|(n, _)| name == *n)
        .map(|(_, role)| *role)
}

/// Whether a new CA written over a CA directory drops its file `name`. The
/// last CRL number is kept: the new CA's CRLs go on numbering above the old
/// one's, whatever a relying party cached under the same name.
pub(crate) fn describes_the_ca(name: &OsStr) -> bool {
    owned_role(name).is_some() && name != CRL_NUMBER_FILE
}

/// Whether `dir` holds a CA: its certificate or its key's store.
pub(crate) fn holds_a_ca(dir: &Path) -> bool {
    [CERT_FILE, KEY_FILE, store::REF_FILE]
        .iter()
        .any(|name| dir.join(name).symlink_metadata().is_ok())
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

/// The certificate id a `DIR|ID` argument names, and the directory if one was given.
pub(crate) fn resolve(target: &str) -> Result<(String, Option<PathBuf>), CliError> {
    let t = target;
    if jitr_core::rules::is_certificate_id(t) && !Path::new(t).exists() {
        return Ok((t.to_ascii_lowercase(), None));
    }
    let dir = PathBuf::from(t);
    let cert_path = dir.join(CERT_FILE);
    if !cert_path.exists() {
        return Err(CliError::invalid(
            t,
            "is neither a CA directory (with ca.crt) nor a certificate id (64 hex digits)",
        ));
    }
    let (_, facts) = read_ca_certificate(&files::read(&cert_path)?, &cert_path)?;
    Ok((facts.certificate_id, Some(dir)))
}
