//! The decision table (facts + config -> plan) and the helpers its tests
//! share; the thing's name and attributes, the verifier's verdict and the
//! thing's principals have their own tables beside.

mod principals;
mod thing;
mod verdict;

use rcgen::{CertificateParams, DnType, KeyPair};

use super::*;

const NOW: i64 = 1_800_000_000;
const CA: &str = "cafecafecafecafecafecafecafecafecafecafecafecafecafecafecafecafe";

/// A device certificate with `subject` valid from `nb` to `na`, with key `key`.
fn facts(subject: &[(DnType, &str)], window: (i64, i64), key: &KeyPair) -> CertFacts {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name = rcgen::DistinguishedName::new();
    for (t, v) in subject {
        p.distinguished_name.push(t.clone(), *v);
    }
    p.not_before = time::OffsetDateTime::from_unix_timestamp(window.0).unwrap();
    p.not_after = time::OffsetDateTime::from_unix_timestamp(window.1).unwrap();
    CertFacts::from_der(p.self_signed(key).unwrap().der()).unwrap()
}

fn observed(status: &str, facts: CertFacts) -> Observed {
    Observed {
        certificate_id: "ab".repeat(32),
        certificate_arn: "arn".into(),
        status: status.into(),
        ca_certificate_id: Some(CA.into()),
        facts: Ok(facts),
        created_ms: Some(NOW * 1000),
    }
}

fn config(extra: &[(&str, &str)]) -> Config {
    let mut vars: Vec<(String, String)> = vec![("JITR_POLICY_NAME".into(), "jitr-device".into())];
    vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Config::from_lookup(|k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())).unwrap()
}

/// The decision without the allow-list (JITR_ADMISSION=any).
fn decide(observed: &Observed, config: &Config, now: i64) -> Plan {
    super::decide(observed, &Listing::NotAsked, config, now)
}

fn short(plan: &Plan) -> String {
    match plan {
        Plan::Activate(a) => format!("activate {}", a.thing_name),
        Plan::Skip { reason, .. } => format!("skip: {reason}"),
        Plan::Reject { reason, revoke } => {
            format!("{}: {reason}", if *revoke { "revoke" } else { "reject" })
        }
        Plan::FinishRotation { reason, retire, .. } => {
            format!("finish rotation: {reason}; retire {}", retire.join(", "))
        }
    }
}

