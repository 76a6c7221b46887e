//! `jitr ca create DIR`: a root CA, or with `--issuer` an intermediate one,
//! its key in the store `--key-store` names.

use std::path::PathBuf;

use jitr_core::aws::AwsOptions;
use jitr_core::CertFacts;

use crate::error::CliError;
use crate::files::NewFile;
use crate::flags::UnlockArgs;
use crate::pki::ca_dir::CaDir;
use crate::pki::ca_report::CaReport;
use crate::pki::issuer::{self, refuse_unread_secrets, IssuerSecrets};
use crate::pki::keys::KeyAlg;
use crate::pki::store::{self, Needs, NewKey, NewKeySpec, StoreKind};
use crate::pki::subject::{self, Attribute};
use crate::pki::{ca_write, profile};
use crate::report::Output;

/// Where a new CA key is kept.
#[derive(Debug, clap::Args)]
pub(crate) struct KeyStoreArgs {
    /// Key store: file (ca.key in DIR), pkcs11 (an HSM token) or kms (AWS KMS); the
    /// last two keep only a reference, key.json, in DIR.
    #[arg(long, value_enum, default_value_t = StoreKind::File)]
    pub(crate) key_store: StoreKind,
    /// Encrypt ca.key with a passphrase (file store): PKCS#8, scrypt + AES-256-CBC.
    /// --password-file without it is refused (unless the --issuer's key reads it).
    #[arg(long)]
    pub(crate) encrypt: bool,
    /// The token's PKCS#11 module, e.g. /usr/lib/softhsm/libsofthsm2.so.
    #[arg(long, value_name = "PATH")]
    pub(crate) pkcs11_module: Option<PathBuf>,
    /// The token's label.
    #[arg(long, value_name = "LABEL")]
    pub(crate) pkcs11_token: Option<String>,
    /// The key's label on the token: an existing key is adopted, else one is generated
    /// (default: the CA's CN; a new key only).
    #[arg(long, value_name = "LABEL")]
    pub(crate) pkcs11_key_label: Option<String>,
    /// Adopt this KMS key (key id, ARN or alias/NAME; spec must match --key, usage
    /// SIGN_VERIFY); default: create one with the alias alias/jitr/<CA CN>.
    #[arg(long, value_name = "ID|ARN|ALIAS")]
    pub(crate) kms_key_id: Option<String>,
}

