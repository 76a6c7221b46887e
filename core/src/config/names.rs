//! How things are named: the name template (or its older alias) and the
//! pattern every name must match.

use regex::Regex;

use super::error::{err, ConfigError};
use super::read::Get;
use crate::naming::NameTemplate;
use crate::rules::THING_NAME_PATTERN;

/// `JITR_THING_NAME_TEMPLATE`, or the older `JITR_THING_NAME_SOURCE` words,
/// its aliases; the template wins when both are set. Unset: `{CN}`.
pub(super) fn template(get: Get) -> Result<NameTemplate, ConfigError> {
    match (
        get("JITR_THING_NAME_TEMPLATE"),
        get("JITR_THING_NAME_SOURCE"),
    ) {
        (Some(t), _) => NameTemplate::parse(&t).map_err(|e| err("JITR_THING_NAME_TEMPLATE", e)),
        (None, None) => Ok(NameTemplate::common_name()),
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
            }),
    }
}

/// `JITR_THING_NAME_PATTERN`, anchored: the whole name must match.
/// Unset: AWS's own thing name pattern.
pub(super) fn pattern(get: Get) -> Result<Regex, ConfigError> {
    let pattern = get("JITR_THING_NAME_PATTERN").unwrap_or_else(|| THING_NAME_PATTERN.to_string());
    Regex::new(&format!("^(?:{pattern})$"))
        .map_err(|e| err("JITR_THING_NAME_PATTERN", format!("not a valid regex: {e}")))
}

#[cfg(test)]
mod tests {
    use crate::config::tests::config;

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
}