#[test]
fn decision_table() {
    let p256 = KeyPair::generate().unwrap();
    let p384 = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let ok = (NOW - 60, NOW + 60);
    let cn = |name: &'static str| vec![(DnType::CommonName, name)];
    let other_ca = "0".repeat(64);
    let by_id = format!("activate {}", "ab".repeat(32));
    let by_tpl = format!("activate dev:x_{}", "ab".repeat(32));
    #[rustfmt::skip]
    type Row<'a> = (&'a str, Vec<(DnType, &'a str)>, (i64, i64), &'a KeyPair, Vec<(&'a str, &'a str)>, &'a str);
    #[rustfmt::skip]
    let table: Vec<Row> = vec![
        // status, subject, validity, key, config, expected
        ("PENDING_ACTIVATION", cn("robot-1"), ok, &p256, vec![], "activate robot-1"),
        ("PENDING_ACTIVATION", cn("robot-1"), ok, &p384, vec![], "activate robot-1"),
        ("ACTIVE", cn("robot-1"), ok, &p256, vec![], "skip: already active"),
        ("REVOKED", cn("robot-1"), ok, &p256, vec![], "skip: revoked: never reactivated"),
        ("INACTIVE", cn("robot-1"), ok, &p256, vec![], "skip: inactive (retired by a rotation or by an administrator): left alone"),
        ("PENDING_TRANSFER", cn("robot-1"), ok, &p256, vec![], "skip: status PENDING_TRANSFER: not ours to change"),
        ("PENDING_ACTIVATION", cn("robot 1"), ok, &p256, vec![], "revoke: thing name \"robot 1\" does not match"),
        ("PENDING_ACTIVATION", vec![(DnType::OrganizationName, "Acme")], ok, &p256, vec![], "revoke: subject has no CN"),
        ("PENDING_ACTIVATION", cn("robot-1"), (NOW - 60, NOW - 1), &p256, vec![], "revoke: expired at"),
        // A factory clock ahead by less than JITR_CLOCK_SKEW_SECONDS (default 300) is admitted.
        ("PENDING_ACTIVATION", cn("robot-1"), (NOW + 10, NOW + 600), &p256, vec![], "activate robot-1"),
        ("PENDING_ACTIVATION", cn("robot-1"), (NOW + 300, NOW + 600), &p256, vec![], "activate robot-1"),
        ("PENDING_ACTIVATION", cn("robot-1"), (NOW + 301, NOW + 600), &p256, vec![], "revoke: not valid before 2027-01-15T08:05:01Z (301 s from now, more than the 300 s"),
        ("PENDING_ACTIVATION", cn("robot-1"), (NOW + 10, NOW + 600), &p256, vec![("JITR_CLOCK_SKEW_SECONDS", "0")], "revoke: not valid before"),
        ("PENDING_ACTIVATION", cn("robot-1"), (NOW + 900, NOW + 1800), &p256, vec![("JITR_CLOCK_SKEW_SECONDS", "1000")], "activate robot-1"),
        ("PENDING_ACTIVATION", cn("robot-1"), ok, &p256, vec![("JITR_ALLOWED_CA_IDS", &other_ca)], "revoke: CA cafecafe"),
        ("PENDING_ACTIVATION", cn("robot-1"), ok, &p256, vec![("JITR_ALLOWED_CA_IDS", CA)], "activate robot-1"),
        ("PENDING_ACTIVATION", cn("robot-1"), ok, &p256, vec![("JITR_THING_NAME_PATTERN", "sensor-[0-9]+")], "revoke: thing name \"robot-1\" does not match"),
        ("PENDING_ACTIVATION", cn("robot-1"), ok, &p256, vec![("JITR_ON_REJECT", "ignore"), ("JITR_THING_NAME_PATTERN", "x")], "reject: thing name"),
        ("PENDING_ACTIVATION", vec![(DnType::CommonName, "x"), (DnType::CustomDnType(vec![2, 5, 4, 5]), "SN-42")], ok, &p256,
            vec![("JITR_THING_NAME_SOURCE", "serial-number")], "activate SN-42"),
        ("PENDING_ACTIVATION", cn("x"), ok, &p256, vec![("JITR_THING_NAME_SOURCE", "serial-number")], "revoke: subject has no serialNumber"),
        ("PENDING_ACTIVATION", cn("x"), ok, &p256, vec![("JITR_THING_NAME_SOURCE", "certificate-id")], &by_id),
        // Naming templates (JITR_THING_NAME_TEMPLATE) over the subject's fields.
        ("PENDING_ACTIVATION", vec![(DnType::CommonName, "x"), (DnType::CustomDnType(vec![2, 5, 4, 5]), "42")], ok, &p256,
            vec![("JITR_THING_NAME_TEMPLATE", "robot-{serialNumber}")], "activate robot-42"),
        ("PENDING_ACTIVATION", vec![(DnType::CommonName, "robot-1"), (DnType::OrganizationName, "Acme")], ok, &p256,
            vec![("JITR_THING_NAME_TEMPLATE", "{O}-{CN}")], "activate Acme-robot-1"),
        ("PENDING_ACTIVATION", cn("robot-1"), ok, &p256, vec![("JITR_THING_NAME_TEMPLATE", "{O}-{CN}")], "revoke: subject has no O to name the thing"),
        ("PENDING_ACTIVATION", cn("robot 1"), ok, &p256, vec![("JITR_THING_NAME_TEMPLATE", "x-{CN}")], "revoke: thing name \"x-robot 1\" does not match"),
        ("PENDING_ACTIVATION", cn("x"), ok, &p256, vec![("JITR_THING_NAME_TEMPLATE", "{certificateId}")], &by_id),
        ("PENDING_ACTIVATION", cn("x"), ok, &p256, vec![("JITR_THING_NAME_TEMPLATE", "dev:{CN}_{certificateId}")], &by_tpl),
        // The template wins over JITR_THING_NAME_SOURCE.
        ("PENDING_ACTIVATION", cn("x"), ok, &p256, vec![("JITR_THING_NAME_SOURCE", "certificate-id"), ("JITR_THING_NAME_TEMPLATE", "robot-{CN}")], "activate robot-x"),
    ];
    for (status, subject, window, key, vars, expected) in table {
        let plan = decide(
            &observed(status, facts(&subject, window, key)),
            &config(&vars),
            NOW,
        );
        assert!(
            short(&plan).starts_with(expected),
            "{status} {subject:?} {vars:?}: {plan:?}"
        );
    }
}

/// JITR_ADMISSION: the allow-list's answer (a fact) against the mode.
#[test]
fn allow_list_table() {
    let f = facts(
        &[
            (DnType::CommonName, "robot-1"),
            (DnType::OrganizationName, "Acme"),
        ],
        (NOW - 1, NOW + 1),
        &KeyPair::generate().unwrap(),
    );
    let entry = |name: Option<&str>, attributes: &[(&str, &str)]| {
        Listing::Listed(crate::admission::Entry {
            thing_name: name.map(str::to_string),
            attributes: attributes
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        })
    };
    let table = ("JITR_ALLOW_LIST_TABLE", "t");
    let allow = [("JITR_ADMISSION", "allow-list"), table];
    let allow_ignore = [
        ("JITR_ADMISSION", "allow-list"),
        table,
        ("JITR_ON_REJECT", "ignore"),
    ];
    let allow_pattern = [
        ("JITR_ADMISSION", "allow-list"),
        table,
        ("JITR_THING_NAME_PATTERN", "robot-[0-9]+"),
    ];
    #[rustfmt::skip]
    type Row<'a> = (&'a str, &'a [(&'a str, &'a str)], Listing, &'a str);
    let table: Vec<Row> = vec![
        // status, config, what the list said, expected
        (
            "PENDING_ACTIVATION",
            &[],
            Listing::NotAsked,
            "activate robot-1",
        ),
        // Under `any` the list is not consulted, whatever it would say.
        (
            "PENDING_ACTIVATION",
            &[],
            Listing::NotListed,
            "activate robot-1",
        ),
        (
            "PENDING_ACTIVATION",
            &allow,
            Listing::NotListed,
            "revoke: not on the allow-list",
        ),
        (
            "PENDING_ACTIVATION",
            &allow_ignore,
            Listing::NotListed,
            "reject: not on the allow-list",
        ),
        // Not looked up under allow-list: never admitted.
        (
            "PENDING_ACTIVATION",
            &allow,
            Listing::NotAsked,
            "revoke: not on the allow-list",
        ),
        (
            "PENDING_ACTIVATION",
            &allow,
            entry(None, &[]),
            "activate robot-1",
        ),
        // The manifest's name wins over the subject's.
        (
            "PENDING_ACTIVATION",
            &allow,
            entry(Some("robot-7"), &[]),
            "activate robot-7",
        ),
        // ... and is held to the same rules.
        (
            "PENDING_ACTIVATION",
            &allow_pattern,
            entry(Some("sensor-7"), &[]),
            "revoke: thing name \"sensor-7\" does not match",
        ),
        (
            "PENDING_ACTIVATION",
            &allow,
            entry(Some("robot 7"), &[]),
            "revoke: thing name \"robot 7\" does not match",
        ),
        (
            "PENDING_ACTIVATION",
            &allow,
            entry(None, &[("batch", "A 1")]),
            "activate robot-1",
        ),
        (
            "PENDING_ACTIVATION",
            &allow,
            entry(None, &[("bad name", "x")]),
            "revoke: allow-list entry: attribute name \"bad name\"",
        ),
        (
            "PENDING_ACTIVATION",
            &allow,
            entry(None, &[("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")]),
            "revoke: allow-list entry: 4 attributes, more than the 3",
        ),
        // Listed or not, other checks still apply; other statuses are not admissions.
        ("ACTIVE", &allow, Listing::NotAsked, "skip: already active"),
        ("REVOKED", &allow, Listing::NotAsked, "skip: revoked"),
    ];
    for (status, vars, listing, expected) in table {
        let o = observed(status, f.clone());
        let config = config(vars);
        assert_eq!(
            needs_listing(&o, &config),
            status == "PENDING_ACTIVATION" && vars.contains(&("JITR_ADMISSION", "allow-list")),
            "{status} {vars:?}"
        );
        let plan = super::decide(&o, &listing, &config, NOW);
        assert!(
            short(&plan).starts_with(expected),
            "{status} {vars:?} {listing:?}: {plan:?}"
        );
    }
    // The entry's attributes win over the subject's, within the limit.
    let listing = entry(None, &[("organization", "Other"), ("batch", "A 1")]);
    let Plan::Activate(a) = super::decide(
        &observed("PENDING_ACTIVATION", f),
        &listing,
        &config(&allow),
        NOW,
    ) else {
        panic!()
    };
    assert_eq!(a.attributes["organization"], "Other");
    assert_eq!(a.attributes["batch"], "A_1");
    assert_eq!(a.attributes.len(), 2);
}

