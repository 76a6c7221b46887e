//! `jitr ca create | import | verification-cert`.

use std::path::Path;

use jitr_core::CertFacts;
use serde::Serialize;

use crate::args::{CaCreateArgs, CaImportArgs, Global, KeyStoreArgs, VerificationCertArgs};
use crate::error::CliError;
use crate::files::{self, NewFile};
use crate::pki::ca_dir::{self, CaDir};
use crate::pki::ca_write;
use crate::pki::store::{
    self, encrypted, secret::SecretSource, Needs, NewKeySpec, StoreKind, Unlock,
};
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
    key_store: StoreKind,
    encrypted: bool,
    not_after: String,
    root: bool,
}

impl CaReport {
    fn new(dir: &Path, facts: &CertFacts, key_store: StoreKind, encrypted: bool) -> Self {
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

    fn text(&self, verb: &str) -> String {
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

/// `jitr ca create DIR`.
pub(crate) fn create(a: &CaCreateArgs, g: &Global, out: &Output) -> Result<(), CliError> {
    let unlock = a.unlock.unlock(g);
    // --password-file and --pin-file serve the issuer too, when it reads them.
    let issuer_needs = a
        .issuer
        .as_deref()
        .map(store::secrets_needed)
        .unwrap_or_default();
    let fallback =
        |given: &Option<std::path::PathBuf>, needed: bool| given.clone().filter(|_| needed);
    let issuer_unlock = Unlock {
        password_file: a
            .issuer_password_file
            .clone()
            .or(fallback(&unlock.password_file, issuer_needs.password)),
        pin_file: a
            .issuer_pin_file
            .clone()
            .or(fallback(&unlock.pin_file, issuer_needs.pin)),
        aws: unlock.aws.clone(),
        issuer: true,
    };
    let issuer = a
        .issuer
        .as_deref()
        .map(|d| {
            let given = issuer_unlock.password_file.as_deref();
            let flag = if a.issuer_password_file.is_some() {
                "--issuer-password-file"
            } else {
                "--password-file"
            };
            if issuer_needs.password {
                ask_note(d, given);
            }
            CaDir::load(d, "--issuer", &issuer_unlock)
                .map_err(|e| issuer_error(e, d, issuer_needs.password, given.map(|p| (flag, p))))
        })
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
    let cn = subject
        .iter()
        .find(|attr| attr.name == "CN")
        .map(|attr| attr.value.clone());
    let spec = new_key_spec(&a.store, cn.as_deref().unwrap_or_default())?;
    let issuer_reads = Needs {
        password: issuer_needs.password && a.issuer_password_file.is_none(),
        pin: issuer_needs.pin && a.issuer_pin_file.is_none(),
    };
    refuse_unread_secrets(&spec, &unlock, issuer_reads, issuer_needs)?;
    ca_write::refuse_existing(&a.dir, a.force)?;

    let new = store::create(&spec, a.key, &a.dir, &unlock)?;
    let written = (|| {
        let params = profile::ca(
            &subject,
            a.days,
            a.path_len,
            issuer.as_ref().map(CaDir::not_after),
        );
        let (cert, signer) = match &issuer {
            Some(parent) => (
                params.signed_by(&new.key, &parent.issuer),
                parent.issuer.key(),
            ),
            None => (params.self_signed(&new.key), &new.key),
        };
        let cert = cert.map_err(|e| CliError::signing("the CA certificate", signer.explain(&e)))?;
        let cert_pem = cert.pem();
        let chain_pem = match &issuer {
            Some(parent) => format!("{cert_pem}{}", parent.chain_pem),
            None => cert_pem.clone(),
        };
        let key_file = NewFile {
            path: new.file.path.clone(),
            contents: new.file.contents.clone(),
            mode: new.file.mode,
        };
        write_ca_dir(&a.dir, &cert_pem, key_file, &chain_pem, a.force)?;
        CertFacts::from_der(cert.der()).map_err(|e| {
            CliError::signing(
                "the CA certificate",
                format!("the result does not parse: {e}"),
            )
        })
    })();
    let facts = match written {
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

/// How `--key-store` and its flags ask the new key to be kept; `cn` names
/// the key on a token when no label is given.
fn new_key_spec(a: &KeyStoreArgs, cn: &str) -> Result<NewKeySpec, CliError> {
    let flags = [
        ("--encrypt", a.encrypt, StoreKind::File),
        (
            "--pkcs11-module",
            a.pkcs11_module.is_some(),
            StoreKind::Pkcs11,
        ),
        (
            "--pkcs11-token",
            a.pkcs11_token.is_some(),
            StoreKind::Pkcs11,
        ),
        (
            "--pkcs11-key-label",
            a.pkcs11_key_label.is_some(),
            StoreKind::Pkcs11,
        ),
        ("--kms-key-id", a.kms_key_id.is_some(), StoreKind::Kms),
    ];
    if let Some((flag, _, store)) = flags
        .iter()
        .find(|(_, given, store)| *given && *store != a.key_store)
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
    match a.key_store {
        StoreKind::File => Ok(NewKeySpec::File { encrypt: a.encrypt }),
        StoreKind::Kms => Ok(NewKeySpec::Kms {
            key_id: a.kms_key_id.clone(),
            name: cn.to_string(),
        }),
        StoreKind::Pkcs11 => {
            let module = a.pkcs11_module.clone().ok_or_else(|| {
                CliError::invalid(
                    "--key-store pkcs11",
                    "needs --pkcs11-module PATH (the token's PKCS#11 library)",
                )
            })?;
            let token = a.pkcs11_token.clone().ok_or_else(|| {
                CliError::invalid("--key-store pkcs11", "needs --pkcs11-token LABEL")
            })?;
            Ok(NewKeySpec::Pkcs11 {
                module,
                token,
                label: a.pkcs11_key_label.clone().unwrap_or_else(|| cn.to_string()),
                adopt: a.pkcs11_key_label.is_some(),
            })
        }
    }
}

/// Before a prompt for the issuer's passphrase on a terminal: whose key it unlocks.
fn ask_note(issuer: &Path, file: Option<&Path>) {
    use std::io::IsTerminal;
    let from_env = std::env::var_os(store::secret::PASSWORD_ENV).is_some();
    if file.is_none() && !from_env && std::io::stdin().is_terminal() {
        eprintln!(
            "jitr: the --issuer's key {} is encrypted: type its passphrase (or give it with --issuer-password-file FILE)",
            issuer.join(ca_dir::KEY_FILE).display()
        );
    }
}

/// An issuer that could not be loaded, named with its key and (when its
/// key is encrypted) where the passphrase came from or can be given.
fn issuer_error(
    e: CliError,
    issuer: &Path,
    encrypted: bool,
    file: Option<(&str, &Path)>,
) -> CliError {
    if !encrypted {
        return e;
    }
    let key = issuer.join(ca_dir::KEY_FILE);
    let source = match file {
        Some((flag, path)) => format!("the passphrase was read from {flag} {}", path.display()),
        None => {
            "give its passphrase with --issuer-password-file FILE (or JITR_CA_PASSWORD)".to_string()
        }
    };
    CliError::invalid(
        format!(
            "--issuer {} (its encrypted key {})",
            issuer.display(),
            key.display()
        ),
        format!("{e}; {source}"),
    )
}

/// Refuses `--password-file` or `--pin-file` that neither the new key nor
/// the issuer (`issuer_reads`) would read: a secret the user gave is never
/// ignored (`--password-file` without `--encrypt` would leave ca.key plain).
/// `issuer_needs` is what the issuer needs at all: when it reads its secret
/// from `--issuer-*-file` instead, the message says so.
fn refuse_unread_secrets(
    spec: &NewKeySpec,
    unlock: &Unlock,
    issuer_reads: Needs,
    issuer_needs: Needs,
) -> Result<(), CliError> {
    let password = matches!(spec, NewKeySpec::File { encrypt: true }) || issuer_reads.password;
    let pin = matches!(spec, NewKeySpec::Pkcs11 { .. }) || issuer_reads.pin;
    if unlock.password_file.is_some() && !password {
        let issuer = if issuer_needs.password {
            "the issuer's passphrase comes from --issuer-password-file"
        } else {
            "no issuer's key needs a passphrase"
        };
        let why = match spec {
            NewKeySpec::File { .. } => format!(
                "the new ca.key is written unencrypted without --encrypt, and {issuer}; add --encrypt to encrypt it with this passphrase"
            ),
            _ => format!(
                "the new key is not kept in a file, and {issuer}, so it would be ignored (leave the flag out)"
            ),
        };
        return Err(CliError::invalid("--password-file", why));
    }
    if unlock.pin_file.is_some() && !pin {
        let why = if issuer_needs.pin {
            "the new key is not on a PKCS#11 token, and the issuer's PIN comes from --issuer-pin-file, so this PIN would be ignored (leave the flag out)"
        } else {
            "neither the new key nor its issuer's is on a PKCS#11 token, so the PIN would be ignored (leave the flag out)"
        };
        return Err(CliError::invalid("--pin-file", why));
    }
    Ok(())
}

/// `jitr ca import DIR --cert FILE --key FILE [--chain FILE]`.
pub(crate) fn import(a: &CaImportArgs, g: &Global, out: &Output) -> Result<(), CliError> {
    let cert_bytes = files::read(&a.cert)?;
    let (cert_der, facts) = ca_dir::read_ca_certificate(&cert_bytes, &a.cert)?;
    let key_what = a.key.display().to_string();
    let key_text = zeroize::Zeroizing::new(files::read(&a.key)?);
    let unlock = a.unlock.unlock(g);
    let mut passphrase = None;
    let (key, key_pem, was_encrypted) =
        keys::load_private_key_unlocking(&key_text, &key_what, || {
            let secret =
                SecretSource::password(unlock.password_file.clone()).read("file", false)?;
            passphrase = Some(secret.clone());
            Ok(secret)
        })?;
    if unlock.pin_file.is_some() {
        return Err(CliError::invalid(
            "--pin-file",
            "ca import keeps the key in a file, so the PIN would be ignored (leave the flag out)",
        ));
    }
    if unlock.password_file.is_some() && !was_encrypted && !a.encrypt {
        return Err(CliError::invalid(
            "--password-file",
            format!("{key_what} is not encrypted and --encrypt was not given, so the passphrase would be ignored (add --encrypt to store ca.key encrypted with it)"),
        ));
    }
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
    // Like every store's key, proven to sign for its public key.
    let key = store::CaKey::File(key);
    store::check_pair(&key, &key_what)?;
    let store::CaKey::File(key) = key else {
        unreachable!("a file key stays one")
    };
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
    ca_write::refuse_existing(&a.dir, a.force)?;
    // An encrypted key stays encrypted: as given, or re-encrypted with --encrypt
    // (under the passphrase it came with, else a new one).
    let stored = if a.encrypt {
        let secret = match passphrase {
            Some(p) => p,
            None => SecretSource::password(unlock.password_file.clone()).read("file", true)?,
        };
        encrypted::encrypt(key.serialized_der(), &secret)
            .map_err(|e| CliError::invalid("key store file", e))?
    } else if was_encrypted {
        zeroize::Zeroizing::new(String::from_utf8_lossy(&key_text).into_owned())
    } else {
        key_pem
    };
    let cert_pem = jitr_core::pem::encode_certificate(&cert_der);
    let chain_pem: String = chain
        .iter()
        .map(|der| jitr_core::pem::encode_certificate(der))
        .collect();
    let key_file = NewFile::secret(a.dir.join(ca_dir::KEY_FILE), stored.as_bytes());
    write_ca_dir(&a.dir, &cert_pem, key_file, &chain_pem, a.force)?;
    let report = CaReport::new(&a.dir, &facts, StoreKind::File, a.encrypt || was_encrypted);
    out.result(&report, || report.text("imported"));
    Ok(())
}

/// `jitr ca verification-cert DIR --code CODE --out FILE`.
pub(crate) fn verification_cert(
    a: &VerificationCertArgs,
    g: &Global,
    out: &Output,
) -> Result<(), CliError> {
    ca_dir::check_output(&a.out, "--out", a.force)?;
    let ca = CaDir::load(&a.dir, "CA directory", &a.unlock.unlock(g))?;
    ca.check_valid_now("CA directory")?;
    let pem = verification_certificate(&ca, &a.code)?;
    ca_dir::write_output(NewFile::public(a.out.clone(), pem), "--out", a.force)?;
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
pub(crate) fn verification_certificate(ca: &CaDir, code: &str) -> Result<String, CliError> {
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
            CliError::signing("the verification certificate", ca.issuer.key().explain(&e))
        })?;
    Ok(cert.pem())
}

/// Writes a CA directory's files as one atomic step under the directory's
/// lock, no-clobber unless `force` (see [`ca_write`]).
fn write_ca_dir(
    dir: &Path,
    cert_pem: &str,
    key: NewFile,
    chain_pem: &str,
    force: bool,
) -> Result<(), CliError> {
    // --force over a CA kept in another store: its key file would shadow ours.
    // (The directory swap drops it already; the per-file fallback does not.)
    let stale = store::stale_files(dir, &key);
    ca_write::write(dir, &ca_dir::files(dir, cert_pem, key, chain_pem), force)?;
    for path in stale {
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(CliError::write(&path, e))
            }
            _ => {}
        }
    }
    Ok(())
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
            new_key_spec(&a, "CA"),
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
            let err = new_key_spec(&a, "CA").unwrap_err().to_string();
            assert!(err.contains(expected), "{err}");
        }
    }

