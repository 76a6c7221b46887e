//! The thing's other principals: whose the thing is, and rotation.

use rcgen::{DnType, KeyPair};

use super::*;
use crate::config::OnRotation;

#[test]
fn a_thing_takes_only_certificates_of_its_ca() {
    let key = KeyPair::generate().unwrap();
    let f = facts(&[(DnType::CommonName, "robot-1")], (NOW - 1, NOW + 1), &key);
    let ours = observed("PENDING_ACTIVATION", f);
    let other_ca = "0".repeat(64);
    let (mine, theirs, own) = (
        "c1".repeat(32),
        "c2".repeat(32),
        ours.certificate_id.clone(),
    );
    let cert = |id: &str, ca: Option<&str>| Principal {
        arn: format!("arn:aws:iot:eu-west-1:123456789012:cert/{id}"),
        certificate_id: Some(id.to_string()),
        ca_certificate_id: ca.map(str::to_string),
        status: Some("ACTIVE".into()),
        created_ms: Some(NOW * 1000 - 1),
    };
    let cognito = Principal {
        arn: "eu-west-1:1234-abcd".into(),
        certificate_id: None,
        ca_certificate_id: None,
        status: None,
        created_ms: None,
    };
    let upper = CA.to_uppercase();
    #[rustfmt::skip]
    // principals, config, expected
    type Row<'a> = (Vec<Principal>, Vec<(&'a str, &'a str)>, String);
    #[rustfmt::skip]
    let table: Vec<Row> = vec![
        // principals already on the thing, config, expected
        (vec![], vec![], "activate robot-1".into()),
        (vec![cert(&mine, Some(CA))], vec![], "activate robot-1".into()),
        (vec![cert(&mine, Some(&upper))], vec![], "activate robot-1".into()),
        // This very certificate, attached by an interrupted earlier attempt.
        (vec![cert(&own, Some(CA))], vec![], "activate robot-1".into()),
        (vec![cert(&theirs, Some(&other_ca))], vec![], format!("revoke: thing robot-1 belongs to CA {other_ca}")),
        (vec![cert(&mine, Some(CA)), cert(&theirs, Some(&other_ca))], vec![], format!("revoke: thing robot-1 belongs to CA {other_ca}")),
        (vec![cert(&theirs, Some(&other_ca))], vec![("JITR_ON_REJECT", "ignore")], format!("reject: thing robot-1 belongs to CA {other_ca}")),
        (vec![cert(&theirs, None)], vec![], format!("revoke: thing robot-1 belongs to certificate {theirs}, registered without a CA")),
        (vec![cognito], vec![], "revoke: thing robot-1 belongs to principal eu-west-1:1234-abcd".into()),
    ];
    for (principals, vars, expected) in table {
        let config = config(&vars);
        let Plan::Activate(a) = decide(&ours, &config, NOW) else {
            panic!()
        };
        let plan = may_take(&ours, a, &principals, &config);
        assert_eq!(short(&plan), expected, "{principals:?} {vars:?}");
    }
    // A certificate without a CA never joins a thing that has certificates.
    let mut no_ca = ours.clone();
    no_ca.ca_certificate_id = None;
    let Plan::Activate(a) = decide(&no_ca, &config(&[]), NOW) else {
        panic!()
    };
    let plan = may_take(&no_ca, a, &[cert(&mine, Some(CA))], &config(&[]));
    assert_eq!(
        short(&plan),
        format!("revoke: thing robot-1 belongs to CA {CA}")
    );
}

/// A thing's certificate of CA `ca`, in `status`, registered at `created` ms.
fn principal(id: &str, ca: &str, status: &str, created: Option<i64>) -> Principal {
    Principal {
        arn: format!("arn:aws:iot:eu-west-1:123456789012:cert/{id}"),
        certificate_id: Some(id.to_string()),
        ca_certificate_id: Some(ca.to_string()),
        status: Some(status.into()),
        created_ms: created,
    }
}

/// A certificate of robot-1 registered at `created` ms, in `status`.
fn robot(status: &str, created: Option<i64>) -> Observed {
    let f = facts(
        &[(DnType::CommonName, "robot-1")],
        (NOW - 1, NOW + 1),
        &KeyPair::generate().unwrap(),
    );
    let mut o = observed(status, f);
    o.created_ms = created;
    o
}

