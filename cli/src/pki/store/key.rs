//! A CA's signing key, wherever it lives ([`CaKey`]), and which store holds
//! it ([`StoreKind`]): what every command that signs holds once the store
//! has opened the key.

use std::sync::Mutex;

use rcgen::{KeyPair, PublicKeyData, SignatureAlgorithm, SigningKey};

use super::kms::KmsSigner;
use super::pkcs11::TokenSigner;

/// Which store holds a CA key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum StoreKind {
    /// A PKCS#8 file in the CA directory (ca.key), optionally encrypted.
    File,
    /// A PKCS#11 token (HSM); the directory keeps key.json.
    Pkcs11,
    /// AWS KMS; the directory keeps key.json.
    Kms,
}

impl StoreKind {
    /// The name `--key-store` takes.
    pub(crate) fn name(self) -> &'static str {
        match self {
            StoreKind::File => "file",
            StoreKind::Pkcs11 => "pkcs11",
            StoreKind::Kms => "kms",
        }
    }
}

/// A CA's signing key, wherever it lives.
#[derive(Debug)]
pub(crate) enum CaKey {
    /// Decrypted in memory from a `file` store.
    File(KeyPair),
    /// On a PKCS#11 token.
    Token(TokenSigner),
    /// In AWS KMS.
    Kms(KmsSigner),
}

impl PublicKeyData for CaKey {
    fn der_bytes(&self) -> &[u8] {
        match self {
            CaKey::File(k) => k.der_bytes(),
            CaKey::Token(t) => t.public_key_der(),
            CaKey::Kms(k) => k.public_key_der(),
        }
    }
    fn algorithm(&self) -> &'static SignatureAlgorithm {
        match self {
            CaKey::File(k) => k.algorithm(),
            CaKey::Token(t) => t.algorithm(),
            CaKey::Kms(k) => k.algorithm(),
        }
    }
}

impl SigningKey for CaKey {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        match self {
            CaKey::File(k) => k.sign(msg),
            CaKey::Token(t) => t.sign(msg).map_err(|e| remember(e.to_string())),
            CaKey::Kms(k) => k.sign(msg).map_err(|e| remember(e.to_string())),
        }
    }
}

/// Why the last remote signature failed: rcgen's error only says "remote
/// key error". One slot per process is enough: the first failure stops a run.
static LAST_SIGN_ERROR: Mutex<Option<String>> = Mutex::new(None);

fn remember(why: String) -> rcgen::Error {
    *LAST_SIGN_ERROR.lock().expect("error slot") = Some(why);
    rcgen::Error::RemoteKeyError
}

impl CaKey {
    /// The store's name, as `--key-store` spells it.
    pub(crate) fn store(&self) -> StoreKind {
        match self {
            CaKey::File(_) => StoreKind::File,
            CaKey::Token(_) => StoreKind::Pkcs11,
            CaKey::Kms(_) => StoreKind::Kms,
        }
    }

    /// Signatures per second the store allows by default (KMS's account
    /// quota: 300/s for ECC keys, 500/s for RSA), `None` for no limit.
    pub(crate) fn default_sign_rate(&self) -> Option<u32> {
        match self {
            CaKey::Kms(k) if k.kind().is_rsa() => Some(500),
            CaKey::Kms(_) => Some(300),
            _ => None,
        }
    }

    /// A signing failure in words, with the store's reason when rcgen lost it.
    pub(crate) fn explain(&self, e: &rcgen::Error) -> String {
        if let rcgen::Error::RemoteKeyError = e {
            if let Some(why) = LAST_SIGN_ERROR.lock().expect("error slot").clone() {
                let store = if self.store() == StoreKind::Kms {
                    "kms"
                } else {
                    "pkcs11"
                };
                return format!("key store {store}: {why}");
            }
        }
        e.to_string()
    }
}

/// Worker threads share one `CaKey`: a store whose signer stops being
/// `Send + Sync` fails to compile here.
#[allow(dead_code)]
fn _assert_send_sync() {
    fn check<T: Send + Sync>() {}
    check::<CaKey>();
}