    #[test]
    fn secret_files_nothing_reads_are_refused() {
        let with = |password: bool, pin: bool| Unlock {
            password_file: password.then(|| "pw".into()),
            pin_file: pin.then(|| "pin".into()),
            ..Unlock::default()
        };
        let plain = NewKeySpec::File { encrypt: false };
        let sealed = NewKeySpec::File { encrypt: true };
        let token = NewKeySpec::Pkcs11 {
            module: "m.so".into(),
            token: "t".into(),
            label: "l".into(),
            adopt: false,
        };
        let none = Needs::default();
        let issuer_password = Needs {
            password: true,
            pin: false,
        };
        // (new key, secrets given, what the issuer reads, refused flag)
        let cases = [
            (&plain, with(true, false), none, Some("--password-file")),
            (&plain, with(true, false), issuer_password, None),
            (&sealed, with(true, false), none, None),
            (&sealed, with(false, true), none, Some("--pin-file")),
            (&token, with(false, true), none, None),
            (&token, with(true, true), none, Some("--password-file")),
            (&plain, with(false, false), none, None),
        ];
        for (spec, unlock, issuer, refused) in cases {
            let got = refuse_unread_secrets(spec, &unlock, issuer, issuer);
            match refused {
                None => assert!(got.is_ok(), "{spec:?} {unlock:?}: {got:?}"),
                Some(flag) => {
                    let err = got.unwrap_err().to_string();
                    assert!(err.starts_with(&format!("{flag}: ")), "{err}");
                }
            }
        }
    }

