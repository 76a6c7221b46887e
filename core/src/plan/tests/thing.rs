//! The thing's attributes and groups.

use rcgen::{DnType, KeyPair};

use super::*;

/// JITR_THING_ATTRIBUTES per certificate, with and without an
/// allow-list entry: the attributes the thing gets, or the rejection.
/// A value AWS IoT would refuse rejects the certificate (REVOKED by
/// default), as a name outside the pattern does: the certificate never
/// changes, so failing (and retrying) could never succeed.
#[test]
fn thing_attributes_from_templates_and_entries() {
    let key = KeyPair::generate().unwrap();
    let acme = facts(
        &[
            (DnType::CommonName, "robot-1"),
            (DnType::OrganizationName, "Acme"),
            (DnType::CustomDnType(vec![2, 5, 4, 5]), "SN-1"),
        ],
        (NOW - 1, NOW + 1),
        &key,
    );
    let spaced = facts(
        &[
            (DnType::CommonName, "robot-2"),
            (DnType::OrganizationName, "Acme Inc"),
        ],
        (NOW - 1, NOW + 1),
        &key,
    );
    let bare = facts(&[(DnType::CommonName, "robot-3")], (NOW - 1, NOW + 1), &key);
    let id = "ab".repeat(32);
    let id = id.as_str();
    let entry = |attributes: &[(&str, &str)]| {
        Listing::Listed(crate::admission::Entry {
            thing_name: None,
            attributes: attributes
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        })
    };
    let templated = [("JITR_THING_ATTRIBUTES", "model={O},cert={certificateId}")];
    let listed = [
        ("JITR_THING_ATTRIBUTES", "model={O},cert={certificateId}"),
        ("JITR_ADMISSION", "allow-list"),
        ("JITR_ALLOW_LIST_TABLE", "t"),
    ];
    let listed_ignore = [
        ("JITR_THING_ATTRIBUTES", "model={O},cert={certificateId}"),
        ("JITR_ADMISSION", "allow-list"),
        ("JITR_ALLOW_LIST_TABLE", "t"),
        ("JITR_ON_REJECT", "ignore"),
    ];
    let listed_typed = [
        ("JITR_ADMISSION", "allow-list"),
        ("JITR_ALLOW_LIST_TABLE", "t"),
        ("JITR_THING_TYPE", "robot"),
    ];
    let six: Vec<(String, String)> = (1..=6).map(|i| (format!("a{i}"), i.to_string())).collect();
    let six: Vec<(&str, &str)> = six.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    #[rustfmt::skip]
    type Row<'a> = (&'a [(&'a str, &'a str)], &'a CertFacts, Listing, Result<Vec<(&'a str, &'a str)>, &'a str>);
    #[rustfmt::skip]
    let table: Vec<Row> = vec![
        // The templates replace the subject's defaults (no serialNumber, organization).
        (&templated, &acme, Listing::NotAsked, Ok(vec![("cert", id), ("model", "Acme")])),
        // A value AWS refuses, a missing field: rejected like a bad name.
        (&templated, &spaced, Listing::NotAsked,
            Err("revoke: attribute model: \"Acme Inc\" has ' ', which AWS IoT refuses")),
        (&templated, &bare, Listing::NotAsked, Err("revoke: subject has no O for attribute model")),
        (&listed_ignore, &spaced, entry(&[]), Err("reject: attribute model: \"Acme Inc\"")),
        // The entry wins key by key; a key it gives is not rendered.
        (&listed, &acme, entry(&[("model", "M-7")]), Ok(vec![("cert", id), ("model", "M-7")])),
        (&listed, &spaced, entry(&[("model", "M-7")]), Ok(vec![("cert", id), ("model", "M-7")])),
        (&listed, &bare, entry(&[("model", "M-7"), ("batch", "B1")]),
            Ok(vec![("batch", "B1"), ("cert", id), ("model", "M-7")])),
        (&listed, &acme, entry(&[("a", "1"), ("b", "2")]),
            Err("revoke: allow-list entry with JITR_THING_ATTRIBUTES: 4 attributes, more than the 3 a thing without a thing type may carry")),
        // With a thing type, AWS's 50.
        (&listed_typed, &acme, entry(&six),
            Ok([six.clone(), vec![("organization", "Acme"), ("serialNumber", "SN-1")]].concat())),
    ];
    for (vars, f, listing, expected) in table {
        let plan = crate::plan::decide(
            &observed("PENDING_ACTIVATION", f.clone()),
            &listing,
            &config(vars),
            NOW,
        );
        match (&plan, expected) {
            (Plan::Activate(a), Ok(want)) => {
                let want: BTreeMap<String, String> = want
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                assert_eq!(a.attributes, want, "{vars:?} {listing:?}");
            }
            (_, Err(reason)) => assert!(
                short(&plan).starts_with(reason),
                "{vars:?} {listing:?}: {plan:?}"
            ),
            (plan, _) => panic!("{vars:?} {listing:?}: {plan:?}"),
        }
    }
}

