//! The whole configuration: its defaults, every setting read, and a bad
//! setting named. Each group's own tests are beside its reading.

use std::collections::HashMap;

use super::*;

/// The configuration `vars` make (the tests' environment).
pub(super) fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::from_lookup(|k| map.get(k).cloned())
}

#[test]
fn defaults_need_only_the_policy() {
    let c = config(&[("JITR_POLICY_NAME", "jitr-device")]).unwrap();
    assert_eq!(c.thing_name.to_string(), "{CN}");
    assert_eq!(c.admission, Admission::Any);
    assert!(c.allow_list_table.is_none() && c.thing_attributes.is_none());
    assert_eq!(c.on_reject, OnReject::Revoke);
    assert_eq!(c.on_rotation, OnRotation::Keep);
    assert!(!c.exclusive_thing);
    assert!(c.allowed_ca_ids.is_empty() && c.thing_groups.is_empty() && c.thing_type.is_none());
    assert!(c.thing_name_pattern.is_match("robot-00001"));
    assert!(!c.thing_name_pattern.is_match("robot 1"));
    assert_eq!(c.clock_skew_seconds, 300);
    assert_eq!(c.max_concurrency, 1);
    assert_eq!(c.instance_rates(), crate::quota::ApiRates::default());
}

#[test]
fn every_setting_is_read() {
    let ca = "a".repeat(64);
    let c = config(&[
        ("JITR_POLICY_NAME", "p"),
        ("JITR_THING_NAME_SOURCE", "serial-number"),
        ("JITR_THING_NAME_PATTERN", "robot-[0-9]+"),
        ("JITR_ALLOWED_CA_IDS", &format!(" {} ,", ca.to_uppercase())),
        ("JITR_THING_TYPE", "robot"),
        ("JITR_THING_GROUPS", "fleet, line-4"),
        ("JITR_ON_REJECT", "ignore"),
        ("JITR_ON_ROTATION", "retire-previous"),
        ("JITR_EXCLUSIVE_THING", "true"),
        ("JITR_CLOCK_SKEW_SECONDS", "0"),
        ("JITR_API_RATES", "DescribeCertificate=40"),
        ("JITR_MAX_CONCURRENCY", "20"),
        ("JITR_ADMISSION", "allow-list"),
        ("JITR_ALLOW_LIST_TABLE", " jitr-AllowListTable-1 "),
        ("JITR_THING_ATTRIBUTES", "model={O},cert={certificateId}"),
    ])
    .unwrap();
    assert_eq!(c.thing_name.to_string(), "{serialNumber}");
    assert_eq!(c.admission, Admission::AllowList);
    assert_eq!(c.allow_list_table.as_deref(), Some("jitr-AllowListTable-1"));
    assert_eq!(
        c.thing_attributes
            .as_ref()
            .map(|t| t.to_string())
            .as_deref(),
        Some("model={O},cert={certificateId}")
    );
    assert!(
        c.thing_name_pattern.is_match("robot-12") && !c.thing_name_pattern.is_match("xrobot-12"),
        "anchored"
    );
    assert_eq!(c.allowed_ca_ids, [ca]);
    assert_eq!(c.thing_groups, ["fleet", "line-4"]);
    assert_eq!(c.on_reject, OnReject::Ignore);
    assert_eq!(c.on_rotation, OnRotation::RetirePrevious);
    assert!(c.exclusive_thing);
    assert_eq!(c.clock_skew_seconds, 0);
    assert_eq!(c.max_concurrency, 20);
    use crate::quota::Op;
    assert_eq!(c.instance_rates().get(Op::DescribeCertificate), 2.0);
    assert_eq!(c.instance_rates().get(Op::UpdateCertificate), 0.5);
}

#[test]
fn bad_settings_name_the_variable() {
    for (vars, variable) in [
        (vec![], "JITR_POLICY_NAME"),
        (vec![("JITR_POLICY_NAME", "a b")], "JITR_POLICY_NAME"),
        (
            vec![("JITR_POLICY_NAME", "p"), ("JITR_THING_NAME_SOURCE", "cn")],
            "JITR_THING_NAME_SOURCE",
        ),
        (
            vec![
                ("JITR_POLICY_NAME", "p"),
                ("JITR_THING_NAME_TEMPLATE", "robot-{cn}"),
            ],
            "JITR_THING_NAME_TEMPLATE",
        ),
        (
            vec![
                ("JITR_POLICY_NAME", "p"),
                ("JITR_THING_NAME_TEMPLATE", "robot 1"),
            ],
            "JITR_THING_NAME_TEMPLATE",
        ),
        (
            vec![("JITR_POLICY_NAME", "p"), ("JITR_ADMISSION", "allowlist")],
            "JITR_ADMISSION",
        ),
        (
            vec![("JITR_POLICY_NAME", "p"), ("JITR_THING_NAME_PATTERN", "([")],
            "JITR_THING_NAME_PATTERN",
        ),
        (
            vec![("JITR_POLICY_NAME", "p"), ("JITR_ALLOWED_CA_IDS", "abc")],
            "JITR_ALLOWED_CA_IDS",
        ),
        (
            vec![("JITR_POLICY_NAME", "p"), ("JITR_ON_REJECT", "delete")],
            "JITR_ON_REJECT",
        ),
        (
            vec![("JITR_POLICY_NAME", "p"), ("JITR_ON_ROTATION", "retire")],
            "JITR_ON_ROTATION",
        ),
        (
            vec![("JITR_POLICY_NAME", "p"), ("JITR_EXCLUSIVE_THING", "yes")],
            "JITR_EXCLUSIVE_THING",
        ),
        (
            vec![("JITR_POLICY_NAME", "p"), ("JITR_CLOCK_SKEW_SECONDS", "5m")],
            "JITR_CLOCK_SKEW_SECONDS",
        ),
        (
            vec![("JITR_POLICY_NAME", "p"), ("JITR_CLOCK_SKEW_SECONDS", "-1")],
            "JITR_CLOCK_SKEW_SECONDS",
        ),
        (
            vec![
                ("JITR_POLICY_NAME", "p"),
                ("JITR_API_RATES", "CreateThing=x"),
            ],
            "JITR_API_RATES",
        ),
        (
            vec![("JITR_POLICY_NAME", "p"), ("JITR_MAX_CONCURRENCY", "0")],
            "JITR_MAX_CONCURRENCY",
        ),
        (
            vec![
                ("JITR_POLICY_NAME", "p"),
                (
                    "JITR_FAST_LANE_QUEUE_ARN",
                    "https://sqs.eu-west-1.amazonaws.com/1/q",
                ),
            ],
            "JITR_FAST_LANE_QUEUE_ARN",
        ),
        (
            vec![("JITR_POLICY_NAME", "p"), ("JITR_EVENT_BUS", "my bus")],
            "JITR_EVENT_BUS",
        ),
    ] {
        let e = config(&vars).unwrap_err();
        assert_eq!(e.variable, variable, "{vars:?}");
        assert!(e
            .to_string()
            .starts_with(&format!("configuration {variable}: ")));
    }
}
