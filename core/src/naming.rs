//! Thing-name templates (`JITR_THING_NAME_TEMPLATE`): literal text and
//! `{field}`s of the certificate's subject (and `{certificateId}`), e.g.
//! `robot-{serialNumber}` or `{O}-{CN}`. Checked once, at start-up, so a
//! template naming a field that does not exist, or text AWS IoT refuses in
//! a thing name, stops the function instead of failing every event.

use crate::facts::CertFacts;

/// The fields a template may name: the subject attributes jitr reads
/// (see [`crate::facts::attribute_short_name`]) and the certificate id.
pub const FIELDS: [&str; 10] = [
    "CN",
    "serialNumber",
    "O",
    "OU",
    "C",
    "L",
    "ST",
    "dnQualifier",
    "emailAddress",
    CERTIFICATE_ID,
];

const CERTIFICATE_ID: &str = "certificateId";

/// The words of `JITR_THING_NAME_SOURCE`, kept as aliases of templates.
pub const ALIASES: [(&str, &str); 3] = [
    ("common-name", "{CN}"),
    ("serial-number", "{serialNumber}"),
    ("certificate-id", "{certificateId}"),
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Field(&'static str),
}

/// A parsed, checked thing-name template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameTemplate {
    text: String,
    parts: Vec<Part>,
}

impl NameTemplate {
    /// Parses `text`: a template, or one of the [`ALIASES`]. `Err` says
    /// what is wrong, for the setting's error message.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = ALIASES
            .iter()
            .find(|(alias, _)| *alias == text)
            .map_or(text, |(_, template)| template);
        let mut parts = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            match rest.find(['{', '}']) {
                Some(0) if rest.starts_with('{') => {
                    let end = rest
                        .find('}')
                        .ok_or_else(|| format!("\"{text}\": a '{{' without its '}}'"))?;
                    let name = &rest[1..end];
                    let field = FIELDS.iter().find(|f| **f == name).ok_or_else(|| {
                        format!(
                            "\"{text}\": no field {{{name}}}; the fields are {}",
                            FIELDS.map(|f| format!("{{{f}}}")).join(" ")
                        )
                    })?;
                    parts.push(Part::Field(field));
                    rest = &rest[end + 1..];
                }
                Some(0) => return Err(format!("\"{text}\": a '}}' without its '{{'")),
                found => {
                    let end = found.unwrap_or(rest.len());
                    let literal = &rest[..end];
                    if let Some(bad) = literal
                        .chars()
                        .find(|c| !(c.is_ascii_alphanumeric() || ":_-".contains(*c)))
                    {
                        return Err(format!(
                            "\"{text}\": '{bad}' cannot be in a thing name (a-z A-Z 0-9 : _ -)"
                        ));
                    }
                    parts.push(Part::Text(literal.to_string()));
                    rest = &rest[end..];
                }
            }
        }
        if !parts.iter().any(|p| matches!(p, Part::Field(_))) {
            return Err(format!(
                "\"{text}\" names no field: every device would be the same thing"
            ));
        }
        let fixed: usize = parts
            .iter()
            .map(|p| match p {
                Part::Text(t) => t.len(),
                Part::Field(_) => 1,
            })
            .sum();
        if fixed > 128 {
            return Err(format!(
                "\"{text}\" makes names longer than AWS IoT's 128 characters"
            ));
        }
        Ok(NameTemplate {
            text: text.to_string(),
            parts,
        })
    }

    /// `{CN}`: what `jitr device issue` sets, and the default.
    pub fn common_name() -> Self {
        Self::parse("{CN}").expect("a valid template")
    }

    /// The name for a certificate (`certificate_id` is its id), unchecked
    /// against the name pattern; `Err` names the field its subject lacks.
    pub fn render(&self, facts: &CertFacts, certificate_id: &str) -> Result<String, String> {
        let mut name = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => name.push_str(t),
                Part::Field(f) if *f == CERTIFICATE_ID => name.push_str(certificate_id),
                Part::Field(f) => name.push_str(
                    facts
                        .subject_attr(f)
                        .ok_or_else(|| format!("subject has no {f} to name the thing"))?,
                ),
            }
        }
        Ok(name)
    }
}

impl Default for NameTemplate {
    fn default() -> Self {
        Self::common_name()
    }
}

impl std::fmt::Display for NameTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for NameTemplate {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_checked_when_read() {
        #[rustfmt::skip]
        let table: Vec<(&str, Result<&str, &str>)> = vec![
            // text, parsed back (its text) or the error's telling part
            ("{CN}", Ok("{CN}")),
            ("robot-{serialNumber}", Ok("robot-{serialNumber}")),
            ("{O}-{CN}", Ok("{O}-{CN}")),
            ("site:{L}_{certificateId}", Ok("site:{L}_{certificateId}")),
            // The JITR_THING_NAME_SOURCE words are aliases.
            ("common-name", Ok("{CN}")),
            ("serial-number", Ok("{serialNumber}")),
            ("certificate-id", Ok("{certificateId}")),
            ("{cn}", Err("no field {cn}; the fields are {CN} {serialNumber}")),
            ("{Serial}", Err("no field {Serial}")),
            ("robot-{CN", Err("a '{' without its '}'")),
            ("robot-}CN{", Err("a '}' without its '{'")),
            ("robot {CN}", Err("' ' cannot be in a thing name")),
            ("robot/{CN}", Err("'/' cannot be in a thing name")),
            ("robot.{CN}", Err("'.' cannot be in a thing name")),
            ("robot", Err("names no field")),
            ("", Err("names no field")),
        ];
        for (text, expected) in table {
            match (NameTemplate::parse(text), expected) {
                (Ok(t), Ok(back)) => assert_eq!(t.to_string(), back, "{text}"),
                (Err(e), Err(part)) => assert!(e.contains(part), "{text}: {e}"),
                (got, _) => panic!("{text}: {got:?}"),
            }
        }
        let long = format!("{}{{CN}}", "x".repeat(128));
        assert!(NameTemplate::parse(&long).unwrap_err().contains("128"));
        assert!(NameTemplate::parse(&format!("{}{{CN}}", "x".repeat(127))).is_ok());
    }
}
