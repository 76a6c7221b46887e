//! Thing-name templates (`JITR_THING_NAME_TEMPLATE`): literal text and
//! `{field}`s of the certificate's subject (and `{certificateId}`), e.g.
//! `robot-{serialNumber}` or `{O}-{CN}`; thing-attribute templates
//! (`JITR_THING_ATTRIBUTES`) over the same fields. Checked once, at
//! start-up, so a template naming a field that does not exist, or text AWS
//! IoT refuses, stops the function instead of failing every event.

use std::collections::BTreeMap;

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

/// Literal text and `{field}`s, parsed once: what thing-name and
/// attribute templates share (each says which literal characters it takes).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Template {
    parts: Vec<Part>,
}

impl Template {
    /// Parses `text`, whose literal characters must pass `literal` (`what`
    /// names them for the error). `Err` says what is wrong, without `text`.
    fn parse(text: &str, literal: fn(char) -> bool, what: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            match rest.find(['{', '}']) {
                Some(0) if rest.starts_with('{') => {
                    let end = rest
                        .find('}')
                        .ok_or_else(|| "a '{' without its '}'".to_string())?;
                    let name = &rest[1..end];
                    let field = FIELDS.iter().find(|f| **f == name).ok_or_else(|| {
                        format!(
                            "no field {{{name}}}; the fields are {}",
                            FIELDS.map(|f| format!("{{{f}}}")).join(" ")
                        )
                    })?;
                    parts.push(Part::Field(field));
                    rest = &rest[end + 1..];
                }
                Some(0) => return Err("a '}' without its '{'".into()),
                found => {
                    let end = found.unwrap_or(rest.len());
                    let chunk = &rest[..end];
                    if let Some(bad) = chunk.chars().find(|c| !literal(*c)) {
                        return Err(format!("'{bad}' cannot be in {what}"));
                    }
                    parts.push(Part::Text(chunk.to_string()));
                    rest = &rest[end..];
                }
            }
        }
        Ok(Template { parts })
    }

    fn names_a_field(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Field(_)))
    }

    /// The shortest text it can render: its literal text and a character a field.
    fn least_length(&self) -> usize {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Text(t) => t.len(),
                Part::Field(_) => 1,
            })
            .sum()
    }

    /// The text for a certificate; `Err` is the field its subject lacks.
    fn render(&self, facts: &CertFacts, certificate_id: &str) -> Result<String, &'static str> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Field(f) if *f == CERTIFICATE_ID => out.push_str(certificate_id),
                Part::Field(f) => out.push_str(facts.subject_attr(f).ok_or(*f)?),
            }
        }
        Ok(out)
    }
}

/// A parsed, checked thing-name template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameTemplate {
    text: String,
    template: Template,
}

impl NameTemplate {
    /// Parses `text`: a template, or one of the [`ALIASES`]. `Err` says
    /// what is wrong, for the setting's error message.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = ALIASES
            .iter()
            .find(|(alias, _)| *alias == text)
            .map_or(text, |(_, template)| template);
        let thing_name_char = |c: char| c.is_ascii_alphanumeric() || ":_-".contains(c);
        let template = Template::parse(text, thing_name_char, "a thing name (a-z A-Z 0-9 : _ -)")
            .map_err(|e| format!("\"{text}\": {e}"))?;
        if !template.names_a_field() {
            return Err(format!(
                "\"{text}\" names no field: every device would be the same thing"
            ));
        }
        if template.least_length() > 128 {
            return Err(format!(
                "\"{text}\" makes names longer than AWS IoT's 128 characters"
            ));
        }
        Ok(NameTemplate {
            text: text.to_string(),
            template,
        })
    }

    /// `{CN}`: what `jitr device issue` sets, and the default.
    pub fn common_name() -> Self {
        Self::parse("{CN}").expect("a valid template")
    }

    /// The name for a certificate (`certificate_id` is its id), unchecked
    /// against the name pattern; `Err` names the field its subject lacks.
    pub fn render(&self, facts: &CertFacts, certificate_id: &str) -> Result<String, String> {
        self.template
            .render(facts, certificate_id)
            .map_err(|f| format!("subject has no {f} to name the thing"))
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

/// Attributes a thing may carry (AWS IoT quotas, "Thing limits"): 50 with
/// a thing type, 3 without.
pub fn max_attributes(with_thing_type: bool) -> usize {
    if with_thing_type {
        50
    } else {
        3
    }
}

/// An attribute name AWS IoT accepts (botocore's IoT model, AttributeName):
/// `[a-zA-Z0-9_.,@/:#-]+`, at most 128.
pub fn is_attribute_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.,@/:#-".contains(c))
}

