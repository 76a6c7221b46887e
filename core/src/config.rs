//! The function's configuration, from environment variables. A missing or
//! invalid setting fails at start-up with a message naming it.

use regex::Regex;

use crate::naming::{AttributeTemplates, NameTemplate};
use crate::quota::ApiRates;
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
    /// The allow-list's DynamoDB table (`JITR_ALLOW_LIST_TABLE`): required
    /// under [`Admission::AllowList`], where nothing could be admitted without it.
    pub allow_list_table: Option<String>,
    /// The thing's attributes (`JITR_THING_ATTRIBUTES`); None: the
    /// subject's serialNumber, O, OU, C, dnQualifier ([`crate::plan`]).
    pub thing_attributes: Option<AttributeTemplates>,
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
    /// The claims shared by the instances (`JITR_CLAIMS_TABLE`, a DynamoDB
    /// table: [`crate::claims_table`]). None: no shared claims.
    pub claims_table: Option<String>,
    /// The EventBridge bus the outcomes go to (`JITR_EVENT_BUS`, a bus
    /// name: [`crate::events`]). None: no events.
    pub event_bus: Option<String>,
    /// The verifier hook (`JITR_VERIFIER_FUNCTION`, an unqualified Lambda
    /// function ARN: [`crate::verifier`]), asked about each certificate the
    /// function's own checks admit. None: no hook.
    pub verifier_function: Option<String>,
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

