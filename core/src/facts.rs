//! Certificate facts: everything jitr decides on, read once from DER with
//! x509-parser (never by splitting subject strings).

use serde::Serialize;
use sha2::{Digest, Sha256};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;

/// Why a certificate could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FactsError {
    #[error("not a DER X.509 certificate: {0}")]
    Parse(String),
    #[error("certificate has trailing data after its DER encoding")]
    TrailingData,
    #[error("{0}")]
    Pem(#[from] crate::pem::PemError),
}

/// The public key of a certificate, as far as AWS IoT cares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum KeyKind {
    Rsa { bits: u32 },
    EcP256,
    EcP384,
    EcP521,
    EcOther { curve: String },
    Other { algorithm: String },
}

impl std::fmt::Display for KeyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyKind::Rsa { bits } => write!(f, "RSA-{bits}"),
            KeyKind::EcP256 => f.write_str("EC P-256"),
            KeyKind::EcP384 => f.write_str("EC P-384"),
            KeyKind::EcP521 => f.write_str("EC P-521"),
            KeyKind::EcOther { curve } => write!(f, "EC {curve}"),
            KeyKind::Other { algorithm } => write!(f, "{algorithm}"),
        }
    }
}

/// The certificate's signature algorithm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignatureKind {
    RsaSha256,
    RsaSha384,
    RsaSha512,
    EcdsaSha256,
    EcdsaSha384,
    EcdsaSha512,
    Other { algorithm: String },
}

impl std::fmt::Display for SignatureKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SignatureKind::RsaSha256 => f.write_str("sha256WithRSAEncryption"),
            SignatureKind::RsaSha384 => f.write_str("sha384WithRSAEncryption"),
            SignatureKind::RsaSha512 => f.write_str("sha512WithRSAEncryption"),
            SignatureKind::EcdsaSha256 => f.write_str("ecdsa-with-SHA256"),
            SignatureKind::EcdsaSha384 => f.write_str("ecdsa-with-SHA384"),
            SignatureKind::EcdsaSha512 => f.write_str("ecdsa-with-SHA512"),
            SignatureKind::Other { algorithm } => f.write_str(algorithm),
        }
    }
}

/// One attribute of a distinguished name, with its short name (`CN`, `O`,
/// `serialNumber`, ...) or dotted OID when it has none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NameAttribute {
    pub name: String,
    pub value: String,
}

/// The basicConstraints extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BasicConstraints {
    pub critical: bool,
    pub ca: bool,
    pub path_len: Option<u32>,
}

/// The keyUsage bits jitr looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct KeyUsage {
    pub critical: bool,
    pub digital_signature: bool,
    pub key_encipherment: bool,
    pub key_cert_sign: bool,
    pub crl_sign: bool,
}

/// What one certificate says.
#[derive(Debug, Clone, Serialize)]
pub struct CertFacts {
    /// What AWS IoT calls the certificate: lowercase hex SHA-256 of the DER.
    pub certificate_id: String,
    pub subject: Vec<NameAttribute>,
    pub issuer: Vec<NameAttribute>,
    /// The subject as one RFC 4514-style string, for messages.
    pub subject_text: String,
    pub issuer_text: String,
    /// Serial number as lowercase hex, no separators.
    pub serial_hex: String,
    /// Validity window, seconds since the Unix epoch.
    pub not_before: i64,
    pub not_after: i64,
    pub key: KeyKind,
    pub signature: SignatureKind,
    pub basic_constraints: Option<BasicConstraints>,
    pub key_usage: Option<KeyUsage>,
    /// extendedKeyUsage present and lists clientAuth (None: extension absent).
    pub client_auth: Option<bool>,
    pub subject_key_id: Option<String>,
    pub authority_key_id: Option<String>,
    /// Issuer and subject are the same name (a root, or a self-issued certificate).
    pub self_issued: bool,
    /// The subjectPublicKey bits (RSAPublicKey DER, or the EC point).
    #[serde(skip)]
    pub public_key: Vec<u8>,
}

impl CertFacts {
    /// Reads the facts from one DER certificate.
    pub fn from_der(der: &[u8]) -> Result<Self, FactsError> {
        let (rest, cert) =
            X509Certificate::from_der(der).map_err(|e| FactsError::Parse(e.to_string()))?;
        if !rest.is_empty() {
            return Err(FactsError::TrailingData);
        }
        Ok(Self::from_parsed(der, &cert))
    }

    /// Reads the facts from the first certificate of PEM (or DER) text.
    pub fn from_pem(input: &[u8]) -> Result<Self, FactsError> {
        let ders = crate::pem::certificates(input)?;
        Self::from_der(&ders[0])
    }