    #[test]
    fn a_passphrase_for_a_plain_key_under_an_issuer_with_its_own_file_says_so() {
        let unlock = Unlock {
            password_file: Some("pw".into()),
            ..Unlock::default()
        };
        // The issuer needs a passphrase, but --issuer-password-file gives it.
        let issuer_needs = Needs {
            password: true,
            pin: false,
        };
        let plain = NewKeySpec::File { encrypt: false };
        let err = refuse_unread_secrets(&plain, &unlock, Needs::default(), issuer_needs)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("--password-file: ")
                && err.contains("--issuer-password-file")
                && !err.contains("no issuer's key needs a passphrase"),
            "{err}"
        );
        let err = refuse_unread_secrets(&plain, &unlock, Needs::default(), Needs::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("no issuer's key needs a passphrase"), "{err}");
    }

    #[test]
    fn token_labels_default_to_the_cn_and_are_adopted_only_when_given() {
        let mut a = args(StoreKind::Pkcs11);
        a.pkcs11_module = Some("m.so".into());
        a.pkcs11_token = Some("t".into());
        let Ok(NewKeySpec::Pkcs11 { label, adopt, .. }) = new_key_spec(&a, "Acme Root") else {
            panic!("pkcs11 spec")
        };
        assert_eq!((label.as_str(), adopt), ("Acme Root", false));
        a.pkcs11_key_label = Some("hsm-key-7".into());
        let Ok(NewKeySpec::Pkcs11 { label, adopt, .. }) = new_key_spec(&a, "Acme Root") else {
            panic!("pkcs11 spec")
        };
        assert_eq!((label.as_str(), adopt), ("hsm-key-7", true));
        let Ok(NewKeySpec::Kms { key_id, name }) = new_key_spec(&args(StoreKind::Kms), "Acme Root")
        else {
            panic!("kms spec")
        };
        assert_eq!((key_id, name.as_str()), (None, "Acme Root"));
    }
}