/// Every outcome the decision alone reaches, named by the plan (not
/// worked out by the caller from the status).
#[test]
fn the_plan_names_its_outcome() {
    let f = facts(
        &[(DnType::CommonName, "robot-1")],
        (NOW - 1, NOW + 1),
        &KeyPair::generate().unwrap(),
    );
    for (status, expected) in [
        ("ACTIVE", Kind::AlreadyActive),
        ("INACTIVE", Kind::Inactive),
        ("REVOKED", Kind::Skipped),
        ("PENDING_TRANSFER", Kind::Skipped),
    ] {
        let plan = decide(&observed(status, f.clone()), &config(&[]), NOW);
        let Plan::Skip { outcome, .. } = plan else {
            panic!("{status}: {plan:?}")
        };
        assert_eq!(outcome, expected, "{status}");
    }
    // AWS holds something we cannot parse: refused like any bad certificate.
    let mut garbage = observed("PENDING_ACTIVATION", f);
    garbage.facts = Err("not a DER X.509 certificate: junk".into());
    let plan = decide(&garbage, &config(&[]), NOW);
    assert_eq!(
        short(&plan),
        "revoke: certificate cannot be parsed: not a DER X.509 certificate: junk"
    );
    let plan = decide(&garbage, &config(&[("JITR_ON_REJECT", "ignore")]), NOW);
    assert!(short(&plan).starts_with("reject: certificate cannot be parsed"));
}

