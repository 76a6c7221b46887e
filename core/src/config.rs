//! The function's configuration, from environment variables. A missing or
//! invalid setting fails at start-up with a message naming it.

use regex::Regex;

use crate::naming::NameTemplate;
use crate::pacing::ApiRates;
use crate::rules::THING_NAME_PATTERN;

/// Which certificates may be admitted at all (`JITR_ADMISSION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Any certificate that passes the other checks.
    Any,
    /// Only certificates on the stack's allow-list (`JITR_ALLOW_LIST_TABLE`).
    AllowList,
}

/// What to do with a certificate that fails admission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnReject {
    /// Set it REVOKED (it can never connect), reason logged.
    Revoke,
    /// Leave it PENDING_ACTIVATION, reason logged.
    Ignore,
}

/// What a new certificate does to the thing's other ACTIVE certificates
/// (of the same CA: a thing never takes another CA's certificate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnRotation {
    /// Attach the new one beside them; they stay ACTIVE.
    Keep,
    /// Once the new one is ACTIVE, set the older ones INACTIVE (the device
    /// proved it holds the new key by connecting with it).
    RetirePrevious,
}

/// The provisioning configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The device policy (created by the infrastructure). Attached to each
    /// certificate only without `device_group`; with it, the stack attached
    /// it to that group once and the function never attaches a policy.
    pub policy_name: String,
    /// The thing group carrying the device policy (`JITR_DEVICE_GROUP`):
    /// every provisioned thing joins it, so the function's role needs no
    /// `iot:AttachPolicy`, which AWS authorises on the target only (a role
    /// allowed it on certificates may attach any policy of the account).
    pub device_group: Option<String>,
    /// How the thing is named (`JITR_THING_NAME_TEMPLATE`, or the
    /// older `JITR_THING_NAME_SOURCE` words, which are its aliases).
    pub thing_name: NameTemplate,
    /// Whether only certificates on the allow-list are admitted.
    pub admission: Admission,
    /// Anchored: the whole name must match.
    pub thing_name_pattern: Regex,
    /// Certificate ids of the CAs whose devices are admitted; empty = any.
    pub allowed_ca_ids: Vec<String>,
    pub thing_type: Option<String>,
    pub thing_groups: Vec<String>,
    pub on_reject: OnReject,
    pub on_rotation: OnRotation,
    /// Attach certificates as the thing's exclusive principal (AWS IoT's
    /// `EXCLUSIVE_THING`): a certificate can never serve two things.
    pub exclusive_thing: bool,
    /// How far a certificate's notBefore may lie ahead of this clock and
    /// still be admitted (a factory's clock a few minutes fast), seconds.
    pub clock_skew_seconds: i64,
    /// The account's request rates per AWS IoT operation (AWS's default
    /// quotas unless `JITR_API_RATES` says otherwise).
    pub api_rates: ApiRates,
    /// Instances that may run at once (the template's `MaxConcurrency`):
    /// each keeps to `api_rates / max_concurrency`.
    pub max_concurrency: u32,
    /// The fast lane's queue (`JITR_FAST_LANE_QUEUE_ARN`): a batch from it
    /// defers to the bulk lane while that lane works ([`crate::lane`]).
    /// None: every batch is the bulk lane's.
    pub fast_lane_queue_arn: Option<String>,
}

impl Config {
    /// This instance's share of the account's rates.
    pub fn instance_rates(&self) -> ApiRates {
        self.api_rates.share(self.max_concurrency)
    }
}

/// Default `JITR_CLOCK_SKEW_SECONDS`: five minutes.
pub const DEFAULT_CLOCK_SKEW_SECONDS: i64 = 300;
/// Largest accepted skew: a day (more is a wrong clock, not skew).
const MAX_CLOCK_SKEW_SECONDS: i64 = 86_400;

/// A setting that is missing or invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration {variable}: {problem}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
}

fn err(variable: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        problem: problem.into(),
    }
}

/// Checks the fast lane's queue ARN (`arn:<partition>:sqs:<region>:<account>:<name>`):
/// one that no record names would make the fast lane provision always,
/// silently, so a malformed one stops the function at start-up.
fn sqs_queue_arn(arn: &str) -> Result<(), ConfigError> {
    let parts: Vec<&str> = arn.split(':').collect();
    let ok = parts.len() == 6
        && parts[0] == "arn"
        && !parts[1].is_empty()
        && parts[2] == "sqs"
        && parts[3..].iter().all(|p| !p.is_empty());
    if ok {
        Ok(())
    } else {
        Err(err(
            "JITR_FAST_LANE_QUEUE_ARN",
            format!("\"{arn}\" is not an SQS queue ARN (arn:aws:sqs:<region>:<account>:<queue>)"),
        ))
    }
}