    fn from_parsed(der: &[u8], cert: &X509Certificate<'_>) -> Self {
        let mut facts = CertFacts {
            certificate_id: certificate_id(der),
            subject: name_attributes(cert.subject()),
            issuer: name_attributes(cert.issuer()),
            subject_text: cert.subject().to_string(),
            issuer_text: cert.issuer().to_string(),
            serial_hex: hex::encode(strip_leading_zeros(cert.raw_serial())),
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
            key: key_kind(cert),
            signature: signature_kind(&cert.signature_algorithm.algorithm.to_id_string()),
            basic_constraints: None,
            key_usage: None,
            client_auth: None,
            subject_key_id: None,
            authority_key_id: None,
            self_issued: cert.subject().as_raw() == cert.issuer().as_raw(),
            public_key: cert.public_key().subject_public_key.data.to_vec(),
        };
        for ext in cert.extensions() {
            match ext.parsed_extension() {
                ParsedExtension::BasicConstraints(bc) => {
                    facts.basic_constraints = Some(BasicConstraints {
                        critical: ext.critical,
                        ca: bc.ca,
                        path_len: bc.path_len_constraint,
                    })
                }
                ParsedExtension::KeyUsage(ku) => {
                    facts.key_usage = Some(KeyUsage {
                        critical: ext.critical,
                        digital_signature: ku.digital_signature(),
                        key_encipherment: ku.key_encipherment(),
                        key_cert_sign: ku.key_cert_sign(),
                        crl_sign: ku.crl_sign(),
                    })
                }
                ParsedExtension::ExtendedKeyUsage(eku) => {
                    facts.client_auth = Some(eku.client_auth || eku.any)
                }
                ParsedExtension::SubjectKeyIdentifier(kid) => {
                    facts.subject_key_id = Some(hex::encode(kid.0))
                }
                ParsedExtension::AuthorityKeyIdentifier(aki) => {
                    facts.authority_key_id = aki.key_identifier.as_ref().map(|k| hex::encode(k.0))
                }
                _ => {}
            }
        }
        facts
    }

    /// The first value of a subject attribute by short name (`CN`, `O`, ...).
    pub fn subject_attr(&self, name: &str) -> Option<&str> {
        self.subject
            .iter()
            .find(|a| a.name == name)
            .map(|a| a.value.as_str())
    }

    /// The subject common name, when present.
    pub fn common_name(&self) -> Option<&str> {
        self.subject_attr("CN")
    }

    /// Whether basicConstraints says CA:TRUE.
    pub fn is_ca(&self) -> bool {
        self.basic_constraints.is_some_and(|bc| bc.ca)
    }

    /// Whether `at` (Unix seconds) lies inside the validity window.
    pub fn valid_at(&self, at: i64) -> bool {
        self.not_before <= at && at <= self.not_after
    }
}

/// AWS IoT's certificate id: lowercase hex SHA-256 of the DER encoding.
pub fn certificate_id(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

/// Unix seconds as RFC 3339 (UTC), for reports and manifests.
pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

/// Verifies that `child` (DER) names `issuer` (DER) as its issuer and carries
/// a valid signature by the issuer's key.
pub fn verify_issued_by(child: &[u8], issuer: &[u8]) -> Result<(), String> {
    let (_, child) =
        X509Certificate::from_der(child).map_err(|e| format!("unreadable certificate: {e}"))?;
    let (_, issuer) =
        X509Certificate::from_der(issuer).map_err(|e| format!("unreadable issuer: {e}"))?;
    if child.issuer().as_raw() != issuer.subject().as_raw() {
        return Err(format!(
            "issued by \"{}\", not by \"{}\"",
            child.issuer(),
            issuer.subject()
        ));
    }
    child
        .verify_signature(Some(issuer.public_key()))
        .map_err(|e| {
            format!(
                "signature does not verify with the key of \"{}\": {e}",
                issuer.subject()
            )
        })
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(bytes.len().saturating_sub(1));
    &bytes[start..]
}

fn name_attributes(name: &x509_parser::x509::X509Name<'_>) -> Vec<NameAttribute> {
    name.iter_attributes()
        .map(|attr| {
            let oid = attr.attr_type().to_id_string();
            let value = match attr.as_str() {
                Ok(s) => s.to_string(),
                Err(_) => String::from_utf8_lossy(attr.as_slice()).into_owned(),
            };
            NameAttribute {
                name: attribute_short_name(&oid).unwrap_or(&oid).to_string(),
                value,
            }
        })
        .collect()
}

/// Short names of the subject attributes jitr reads and writes.
pub fn attribute_short_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.5" => "serialNumber",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.46" => "dnQualifier",
        "1.2.840.113549.1.9.1" => "emailAddress",
        _ => return None,
    })
}

fn key_kind(cert: &X509Certificate<'_>) -> KeyKind {
    key_kind_of(cert.public_key())
}

