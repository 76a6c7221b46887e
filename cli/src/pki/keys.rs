//! Key generation and loading. Keys are always stored as PKCS#8 PEM; PKCS#1
//! (`RSA PRIVATE KEY`) and SEC1 (`EC PRIVATE KEY`) are accepted on input.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{
    EcdsaKeyPair, ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING,
    ECDSA_P521_SHA512_ASN1_SIGNING,
};
use rcgen::{KeyPair, PublicKeyData, RsaKeySize, SignatureAlgorithm};
use zeroize::Zeroizing;

use crate::error::CliError;
use crate::pki::encrypted;
use crate::pki::secret::Secret;

/// The key types jitr generates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
pub(crate) enum KeyAlg {
    #[value(name = "ec-p256")]
    EcP256,
    #[value(name = "ec-p384")]
    EcP384,
    #[value(name = "rsa-2048")]
    Rsa2048,
    #[value(name = "rsa-3072")]
    Rsa3072,
    #[value(name = "rsa-4096")]
    Rsa4096,
}

impl KeyAlg {
    /// Generates a fresh key pair of this type.
    pub(crate) fn generate(self) -> Result<KeyPair, CliError> {
        let rsa = |size| KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, size);
        match self {
            KeyAlg::EcP256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
            KeyAlg::EcP384 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384),
            KeyAlg::Rsa2048 => rsa(RsaKeySize::_2048),
            KeyAlg::Rsa3072 => rsa(RsaKeySize::_3072),
            KeyAlg::Rsa4096 => rsa(RsaKeySize::_4096),
        }
        .map_err(|e| CliError::KeyGeneration(e.to_string()))
    }

    /// Whether this is an RSA key (device certificates then also get keyEncipherment).
    pub(crate) fn is_rsa(self) -> bool {
        matches!(self, KeyAlg::Rsa2048 | KeyAlg::Rsa3072 | KeyAlg::Rsa4096)
    }

    /// The name `--key` takes.
    pub(crate) fn name(self) -> &'static str {
        match self {
            KeyAlg::EcP256 => "ec-p256",
            KeyAlg::EcP384 => "ec-p384",
            KeyAlg::Rsa2048 => "rsa-2048",
            KeyAlg::Rsa3072 => "rsa-3072",
            KeyAlg::Rsa4096 => "rsa-4096",
        }
    }

    /// The modulus size of an RSA kind.
    pub(crate) fn rsa_bits(self) -> Option<u32> {
        match self {
            KeyAlg::Rsa2048 => Some(2048),
            KeyAlg::Rsa3072 => Some(3072),
            KeyAlg::Rsa4096 => Some(4096),
            _ => None,
        }
    }

    /// The RSA kind of a modulus size.
    pub(crate) fn from_rsa_bits(bits: usize) -> Option<Self> {
        match bits {
            2048 => Some(KeyAlg::Rsa2048),
            3072 => Some(KeyAlg::Rsa3072),
            4096 => Some(KeyAlg::Rsa4096),
            _ => None,
        }
    }

    /// How a CA key of this kind signs (as generated keys do).
    pub(crate) fn signature_algorithm(self) -> &'static SignatureAlgorithm {
        match self {
            KeyAlg::EcP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyAlg::EcP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            _ => &rcgen::PKCS_RSA_SHA256,
        }
    }
}

/// Loads a private key from PEM text, whatever of PKCS#8, PKCS#1 or SEC1 it
/// is, and returns it with its PKCS#8 PEM encoding. `what` names the source
/// (a file path) in errors. Encrypted keys are refused.
pub(crate) fn load_private_key(pem_text: &[u8], what: &str) -> Result<(KeyPair, String), CliError> {
    load_private_key_unlocking(pem_text, what, || {
        Err(CliError::invalid(
            what,
            "the key is encrypted; decrypt it first (openssl pkey -in KEY -out PLAIN.key)",
        ))
    })
    .map(|(key, pem, _)| (key, pem.to_string()))
}