/// Checks a thing type or thing group name against AWS IoT's pattern
/// (ThingTypeName, ThingGroupName: `[a-zA-Z0-9:_-]+`, 1 to 128): a bad one
/// would fail every event, so it stops the function at start-up instead.
fn aws_name(variable: &'static str, value: &str, what: &str) -> Result<(), ConfigError> {
    let ok = (1..=128).contains(&value.len())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ":_-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(err(
            variable,
            format!("\"{value}\" is not a {what} name (1-128 of a-z A-Z 0-9 : _ -)"),
        ))
    }
}

fn list(value: Option<String>) -> Vec<String> {
    value
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `get` (the environment, or a map in tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| {
            get(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let policy_name = get("JITR_POLICY_NAME").ok_or_else(|| {
            err(
                "JITR_POLICY_NAME",
                "is required: the name of the device policy the infrastructure created",
            )
        })?;
        if policy_name.len() > 128
            || !policy_name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+=,.@-_".contains(c))
        {
            return Err(err(
                "JITR_POLICY_NAME",
                format!(
                    "\"{policy_name}\" is not a policy name (1-128 of a-z A-Z 0-9 + = , . @ - _)"
                ),
            ));
        }
        // The template wins over the older setting (its alias) when both are set.
        let thing_name = match (
            get("JITR_THING_NAME_TEMPLATE"),
            get("JITR_THING_NAME_SOURCE"),
        ) {
            (Some(t), _) => {
                NameTemplate::parse(&t).map_err(|e| err("JITR_THING_NAME_TEMPLATE", e))?
            }
            (None, None) => NameTemplate::common_name(),
            (None, Some(source)) => crate::naming::ALIASES
                .iter()
                .find(|(alias, _)| *alias == source)
                .and_then(|(alias, _)| NameTemplate::parse(alias).ok())
                .ok_or_else(|| {
                    err(
                        "JITR_THING_NAME_SOURCE",
                        format!(
                            "\"{source}\" is not one of common-name, serial-number, certificate-id \
                             (or set JITR_THING_NAME_TEMPLATE)"
                        ),
                    )
                })?,
        };
        let admission = match get("JITR_ADMISSION").as_deref() {
            None | Some("any") => Admission::Any,
            Some("allow-list") => Admission::AllowList,
            Some(other) => {
                return Err(err(
                    "JITR_ADMISSION",
                    format!("\"{other}\" is not one of any, allow-list"),
                ))
            }
        };
        let pattern =
            get("JITR_THING_NAME_PATTERN").unwrap_or_else(|| THING_NAME_PATTERN.to_string());
        let thing_name_pattern = Regex::new(&format!("^(?:{pattern})$"))
            .map_err(|e| err("JITR_THING_NAME_PATTERN", format!("not a valid regex: {e}")))?;
        let allowed_ca_ids: Vec<String> = list(get("JITR_ALLOWED_CA_IDS"))
            .into_iter()
            .map(|s| s.to_ascii_lowercase())
            .collect();
        if let Some(bad) = allowed_ca_ids
            .iter()
            .find(|id| !crate::rules::is_certificate_id(id))
        {
            return Err(err(
                "JITR_ALLOWED_CA_IDS",
                format!("\"{bad}\" is not a CA certificate id (64 hex digits)"),
            ));
        }
        let device_group = get("JITR_DEVICE_GROUP");
        if let Some(bad) = device_group
            .as_deref()
            .filter(|g| !crate::rules::is_thing_name(g))
        {
            return Err(err(
                "JITR_DEVICE_GROUP",
                format!("\"{bad}\" is not a thing group name (1-128 of a-z A-Z 0-9 : _ -)"),
            ));
        }
        let thing_type = get("JITR_THING_TYPE");
        if let Some(t) = &thing_type {
            aws_name("JITR_THING_TYPE", t, "thing type")?;
        }
        let thing_groups = list(get("JITR_THING_GROUPS"));
        for group in &thing_groups {
            aws_name("JITR_THING_GROUPS", group, "thing group")?;
        }
        let on_reject = match get("JITR_ON_REJECT").as_deref() {
            None | Some("revoke") => OnReject::Revoke,
            Some("ignore") => OnReject::Ignore,
            Some(other) => {
                return Err(err(
                    "JITR_ON_REJECT",
                    format!("\"{other}\" is not one of revoke, ignore"),
                ))
            }
        };
        let on_rotation = match get("JITR_ON_ROTATION").as_deref() {
            None | Some("keep") => OnRotation::Keep,
            Some("retire-previous") => OnRotation::RetirePrevious,
            Some(other) => {
                return Err(err(
                    "JITR_ON_ROTATION",
                    format!("\"{other}\" is not one of keep, retire-previous"),
                ))
            }
        };
        let exclusive_thing = match get("JITR_EXCLUSIVE_THING").as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(err(
                    "JITR_EXCLUSIVE_THING",
                    format!("\"{other}\" is not one of true, false"),
                ))
            }
        };
        let clock_skew_seconds = match get("JITR_CLOCK_SKEW_SECONDS") {
            None => DEFAULT_CLOCK_SKEW_SECONDS,
            Some(v) => v
                .parse::<i64>()
                .ok()
                .filter(|s| (0..=MAX_CLOCK_SKEW_SECONDS).contains(s))
                .ok_or_else(|| {
                    err(
                        "JITR_CLOCK_SKEW_SECONDS",
                        format!(
                            "\"{v}\" is not a number of seconds from 0 to {MAX_CLOCK_SKEW_SECONDS}"
                        ),
                    )
                })?,
        };
        let api_rates = ApiRates::parse(&get("JITR_API_RATES").unwrap_or_default())?;
        let max_concurrency = match get("JITR_MAX_CONCURRENCY") {
            None => 1,
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .ok_or_else(|| {
                    err(
                        "JITR_MAX_CONCURRENCY",
                        format!("\"{v}\" is not a number of instances from 1 to 1000"),
                    )
                })?,
        };
        let fast_lane_queue_arn = get("JITR_FAST_LANE_QUEUE_ARN");
        if let Some(arn) = &fast_lane_queue_arn {
            sqs_queue_arn(arn)?;
        }
        Ok(Config {
            api_rates,
            max_concurrency,
            fast_lane_queue_arn,
            policy_name,
            device_group,
            thing_name,
            admission,
            thing_name_pattern,
            allowed_ca_ids,
            thing_type,
            thing_groups,
            on_reject,
            on_rotation,
            exclusive_thing,
            clock_skew_seconds,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn the_fast_lane_is_named_by_its_queue_arn() {
        let c = config(&[("JITR_POLICY_NAME", "p")]).unwrap();
        assert_eq!(c.fast_lane_queue_arn, None);
        let arn = "arn:aws:sqs:eu-west-1:123456789012:s-FastLaneQueue-X";
        let c = config(&[
            ("JITR_POLICY_NAME", "p"),
            ("JITR_FAST_LANE_QUEUE_ARN", &format!(" {arn} ")),
        ])
        .unwrap();
        assert_eq!(c.fast_lane_queue_arn.as_deref(), Some(arn));
    }

    #[test]
    fn defaults_need_only_the_policy() {
        let c = config(&[("JITR_POLICY_NAME", "jitr-device")]).unwrap();
        assert_eq!(c.thing_name.to_string(), "{CN}");
        assert_eq!(c.admission, Admission::Any);
        assert_eq!(c.on_reject, OnReject::Revoke);
        assert_eq!(c.on_rotation, OnRotation::Keep);
        assert!(!c.exclusive_thing);
        assert!(c.allowed_ca_ids.is_empty() && c.thing_groups.is_empty() && c.thing_type.is_none());
        assert!(c.thing_name_pattern.is_match("robot-00001"));
        assert!(!c.thing_name_pattern.is_match("robot 1"));
        assert_eq!(c.clock_skew_seconds, 300);
        assert_eq!(c.max_concurrency, 1);
        assert_eq!(c.instance_rates(), crate::pacing::ApiRates::default());
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
        ])
        .unwrap();
        assert_eq!(c.thing_name.to_string(), "{serialNumber}");
        assert_eq!(c.admission, Admission::AllowList);
        assert!(
            c.thing_name_pattern.is_match("robot-12")
                && !c.thing_name_pattern.is_match("xrobot-12"),
            "anchored"
        );
        assert_eq!(c.allowed_ca_ids, [ca]);
        assert_eq!(c.thing_groups, ["fleet", "line-4"]);
        assert_eq!(c.on_reject, OnReject::Ignore);
        assert_eq!(c.on_rotation, OnRotation::RetirePrevious);
        assert!(c.exclusive_thing);
        assert_eq!(c.clock_skew_seconds, 0);
        assert_eq!(c.max_concurrency, 20);
        use crate::pacing::Op;
        assert_eq!(c.instance_rates().get(Op::DescribeCertificate), 2.0);
        assert_eq!(c.instance_rates().get(Op::UpdateCertificate), 0.5);
    }

    /// JITR_THING_NAME_TEMPLATE, and JITR_THING_NAME_SOURCE as its alias.
    #[test]
    fn the_name_template_and_its_alias() {
        for (vars, expected) in [
            (vec![], "{CN}"),
            (
                vec![("JITR_THING_NAME_SOURCE", "certificate-id")],
                "{certificateId}",
            ),
            (
                vec![("JITR_THING_NAME_TEMPLATE", "robot-{serialNumber}")],
                "robot-{serialNumber}",
            ),
            (
                vec![("JITR_THING_NAME_TEMPLATE", "serial-number")],
                "{serialNumber}",
            ),
            // The template wins over the older setting.
            (
                vec![
                    ("JITR_THING_NAME_SOURCE", "common-name"),
                    ("JITR_THING_NAME_TEMPLATE", "{O}-{CN}"),
                ],
                "{O}-{CN}",
            ),
        ] {
            let mut vars = vars.clone();
            vars.push(("JITR_POLICY_NAME", "p"));
            assert_eq!(
                config(&vars).unwrap().thing_name.to_string(),
                expected,
                "{vars:?}"
            );
        }
        let e = config(&[
            ("JITR_POLICY_NAME", "p"),
            ("JITR_THING_NAME_TEMPLATE", "{Serial}-x"),
        ])
        .unwrap_err();
        assert_eq!(e.variable, "JITR_THING_NAME_TEMPLATE");
        assert!(e.problem.contains("no field {Serial}"), "{e}");
    }

    #[test]
    fn thing_type_and_groups_follow_aws_name_patterns() {
        // ThingTypeName and ThingGroupName in AWS IoT's API model: 1 to 128
        // of [a-zA-Z0-9:_-].
        let long = "g".repeat(128);
        let too_long = "g".repeat(129);
        for (variable, value, ok) in [
            ("JITR_THING_TYPE", "robot", true),
            ("JITR_THING_TYPE", "Robot:v2_a-1", true),
            ("JITR_THING_TYPE", long.as_str(), true),
            ("JITR_THING_TYPE", too_long.as_str(), false),
            ("JITR_THING_TYPE", "robot arm", false),
            ("JITR_THING_TYPE", "robot/arm", false),
            ("JITR_THING_TYPE", "robot.arm", false),
            ("JITR_THING_TYPE", "r\u{f6}bot", false),
            ("JITR_THING_GROUPS", "fleet, line-4", true),
            ("JITR_THING_GROUPS", "fleet:eu,line_4", true),
            ("JITR_THING_GROUPS", "fleet,line 4", false),
            ("JITR_THING_GROUPS", "fleet,site/berlin", false),
            ("JITR_THING_GROUPS", too_long.as_str(), false),
            ("JITR_POLICY_NAME", "jitr-device+v2=a,b.c@d_e", true),
            ("JITR_POLICY_NAME", too_long.as_str(), false),
            ("JITR_POLICY_NAME", "jitr:device", false),
        ] {
            let mut vars = vec![("JITR_POLICY_NAME", "p")];
            vars.retain(|(k, _)| *k != variable);
            vars.push((variable, value));
            match (config(&vars), ok) {
                (Ok(_), true) => {}
                (Err(e), false) => {
                    assert_eq!(e.variable, variable, "{value}: {e}");
                    let bad = value
                        .split(',')
                        .map(str::trim)
                        .find(|v| v.len() > 128 || v.contains([' ', '/', '.', ':', '\u{f6}']));
                    let shown = bad.unwrap_or(value);
                    assert!(e.problem.contains(&format!("\"{shown}\"")), "{e}");
                    assert!(e.problem.contains("1-128"), "{e}");
                }
                (got, _) => panic!("{variable}={value}: got {got:?}"),
            }
        }
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
        ] {
            let e = config(&vars).unwrap_err();
            assert_eq!(e.variable, variable, "{vars:?}");
            assert!(e
                .to_string()
                .starts_with(&format!("configuration {variable}: ")));
        }
    }
}