/// A character of an attribute value (botocore's IoT model,
/// AttributeValue: `[a-zA-Z0-9_.,@/:#=\[\]-]*`, at most 800).
fn is_attribute_value_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_.,@/:#=[]-".contains(c)
}

const ATTRIBUTE_VALUE_CHARS: &str = "a-z A-Z 0-9 _ . , @ / : # = [ ] -";
const MAX_ATTRIBUTE_VALUE: usize = 800;

/// Thing-attribute templates (`JITR_THING_ATTRIBUTES`): `name=template`
/// pairs, comma-separated, each value over the same fields as a thing
/// name, e.g. `model={O},serial={serialNumber},cert={certificateId}`.
/// Checked at start-up like the name template; a value a certificate
/// renders outside AWS's pattern rejects that certificate, as a name does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeTemplates {
    text: String,
    attributes: Vec<(String, Template)>,
}

impl AttributeTemplates {
    /// Parses `text` for a thing with or without a thing type (which
    /// decides how many attributes it may carry). `Err` names the
    /// offending pair and what is wrong with it.
    pub fn parse(text: &str, with_thing_type: bool) -> Result<Self, String> {
        let mut attributes: Vec<(String, Template)> = Vec::new();
        for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').ok_or_else(|| {
                format!("\"{pair}\" is not name=template (pairs are separated by ',')")
            })?;
            let (name, value) = (name.trim(), value.trim());
            if !is_attribute_name(name) {
                return Err(format!(
                    "\"{pair}\": \"{name}\" is not an attribute name (1-128 of a-z A-Z 0-9 _ . @ / : # -)"
                ));
            }
            if attributes.iter().any(|(n, _)| n == name) {
                return Err(format!("\"{pair}\": attribute {name} is named twice"));
            }
            if value.is_empty() {
                return Err(format!(
                    "\"{pair}\": no value (text and fields, e.g. {name}={{serialNumber}})"
                ));
            }
            // AWS allows ',' in a value too, but here it separates pairs.
            let what = "an attribute value (a-z A-Z 0-9 _ . @ / : # = [ ] -)";
            let template = Template::parse(value, is_attribute_value_char, what)
                .map_err(|e| format!("\"{pair}\": {e}"))?;
            if template.least_length() > MAX_ATTRIBUTE_VALUE {
                return Err(format!(
                    "\"{pair}\" makes values longer than AWS IoT's {MAX_ATTRIBUTE_VALUE} characters"
                ));
            }
            attributes.push((name.to_string(), template));
        }
        let limit = max_attributes(with_thing_type);
        if attributes.len() > limit {
            return Err(format!(
                "{} attributes: a thing {} carries at most {limit} (AWS IoT quotas){}",
                attributes.len(),
                if with_thing_type {
                    "of a thing type"
                } else {
                    "without a thing type"
                },
                if with_thing_type {
                    ""
                } else {
                    "; with JITR_THING_TYPE up to 50"
                }
            ));
        }
        Ok(AttributeTemplates {
            text: text.to_string(),
            attributes,
        })
    }

    /// The attributes for a certificate (`certificate_id` is its id),
    /// under `given` (an allow-list entry's), which win key by key: a name
    /// given is not rendered. `Err` (the certificate's rejection reason)
    /// names the attribute: a field its subject lacks, or a value AWS IoT
    /// would refuse.
    pub fn render(
        &self,
        facts: &CertFacts,
        certificate_id: &str,
        given: BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, String> {
        let mut out = given;
        for (name, template) in &self.attributes {
            if out.contains_key(name) {
                continue;
            }
            let value = template
                .render(facts, certificate_id)
                .map_err(|f| format!("subject has no {f} for attribute {name}"))?;
            if let Some(bad) = value.chars().find(|c| !is_attribute_value_char(*c)) {
                return Err(format!(
                    "attribute {name}: \"{value}\" has '{bad}', which AWS IoT refuses in an \
                     attribute value ({ATTRIBUTE_VALUE_CHARS})"
                ));
            }
            if value.len() > MAX_ATTRIBUTE_VALUE {
                return Err(format!(
                    "attribute {name}: {} characters, more than AWS IoT's {MAX_ATTRIBUTE_VALUE}",
                    value.len()
                ));
            }
            out.insert(name.clone(), value);
        }
        Ok(out)
    }
}

