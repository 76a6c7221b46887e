//! The rules of `jitr check`: what AWS IoT and TLS peers require of CA and
//! device certificates, each a pass/fail line with the reason.

use jitr_core::facts::verify_issued_by;
use jitr_core::{rules, CertFacts};
use serde::Serialize;

/// The outcome of one rule.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RuleResult {
    pub(crate) rule: &'static str,
    pub(crate) pass: bool,
    pub(crate) detail: String,
}

fn rule(rule: &'static str, pass: bool, detail: impl Into<String>) -> RuleResult {
    RuleResult {
        rule,
        pass,
        detail: detail.into(),
    }
}

/// Checks the first certificate of `chain` (the rest are its issuers, as in
/// a device bundle). `anchors` are the CA directory's chain when `--ca` was
/// given: the certificate must then chain to the first of them. `now` is
/// Unix seconds.
pub(crate) fn lint(
    chain: &[Vec<u8>],
    anchors: Option<&[Vec<u8>]>,
    now: i64,
) -> Result<(CertFacts, Vec<RuleResult>), String> {
    let facts = CertFacts::from_der(&chain[0]).map_err(|e| e.to_string())?;
    let mut results = vec![
        match rules::key_problem(&facts.key) {
            None => rule("key", true, facts.key.to_string()),
            Some(p) => rule("key", false, p),
        },
        match rules::signature_problem(&facts.signature) {
            None => rule("signature", true, facts.signature.to_string()),
            Some(p) => rule("signature", false, p),
        },
        validity(&facts, now),
    ];
    if facts.is_ca() {
        results.extend(ca_rules(&facts));
    } else if facts.self_issued {
        // Self-signed, so meant as a CA, but nothing says so.
        results.push(rule(
            "basic-constraints",
            false,
            "self-signed without basicConstraints CA:TRUE: AWS IoT refuses it as a CA and TLS peers will not chain through it",
        ));
    } else {
        results.extend(device_rules(&facts));
    }
    if chain.len() > 1 {
        results.push(bundle_order(chain));
    }
    if let Some(anchors) = anchors {
        results.push(chains_to(chain, anchors));
    }
    Ok((facts, results))
}

fn validity(f: &CertFacts, now: i64) -> RuleResult {
    let window = format!(
        "{} to {}",
        jitr_core::facts::rfc3339(f.not_before),
        jitr_core::facts::rfc3339(f.not_after)
    );
    if now < f.not_before {
        rule("validity", false, format!("not yet valid: {window}"))
    } else if now > f.not_after {
        rule("validity", false, format!("expired: {window}"))
    } else {
        rule("validity", true, window)
    }
}

fn ca_rules(f: &CertFacts) -> Vec<RuleResult> {
    let bc = f.basic_constraints.expect("is_ca implies basicConstraints");
    let path = bc
        .path_len
        .map(|n| format!(", pathlen:{n}"))
        .unwrap_or_default();
    vec![
        if bc.critical {
            rule("basic-constraints", true, format!("critical CA:TRUE{path}"))
        } else {
            rule(
                "basic-constraints",
                false,
                "CA:TRUE but not marked critical (RFC 5280 requires critical on CAs)",
            )
        },
        match f.key_usage {
            Some(ku) if ku.key_cert_sign => rule("key-usage", true, "keyCertSign"),
            Some(_) => rule(
                "key-usage",
                false,
                "keyUsage present without keyCertSign: TLS peers refuse chains through it",
            ),
            None => rule(
                "key-usage",
                true,
                "absent (accepted; keyCertSign + cRLSign recommended)",
            ),
        },
    ]
}

fn device_rules(f: &CertFacts) -> Vec<RuleResult> {
    vec![
        match f.common_name() {
            Some(cn) if rules::is_thing_name(cn) => {
                rule("common-name", true, format!("CN={cn} (a valid thing name)"))
            }
            Some(cn) => rule(
                "common-name",
                false,
                format!("CN=\"{cn}\" is not a valid thing name (1-128 of a-z A-Z 0-9 : _ -)"),
            ),
            None => rule(
                "common-name",
                false,
                "no subject CN: JITR names the thing after it",
            ),
        },
        match f.basic_constraints {
            Some(bc) if bc.ca => unreachable!("CAs take ca_rules"),
            Some(_) => rule("basic-constraints", true, "CA:FALSE"),
            None => rule("basic-constraints", true, "absent (end entity)"),
        },
        match f.client_auth {
            Some(true) => rule("client-auth", true, "extendedKeyUsage clientAuth"),
            Some(false) => rule(
                "client-auth",
                false,
                "extendedKeyUsage lacks clientAuth: the TLS server will refuse it",
            ),
            None => rule("client-auth", true, "no extendedKeyUsage (any use allowed)"),
        },
    ]
}

/// Each certificate of a bundle is issued by the next one.
fn bundle_order(chain: &[Vec<u8>]) -> RuleResult {
    for (i, pair) in chain.windows(2).enumerate() {
        if let Err(e) = verify_issued_by(&pair[0], &pair[1]) {
            return rule(
                "bundle",
                false,
                format!("certificate {} of the bundle: {e}", i + 1),
            );
        }
    }
    rule(
        "bundle",
        true,
        format!("{} certificates, each issued by the next", chain.len()),
    )
}

