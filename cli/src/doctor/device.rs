//! Checks of the device's own files: what AWS IoT will see at the handshake.

use jitr_core::rules::{is_thing_name, key_problem, signature_problem};
use jitr_core::CertFacts;
use regex::Regex;

use super::fixes::shell_word;
use super::Check;

/// The device's bundle as read: the certificates in order, and whether the key matches.
pub struct DeviceFiles<'a> {
    /// The bundle's path, for messages.
    pub bundle: &'a str,
    pub chain: &'a [CertFacts],
    /// The same certificates, DER.
    pub ders: &'a [Vec<u8>],
    /// `None` when no key was given.
    pub key_matches: Option<bool>,
    /// The issuing CA's directory, when `--ca` named one (for the fix).
    pub ca_dir: Option<&'a str>,
}

/// Whether `issuer` signed `cert` (both DER): names match and the signature
/// verifies (several CAs may share a subject).
pub fn issued(cert: &[u8], issuer: &[u8]) -> bool {
    jitr_core::facts::verify_issued_by(cert, issuer).is_ok()
}

/// The device-file checks; `pattern` is the function's thing-name pattern when known.
pub fn checks(files: &DeviceFiles, now: i64, pattern: Option<&Regex>) -> Vec<Check> {
    let Some(leaf) = files.chain.first() else {
        return vec![Check::fail(
            "device chain",
            format!("{} holds no certificate", files.bundle),
            "point at the device's certificate bundle",
        )];
    };
    let mut out = vec![chain(files, leaf)];
    match files.key_matches {
        Some(true) => out.push(Check::pass("device key", "the private key belongs to the certificate")),
        Some(false) => out.push(Check::fail(
            "device key",
            "the private key does not belong to the certificate",
            "use the key that was generated with this certificate (or issue a new pair: jitr device issue)",
        )),
        None => {}
    }
    out.push(if leaf.valid_at(now) {
        Check::pass(
            "device validity",
            format!("valid now, until {}", date(leaf.not_after)),
        )
    } else {
        Check::fail(
            "device validity",
            format!(
                "not valid now (valid {} to {})",
                date(leaf.not_before),
                date(leaf.not_after)
            ),
            "issue a new certificate (jitr device issue), or correct the device's clock",
        )
    });
    out.push(thing_name(leaf, pattern));
    let problems: Vec<String> = key_problem(&leaf.key)
        .into_iter()
        .chain(signature_problem(&leaf.signature))
        .collect();
    out.push(if problems.is_empty() {
        Check::pass(
            "device algorithms",
            format!(
                "{} key, {} signature: accepted by AWS IoT",
                leaf.key, leaf.signature
            ),
        )
    } else {
        Check::fail(
            "device algorithms",
            problems.join("; "),
            "issue a new certificate with an EC P-256 or RSA-2048 key (jitr device issue)",
        )
    });
    out
}

fn chain(files: &DeviceFiles, leaf: &CertFacts) -> Check {
    match files.chain.get(1) {
        // AWS IoT's JITR: "Presenting the CA certificate is optional but the
        // device is required to send the Server Name Indication extension".
        None => Check::warn(
            "device chain",
            format!("{} holds the device certificate alone: AWS IoT registers it only if the device sends the Server Name Indication (SNI) extension with the endpoint's name", files.bundle),
            format!(
                "make sure the device's TLS client sends SNI (jitr connect does), or append the issuing CA's certificate: cat {} >> {}",
                files.ca_dir.map_or("CA_DIR/ca.crt".to_string(), |d| shell_word(&format!("{d}/ca.crt"))),
                shell_word(files.bundle)
            ),
        ),
        Some(ca) if !files.ders.get(1).is_some_and(|d| issued(&files.ders[0], d)) => Check::fail(
            "device chain",
            format!("the second certificate ({}) did not issue the device certificate (issuer {})", ca.subject_text, leaf.issuer_text),
            format!("rebuild {} as the device certificate followed by the CA that signed it", files.bundle),
        ),
        Some(ca) => Check::pass(
            "device chain",
            format!("device certificate + {} CA certificate(s); issued by {} (CA id {})", files.chain.len() - 1, ca.subject_text, ca.certificate_id),
        ),
    }
}

fn thing_name(leaf: &CertFacts, pattern: Option<&Regex>) -> Check {
    let Some(cn) = leaf.common_name() else {
        return Check::fail(
            "thing name",
            "the certificate has no CN to name the thing",
            "issue the certificate with the thing name as CN",
        );
    };
    if !is_thing_name(cn) {
        return Check::fail(
            "thing name",
            format!("CN \"{cn}\" is not a valid thing name (1-128 of a-z A-Z 0-9 : _ -)"),
            "issue the certificate with a valid thing name as CN",
        );
    }
    match pattern {
        Some(p) if !p.is_match(cn) => Check::fail(
            "thing name",
            format!("CN \"{cn}\" does not match the function's JITR_THING_NAME_PATTERN {}", p.as_str()),
            "issue the certificate with a name the pattern admits, or change the stack's ThingNamePattern",
        ),
        Some(p) => Check::pass("thing name", format!("\"{cn}\", matches the function's pattern {}", p.as_str())),
        None => Check::pass("thing name", format!("\"{cn}\" (the function's pattern unknown)")),
    }
}

