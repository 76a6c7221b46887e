//! Key stores: where a CA's private key lives and how jitr signs with it.
//! `file` keeps a PKCS#8 file in the CA directory (`ca.key`, optionally
//! encrypted); `pkcs11` (a token) and `kms` (AWS KMS) keep the key outside
//! and the directory only holds a reference (`key.json`, no secret). Every command that signs goes through
//! [`CaKey`], which rcgen signs with like any key pair.

pub(crate) mod der;
mod key;
pub(crate) mod kms;
mod pair;
pub(crate) mod pkcs11;

use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

pub(crate) use self::key::{CaKey, StoreKind};
pub(crate) use self::pair::check_pair;

use self::kms::{KmsKeyRef, KmsSigner};
use self::pkcs11::{TokenKeyRef, TokenSigner};
use crate::error::CliError;
use crate::files::NewFile;
use crate::pki::encrypted;
use crate::pki::keys::{self, KeyAlg};
use crate::pki::secret::SecretSource;

/// The file of a `file` store.
pub(crate) const KEY_FILE: &str = "ca.key";
/// The reference file of a remote store (no secret in it).
pub(crate) const REF_FILE: &str = "key.json";

/// Where the secrets that unlock a CA key come from (never argv).
#[derive(Debug, Clone, Default)]
pub(crate) struct Unlock {
    pub(crate) password_file: Option<PathBuf>,
    pub(crate) pin_file: Option<PathBuf>,
    /// How to reach KMS (the global --profile/--region/--endpoint-url).
    pub(crate) aws: jitr_core::aws::AwsOptions,
    /// The secrets are an issuer's (`--issuer-password-file`, `--issuer-pin-file`).
    pub(crate) issuer: bool,
}

impl Unlock {
    fn password(&self) -> SecretSource {
        let mut source = SecretSource::password(self.password_file.clone());
        if self.issuer {
            source.file_flag = "--issuer-password-file";
        }
        source
    }
    fn pin(&self) -> SecretSource {
        let mut source = SecretSource::pin(self.pin_file.clone());
        if self.issuer {
            source.file_flag = "--issuer-pin-file";
        }
        source
    }

    /// Refuses a secret file given for a CA in `dir` whose store would not
    /// read it: a secret the user gave is never silently ignored.
    fn refuse_unread(&self, dir: &Path, needs: Needs) -> Result<(), CliError> {
        let reader = format!("the CA in {}", dir.display());
        self.refuse(
            &reader,
            [
                (needs.password, "its key is not an encrypted file"),
                (needs.pin, "its key is not on a PKCS#11 token"),
            ],
        )
    }

    /// Refuses any secret file at all: `reader` (e.g. "`ca register --mode
    /// sni-only`") opens no CA key, so it reads none, for the reason `why`.
    pub(crate) fn refuse_any(&self, reader: &str, why: &str) -> Result<(), CliError> {
        self.refuse(reader, [(false, why), (false, why)])
    }