/// The certificate chains, through the bundle and then the anchors'
/// chain, to the first anchor (the CA given with --ca).
fn chains_to(chain: &[Vec<u8>], anchors: &[Vec<u8>]) -> RuleResult {
    let target = &anchors[0];
    let target_id = jitr_core::facts::certificate_id(target);
    let pool: Vec<&Vec<u8>> = chain[1..].iter().chain(anchors.iter()).collect();
    let mut current = &chain[0];
    if jitr_core::facts::certificate_id(current) == target_id {
        return rule("chain", true, "is the CA itself");
    }
    for _ in 0..=pool.len() {
        if verify_issued_by(current, target).is_ok() {
            return rule("chain", true, "issued by the given CA");
        }
        match pool.iter().find(|c| verify_issued_by(current, c).is_ok()) {
            Some(next) => current = next,
            None => break,
        }
    }
    let why = verify_issued_by(&chain[0], target)
        .err()
        .unwrap_or_default();
    rule(
        "chain",
        false,
        format!("does not chain to the given CA: {why}"),
    )
}

#[cfg(test)]
mod tests {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

    use super::*;

    fn verdicts(results: &[RuleResult]) -> Vec<(&'static str, bool)> {
        results.iter().map(|r| (r.rule, r.pass)).collect()
    }

    fn make_ca() -> (rcgen::Certificate, KeyPair) {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, "Unit Root");
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign];
        (p.self_signed(&key).unwrap(), key)
    }

    fn device(
        cn: Option<&str>,
        ca: &rcgen::Certificate,
        ca_key: KeyPair,
        window: (i64, i64),
    ) -> Vec<u8> {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        if let Some(cn) = cn {
            p.distinguished_name.push(DnType::CommonName, cn);
        }
        p.not_before = time::OffsetDateTime::from_unix_timestamp(window.0).unwrap();
        p.not_after = time::OffsetDateTime::from_unix_timestamp(window.1).unwrap();
        let issuer = rcgen::Issuer::from_ca_cert_der(ca.der(), ca_key).unwrap();
        p.signed_by(&key, &issuer).unwrap().der().to_vec()
    }

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn a_good_device_passes_every_rule() {
        let (ca, key) = make_ca();
        let der = device(Some("robot-1"), &ca, key, (NOW - 10, NOW + 10));
        let (_, results) =
            lint(&[der, ca.der().to_vec()], Some(&[ca.der().to_vec()]), NOW).unwrap();
        assert!(results.iter().all(|r| r.pass), "{results:?}");
        assert_eq!(
            verdicts(&results).iter().map(|v| v.0).collect::<Vec<_>>(),
            [
                "key",
                "signature",
                "validity",
                "common-name",
                "basic-constraints",
                "client-auth",
                "bundle",
                "chain"
            ]
        );
    }

    #[test]
    fn failures_are_named_per_rule() {
        let (ca, key) = make_ca();
        let (other, _) = make_ca();
        // (CN, window, anchors) -> the rules that fail
        type Case = (Option<&'static str>, (i64, i64), bool, Vec<&'static str>);
        let cases: Vec<Case> = vec![
            (
                Some("robot-1"),
                (NOW - 20, NOW - 10),
                false,
                vec!["validity"],
            ),
            (
                Some("robot-1"),
                (NOW + 10, NOW + 20),
                false,
                vec!["validity"],
            ),
            (None, (NOW - 10, NOW + 10), false, vec!["common-name"]),
            (
                Some("has space"),
                (NOW - 10, NOW + 10),
                false,
                vec!["common-name"],
            ),
            (Some("robot-1"), (NOW - 10, NOW + 10), true, vec!["chain"]),
        ];
        for (cn, window, wrong_anchor, failing) in cases {
            let (ca_cert, ca_key) = (&ca, KeyPair::from_pem(&key.serialize_pem()).unwrap());
            let der = device(cn, ca_cert, ca_key, window);
            let anchors = [if wrong_anchor {
                other.der().to_vec()
            } else {
                ca.der().to_vec()
            }];
            let (_, results) = lint(&[der], Some(&anchors), NOW).unwrap();
            let failed: Vec<&str> = results.iter().filter(|r| !r.pass).map(|r| r.rule).collect();
            assert_eq!(failed, failing, "{cn:?} {window:?}: {results:?}");
        }
    }

    #[test]
    fn a_bundle_out_of_order_fails() {
        let (ca, key) = make_ca();
        let der = device(Some("robot-1"), &ca, key, (NOW - 10, NOW + 10));
        let (other, _) = make_ca();
        let (_, results) = lint(&[der, other.der().to_vec()], None, NOW).unwrap();
        let bundle = results.iter().find(|r| r.rule == "bundle").unwrap();
        assert!(!bundle.pass, "{bundle:?}");
    }
}