/// An epoch second as a UTC date.
pub fn date(epoch: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(epoch)
        .map(|t| format!("{}-{:02}-{:02}", t.year(), t.month() as u8, t.day()))
        .unwrap_or_else(|_| epoch.to_string())
}

#[cfg(test)]
mod tests {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

    use super::super::Status::{self, *};
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn ca() -> (rcgen::Certificate, KeyPair) {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, "Unit Root");
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        (p.self_signed(&key).unwrap(), key)
    }

    fn device(
        cn: &str,
        ca: &rcgen::Certificate,
        ca_key: KeyPair,
        until: i64,
    ) -> (CertFacts, Vec<u8>) {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.not_before = time::OffsetDateTime::from_unix_timestamp(NOW - 100).unwrap();
        p.not_after = time::OffsetDateTime::from_unix_timestamp(until).unwrap();
        let issuer = rcgen::Issuer::from_ca_cert_der(ca.der(), ca_key).unwrap();
        let der = p.signed_by(&key, &issuer).unwrap().der().to_vec();
        (CertFacts::from_der(&der).unwrap(), der)
    }

    fn statuses(checks: &[Check]) -> Vec<(&'static str, Status)> {
        checks.iter().map(|c| (c.name, c.status)).collect()
    }

    /// A chain of (facts, DER) pairs as the check takes it.
    fn run(
        chain: &[(CertFacts, Vec<u8>)],
        key: Option<bool>,
        pattern: Option<&Regex>,
    ) -> Vec<Check> {
        let facts: Vec<CertFacts> = chain.iter().map(|c| c.0.clone()).collect();
        let ders: Vec<Vec<u8>> = chain.iter().map(|c| c.1.clone()).collect();
        let files = DeviceFiles {
            bundle: "b.crt",
            chain: &facts,
            ders: &ders,
            key_matches: key,
            ca_dir: Some("my ca"),
        };
        checks(&files, NOW, pattern)
    }

    fn ca_pair(ca: &rcgen::Certificate) -> (CertFacts, Vec<u8>) {
        (CertFacts::from_der(ca.der()).unwrap(), ca.der().to_vec())
    }

    #[test]
    fn each_device_fault_fails_its_own_check() {
        let pattern = Regex::new("^(?:robot-[0-9]+)$").unwrap();
        let (root, root_key) = ca();
        let root_pair = ca_pair(&root);
        // Another CA with the same subject: only the signature tells them apart.
        let (other, _) = ca();
        let other_pair = ca_pair(&other);
        let good = device("robot-1", &root, root_key, NOW + 100);
        let healthy = run(
            &[good.clone(), root_pair.clone()],
            Some(true),
            Some(&pattern),
        );
        assert!(healthy.iter().all(|c| c.status == Pass), "{healthy:?}");
        assert_eq!(healthy.len(), 5);

        let (root2, root2_key) = ca();
        let expired = device("robot-2", &root2, root2_key, NOW - 10);
        let (root3, root3_key) = ca();
        let misnamed = device("sensor-1", &root3, root3_key, NOW + 100);
        let cases = vec![
            (vec![good.clone(), other_pair], Some(true), "device chain"),
            (
                vec![good.clone(), root_pair.clone()],
                Some(false),
                "device key",
            ),
            (
                vec![expired, ca_pair(&root2)],
                Some(true),
                "device validity",
            ),
            (vec![misnamed, ca_pair(&root3)], Some(true), "thing name"),
        ];
        for (chain, key, failing) in cases {
            let got = run(&chain, key, Some(&pattern));
            for (name, status) in statuses(&got) {
                assert_eq!(
                    status,
                    if name == failing { Fail } else { Pass },
                    "{name}: {got:?}"
                );
            }
            assert!(got.iter().any(|c| c.name == failing && c.fix.is_some()));
        }
        // The device certificate alone: AWS registers it when the device sends SNI.
        let alone = run(std::slice::from_ref(&good), Some(true), Some(&pattern));
        for c in &alone {
            let want = if c.name == "device chain" { Warn } else { Pass };
            assert_eq!(c.status, want, "{}", c.line());
        }
        let chain = alone.iter().find(|c| c.name == "device chain").unwrap();
        assert!(
            chain.detail.contains("Server Name Indication"),
            "{}",
            chain.detail
        );
        assert!(
            chain
                .fix
                .as_deref()
                .is_some_and(|f| f.contains("SNI") && f.ends_with("cat 'my ca/ca.crt' >> b.crt")),
            "{}",
            chain.line()
        );
        // Without a key there is no key line; without a pattern any valid name passes.
        let keyless = run(&[good, root_pair], None, None);
        assert!(keyless
            .iter()
            .all(|c| c.name != "device key" && c.status == Pass));
    }
}
