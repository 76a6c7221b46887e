//! What `jitr ca create` and `jitr ca import` report of the CA directory
//! they wrote.

use std::path::Path;

use jitr_core::CertFacts;
use serde::Serialize;

use super::store::StoreKind;

/// A CA directory just written: its certificate and where its key is kept.
#[derive(Serialize)]
pub(crate) struct CaReport {
    dir: String,
    certificate_id: String,
    subject: String,
    issuer: String,
    key: String,
    key_store: StoreKind,
    encrypted: bool,
    not_after: String,
    root: bool,
}

impl CaReport {
    pub(crate) fn new(
        dir: &Path,
        facts: &CertFacts,
        key_store: StoreKind,
        encrypted: bool,
    ) -> Self {
        CaReport {
            dir: dir.display().to_string(),
            certificate_id: facts.certificate_id.clone(),
            subject: facts.subject_text.clone(),
            issuer: facts.issuer_text.clone(),
            key: facts.key.to_string(),
            key_store,
            encrypted,
            not_after: jitr_core::facts::rfc3339(facts.not_after),
            root: facts.self_issued,
        }
    }

    /// The report as text; `verb` says what was done ("created", "imported").
    pub(crate) fn text(&self, verb: &str) -> String {
        let kind = if self.root {
            "root CA"
        } else {
            "intermediate CA"
        };
        let store = match (self.key_store, self.encrypted) {
            (StoreKind::File, true) => "file, encrypted",
            (StoreKind::File, false) => "file",
            (StoreKind::Pkcs11, _) => "pkcs11",
            (StoreKind::Kms, _) => "kms",
        };
        format!(
            "{verb} {kind} \"{}\" in {}\n  certificate id: {}\n  key: {} in key store {store}, valid until {}\n  issuer: {}\n",
            self.subject, self.dir, self.certificate_id, self.key, self.not_after, self.issuer
        )
    }
}
