//! What AWS IoT and TLS peers accept: one place for the thresholds that
//! `jitr check`, `jitr ca register` and the Lambda's admission share.

use crate::facts::{KeyKind, SignatureKind};

/// The smallest RSA modulus AWS IoT accepts, in bits.
pub const MIN_RSA_BITS: u32 = 2048;

/// Why a key or signature is not acceptable, as a sentence fragment.
pub fn key_problem(key: &KeyKind) -> Option<String> {
    match key {
        KeyKind::Rsa { bits } if *bits >= MIN_RSA_BITS => None,
        KeyKind::Rsa { bits } => Some(format!(
            "RSA key of {bits} bits; AWS IoT needs at least {MIN_RSA_BITS}"
        )),
        KeyKind::EcP256 | KeyKind::EcP384 | KeyKind::EcP521 => None,
        KeyKind::EcOther { curve } => Some(format!(
            "EC key on curve {curve}; AWS IoT accepts P-256, P-384 and P-521"
        )),
        KeyKind::Other { algorithm } => Some(format!(
            "key algorithm {algorithm}; AWS IoT accepts RSA and ECDSA"
        )),
    }
}

/// Why a signature algorithm is not acceptable, as a sentence fragment.
pub fn signature_problem(sig: &SignatureKind) -> Option<String> {
    match sig {
        SignatureKind::RsaSha256
        | SignatureKind::RsaSha384
        | SignatureKind::RsaSha512
        | SignatureKind::EcdsaSha256
        | SignatureKind::EcdsaSha384
        | SignatureKind::EcdsaSha512 => None,
        SignatureKind::Other { algorithm } => Some(format!(
            "signature algorithm {algorithm}; AWS IoT accepts SHA-256/384/512 with RSA or ECDSA"
        )),
    }
}

/// Whether `name` is a valid AWS IoT thing name: 1-128 of `[a-zA-Z0-9:_-]`.
pub fn is_thing_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b':' || b == b'_' || b == b'-')
}

/// Whether `id` is an AWS IoT certificate id: 64 hex digits (the SHA-256 of the DER).
pub fn is_certificate_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The default thing-name pattern, as a regular expression.
pub const THING_NAME_PATTERN: &str = "^[a-zA-Z0-9:_-]{1,128}$";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_thresholds() {
        let cases = [
            (KeyKind::Rsa { bits: 1024 }, false),
            (KeyKind::Rsa { bits: 2047 }, false),
            (KeyKind::Rsa { bits: 2048 }, true),
            (KeyKind::Rsa { bits: 4096 }, true),
            (KeyKind::EcP256, true),
            (KeyKind::EcP384, true),
            (KeyKind::EcP521, true),
            (
                KeyKind::EcOther {
                    curve: "1.3.132.0.10".into(),
                },
                false,
            ),
            (
                KeyKind::Other {
                    algorithm: "1.3.101.112".into(),
                },
                false,
            ),
        ];
        for (key, ok) in cases {
            assert_eq!(key_problem(&key).is_none(), ok, "{key:?}");
        }
    }

    #[test]
    fn signature_thresholds() {
        assert!(signature_problem(&SignatureKind::EcdsaSha256).is_none());
        assert!(signature_problem(&SignatureKind::RsaSha512).is_none());
        let sha1 = SignatureKind::Other {
            algorithm: "sha1WithRSAEncryption".into(),
        };
        assert!(signature_problem(&sha1)
            .unwrap()
            .contains("sha1WithRSAEncryption"));
    }

    #[test]
    fn thing_names() {
        for ok in ["a", "robot-00001", "dev:site_3", &"x".repeat(128)] {
            assert!(is_thing_name(ok), "{ok}");
        }
        for bad in [
            "",
            "has space",
            "slash/no",
            "dot.no",
            "ünï",
            &"x".repeat(129),
        ] {
            assert!(!is_thing_name(bad), "{bad}");
        }
    }
}