impl KeyStoreArgs {
    /// The flags' one conversion: how `--key-store` and its flags ask the
    /// new key to be kept; `cn` names the key on a token when no label is given.
    fn spec(&self, cn: &str) -> Result<NewKeySpec, CliError> {
        let flags = [
            ("--encrypt", self.encrypt, StoreKind::File),
            (
                "--pkcs11-module",
                self.pkcs11_module.is_some(),
                StoreKind::Pkcs11,
            ),
            (
                "--pkcs11-token",
                self.pkcs11_token.is_some(),
                StoreKind::Pkcs11,
            ),
            (
                "--pkcs11-key-label",
                self.pkcs11_key_label.is_some(),
                StoreKind::Pkcs11,
            ),
            ("--kms-key-id", self.kms_key_id.is_some(), StoreKind::Kms),
        ];
        if let Some((flag, _, store)) = flags
            .iter()
            .find(|(_, given, store)| *given && *store != self.key_store)
        {
            let name = match store {
                StoreKind::File => "file",
                StoreKind::Pkcs11 => "pkcs11",
                StoreKind::Kms => "kms",
            };
            return Err(CliError::invalid(
                flag,
                format!("applies to --key-store {name} only"),
            ));
        }
        match self.key_store {
            StoreKind::File => Ok(NewKeySpec::File {
                encrypt: self.encrypt,
            }),
            StoreKind::Kms => Ok(NewKeySpec::Kms {
                key_id: self.kms_key_id.clone(),
                name: cn.to_string(),
            }),
            StoreKind::Pkcs11 => {
                let module = self.pkcs11_module.clone().ok_or_else(|| {
                    CliError::invalid(
                        "--key-store pkcs11",
                        "needs --pkcs11-module PATH (the token's PKCS#11 library)",
                    )
                })?;
                let token = self.pkcs11_token.clone().ok_or_else(|| {
                    CliError::invalid("--key-store pkcs11", "needs --pkcs11-token LABEL")
                })?;
                Ok(NewKeySpec::Pkcs11 {
                    module,
                    token,
                    label: self
                        .pkcs11_key_label
                        .clone()
                        .unwrap_or_else(|| cn.to_string()),
                    adopt: self.pkcs11_key_label.is_some(),
                })
            }
        }
    }
}

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Directory to write ca.crt, chain.pem and ca.key (or key.json) into.
    pub(crate) dir: PathBuf,
    /// Key type.
    #[arg(long, value_enum, default_value_t = KeyAlg::EcP256)]
    pub(crate) key: KeyAlg,
    #[command(flatten)]
    pub(crate) store: KeyStoreArgs,
    #[command(flatten)]
    pub(crate) unlock: UnlockArgs,
    /// Passphrase file of the --issuer's encrypted key (default: --password-file's sources).
    #[arg(long, value_name = "FILE", requires = "issuer")]
    pub(crate) issuer_password_file: Option<PathBuf>,
    /// PIN file of the --issuer's token (default: --pin-file's sources).
    #[arg(long, value_name = "FILE", requires = "issuer")]
    pub(crate) issuer_pin_file: Option<PathBuf>,
    /// Subject, e.g. "CN=Acme Root CA,O=Acme,C=DE" (escape commas in values as \,).
    #[arg(long)]
    pub(crate) subject: Option<String>,
    /// Validity in days.
    #[arg(long, default_value_t = 3650, value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub(crate) days: u32,
    /// Sign with this CA directory (creates an intermediate CA).
    #[arg(long, value_name = "ROOT_DIR")]
    pub(crate) issuer: Option<PathBuf>,
    /// basicConstraints pathLenConstraint.
    #[arg(long, value_name = "N")]
    pub(crate) path_len: Option<u8>,
    /// Replace an existing CA in DIR.
    #[arg(long)]
    pub(crate) force: bool,
}

/// `jitr ca create DIR`.
pub(crate) fn run(a: &Args, aws: &AwsOptions, out: &Output) -> Result<(), CliError> {
    let unlock = a.unlock.unlock(aws);
    // --password-file and --pin-file serve the issuer too, when it reads them.
    let issuer_needs = a
        .issuer
        .as_deref()
        .map(store::secrets_needed)
        .unwrap_or_default();
    let own = IssuerSecrets {
        password_file: a.issuer_password_file.clone(),
        pin_file: a.issuer_pin_file.clone(),
    };
    let issuer = a
        .issuer
        .as_deref()
        .map(|d| issuer::load(d, &own, &unlock, issuer_needs))
        .transpose()?;
    let (subject, cn) = ca_subject(a.subject.as_deref(), issuer.is_some())?;
    let spec = a.store.spec(&cn)?;
    let issuer_reads = Needs {
        password: issuer_needs.password && a.issuer_password_file.is_none(),
        pin: issuer_needs.pin && a.issuer_pin_file.is_none(),
    };
    refuse_unread_secrets(&spec, &unlock, issuer_reads, issuer_needs)?;
    ca_write::refuse_existing(&a.dir, a.force)?;

    let new = store::create(&spec, a.key, &a.dir, &unlock)?;
    let facts = match sign_and_write(a, &subject, &new, issuer.as_ref()) {
        Ok(facts) => facts,
        Err(e) => {
            new.discard();
            return Err(e);
        }
    };
    let encrypted = matches!(spec, NewKeySpec::File { encrypt: true });
    let report = CaReport::new(&a.dir, &facts, new.key.store(), encrypted);
    out.result(&report, || report.text("created"));
    Ok(())
}

