//! What a provisioned thing gets: the device policy or the group carrying
//! it, its thing type, groups and attributes, and what a new certificate
//! does to the thing's others.

use super::error::{err, ConfigError};
use super::read::{is_name, list, one_of, Get};
use super::OnRotation;
use crate::naming::AttributeTemplates;

/// `JITR_POLICY_NAME`, required: the device policy the infrastructure created.
pub(super) fn policy_name(get: Get) -> Result<String, ConfigError> {
    let name = get("JITR_POLICY_NAME").ok_or_else(|| {
        err(
            "JITR_POLICY_NAME",
            "is required: the name of the device policy the infrastructure created",
        )
    })?;
    if !is_name(&name, 128, "+=,.@-_") {
        return Err(err(
            "JITR_POLICY_NAME",
            format!("\"{name}\" is not a policy name (1-128 of a-z A-Z 0-9 + = , . @ - _)"),
        ));
    }
    Ok(name)
}

/// `JITR_DEVICE_GROUP`: the thing group carrying the device policy.
pub(super) fn device_group(get: Get) -> Result<Option<String>, ConfigError> {
    let group = get("JITR_DEVICE_GROUP");
    if let Some(bad) = group.as_deref().filter(|g| !crate::rules::is_thing_name(g)) {
        return Err(err(
            "JITR_DEVICE_GROUP",
            format!("\"{bad}\" is not a thing group name (1-128 of a-z A-Z 0-9 : _ -)"),
        ));
    }
    Ok(group)
}

/// `JITR_THING_TYPE`, a thing type name.
pub(super) fn thing_type(get: Get) -> Result<Option<String>, ConfigError> {
    let thing_type = get("JITR_THING_TYPE");
    if let Some(t) = &thing_type {
        aws_name("JITR_THING_TYPE", t, "thing type")?;
    }
    Ok(thing_type)
}

/// `JITR_THING_GROUPS`, a list of thing group names.
pub(super) fn thing_groups(get: Get) -> Result<Vec<String>, ConfigError> {
    let groups = list(get("JITR_THING_GROUPS"));
    for group in &groups {
        aws_name("JITR_THING_GROUPS", group, "thing group")?;
    }
    Ok(groups)
}

/// `JITR_THING_ATTRIBUTES`, checked against the attribute limit of a thing
/// with or without a thing type (`typed`).
pub(super) fn attributes(get: Get, typed: bool) -> Result<Option<AttributeTemplates>, ConfigError> {
    get("JITR_THING_ATTRIBUTES")
        .map(|t| AttributeTemplates::parse(&t, typed))
        .transpose()
        .map_err(|e| err("JITR_THING_ATTRIBUTES", e))
}

/// `JITR_ON_ROTATION`: keep (the default) or retire-previous.
pub(super) fn on_rotation(get: Get) -> Result<OnRotation, ConfigError> {
    one_of(
        get,
        "JITR_ON_ROTATION",
        OnRotation::Keep,
        &[
            ("keep", OnRotation::Keep),
            ("retire-previous", OnRotation::RetirePrevious),
        ],
    )
}

/// `JITR_EXCLUSIVE_THING`: true or false (the default).
pub(super) fn exclusive(get: Get) -> Result<bool, ConfigError> {
    one_of(
        get,
        "JITR_EXCLUSIVE_THING",
        false,
        &[("true", true), ("false", false)],
    )
}

/// Checks a thing type or thing group name against AWS IoT's pattern
/// (ThingTypeName, ThingGroupName: `[a-zA-Z0-9:_-]+`, 1 to 128): a bad one
/// would fail every event, so it stops the function at start-up instead.
fn aws_name(variable: &'static str, value: &str, what: &str) -> Result<(), ConfigError> {
    if is_name(value, 128, ":_-") {
        Ok(())
    } else {
        Err(err(
            variable,
            format!("\"{value}\" is not a {what} name (1-128 of a-z A-Z 0-9 : _ -)"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use crate::config::tests::config;

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
}
