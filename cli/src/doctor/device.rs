//! Checks of the device's own files: what AWS IoT will see at the handshake.

use jitr_core::rules::{is_thing_name, key_problem, signature_problem};
use jitr_core::CertFacts;
use regex::Regex;

use super::Check;

/// The device's bundle as read: the certificates in order, and whether the key matches.
pub struct DeviceFiles<'a> {
    /// The bundle's path, for messages.
    pub bundle: &'a str,
    pub chain: &'a [CertFacts],
    /// `None` when no key was given.
    pub key_matches: Option<bool>,
}

/// Whether `issuer` issued `cert` (names, and key ids where both carry them).
pub fn issued(cert: &CertFacts, issuer: &CertFacts) -> bool {
    cert.raw_issuer == issuer.raw_subject
        && match (&cert.authority_key_id, &issuer.subject_key_id) {
            (Some(a), Some(s)) => a == s,
            _ => true,
        }
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
        None => Check::fail(
            "device chain",
            format!("{} holds the device certificate alone; without SNI AWS IoT needs the issuing CA after it to register the device", files.bundle),
            format!("append the issuing CA's certificate: cat CA_DIR/ca.crt >> {}", files.bundle),
        ),
        Some(ca) if !issued(leaf, ca) => Check::fail(
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
