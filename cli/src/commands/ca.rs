//! `jitr ca create | import | verification-cert`.

use std::path::Path;

use jitr_core::CertFacts;
use serde::Serialize;

use crate::args::{CaCreateArgs, CaImportArgs, VerificationCertArgs};
use crate::error::CliError;
use crate::files::{self, NewFile};
use crate::pki::ca_dir::{self, CaDir};
use crate::pki::ca_write;
use crate::pki::{keys, profile, subject};
use crate::report::Output;

/// What `ca create` and `ca import` report.
#[derive(Serialize)]
struct CaReport {
    dir: String,
    certificate_id: String,
    subject: String,
    issuer: String,
    key: String,
    not_after: String,
    root: bool,
}

impl CaReport {
    fn new(dir: &Path, facts: &CertFacts) -> Self {
        CaReport {
            dir: dir.display().to_string(),
            certificate_id: facts.certificate_id.clone(),
            subject: facts.subject_text.clone(),
            issuer: facts.issuer_text.clone(),
            key: facts.key.to_string(),
            not_after: jitr_core::facts::rfc3339(facts.not_after),
            root: facts.self_issued,
        }
    }

    fn text(&self, verb: &str) -> String {
        let kind = if self.root {
            "root CA"
        } else {
            "intermediate CA"
        };
        format!(
            "{verb} {kind} \"{}\" in {}\n  certificate id: {}\n  key: {}, valid until {}\n  issuer: {}\n",
            self.subject, self.dir, self.certificate_id, self.key, self.not_after, self.issuer
        )
    }
}

/// `jitr ca create DIR`.
pub fn create(a: &CaCreateArgs, out: &Output) -> Result<(), CliError> {
    let issuer = a
        .issuer
        .as_deref()
        .map(|d| CaDir::load(d, "--issuer"))
        .transpose()?;
    if let Some(parent) = &issuer {
        parent.check_valid_now("--issuer")?;
        if parent.facts.basic_constraints.and_then(|bc| bc.path_len) == Some(0) {
            return Err(CliError::invalid(
                format!("--issuer {}", parent.dir.display()),
                "the issuer has pathLenConstraint 0 and may not sign another CA",
            ));
        }
    }
    let default_subject = if issuer.is_some() {
        "CN=jitr Intermediate CA"
    } else {
        "CN=jitr Root CA"
    };
    let subject = subject::parse(a.subject.as_deref().unwrap_or(default_subject))
        .map_err(|e| CliError::invalid("--subject", e))?;
    if !subject.iter().any(|attr| attr.name == "CN") {
        return Err(CliError::invalid("--subject", "a CA subject needs a CN"));
    }
    refuse_existing_ca(&a.dir, a.force)?;

    let key = a.key.generate()?;
    let params = profile::ca(
        &subject,
        a.days,
        a.path_len,
        issuer.as_ref().map(CaDir::not_after),
    );
    let cert = match &issuer {
        Some(parent) => params.signed_by(&key, &parent.issuer),
        None => params.self_signed(&key),
    }
    .map_err(|e| CliError::Crypto(format!("signing the CA certificate failed: {e}")))?;
    let cert_pem = cert.pem();
    let chain_pem = match &issuer {
        Some(parent) => format!("{cert_pem}{}", parent.chain_pem),
        None => cert_pem.clone(),
    };
    write_ca_dir(
        &a.dir,
        &ca_dir::files(&a.dir, &cert_pem, &key.serialize_pem(), &chain_pem),
        a.force,
    )?;

    let facts = CertFacts::from_der(cert.der()).map_err(|e| CliError::Crypto(e.to_string()))?;
    let report = CaReport::new(&a.dir, &facts);
    out.result(&report, || report.text("created"));
    Ok(())
}