/// The key type of a SubjectPublicKeyInfo (of a certificate or a CSR).
pub fn key_kind_of(spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>) -> KeyKind {
    let alg = spki.algorithm.algorithm.to_id_string();
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => KeyKind::Rsa {
            bits: bit_length(rsa.modulus),
        },
        Ok(PublicKey::EC(_)) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|oid| oid.to_id_string())
                .unwrap_or_else(|| "unnamed".into());
            match curve.as_str() {
                "1.2.840.10045.3.1.7" => KeyKind::EcP256,
                "1.3.132.0.34" => KeyKind::EcP384,
                "1.3.132.0.35" => KeyKind::EcP521,
                _ => KeyKind::EcOther { curve },
            }
        }
        _ => KeyKind::Other { algorithm: alg },
    }
}

fn bit_length(big_endian: &[u8]) -> u32 {
    let digits = strip_leading_zeros(big_endian);
    match digits.first() {
        None | Some(0) => 0,
        Some(first) => (digits.len() as u32 - 1) * 8 + (8 - first.leading_zeros()),
    }
}

fn signature_kind(oid: &str) -> SignatureKind {
    match oid {
        "1.2.840.113549.1.1.11" => SignatureKind::RsaSha256,
        "1.2.840.113549.1.1.12" => SignatureKind::RsaSha384,
        "1.2.840.113549.1.1.13" => SignatureKind::RsaSha512,
        "1.2.840.10045.4.3.2" => SignatureKind::EcdsaSha256,
        "1.2.840.10045.4.3.3" => SignatureKind::EcdsaSha384,
        "1.2.840.10045.4.3.4" => SignatureKind::EcdsaSha512,
        "1.2.840.113549.1.1.5" => SignatureKind::Other {
            algorithm: "sha1WithRSAEncryption".into(),
        },
        "1.2.840.113549.1.1.4" => SignatureKind::Other {
            algorithm: "md5WithRSAEncryption".into(),
        },
        "1.2.840.10045.4.1" => SignatureKind::Other {
            algorithm: "ecdsa-with-SHA1".into(),
        },
        other => SignatureKind::Other {
            algorithm: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{
        BasicConstraints as Bc, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose,
    };

    fn ca_cert(alg: &'static rcgen::SignatureAlgorithm) -> (Vec<u8>, KeyPair, CertificateParams) {
        let key = KeyPair::generate_for(alg).unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "Test Root");
        params
            .distinguished_name
            .push(DnType::OrganizationName, "Acme, Inc.");
        params.is_ca = IsCa::Ca(Bc::Constrained(1));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let der = params.self_signed(&key).unwrap().der().to_vec();
        (der, key, params)
    }

    #[test]
    fn reads_ca_facts() {
        let (der, _, _) = ca_cert(&rcgen::PKCS_ECDSA_P384_SHA384);
        let f = CertFacts::from_der(&der).unwrap();
        assert_eq!(f.certificate_id.len(), 64);
        assert_eq!(f.certificate_id, hex::encode(Sha256::digest(&der)));
        assert_eq!(f.common_name(), Some("Test Root"));
        // A comma inside a value survives: no string splitting.
        assert_eq!(f.subject_attr("O"), Some("Acme, Inc."));
        assert_eq!(f.key, KeyKind::EcP384);
        assert_eq!(f.signature, SignatureKind::EcdsaSha384);
        assert!(f.is_ca());
        assert_eq!(f.basic_constraints.unwrap().path_len, Some(1));
        assert!(f.basic_constraints.unwrap().critical);
        assert!(f.key_usage.unwrap().key_cert_sign);
        assert!(f.self_issued);
        assert!(f.subject_key_id.is_some());
    }

    #[test]
    fn verifies_issuer_signature() {
        let (root_der, root_key, root_params) = ca_cert(&rcgen::PKCS_ECDSA_P256_SHA256);
        let (other_der, _, _) = ca_cert(&rcgen::PKCS_ECDSA_P256_SHA256);
        let issuer = rcgen::Issuer::new(root_params, root_key);
        let leaf_key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::default();
        p.distinguished_name.push(DnType::CommonName, "leaf");
        let leaf = p.signed_by(&leaf_key, &issuer).unwrap().der().to_vec();
        assert_eq!(verify_issued_by(&leaf, &root_der), Ok(()));
        // Same subject name, different key: the name matches but the signature does not.
        let err = verify_issued_by(&leaf, &other_der).unwrap_err();
        assert!(err.contains("signature does not verify"), "{err}");
        let f = CertFacts::from_der(&leaf).unwrap();
        assert!(!f.is_ca());
        assert!(!f.self_issued);
    }

    #[test]
    fn rsa_bits_counted_exactly() {
        assert_eq!(bit_length(&[0x00, 0x80, 0, 0]), 24);
        assert_eq!(bit_length(&[0x01, 0xff]), 9);
        assert_eq!(bit_length(&[]), 0);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(CertFacts::from_der(b"\x30\x03abc").is_err());
        assert!(CertFacts::from_pem(b"nonsense").is_err());
    }
}