#[test]
fn attributes_come_from_the_subject_within_aws_limits() {
    let key = KeyPair::generate().unwrap();
    let subject = vec![
        (DnType::CommonName, "robot-1"),
        (DnType::OrganizationName, "Acme, Inc."),
        (DnType::OrganizationalUnitName, "Line 4"),
        (DnType::CountryName, "DE"),
        (DnType::CustomDnType(vec![2, 5, 4, 5]), "SN-1"),
    ];
    let f = facts(&subject, (NOW - 1, NOW + 1), &key);
    let Plan::Activate(a) = decide(
        &observed("PENDING_ACTIVATION", f.clone()),
        &config(&[]),
        NOW,
    ) else {
        panic!()
    };
    // Without a thing type: three attributes, serialNumber first; values made acceptable.
    assert_eq!(a.attributes.len(), 3);
    assert_eq!(a.attributes["serialNumber"], "SN-1");
    assert_eq!(a.attributes["organization"], "Acme,_Inc.");
    assert_eq!(a.attributes["organizationalUnit"], "Line_4");
    // Without a device group the certificate gets the policy itself.
    assert_eq!(a.policy_name.as_deref(), Some("jitr-device"));
    assert!(a.thing_groups.is_empty());
    let Plan::Activate(a) = decide(
        &observed("PENDING_ACTIVATION", f),
        &config(&[("JITR_THING_TYPE", "robot"), ("JITR_THING_GROUPS", "g1,g2")]),
        NOW,
    ) else {
        panic!()
    };
    assert_eq!(a.attributes.len(), 4);
    assert_eq!(a.attributes["country"], "DE");
    assert_eq!(a.thing_type.as_deref(), Some("robot"));
    assert_eq!(a.thing_groups, ["g1", "g2"]);
}

/// With a device group (the templates), the thing joins it, first and
/// once, and no policy is attached to the certificate: the function's
/// role holds no iot:AttachPolicy.
#[test]
fn a_device_group_replaces_the_policy_attachment() {
    let f = facts(
        &[(DnType::CommonName, "robot-1")],
        (NOW - 1, NOW + 1),
        &KeyPair::generate().unwrap(),
    );
    for (groups, expected) in [
        ("", vec!["jitr-devices"]),
        ("fleet,line-4", vec!["jitr-devices", "fleet", "line-4"]),
        ("fleet,jitr-devices", vec!["jitr-devices", "fleet"]),
    ] {
        let config = config(&[
            ("JITR_DEVICE_GROUP", "jitr-devices"),
            ("JITR_THING_GROUPS", groups),
        ]);
        let Plan::Activate(a) = decide(&observed("PENDING_ACTIVATION", f.clone()), &config, NOW)
        else {
            panic!()
        };
        assert_eq!(a.thing_groups, expected, "{groups}");
        assert_eq!(a.policy_name, None, "{groups}");
        let json = serde_json::to_value(Plan::Activate(a)).unwrap();
        assert!(json.get("policy_name").is_none(), "{json}");
    }
}