/// Like [`load_private_key`], but an `ENCRYPTED PRIVATE KEY` is decrypted
/// with the passphrase `passphrase` supplies (asked only then). Also says
/// whether the key was encrypted. The decrypted DER is wiped after use.
pub(crate) fn load_private_key_unlocking(
    pem_text: &[u8],
    what: &str,
    passphrase: impl FnOnce() -> Result<Secret, CliError>,
) -> Result<(KeyPair, Zeroizing<String>, bool), CliError> {
    let blocks =
        pem::parse_many(pem_text).map_err(|e| CliError::invalid(what, format!("not PEM: {e}")))?;
    let block = blocks
        .iter()
        .find(|b| b.tag().ends_with("PRIVATE KEY"))
        .ok_or_else(|| CliError::invalid(what, "no PEM private key block (expected PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)"))?;
    let mut was_encrypted = false;
    let pkcs8: Zeroizing<Vec<u8>> = Zeroizing::new(match block.tag() {
        "PRIVATE KEY" => block.contents().to_vec(),
        "RSA PRIVATE KEY" => aws_lc_rs::rsa::KeyPair::from_der(block.contents())
            .ok()
            .and_then(|k| k.as_der().ok().map(|d| d.as_ref().to_vec()))
            .ok_or_else(|| CliError::invalid(what, "unreadable PKCS#1 RSA key"))?,
        "EC PRIVATE KEY" => sec1_to_pkcs8(block.contents()).ok_or_else(|| {
            CliError::invalid(
                what,
                "unreadable SEC1 EC key (supported curves: P-256, P-384, P-521)",
            )
        })?,
        "ENCRYPTED PRIVATE KEY" => {
            was_encrypted = true;
            let secret = passphrase()?;
            let plain = encrypted::decrypt(block.contents(), &secret).map_err(|e| {
                // A CRLF file: the CR is part of the passphrase, as for openssl.
                let hint = match (&e, secret.ends_with('\r')) {
                    (encrypted::CryptError::WrongPassphrase, true) => " (the passphrase ends with a carriage return, its file's CRLF line end, which counts as for `openssl -passin file:`)",
                    _ => "",
                };
                CliError::invalid(format!("key store file ({what})"), format!("{e}{hint}"))
            })?;
            plain.to_vec()
        }
        other => {
            return Err(CliError::invalid(
                what,
                format!("unsupported key block \"{other}\""),
            ))
        }
    });
    let key = KeyPair::try_from(pkcs8.as_slice()).map_err(|e| {
        CliError::invalid(what, format!("unsupported or malformed private key: {e}"))
    })?;
    let pem = Zeroizing::new(key.serialize_pem());
    Ok((key, pem, was_encrypted))
}

fn sec1_to_pkcs8(sec1: &[u8]) -> Option<Vec<u8>> {
    [
        &ECDSA_P256_SHA256_ASN1_SIGNING,
        &ECDSA_P384_SHA384_ASN1_SIGNING,
        &ECDSA_P521_SHA512_ASN1_SIGNING,
    ]
    .into_iter()
    .find_map(|alg| EcdsaKeyPair::from_private_key_der(alg, sec1).ok())
    .and_then(|k| k.to_pkcs8v1().ok())
    .map(|doc| doc.as_ref().to_vec())
}

/// Whether `key` is the private half of the certificate's public key
/// (`public_key` is the certificate's subjectPublicKey bits).
pub(crate) fn matches_certificate(key: &impl PublicKeyData, public_key: &[u8]) -> bool {
    key.der_bytes() == public_key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_round_trip_through_pkcs8_pem() {
        for alg in [KeyAlg::EcP256, KeyAlg::EcP384, KeyAlg::Rsa2048] {
            let key = alg.generate().unwrap();
            let pem = key.serialize_pem();
            assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "{alg:?}");
            let (back, pem2) = load_private_key(pem.as_bytes(), "k").unwrap();
            assert_eq!(back.der_bytes(), key.der_bytes());
            assert_eq!(pem, pem2);
        }
    }

    #[test]
    fn encrypted_and_garbage_keys_are_refused_by_name() {
        let enc =
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
        let err = load_private_key(enc.as_bytes(), "vendor.key")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("vendor.key: ") && err.contains("encrypted"),
            "{err}"
        );
        let err = load_private_key(b"hello", "x.key").unwrap_err().to_string();
        assert!(
            err.contains("x.key") && err.contains("private key"),
            "{err}"
        );
    }
}
