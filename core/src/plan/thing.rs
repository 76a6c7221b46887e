//! The new thing: its name (by the template or the allow-list, held to
//! the pattern and AWS's rules), its attributes and its groups.

use std::collections::BTreeMap;

use crate::config::Config;
use crate::facts::CertFacts;
use crate::naming::{self, NameTemplate};
use crate::rules;

/// Subject fields copied into thing attributes without
/// JITR_THING_ATTRIBUTES, in priority order: a thing without a thing type
/// may carry only three attributes.
const ATTRIBUTES: [(&str, &str); 5] = [
    ("serialNumber", "serialNumber"),
    ("O", "organization"),
    ("OU", "organizationalUnit"),
    ("C", "country"),
    ("dnQualifier", "dnQualifier"),
];

/// An attribute value AWS IoT accepts: `[a-zA-Z0-9_.,@/:#-]`, at most 800
/// characters; anything else becomes `_`.
fn attribute_value(value: &str) -> String {
    value
        .chars()
        .take(800)
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.,@/:#-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The thing's attributes: the allow-list entry's win, key by key, over
/// JITR_THING_ATTRIBUTES' (a value it would render outside AWS's pattern
/// refuses the certificate, as a name outside the pattern does) or, without
/// it, over the subject's, which give way within the thing's limit.
pub(super) fn attributes_of(
    certificate_id: &str,
    facts: &CertFacts,
    config: &Config,
    entry: Option<&crate::admission::Entry>,
) -> Result<BTreeMap<String, String>, String> {
    let limit = naming::max_attributes(config.thing_type.is_some());
    let mut attributes = BTreeMap::new();
    for (name, value) in entry.iter().flat_map(|e| &e.attributes) {
        if !naming::is_attribute_name(name) {
            return Err(format!(
                "allow-list entry: attribute name \"{name}\" is not valid (1-128 of a-z A-Z 0-9 _ . , @ / : # -)"
            ));
        }
        attributes.insert(name.clone(), attribute_value(value));
    }
    if let Some(templates) = &config.thing_attributes {
        attributes = templates.render(facts, certificate_id, attributes)?;
    } else {
        let subject = ATTRIBUTES.iter().filter_map(|(field, attribute)| {
            facts
                .subject_attr(field)
                .map(|v| (attribute.to_string(), attribute_value(v)))
        });
        for (name, value) in subject {
            if attributes.len() >= limit {
                break;
            }
            attributes.entry(name).or_insert(value);
        }
    }
    if attributes.len() > limit {
        return Err(format!(
            "allow-list entry{}: {} attributes, more than the {limit} a thing {} may carry",
            if config.thing_attributes.is_some() {
                " with JITR_THING_ATTRIBUTES"
            } else {
                ""
            },
            attributes.len(),
            if config.thing_type.is_some() {
                "of a thing type"
            } else {
                "without a thing type"
            }
        ));
    }
    Ok(attributes)
}

/// The groups a new thing joins: the device group first (its policy is
/// what the device may do), then the configured ones, each once.
pub(super) fn groups(config: &Config) -> Vec<String> {
    let mut groups: Vec<String> = config.device_group.iter().cloned().collect();
    for g in &config.thing_groups {
        if !groups.contains(g) {
            groups.push(g.clone());
        }
    }
    groups
}

/// The thing the certificate `certificate_id` belongs to: the allow-list
/// entry's name when it has one, else by JITR_THING_NAME_TEMPLATE; unchecked.
pub(super) fn thing_name_of(
    certificate_id: &str,
    facts: &CertFacts,
    config: &Config,
    listed: Option<&str>,
) -> Result<String, String> {
    match listed {
        Some(name) => Ok(name.to_string()),
        None => named_by(&config.thing_name, facts, certificate_id),
    }
}

/// The thing a certificate names by JITR_THING_NAME_TEMPLATE, checked
/// against JITR_THING_NAME_PATTERN and AWS's rules.
pub(super) fn thing_name(
    certificate_id: &str,
    facts: &CertFacts,
    config: &Config,
) -> Result<String, String> {
    checked_name(thing_name_of(certificate_id, facts, config, None)?, config)
}

/// `thing_name`, if JITR_THING_NAME_PATTERN and AWS's rules accept it.
pub(super) fn checked_name(thing_name: String, config: &Config) -> Result<String, String> {
    if !config.thing_name_pattern.is_match(&thing_name) {
        return Err(format!(
            "thing name \"{thing_name}\" does not match JITR_THING_NAME_PATTERN {}",
            config.thing_name_pattern.as_str()
        ));
    }
    if !rules::is_thing_name(&thing_name) {
        return Err(format!(
            "\"{thing_name}\" is not a valid thing name (1-128 of a-z A-Z 0-9 : _ -)"
        ));
    }
    Ok(thing_name)
}

/// The thing name `template` gives a certificate (`certificate_id` is
/// its id), unchecked; `jitr connect` uses it too, so its client id is the
/// name the function gives the thing.
pub fn named_by(
    template: &NameTemplate,
    facts: &CertFacts,
    certificate_id: &str,
) -> Result<String, String> {
    template.render(facts, certificate_id)
}
