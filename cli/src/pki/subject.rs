//! Subject strings such as `CN=Acme Root,O=Acme\, Inc.,C=DE`: parsed into
//! typed attributes, commas escaped with a backslash.

use rcgen::{DistinguishedName, DnType, DnValue};

/// One attribute jitr can put in a subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// The canonical short name (`CN`, `O`, `OU`, `C`, `ST`, `L`, `serialNumber`, `dnQualifier`).
    pub name: &'static str,
    pub value: String,
}

/// The attribute names accepted, canonical spelling first.
const NAMES: [&str; 8] = [
    "CN",
    "O",
    "OU",
    "C",
    "ST",
    "L",
    "serialNumber",
    "dnQualifier",
];

/// Canonical spelling of an attribute name, compared case-insensitively.
pub fn canonical_name(name: &str) -> Option<&'static str> {
    NAMES
        .iter()
        .copied()
        .find(|n| n.eq_ignore_ascii_case(name.trim()))
}

/// Parses `KEY=VALUE,KEY=VALUE`; the error says what was expected. An
/// attribute given twice is refused (one value per attribute name).
pub fn parse(text: &str) -> Result<Vec<Attribute>, String> {
    let mut attrs: Vec<Attribute> = Vec::new();
    for part in split_unescaped(text) {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let (key, value) = part.split_once('=').ok_or_else(|| {
            format!("\"{part}\" is not KEY=VALUE (expected e.g. \"CN=Acme Root,O=Acme,C=DE\")")
        })?;
        let name = canonical_name(key).ok_or_else(|| {
            format!(
                "unknown attribute \"{}\" (expected one of {})",
                key.trim(),
                NAMES.join(", ")
            )
        })?;
        if attrs.iter().any(|a| a.name == name) {
            return Err(format!("{name} is given twice (one value per attribute)"));
        }
        attrs.push(validated(name, value.trim())?);
    }
    Ok(attrs)
}

/// Checks one attribute value; used for subject strings and CSV columns alike.
pub fn validated(name: &'static str, value: &str) -> Result<Attribute, String> {
    if value.is_empty() {
        return Err(format!("{name} has an empty value"));
    }
    if value.chars().any(char::is_control) {
        return Err(format!(
            "{name} contains a control character such as NUL or a newline (expected printable text)"
        ));
    }
    if value.chars().count() > 128 {
        return Err(format!("{name} is longer than 128 characters"));
    }
    if name == "C" && !(value.len() == 2 && value.bytes().all(|b| b.is_ascii_uppercase())) {
        return Err(format!(
            "C must be a two-letter country code such as DE, got \"{value}\""
        ));
    }
    Ok(Attribute {
        name,
        value: value.to_string(),
    })
}

/// Replaces or appends `attr` (one value per attribute name).
pub(crate) fn set(attrs: &mut Vec<Attribute>, attr: Attribute) {
    match attrs.iter_mut().find(|a| a.name == attr.name) {
        Some(slot) => *slot = attr,
        None => attrs.push(attr),
    }
}

/// The rcgen distinguished name for these attributes, in order.
pub fn to_distinguished_name(attrs: &[Attribute]) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    for a in attrs {
        let (ty, printable) = match a.name {
            "CN" => (DnType::CommonName, false),
            "O" => (DnType::OrganizationName, false),
            "OU" => (DnType::OrganizationalUnitName, false),
            "C" => (DnType::CountryName, true),
            "ST" => (DnType::StateOrProvinceName, false),
            "L" => (DnType::LocalityName, false),
            "serialNumber" => (DnType::CustomDnType(vec![2, 5, 4, 5]), true),
            "dnQualifier" => (DnType::CustomDnType(vec![2, 5, 4, 46]), true),
            _ => unreachable!("attribute names are canonical"),
        };
        // X.520 wants PrintableString for C, serialNumber and dnQualifier.
        // rcgen accepts '?' in one, but its DER writer (yasna 0.6) panics on
        // it (found by fuzzing): such values are written as UTF8String.
        let printable = printable && !a.value.contains('?');
        let value =
            match printable.then(|| rcgen::string::PrintableString::try_from(a.value.as_str())) {
                Some(Ok(p)) => DnValue::PrintableString(p),
                _ => DnValue::Utf8String(a.value.clone()),
            };
        dn.push(ty, value);
    }
    dn
}

fn split_unescaped(text: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(next) => parts.last_mut().unwrap().push(next),
                None => parts.last_mut().unwrap().push('\\'),
            },
            ',' => parts.push(String::new()),
            c => parts.last_mut().unwrap().push(c),
        }
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_canonicalises() {
        let attrs = parse("cn=Acme Root, O=Acme\\, Inc.,c=DE,SERIALNUMBER=42").unwrap();
        let got: Vec<_> = attrs.iter().map(|a| (a.name, a.value.as_str())).collect();
        assert_eq!(
            got,
            [
                ("CN", "Acme Root"),
                ("O", "Acme, Inc."),
                ("C", "DE"),
                ("serialNumber", "42")
            ]
        );
    }

    #[test]
    fn errors_say_what_was_expected() {
        for (input, needle) in [
            ("CN", "is not KEY=VALUE"),
            ("XX=1", "unknown attribute \"XX\""),
            ("C=Germany", "two-letter country code"),
            ("CN=", "empty value"),
            ("O=a,O=b", "O is given twice"),
            ("cn=a,CN=b", "CN is given twice"),
            ("O=a\0b", "control character"),
            ("O=a\nb", "control character"),
            ("O=a\rb", "control character"),
        ] {
            let err = parse(input).unwrap_err();
            assert!(err.contains(needle), "{input}: {err}");
        }
    }

    #[test]
    fn question_mark_in_printable_attributes_encodes() {
        // Fuzzing found `serialNumber=a?` panicking inside rcgen's DER writer.
        let attrs = parse("CN=Root,serialNumber=a?,dnQualifier=?").unwrap();
        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name = to_distinguished_name(&attrs);
        let key = rcgen::KeyPair::generate().unwrap();
        let der = params.self_signed(&key).unwrap().der().to_vec();
        let facts = jitr_core::CertFacts::from_der(&der).unwrap();
        assert_eq!(facts.subject_attr("serialNumber"), Some("a?"));
        assert_eq!(facts.subject_attr("dnQualifier"), Some("?"));
    }

    #[test]
    fn set_replaces_by_name() {
        let mut attrs = parse("CN=a,O=x").unwrap();
        set(&mut attrs, validated("O", "y").unwrap());
        set(&mut attrs, validated("OU", "z").unwrap());
        let got: Vec<_> = attrs.iter().map(|a| a.value.as_str()).collect();
        assert_eq!(got, ["a", "y", "z"]);
    }
}