/// Signs the CA certificate for the new key (self-signed, or by `issuer`)
/// and writes the CA directory; its facts as written.
fn sign_and_write(
    a: &Args,
    subject: &[Attribute],
    new: &NewKey,
    issuer: Option<&CaDir>,
) -> Result<CertFacts, CliError> {
    let params = profile::ca(subject, a.days, a.path_len, issuer.map(CaDir::not_after));
    let (cert, signer) = match issuer {
        Some(parent) => (
            params.signed_by(&new.key, &parent.issuer),
            parent.issuer.key(),
        ),
        None => (params.self_signed(&new.key), &new.key),
    };
    let cert = cert.map_err(|e| CliError::signing("the CA certificate", signer.explain(&e)))?;
    let cert_pem = cert.pem();
    let chain_pem = match issuer {
        Some(parent) => format!("{cert_pem}{}", parent.chain_pem),
        None => cert_pem.clone(),
    };
    let key_file = NewFile {
        path: new.file.path.clone(),
        contents: new.file.contents.clone(),
        mode: new.file.mode,
    };
    ca_write::write_ca(&a.dir, &cert_pem, key_file, &chain_pem, a.force)?;
    CertFacts::from_der(cert.der()).map_err(|e| {
        CliError::signing(
            "the CA certificate",
            format!("the result does not parse: {e}"),
        )
    })
}

/// The CA's subject (`--subject`, else jitr's default for a root or an
/// intermediate CA) and its CN, which a CA subject needs.
fn ca_subject(
    given: Option<&str>,
    intermediate: bool,
) -> Result<(Vec<Attribute>, String), CliError> {
    let default_subject = if intermediate {
        "CN=jitr Intermediate CA"
    } else {
        "CN=jitr Root CA"
    };
    let subject = subject::parse(given.unwrap_or(default_subject))
        .map_err(|e| CliError::invalid("--subject", e))?;
    let Some(cn) = subject.iter().find(|attr| attr.name == "CN") else {
        return Err(CliError::invalid("--subject", "a CA subject needs a CN"));
    };
    let cn = cn.value.clone();
    Ok((subject, cn))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sets one flag of the store arguments.
    type Set = fn(&mut KeyStoreArgs);

    fn args(store: StoreKind) -> KeyStoreArgs {
        KeyStoreArgs {
            key_store: store,
            encrypt: false,
            pkcs11_module: None,
            pkcs11_token: None,
            pkcs11_key_label: None,
            kms_key_id: None,
        }
    }

    #[test]
    fn store_flags_belong_to_their_store() {
        let mut a = args(StoreKind::File);
        a.encrypt = true;
        assert!(matches!(
            a.spec("CA"),
            Ok(NewKeySpec::File { encrypt: true })
        ));

        // (store, flag set, expected error fragment)
        let cases: [(StoreKind, Set, &str); 5] = [
            (
                StoreKind::File,
                |a| a.pkcs11_token = Some("t".into()),
                "--pkcs11-token: applies to --key-store pkcs11 only",
            ),
            (
                StoreKind::File,
                |a| a.kms_key_id = Some("k".into()),
                "--kms-key-id: applies to --key-store kms only",
            ),
            (
                StoreKind::Kms,
                |a| a.encrypt = true,
                "--encrypt: applies to --key-store file only",
            ),
            (
                StoreKind::Pkcs11,
                |a| a.pkcs11_token = Some("t".into()),
                "needs --pkcs11-module",
            ),
            (
                StoreKind::Pkcs11,
                |a| a.pkcs11_module = Some("m.so".into()),
                "needs --pkcs11-token",
            ),
        ];
        for (store, set, expected) in cases {
            let mut a = args(store);
            set(&mut a);
            let err = a.spec("CA").unwrap_err().to_string();
            assert!(err.contains(expected), "{err}");
        }
    }

    #[test]
    fn token_labels_default_to_the_cn_and_are_adopted_only_when_given() {
        let mut a = args(StoreKind::Pkcs11);
        a.pkcs11_module = Some("m.so".into());
        a.pkcs11_token = Some("t".into());
        let Ok(NewKeySpec::Pkcs11 { label, adopt, .. }) = a.spec("Acme Root") else {
            panic!("pkcs11 spec")
        };
        assert_eq!((label.as_str(), adopt), ("Acme Root", false));
        a.pkcs11_key_label = Some("hsm-key-7".into());
        let Ok(NewKeySpec::Pkcs11 { label, adopt, .. }) = a.spec("Acme Root") else {
            panic!("pkcs11 spec")
        };
        assert_eq!((label.as_str(), adopt), ("hsm-key-7", true));
        let Ok(NewKeySpec::Kms { key_id, name }) = args(StoreKind::Kms).spec("Acme Root") else {
            panic!("kms spec")
        };
        assert_eq!((key_id, name.as_str()), (None, "Acme Root"));
    }
}
