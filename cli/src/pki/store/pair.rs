//! Proof that a CA key's private half signs for the public key jitr puts
//! in the certificate. Every store passes through [`check_pair`].

use rcgen::{SignatureAlgorithm, SigningKey};

use super::key::CaKey;
use crate::error::CliError;

/// Refuses a CA key whose private half does not sign for the public key
/// jitr puts in (or checks against) the certificate: two key pairs under
/// one token label, a damaged file. Every store passes through here, at
/// `ca create` and whenever a CA is opened; `at` names where the key is
/// recorded (`ca.key` or `key.json`).
pub(crate) fn check_pair(key: &CaKey, at: &str) -> Result<(), CliError> {
    let store = format!("key store {}", key.store().name());
    match proves_pair(key) {
        Ok(()) => Ok(()),
        Err(PairCheck::Sign(e)) => Err(CliError::signing(
            "a test value (checking the CA key pair)",
            key.explain(&e),
        )),
        Err(PairCheck::NoRandomness) => Err(CliError::KeyGeneration(
            "no randomness for the key-pair check".into(),
        )),
        Err(PairCheck::Unknown) => Err(CliError::invalid(
            store,
            format!(
                "{} uses a signature algorithm jitr cannot check",
                private_key_words(key, at)
            ),
        )),
        Err(PairCheck::Mismatch) => Err(CliError::invalid(
            store,
            format!(
                "{} does not match the public key jitr reads beside it (a test signature made with it does not verify with that public key; are they halves of two different key pairs?)",
                private_key_words(key, at)
            ),
        )),
    }
}

/// Why a key pair was not proven.
#[derive(Debug)]
enum PairCheck {
    Sign(rcgen::Error),
    NoRandomness,
    Unknown,
    Mismatch,
}

/// Signs a fresh random value with `key` and verifies the signature with
/// its public key.
fn proves_pair(key: &impl SigningKey) -> Result<(), PairCheck> {
    let mut probe = [0u8; 32];
    aws_lc_rs::rand::fill(&mut probe).map_err(|_| PairCheck::NoRandomness)?;
    let signature = key.sign(&probe).map_err(PairCheck::Sign)?;
    let alg = verifier(key.algorithm()).ok_or(PairCheck::Unknown)?;
    aws_lc_rs::signature::UnparsedPublicKey::new(alg, key.der_bytes())
        .verify(&probe, &signature)
        .map_err(|_| PairCheck::Mismatch)
}

/// How to verify signatures of `alg`, for every algorithm rcgen signs with.
fn verifier(
    alg: &SignatureAlgorithm,
) -> Option<&'static dyn aws_lc_rs::signature::VerificationAlgorithm> {
    use aws_lc_rs::signature as v;
    let table: [(&SignatureAlgorithm, &'static dyn v::VerificationAlgorithm); 9] = [
        (&rcgen::PKCS_ECDSA_P256_SHA256, &v::ECDSA_P256_SHA256_ASN1),
        (&rcgen::PKCS_ECDSA_P384_SHA384, &v::ECDSA_P384_SHA384_ASN1),
        (&rcgen::PKCS_ECDSA_P521_SHA256, &v::ECDSA_P521_SHA256_ASN1),
        (&rcgen::PKCS_ECDSA_P521_SHA384, &v::ECDSA_P521_SHA384_ASN1),
        (&rcgen::PKCS_ECDSA_P521_SHA512, &v::ECDSA_P521_SHA512_ASN1),
        (&rcgen::PKCS_ED25519, &v::ED25519),
        (
            &rcgen::PKCS_RSA_SHA256,
            &v::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
        ),
        (&rcgen::PKCS_RSA_SHA384, &v::RSA_PKCS1_2048_8192_SHA384),
        (
            &rcgen::PKCS_RSA_SHA512,
            &v::RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY,
        ),
    ];
    table.into_iter().find(|(a, _)| *a == alg).map(|(_, v)| v)
}

/// The private key in words, for the one sentence that says it does not
/// match its public key.
fn private_key_words(key: &CaKey, at: &str) -> String {
    match key {
        CaKey::File(_) => format!("the private key in {at}"),
        CaKey::Token(t) => format!(
            "the private key labelled \"{}\" on token \"{}\"",
            t.reference.key_label, t.reference.token
        ),
        CaKey::Kms(k) => format!("KMS key {}", k.reference.key_id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::keys::KeyAlg;
    use rcgen::{KeyPair, PublicKeyData};

    /// Signs with one key pair, shows the public key of another: what two
    /// objects of different pairs under one token label amount to.
    struct Mixed {
        signer: KeyPair,
        public: KeyPair,
    }

    impl PublicKeyData for Mixed {
        fn der_bytes(&self) -> &[u8] {
            self.public.der_bytes()
        }
        fn algorithm(&self) -> &'static SignatureAlgorithm {
            self.public.algorithm()
        }
    }

    impl SigningKey for Mixed {
        fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
            self.signer.sign(msg)
        }
    }

    #[test]
    fn only_the_two_halves_of_one_key_pair_pass_the_check() {
        for alg in [KeyAlg::EcP256, KeyAlg::EcP384, KeyAlg::Rsa2048] {
            let key = alg.generate().unwrap();
            proves_pair(&key).unwrap();
            check_pair(&CaKey::File(key), "ca.key").unwrap();
            let mixed = Mixed {
                signer: alg.generate().unwrap(),
                public: alg.generate().unwrap(),
            };
            assert!(
                matches!(proves_pair(&mixed), Err(PairCheck::Mismatch)),
                "{alg:?}"
            );
        }
    }
}