/// The rotation decision for a new (pending) certificate registered at
/// T, against the thing's other certificates.
#[test]
fn rotation_table() {
    const T: i64 = NOW * 1000;
    let (old, older, newer) = ("01".repeat(32), "02".repeat(32), "03".repeat(32));
    let own = "ab".repeat(32);
    let other_ca = "0".repeat(64);
    let retire = |ids: &[&String]| Rotation::Retire(ids.iter().map(|s| s.to_string()).collect());
    #[rustfmt::skip]
    let table: Vec<(OnRotation, Vec<Principal>, Rotation)> = vec![
        // on_rotation, the thing's certificates, expected
        (OnRotation::Keep, vec![principal(&old, CA, "ACTIVE", Some(T - 5))], retire(&[])),
        (OnRotation::RetirePrevious, vec![], retire(&[])),
        (OnRotation::RetirePrevious, vec![principal(&old, CA, "ACTIVE", Some(T - 5))], retire(&[&old])),
        // Upper-case CA ids are the same CA.
        (OnRotation::RetirePrevious, vec![principal(&old, &CA.to_uppercase(), "ACTIVE", Some(T - 5))], retire(&[&old])),
        (OnRotation::RetirePrevious, vec![principal(&old, CA, "ACTIVE", Some(T - 5)), principal(&older, CA, "ACTIVE", Some(T - 9))], retire(&[&old, &older])),
        // Only ACTIVE ones are retired: INACTIVE, REVOKED and pending ones are left alone.
        (OnRotation::RetirePrevious, vec![principal(&old, CA, "INACTIVE", Some(T - 5)), principal(&older, CA, "REVOKED", Some(T - 9))], retire(&[])),
        (OnRotation::RetirePrevious, vec![principal(&old, CA, "PENDING_ACTIVATION", Some(T - 5))], retire(&[])),
        // This very certificate (attached by an interrupted attempt) is never retired.
        (OnRotation::RetirePrevious, vec![principal(&own, CA, "ACTIVE", Some(T))], retire(&[])),
        // Another CA's certificate is not ours to retire (may_take refuses such a thing anyway).
        (OnRotation::RetirePrevious, vec![principal(&old, &other_ca, "ACTIVE", Some(T - 5))], retire(&[])),
        // Registered later and ACTIVE: this one is the predecessor (a replayed old event).
        (OnRotation::RetirePrevious, vec![principal(&newer, CA, "ACTIVE", Some(T + 5))], Rotation::SupersededBy(newer.clone())),
        (OnRotation::RetirePrevious, vec![principal(&old, CA, "ACTIVE", Some(T - 5)), principal(&newer, CA, "ACTIVE", Some(T + 5))], Rotation::SupersededBy(newer.clone())),
        // Registered later but not ACTIVE: no successor yet.
        (OnRotation::RetirePrevious, vec![principal(&newer, CA, "PENDING_ACTIVATION", Some(T + 5))], retire(&[])),
        // Order unknown or equal: neither retires the other.
        (OnRotation::RetirePrevious, vec![principal(&old, CA, "ACTIVE", Some(T))], retire(&[])),
        (OnRotation::RetirePrevious, vec![principal(&old, CA, "ACTIVE", None)], retire(&[])),
    ];
    let ours = robot("PENDING_ACTIVATION", Some(T));
    for (on_rotation, principals, expected) in table {
        assert_eq!(
            rotation(&ours, &principals, on_rotation),
            expected,
            "{on_rotation:?} {principals:?}"
        );
    }
    let mut unknown = ours.clone();
    unknown.created_ms = None;
    let principals = [principal(&old, CA, "ACTIVE", Some(T - 5))];
    assert_eq!(
        rotation(&unknown, &principals, OnRotation::RetirePrevious),
        retire(&[])
    );
}