    /// The refusal itself: a secret file given where `reader` would not read
    /// it (`needed` false), named by its flag, with why.
    fn refuse(&self, reader: &str, needs: [(bool, &str); 2]) -> Result<(), CliError> {
        let [(password, why_password), (pin, why_pin)] = needs;
        for (source, needed, why) in [
            (self.password(), password, why_password),
            (self.pin(), pin, why_pin),
        ] {
            if let (Some(file), false) = (&source.file, needed) {
                return Err(CliError::invalid(
                    format!("{} {}", source.file_flag, file.display()),
                    format!(
                        "{reader} reads no {} ({why}), so it would be ignored (leave the flag out)",
                        source.what
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Which secrets opening a CA's key asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Needs {
    /// The passphrase: the key is an encrypted `ca.key`.
    pub(crate) password: bool,
    /// The PIN: the key is on a PKCS#11 token.
    pub(crate) pin: bool,
}

/// The secrets the CA in `dir` will ask for, from its files (none when they
/// cannot be read: opening the CA then reports that).
pub(crate) fn secrets_needed(dir: &Path) -> Needs {
    let read = |name| crate::files::read_limited(&dir.join(name), crate::files::MAX_PEM).ok();
    if let Some(text) = read(REF_FILE) {
        let pin = matches!(serde_json::from_slice(&text), Ok(KeyRef::Pkcs11(_)));
        return Needs {
            password: false,
            pin,
        };
    }
    let text = read(KEY_FILE).map(Zeroizing::new).unwrap_or_default();
    let password = pem::parse_many(text.as_slice())
        .is_ok_and(|blocks| blocks.iter().any(|b| b.tag() == encrypted::LABEL));
    Needs {
        password,
        pin: false,
    }
}

/// What `key.json` says.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(tag = "store", rename_all = "lowercase", deny_unknown_fields)]
enum KeyRef {
    Pkcs11(TokenKeyRef),
    Kms(KmsKeyRef),
}

/// How a new CA key is to be kept (`ca create`).
#[derive(Debug, Clone)]
pub(crate) enum NewKeySpec {
    File {
        encrypt: bool,
    },
    Pkcs11 {
        module: PathBuf,
        token: String,
        label: String,
        /// The label was given: an existing key of that label is adopted.
        adopt: bool,
    },
    Kms {
        /// Adopt this key (id, ARN or alias/NAME); else create one aliased by `name`.
        key_id: Option<String>,
        name: String,
    },
}

/// A new CA key and the file that records it in the CA directory.
pub(crate) struct NewKey {
    pub(crate) key: CaKey,
    pub(crate) file: NewFile,
    /// The key was generated on a token by this run (undone by [`NewKey::discard`]).
    generated: bool,
}

impl NewKey {
    /// Undoes what creating the key changed outside the CA directory.
    pub(crate) fn discard(&self) {
        match (self.generated, &self.key) {
            (true, CaKey::Token(t)) => t.destroy(),
            (true, CaKey::Kms(k)) => k.destroy(),
            _ => {}
        }
    }
}

fn store_error(store: &str, e: impl std::fmt::Display) -> CliError {
    CliError::invalid(format!("key store {store}"), e)
}

/// Makes (or on a token or in KMS, adopts) the key of a new CA in `dir`,
/// proven to sign for the public key the certificate will carry.
pub(crate) fn create(
    spec: &NewKeySpec,
    alg: KeyAlg,
    dir: &Path,
    unlock: &Unlock,
) -> Result<NewKey, CliError> {
    let new = make(spec, alg, dir, unlock)?;
    let at = new.file.path.display().to_string();
    if let Err(e) = check_pair(&new.key, &at) {
        new.discard();
        return Err(e);
    }
    Ok(new)
}

fn make(spec: &NewKeySpec, alg: KeyAlg, dir: &Path, unlock: &Unlock) -> Result<NewKey, CliError> {
    match spec {
        NewKeySpec::File { encrypt } => {
            // Ask before the (possibly slow) key generation.
            let passphrase = if *encrypt {
                Some(unlock.password().read("file", true)?)
            } else {
                None
            };
            let key = alg.generate()?;
            let pem = match &passphrase {
                Some(p) => encrypted::encrypt(key.serialized_der(), p)
                    .map_err(|e| store_error("file", e))?,
                None => Zeroizing::new(key.serialize_pem()),
            };
            Ok(NewKey {
                file: NewFile::secret(dir.join(KEY_FILE), pem.as_bytes()),
                key: CaKey::File(key),
                generated: false,
            })
        }
        NewKeySpec::Pkcs11 {
            module,
            token,
            label,
            adopt,
        } => {
            let pin = unlock.pin().read("pkcs11", false)?;
            let (signer, generated) = TokenSigner::create(module, token, label, *adopt, alg, &pin)
                .map_err(|e| store_error("pkcs11", e))?;
            let json = serde_json::to_string_pretty(&KeyRef::Pkcs11(signer.reference.clone()))
                .expect("key.json serializes");
            Ok(NewKey {
                file: NewFile::public(dir.join(REF_FILE), format!("{json}\n")),
                key: CaKey::Token(signer),
                generated,
            })
        }
        NewKeySpec::Kms { key_id, name } => {
            let signer = KmsSigner::create(&unlock.aws, key_id.as_deref(), alg, name)
                .map_err(|e| store_error("kms", e))?;
            let json = serde_json::to_string_pretty(&KeyRef::Kms(signer.reference.clone()))
                .expect("key.json serializes");
            Ok(NewKey {
                file: NewFile::public(dir.join(REF_FILE), format!("{json}\n")),
                key: CaKey::Kms(signer),
                generated: key_id.is_none(),
            })
        }
    }
}

/// Opens the key of the CA in `dir`: `key.json` names a remote store, else
/// `ca.key` is the file store. The key is proven to sign for its public key.
pub(crate) fn open(dir: &Path, unlock: &Unlock) -> Result<CaKey, CliError> {
    let (key, at) = open_unchecked(dir, unlock)?;
    check_pair(&key, &at.display().to_string())?;
    Ok(key)
}

fn open_unchecked(dir: &Path, unlock: &Unlock) -> Result<(CaKey, PathBuf), CliError> {
    let ref_path = dir.join(REF_FILE);
    if ref_path.exists() {
        let text = crate::files::read_limited(&ref_path, crate::files::MAX_PEM)?;
        let reference: KeyRef = serde_json::from_slice(&text).map_err(|e| {
            CliError::invalid(
                ref_path.display(),
                format!("not a key reference ({e}); expected {{\"store\": \"pkcs11\" or \"kms\", ...}} as `jitr ca create --key-store` writes"),
            )
        })?;
        let needs = Needs {
            password: false,
            pin: matches!(reference, KeyRef::Pkcs11(_)),
        };
        unlock.refuse_unread(dir, needs)?;
        let key = match reference {
            KeyRef::Pkcs11(r) => {
                let id = r.id().map_err(|_| {
                    CliError::invalid(
                        ref_path.display(),
                        format!("key_id \"{}\" is not hex (expected the key's CKA_ID as hex digits, as `jitr ca create` writes it)", r.key_id),
                    )
                })?;
                let pin = unlock.pin().read("pkcs11", false)?;
                let signer =
                    TokenSigner::open(&r, &id, &pin).map_err(|e| store_error("pkcs11", e))?;
                CaKey::Token(signer)
            }
            KeyRef::Kms(r) => {
                let signer = KmsSigner::open(&r, &unlock.aws).map_err(|e| store_error("kms", e))?;
                CaKey::Kms(signer)
            }
        };
        return Ok((key, ref_path));
    }
    let key_path = dir.join(KEY_FILE);
    let what = key_path.display().to_string();
    // The file may hold the key in the clear: wiped after parsing.
    let text = Zeroizing::new(crate::files::read_limited(
        &key_path,
        crate::files::MAX_PEM,
    )?);
    let mut encrypted = false;
    let (key, _, _) = keys::load_private_key_unlocking(&text, &what, || {
        encrypted = true;
        unlock.refuse_unread(
            dir,
            Needs {
                password: true,
                pin: false,
            },
        )?;
        unlock.password().read("file", false)
    })?;
    unlock.refuse_unread(
        dir,
        Needs {
            password: encrypted,
            pin: false,
        },
    )?;
    Ok((CaKey::File(key), key_path))
}

/// The files of a CA directory that another store's key would shadow,
/// removed after a `--force` replacement.
pub(crate) fn stale_files(dir: &Path, kept: &NewFile) -> Vec<PathBuf> {
    [KEY_FILE, REF_FILE]
        .into_iter()
        .map(|name| dir.join(name))
        .filter(|p| *p != kept.path && p.exists())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_needed_follow_the_store_in_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert_eq!(secrets_needed(d), Needs::default(), "nothing there");
        let key = KeyAlg::EcP256.generate().unwrap();
        std::fs::write(d.join(KEY_FILE), key.serialize_pem()).unwrap();
        assert_eq!(secrets_needed(d), Needs::default());
        let sealed = encrypted::encrypt(key.serialized_der(), "pw").unwrap();
        std::fs::write(d.join(KEY_FILE), sealed.as_bytes()).unwrap();
        assert_eq!(
            secrets_needed(d),
            Needs {
                password: true,
                pin: false
            }
        );
        std::fs::write(
            d.join(REF_FILE),
            r#"{"store":"pkcs11","module":"m.so","token":"t","key_label":"l","key_id":"01"}"#,
        )
        .unwrap();
        assert_eq!(
            secrets_needed(d),
            Needs {
                password: false,
                pin: true
            }
        );
    }
}