/// `jitr ca import DIR --cert FILE --key FILE [--chain FILE]`.
pub fn import(a: &CaImportArgs, out: &Output) -> Result<(), CliError> {
    let cert_bytes = files::read(&a.cert)?;
    let (cert_der, facts) = ca_dir::read_ca_certificate(&cert_bytes, &a.cert)?;
    let key_what = a.key.display().to_string();
    let (key, key_pem) = keys::load_private_key(&files::read(&a.key)?, &key_what)?;
    if !keys::matches_certificate(&key, &facts.public_key) {
        return Err(CliError::invalid(
            key_what,
            format!(
                "this key does not match the certificate in {} (\"{}\")",
                a.cert.display(),
                facts.subject_text
            ),
        ));
    }
    // The issuers: extra blocks in --cert, then --chain; each link must verify.
    let mut chain = jitr_core::pem::certificates(&cert_bytes)
        .map_err(|e| CliError::invalid(a.cert.display(), e))?;
    if let Some(chain_path) = &a.chain {
        let extra = jitr_core::pem::certificates(&files::read(chain_path)?)
            .map_err(|e| CliError::invalid(chain_path.display(), e))?;
        chain.extend(extra);
    }
    for pair in chain.windows(2) {
        jitr_core::facts::verify_issued_by(&pair[0], &pair[1]).map_err(|e| {
            CliError::invalid(
                a.chain.as_ref().unwrap_or(&a.cert).display(),
                format!("the chain is broken: {e}"),
            )
        })?;
    }
    refuse_existing_ca(&a.dir, a.force)?;
    let cert_pem = jitr_core::pem::encode_certificate(&cert_der);
    let chain_pem: String = chain
        .iter()
        .map(|der| jitr_core::pem::encode_certificate(der))
        .collect();
    write_ca_dir(
        &a.dir,
        &ca_dir::files(&a.dir, &cert_pem, &key_pem, &chain_pem),
        a.force,
    )?;
    let report = CaReport::new(&a.dir, &facts);
    out.result(&report, || report.text("imported"));
    Ok(())
}

/// `jitr ca verification-cert DIR --code CODE --out FILE`.
pub fn verification_cert(a: &VerificationCertArgs, out: &Output) -> Result<(), CliError> {
    let ca = CaDir::load(&a.dir, "CA directory")?;
    ca.check_valid_now("CA directory")?;
    let pem = verification_certificate(&ca, &a.code)?;
    files::write_all(&[NewFile::public(a.out.clone(), pem.as_bytes())], a.force)?;
    #[derive(Serialize)]
    struct Report<'a> {
        out: String,
        code: &'a str,
        ca_certificate_id: &'a str,
    }
    let report = Report {
        out: a.out.display().to_string(),
        code: &a.code,
        ca_certificate_id: ca.certificate_id(),
    };
    out.result(&report, || {
        format!(
            "wrote verification certificate (CN={}) to {}\n",
            a.code,
            a.out.display()
        )
    });
    Ok(())
}

/// A verification certificate for `code`, signed by the CA with a fresh,
/// discarded key. Part of `ca register` too.
pub fn verification_certificate(ca: &CaDir, code: &str) -> Result<String, CliError> {
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
    let cert = profile::verification(code, Some(ca.not_after()))
        .signed_by(&key, &ca.issuer)
        .map_err(|e| {
            CliError::Crypto(format!("signing the verification certificate failed: {e}"))
        })?;
    Ok(cert.pem())
}

/// Writes a CA directory's files as one atomic step under the directory's
/// lock, no-clobber unless `force` (see [`ca_write`]).
fn write_ca_dir(dir: &Path, new: &[NewFile], force: bool) -> Result<(), CliError> {
    ca_write::write(dir, new, force)
}

fn refuse_existing_ca(dir: &Path, force: bool) -> Result<(), CliError> {
    if force {
        return Ok(());
    }
    for name in [ca_dir::KEY_FILE, ca_dir::CERT_FILE] {
        let path = dir.join(name);
        if path.exists() {
            return Err(CliError::Exists { path });
        }
    }
    Ok(())
}
