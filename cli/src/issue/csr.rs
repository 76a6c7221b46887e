//! Device-generated certificate signing requests: parsed and their
//! signature verified before anything is signed.

use std::path::Path;

use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::prelude::FromDer;

use crate::error::CliError;

/// The public key of a verified CSR.
pub struct CsrKey {
    /// SubjectPublicKeyInfo DER, as rcgen signs it.
    pub(crate) spki: rcgen::SubjectPublicKeyInfo,
    pub is_rsa: bool,
}

/// Reads `path` (PEM or DER), verifies the CSR's self-signature and checks
/// the key is one AWS IoT accepts.
pub(crate) fn read(path: &Path) -> Result<CsrKey, CliError> {
    let bytes = crate::files::read_limited(path, crate::files::MAX_PEM)?;
    parse(&bytes, &path.display().to_string())
}

/// Parses and checks CSR bytes (PEM or DER); `what` names them in errors.
pub fn parse(bytes: &[u8], what: &str) -> Result<CsrKey, CliError> {
    let der = if jitr_core::pem::looks_like_pem(bytes) {
        let blocks =
            pem::parse_many(bytes).map_err(|e| CliError::invalid(what, format!("not PEM: {e}")))?;
        blocks
            .into_iter()
            .find(|b| b.tag().ends_with("CERTIFICATE REQUEST"))
            .ok_or_else(|| CliError::invalid(what, "no PEM \"CERTIFICATE REQUEST\" block"))?
            .into_contents()
    } else {
        bytes.to_vec()
    };
    let (_, csr) = X509CertificationRequest::from_der(&der).map_err(|e| {
        CliError::invalid(
            what,
            format!("not a PKCS#10 certificate signing request: {e}"),
        )
    })?;
    // The key first: a weak key (RSA-1024) also fails signature
    // verification, and "too weak" is the useful message.
    let info = &csr.certification_request_info;
    let key_kind = jitr_core::facts::key_kind_of(&info.subject_pki);
    if let Some(problem) = jitr_core::rules::key_problem(&key_kind) {
        let verdict = if matches!(key_kind, jitr_core::KeyKind::Rsa { .. }) {
            "too weak"
        } else {
            "not one AWS IoT accepts"
        };
        return Err(CliError::invalid(
            what,
            format!("the CSR's key is {verdict}: {problem}"),
        ));
    }
    csr.verify_signature().map_err(|_| {
        CliError::invalid(
            what,
            "the CSR's signature does not verify (corrupted, or not signed by its own key)",
        )
    })?;
    let spki = rcgen::SubjectPublicKeyInfo::from_der(info.subject_pki.raw)
        .map_err(|e| CliError::invalid(what, format!("unsupported public key: {e}")))?;
    Ok(CsrKey {
        spki,
        is_rsa: matches!(key_kind, jitr_core::KeyKind::Rsa { .. }),
    })
}