/// Metric names are a wire format: these strings never change.
#[test]
fn outcome_names_are_pinned() {
    let names: Vec<&str> = [
        Kind::Activated,
        Kind::AlreadyActive,
        Kind::Skipped,
        Kind::Inactive,
        Kind::Superseded,
        Kind::Rejected,
        Kind::Failed,
        Kind::Unfinished,
        Kind::Duplicate,
        Kind::ClaimedElsewhere,
        Kind::Deferred,
    ]
    .into_iter()
    .map(Kind::name)
    .collect();
    assert_eq!(
        names,
        [
            "Activated",
            "AlreadyActive",
            "Skipped",
            "Inactive",
            "Superseded",
            "Rejected",
            "Failed",
            "Unfinished",
            "Duplicate",
            "ClaimedElsewhere",
            "Deferred"
        ]
    );
    // The JSON response spells them the same way.
    assert_eq!(
        serde_json::to_value(Kind::AlreadyActive).unwrap(),
        "AlreadyActive"
    );
}

#[test]
fn weak_keys_are_rejected() {
    // rcgen cannot make RSA-1024; the rule is shared with `jitr check`.
    let mut f = facts(
        &[(DnType::CommonName, "robot-1")],
        (NOW - 1, NOW + 1),
        &KeyPair::generate().unwrap(),
    );
    f.key = crate::facts::KeyKind::Rsa { bits: 1024 };
    let plan = decide(&observed("PENDING_ACTIVATION", f), &config(&[]), NOW);
    assert!(short(&plan).contains("RSA key of 1024 bits"), "{plan:?}");
}