/// Checks an event bus name against PutEvents' (botocore's events model,
/// NonPartnerEventBusName: 1-256 of `[.\-_A-Za-z0-9]`): the templates
/// build the role's grant from the name, so an ARN is refused too.
fn event_bus_name(bus: &str) -> Result<(), ConfigError> {
    let ok = (1..=256).contains(&bus.len())
        && bus
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c));
    if ok {
        Ok(())
    } else {
        Err(err(
            "JITR_EVENT_BUS",
            format!("\"{bus}\" is not an event bus name (1-256 of a-z A-Z 0-9 . - _; the name, not the ARN)"),
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
        let allow_list_table = get("JITR_ALLOW_LIST_TABLE");
        if admission == Admission::AllowList && allow_list_table.is_none() {
            return Err(err(
                "JITR_ALLOW_LIST_TABLE",
                "is required with JITR_ADMISSION=allow-list: the allow-list table's name",
            ));
        }
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
        let thing_attributes = get("JITR_THING_ATTRIBUTES")
            .map(|t| AttributeTemplates::parse(&t, thing_type.is_some()))
            .transpose()
            .map_err(|e| err("JITR_THING_ATTRIBUTES", e))?;
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
        let api_rates = ApiRates::parse(&get("JITR_API_RATES").unwrap_or_default())
            .map_err(|e| err("JITR_API_RATES", e.problem))?;
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
        let claims_table = get("JITR_CLAIMS_TABLE");
        let event_bus = get("JITR_EVENT_BUS");
        if let Some(bus) = &event_bus {
            event_bus_name(bus)?;
        }
        let verifier_function = get("JITR_VERIFIER_FUNCTION");
        if let Some(arn) = &verifier_function {
            crate::verifier::check_function_arn(arn)
                .map_err(|problem| err("JITR_VERIFIER_FUNCTION", problem))?;
        }
        let fast_lane_queue_arn = get("JITR_FAST_LANE_QUEUE_ARN");
        if let Some(arn) = &fast_lane_queue_arn {
            sqs_queue_arn(arn)?;
        }
        Ok(Config {
            api_rates,
            max_concurrency,
            fast_lane_queue_arn,
            claims_table,
            event_bus,
            verifier_function,
            policy_name,
            device_group,
            thing_name,
            admission,
            allow_list_table,
            thing_attributes,
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

    /// JITR_CLAIMS_TABLE: read here like every setting (trimmed; empty is unset).
    #[test]
    fn the_claims_table_is_a_setting() {
        for (value, want) in [
            (None, None),
            (Some("  "), None),
            (Some(" jitr-Claims-1 "), Some("jitr-Claims-1")),
        ] {
            let mut vars = vec![("JITR_POLICY_NAME", "p")];
            vars.extend(value.map(|v| ("JITR_CLAIMS_TABLE", v)));
            assert_eq!(
                config(&vars).unwrap().claims_table.as_deref(),
                want,
                "{value:?}"
            );
        }
    }

    /// JITR_EVENT_BUS: a bus name as PutEvents takes it (botocore's
    /// NonPartnerEventBusName: 1-256 of [.\-_A-Za-z0-9]); unset or empty: none.
    #[test]
    fn the_event_bus_is_a_bus_name() {
        let longest = "b".repeat(256);
        let too_long = "b".repeat(257);
        for (value, ok) in [
            ("jitr-devices", true),
            (" Fleet_events.v2 ", true),
            ("default", true),
            (longest.as_str(), true),
            (too_long.as_str(), false),
            (
                "arn:aws:events:eu-west-1:123456789012:event-bus/jitr",
                false,
            ),
            ("partner/bus", false),
            ("my bus", false),
            ("b\u{fc}s", false),
        ] {
            let got = config(&[("JITR_POLICY_NAME", "p"), ("JITR_EVENT_BUS", value)]);
            match (got, ok) {
                (Ok(c), true) => assert_eq!(c.event_bus.as_deref(), Some(value.trim())),
                (Err(e), false) => {
                    assert_eq!(e.variable, "JITR_EVENT_BUS", "{value}");
                    assert!(e.problem.contains(&format!("\"{value}\"")), "{e}");
                    assert!(e.problem.contains("1-256"), "{e}");
                }
                (got, _) => panic!("{value}: {got:?}"),
            }
        }
        for unset in [vec![], vec![("JITR_EVENT_BUS", "  ")]] {
            let mut vars = unset.clone();
            vars.push(("JITR_POLICY_NAME", "p"));
            assert_eq!(config(&vars).unwrap().event_bus, None, "{unset:?}");
        }
    }

    /// JITR_VERIFIER_FUNCTION: an unqualified Lambda function ARN, or the
    /// function refuses to start naming the setting; unset or empty: none.
    #[test]
    fn the_verifier_hook_is_a_function_arn() {
        let arn = "arn:aws:lambda:eu-west-1:123456789012:function:verify";
        let c = config(&[
            ("JITR_POLICY_NAME", "p"),
            ("JITR_VERIFIER_FUNCTION", &format!(" {arn} ")),
        ])
        .unwrap();
        assert_eq!(c.verifier_function.as_deref(), Some(arn));
        for unset in [vec![], vec![("JITR_VERIFIER_FUNCTION", " ")]] {
            let mut vars = unset.clone();
            vars.push(("JITR_POLICY_NAME", "p"));
            assert_eq!(config(&vars).unwrap().verifier_function, None, "{unset:?}");
        }
        let qualified = format!("{arn}:live");
        for bad in [
            "verify",
            qualified.as_str(),
            "arn:aws:sqs:eu-west-1:123456789012:q",
        ] {
            let e =
                config(&[("JITR_POLICY_NAME", "p"), ("JITR_VERIFIER_FUNCTION", bad)]).unwrap_err();
            assert_eq!(e.variable, "JITR_VERIFIER_FUNCTION", "{bad}");
            assert!(
                e.to_string().starts_with(&format!(
                    "configuration JITR_VERIFIER_FUNCTION: \"{bad}\" is not a Lambda function ARN"
                )),
                "{e}"
            );
        }
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
        use crate::quota::Op;
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

    /// Under allow-list without its table nothing could be admitted: the
    /// function (and `jitr provision`/`reconcile`) refuse to start.
    #[test]
    fn the_allow_list_needs_its_table() {
        for (vars, table) in [
            (vec![("JITR_ADMISSION", "allow-list")], Err(())),
            (
                vec![
                    ("JITR_ADMISSION", "allow-list"),
                    ("JITR_ALLOW_LIST_TABLE", "  "),
                ],
                Err(()),
            ),
            (
                vec![
                    ("JITR_ADMISSION", "allow-list"),
                    ("JITR_ALLOW_LIST_TABLE", "t"),
                ],
                Ok(Some("t")),
            ),
            // The templates set the table under either mode.
            (vec![("JITR_ALLOW_LIST_TABLE", "t")], Ok(Some("t"))),
            (vec![("JITR_ADMISSION", "any")], Ok(None)),
        ] {
            let mut vars = vars.clone();
            vars.push(("JITR_POLICY_NAME", "p"));
            match (config(&vars), table) {
                (Ok(c), Ok(table)) => assert_eq!(c.allow_list_table.as_deref(), table),
                (Err(e), Err(())) => {
                    assert_eq!(e.variable, "JITR_ALLOW_LIST_TABLE", "{vars:?}");
                    assert_eq!(
                        e.to_string(),
                        "configuration JITR_ALLOW_LIST_TABLE: is required with \
                         JITR_ADMISSION=allow-list: the allow-list table's name"
                    );
                }
                (got, _) => panic!("{vars:?}: {got:?}"),
            }
        }
    }

    /// JITR_THING_ATTRIBUTES: checked at start-up, against the thing type's
    /// attribute limit; the error names the setting and the offending pair.
    #[test]
    fn thing_attributes_are_checked_at_start_up() {
        let four = "a={CN},b={O},c=x,d=y";
        for (vars, problem) in [
            (
                vec![("JITR_THING_ATTRIBUTES", "model={O},serial={serialNumber}")],
                None,
            ),
            (
                vec![("JITR_THING_ATTRIBUTES", four)],
                Some("4 attributes: a thing without a thing type carries at most 3"),
            ),
            (
                vec![
                    ("JITR_THING_ATTRIBUTES", four),
                    ("JITR_THING_TYPE", "robot"),
                ],
                None,
            ),
            (
                vec![("JITR_THING_ATTRIBUTES", "model={O},serial={Serial}")],
                Some("\"serial={Serial}\": no field {Serial}"),
            ),
            (
                vec![("JITR_THING_ATTRIBUTES", "model={O},my model=x")],
                Some("\"my model=x\": \"my model\" is not an attribute name"),
            ),
            (
                vec![("JITR_THING_ATTRIBUTES", "model=a b")],
                Some("\"model=a b\": ' ' cannot be in an attribute value"),
            ),
        ] {
            let mut vars = vars.clone();
            vars.push(("JITR_POLICY_NAME", "p"));
            match (config(&vars), problem) {
                (Ok(c), None) => assert!(c.thing_attributes.is_some(), "{vars:?}"),
                (Err(e), Some(part)) => {
                    assert_eq!(e.variable, "JITR_THING_ATTRIBUTES", "{vars:?}");
                    assert!(
                        e.to_string()
                            .starts_with(&format!("configuration JITR_THING_ATTRIBUTES: {part}")),
                        "{e}"
                    );
                }
                (got, _) => panic!("{vars:?}: {got:?}"),
            }
        }
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
}
