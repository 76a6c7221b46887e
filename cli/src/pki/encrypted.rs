//! Encrypted PKCS#8 (`ENCRYPTED PRIVATE KEY`): PBES2 with scrypt and
//! AES-256-CBC on write, any PBES2 (scrypt or PBKDF2, AES-CBC) on read, so
//! `openssl pkey -passin` reads ours and we read what OpenSSL writes.

use pkcs8::der::{Decode, Encode};
use pkcs8::pkcs5::pbes2;
use pkcs8::EncryptedPrivateKeyInfoRef;
use zeroize::Zeroizing;

/// PEM label of encrypted PKCS#8.
pub(crate) const LABEL: &str = "ENCRYPTED PRIVATE KEY";

/// scrypt cost: N = 2^14, r = 8, p = 1 (16 MiB), what `openssl pkcs8 -scrypt`
/// uses; larger N exceeds OpenSSL's default scrypt memory limit.
const SCRYPT_LOG_N: u8 = 14;

/// Why a key could not be encrypted or decrypted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CryptError {
    #[error("the passphrase is wrong (or the file is damaged)")]
    WrongPassphrase,
    #[error("not an encrypted PKCS#8 key: {0}")]
    Malformed(String),
    #[error("unsupported encryption: {0}")]
    Unsupported(String),
    #[error("encryption failed: {0}")]
    Encrypt(String),
}

/// Encrypts a PKCS#8 DER private key with `passphrase`; returns PEM.
pub(crate) fn encrypt(pkcs8_der: &[u8], passphrase: &str) -> Result<Zeroizing<String>, CryptError> {
    let mut salt = [0u8; 16];
    let mut iv = [0u8; 16];
    aws_lc_rs::rand::fill(&mut salt).map_err(|_| CryptError::Encrypt("no randomness".into()))?;
    aws_lc_rs::rand::fill(&mut iv).map_err(|_| CryptError::Encrypt("no randomness".into()))?;
    let cost = pkcs8::pkcs5::scrypt::Params::new(SCRYPT_LOG_N, 8, 1)
        .map_err(|e| CryptError::Encrypt(e.to_string()))?;
    let params = pbes2::Parameters::generate_scrypt_aes256cbc(cost, &salt, iv)
        .map_err(|e| CryptError::Encrypt(e.to_string()))?;
    let ciphertext = params
        .encrypt(passphrase.as_bytes(), pkcs8_der)
        .map_err(|e| CryptError::Encrypt(e.to_string()))?;
    let info = EncryptedPrivateKeyInfoRef {
        encryption_algorithm: params.into(),
        encrypted_data: pkcs8::der::asn1::OctetStringRef::new(&ciphertext)
            .map_err(|e| CryptError::Encrypt(e.to_string()))?,
    };
    let der = info
        .to_der()
        .map_err(|e| CryptError::Encrypt(e.to_string()))?;
    Ok(Zeroizing::new(jitr_core::pem::encode(LABEL, &der)))
}

/// Decrypts the DER contents of an `ENCRYPTED PRIVATE KEY` block to PKCS#8 DER.
pub(crate) fn decrypt(der: &[u8], passphrase: &str) -> Result<Zeroizing<Vec<u8>>, CryptError> {
    let info = EncryptedPrivateKeyInfoRef::from_der(der)
        .map_err(|e| CryptError::Malformed(e.to_string()))?;
    let scheme = info.encryption_algorithm.pbes2().ok_or_else(|| {
        CryptError::Unsupported(
            "PBES1 (legacy); re-encrypt with `openssl pkcs8 -topk8 -v2 aes-256-cbc`".into(),
        )
    })?;
    match scheme.decrypt(passphrase.as_bytes(), info.encrypted_data.as_bytes()) {
        Ok(plain) => {
            let plain = Zeroizing::new(plain);
            // A wrong passphrase usually fails the padding check; when the
            // padding happens to pass, the plaintext is not DER.
            if pkcs8::PrivateKeyInfoRef::from_der(&plain).is_err() {
                return Err(CryptError::WrongPassphrase);
            }
            Ok(plain)
        }
        Err(pkcs8::pkcs5::Error::DecryptFailed) => Err(CryptError::WrongPassphrase),
        Err(e) => Err(CryptError::Unsupported(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_wrong_passphrase() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let pem_text = encrypt(key.serialized_der(), "correct horse").unwrap();
        assert!(pem_text.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
        assert!(!pem_text.contains("BEGIN PRIVATE KEY"));
        let block = pem::parse(pem_text.as_bytes()).unwrap();
        let plain = decrypt(block.contents(), "correct horse").unwrap();
        assert_eq!(plain.as_slice(), key.serialized_der());
        for wrong in ["correct hors", "", "Correct horse"] {
            assert!(matches!(
                decrypt(block.contents(), wrong),
                Err(CryptError::WrongPassphrase)
            ));
        }
    }

    #[test]
    fn garbage_is_malformed_not_a_wrong_passphrase() {
        assert!(matches!(
            decrypt(b"\x30\x03\x02\x01\x00", "x"),
            Err(CryptError::Malformed(_))
        ));
    }
}