/// The whole decision for each event a rotation produces, replayed:
/// old certificate A (registered at T) and its successor B (T + 5 s).
#[test]
fn a_rotation_replayed_changes_nothing_twice() {
    const T: i64 = NOW * 1000;
    let (a, b) = ("0a".repeat(32), "0b".repeat(32));
    let retire = config(&[("JITR_ON_ROTATION", "retire-previous")]);
    let keep = config(&[]);
    let event = |id: &str, status: &str, created: i64| {
        let mut o = robot(status, Some(created));
        o.certificate_id = id.to_string();
        o
    };
    // B's first event, A ACTIVE on the thing: B activates and retires A.
    let b_pending = event(&b, "PENDING_ACTIVATION", T + 5000);
    let before = [principal(&a, CA, "ACTIVE", Some(T))];
    let Plan::Activate(activation) = decide(&b_pending, &retire, NOW) else {
        panic!()
    };
    let Plan::Activate(planned) = may_take(&b_pending, activation.clone(), &before, &retire) else {
        panic!()
    };
    assert_eq!(planned.retire, std::slice::from_ref(&a));
    // Under keep, B joins A.
    let Plan::Activate(kept) = may_take(&b_pending, activation, &before, &keep) else {
        panic!()
    };
    assert!(kept.retire.is_empty());

    // After: A INACTIVE, B ACTIVE, both attached.
    let after = [
        principal(&a, CA, "INACTIVE", Some(T)),
        principal(&b, CA, "ACTIVE", Some(T + 5000)),
    ];
    // B replayed: already active, nothing left to retire.
    let b_active = event(&b, "ACTIVE", T + 5000);
    let plan = decide(&b_active, &retire, NOW);
    assert!(
        matches!(
            plan,
            Plan::Skip {
                outcome: Kind::AlreadyActive,
                ..
            }
        ),
        "{plan:?}"
    );
    assert_eq!(
        rotation_thing(&b_active, &retire).as_deref(),
        Some("robot-1")
    );
    assert!(still_to_retire(&b_active, &after, &retire).is_empty());
    // A replayed: INACTIVE is a no-op with its own name, never reactivated.
    let a_inactive = event(&a, "INACTIVE", T);
    let plan = decide(&a_inactive, &retire, NOW);
    assert!(
        matches!(
            plan,
            Plan::Skip {
                outcome: Kind::Inactive,
                ..
            }
        ),
        "{plan:?}"
    );
    assert_eq!(rotation_thing(&a_inactive, &retire), None);

    // Interrupted after B's activation (A still ACTIVE): B's retried
    // event finishes the rotation; A's event, were A still ACTIVE,
    // never retires B.
    let interrupted = [
        principal(&a, CA, "ACTIVE", Some(T)),
        principal(&b, CA, "ACTIVE", Some(T + 5000)),
    ];
    assert_eq!(
        still_to_retire(&b_active, &interrupted, &retire),
        std::slice::from_ref(&a)
    );
    let a_active = event(&a, "ACTIVE", T);
    assert!(still_to_retire(&a_active, &interrupted, &retire).is_empty());
    // Under keep, an ACTIVE certificate's event looks at nothing.
    assert_eq!(rotation_thing(&b_active, &keep), None);
    // An ACTIVE certificate not attached to the thing its name gives retires nothing.
    let stranger = event(&"0c".repeat(32), "ACTIVE", T + 9000);
    assert!(still_to_retire(&stranger, &interrupted, &retire).is_empty());

    // A's first event arriving late (A still pending, B ACTIVE): A is
    // superseded, left pending, and B stays.
    let a_pending = event(&a, "PENDING_ACTIVATION", T);
    let Plan::Activate(activation) = decide(&a_pending, &retire, NOW) else {
        panic!()
    };
    let plan = may_take(
        &a_pending,
        activation,
        &[principal(&b, CA, "ACTIVE", Some(T + 5000))],
        &retire,
    );
    let Plan::Skip {
        outcome, reason, ..
    } = plan
    else {
        panic!("{plan:?}")
    };
    assert_eq!(outcome, Kind::Superseded);
    assert!(reason.contains(&b), "{reason}");
}

/// A rotation cut short (both ACTIVE on the thing): the successor's
/// event plans the retirement; with nothing left to retire it is a skip.
#[test]
fn finishing_a_rotation_is_a_plan_of_its_own() {
    const T: i64 = NOW * 1000;
    let (a, b) = ("0a".repeat(32), "0b".repeat(32));
    let retire = config(&[("JITR_ON_ROTATION", "retire-previous")]);
    let mut b_active = robot("ACTIVE", Some(T + 5000));
    b_active.certificate_id = b.clone();
    let skip = decide(&b_active, &retire, NOW);
    let interrupted = [
        principal(&a, CA, "ACTIVE", Some(T)),
        principal(&b, CA, "ACTIVE", Some(T + 5000)),
    ];
    let plan = finish_rotation(
        skip.clone(),
        &b_active,
        "robot-1".into(),
        &interrupted,
        &retire,
    );
    assert_eq!(
        short(&plan),
        format!("finish rotation: already active; retire {a}")
    );
    let done = [
        principal(&a, CA, "INACTIVE", Some(T)),
        principal(&b, CA, "ACTIVE", Some(T + 5000)),
    ];
    let plan = finish_rotation(skip.clone(), &b_active, "robot-1".into(), &done, &retire);
    assert_eq!(plan, skip);
}

#[test]
fn certificate_ids_are_read_from_arns() {
    let id = "ab".repeat(32);
    for (arn, expected) in [
        (
            format!("arn:aws:iot:eu-west-1:123456789012:cert/{id}"),
            Some(id.as_str()),
        ),
        (
            "arn:aws:iot:eu-west-1:123456789012:cert/xyz".to_string(),
            None,
        ),
        ("eu-west-1:1234-abcd".to_string(), None),
    ] {
        assert_eq!(certificate_id_of(&arn), expected, "{arn}");
    }
}