impl std::fmt::Display for AttributeTemplates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
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

    /// JITR_THING_ATTRIBUTES as read at start-up: (text, with a thing type,
    /// the attribute names read, or the error's telling part).
    #[test]
    fn attribute_templates_are_checked_when_read() {
        let fifty: Vec<String> = (0..50).map(|i| format!("a{i}={{CN}}")).collect();
        let fifty = fifty.join(",");
        let fifty_one = format!("{fifty},a50=x");
        let long_value = format!("v={}{{CN}}", "x".repeat(800));
        let long_name = format!("{}=x", "n".repeat(129));
        type Row<'a> = (&'a str, bool, Result<Vec<&'a str>, &'a str>);
        #[rustfmt::skip]
        let table: Vec<Row> = vec![
            ("model={O},serial={serialNumber},cert={certificateId}", false,
                Ok(vec!["model", "serial", "cert"])),
            // Constants, AWS's value characters, spaces around pairs.
            (" site=berlin , line=L4:[a]=b#1 ", false, Ok(vec!["site", "line"])),
            ("a.b@c/d:e#f-g_h=x", false, Ok(vec!["a.b@c/d:e#f-g_h"])),
            ("", false, Ok(vec![])),
            ("model={O},", false, Ok(vec!["model"])),
            // The value's first '=' ends the name (names cannot hold '=').
            ("k=a=b", false, Ok(vec!["k"])),
            ("model", false, Err("\"model\" is not name=template")),
            ("model={O},serial", false, Err("\"serial\" is not name=template")),
            ("=x", false, Err("\"=x\": \"\" is not an attribute name")),
            ("my model=x", false, Err("\"my model=x\": \"my model\" is not an attribute name")),
            (long_name.as_str(), false, Err("is not an attribute name (1-128")),
            ("model=", false, Err("\"model=\": no value")),
            ("m={O},m={CN}", false, Err("\"m={CN}\": attribute m is named twice")),
            ("serial={serialNumbr}", false,
                Err("\"serial={serialNumbr}\": no field {serialNumbr}; the fields are {CN}")),
            ("model={O", false, Err("\"model={O\": a '{' without its '}'")),
            ("model=O}", false, Err("\"model=O}\": a '}' without its '{'")),
            ("model=a b", false, Err("\"model=a b\": ' ' cannot be in an attribute value (a-z")),
            ("model=a;b", false, Err("';' cannot be in an attribute value")),
            (long_value.as_str(), false, Err("longer than AWS IoT's 800 characters")),
            ("a=1,b=2,c=3", false, Ok(vec!["a", "b", "c"])),
            ("a=1,b=2,c=3,d=4", false,
                Err("4 attributes: a thing without a thing type carries at most 3 (AWS IoT quotas); with JITR_THING_TYPE up to 50")),
            ("a=1,b=2,c=3,d=4", true, Ok(vec!["a", "b", "c", "d"])),
            (fifty.as_str(), true, Ok((0..50).map(|_| "").collect())),
            (fifty_one.as_str(), true, Err("51 attributes: a thing of a thing type carries at most 50")),
        ];
        for (text, typed, expected) in table {
            match (AttributeTemplates::parse(text, typed), expected) {
                (Ok(t), Ok(names)) => {
                    assert_eq!(t.to_string(), text, "{text}");
                    assert_eq!(t.attributes.len(), names.len(), "{text}");
                    for ((name, _), want) in t.attributes.iter().zip(&names) {
                        assert!(want.is_empty() || name == want, "{text}: {name}");
                    }
                }
                (Err(e), Err(part)) => assert!(e.contains(part), "{text}: {e}"),
                (got, _) => panic!("{text}: {got:?}"),
            }
        }
    }

    fn facts(subject: &[(rcgen::DnType, &str)]) -> CertFacts {
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name = rcgen::DistinguishedName::new();
        for (t, v) in subject {
            p.distinguished_name.push(t.clone(), *v);
        }
        let key = rcgen::KeyPair::generate().unwrap();
        CertFacts::from_der(p.self_signed(&key).unwrap().der()).unwrap()
    }

    /// Attributes per certificate: what each renders to, or why the
    /// certificate is refused (a missing field, a value AWS IoT refuses).
    #[test]
    fn attributes_render_per_certificate_or_say_why_not() {
        use rcgen::DnType;
        let id = "ab".repeat(32);
        let template = "model={O},serial=sn-{serialNumber},cert={certificateId}";
        let t = AttributeTemplates::parse(template, false).unwrap();
        let good = facts(&[
            (DnType::CommonName, "robot-1"),
            (DnType::OrganizationName, "Acme:EU"),
            (DnType::CustomDnType(vec![2, 5, 4, 5]), "SN-1[a]=b"),
        ]);
        let rendered = t.render(&good, &id, BTreeMap::new()).unwrap();
        let expected: BTreeMap<String, String> = [
            ("model", "Acme:EU"),
            ("serial", "sn-SN-1[a]=b"),
            ("cert", id.as_str()),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .into();
        assert_eq!(rendered, expected);
        let long = "o".repeat(800);
        type Row<'a> = (&'a str, Vec<(DnType, &'a str)>, &'a str);
        #[rustfmt::skip]
        let table: Vec<Row> = vec![
            (template, vec![(DnType::CommonName, "robot-1")],
                "subject has no O for attribute model"),
            (template, vec![(DnType::OrganizationName, "Acme, Inc."),
                            (DnType::CustomDnType(vec![2, 5, 4, 5]), "1")],
                "attribute model: \"Acme, Inc.\" has ' ', which AWS IoT refuses in an attribute value (a-z A-Z 0-9 _ . , @ / : # = [ ] -)"),
            ("m={O}", vec![(DnType::OrganizationName, "Acme\u{e9}")],
                "attribute m: \"Acme\u{e9}\" has '\u{e9}'"),
            ("m=x{O}", vec![(DnType::OrganizationName, long.as_str())],
                "attribute m: 801 characters, more than AWS IoT's 800"),
        ];
        for (text, subject, expected) in table {
            let t = AttributeTemplates::parse(text, false).unwrap();
            let e = t
                .render(&facts(&subject), &id, BTreeMap::new())
                .unwrap_err();
            assert!(e.starts_with(expected), "{text} {subject:?}: {e}");
        }
        // Exactly 800 is AWS's limit, not past it.
        let t = AttributeTemplates::parse("m={O}", false).unwrap();
        let f = facts(&[(DnType::OrganizationName, long.as_str())]);
        assert_eq!(t.render(&f, &id, BTreeMap::new()).unwrap()["m"].len(), 800);
        // Given values win key by key, and what they replace is not
        // rendered (a subject without O is no reason to refuse then).
        let t = AttributeTemplates::parse("model={O},cert={certificateId}", false).unwrap();
        let given: BTreeMap<String, String> = [("model", "M-7"), ("batch", "B1")]
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .into();
        let got = t
            .render(&facts(&[(DnType::CommonName, "robot-1")]), &id, given)
            .unwrap();
        let want: BTreeMap<String, String> =
            [("model", "M-7"), ("batch", "B1"), ("cert", id.as_str())]
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .into();
        assert_eq!(got, want);
    }
}
