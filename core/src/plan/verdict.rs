//! The verifier hook's say on an activation the function's own checks
//! chose: refused, admitted as it is, or admitted with its choices.

use super::thing::checked_name;
use super::{Activation, Plan};
use crate::config::{Config, OnReject};
use crate::naming;
use crate::verifier::Verdict;

/// Whether the verifier hook is asked (see [`verified`]): when one is
/// configured, about activations only, i.e. certificates that passed the
/// function's own checks.
pub fn needs_verdict(config: &Config) -> bool {
    config.verifier_function.is_some()
}

/// The activation the function's own checks chose, as the verifier hook's
/// `verdict` (a fact: [`crate::verifier`]) leaves it. A refusal is a
/// rejection (REVOKED unless JITR_ON_REJECT=ignore) with the hook's reason.
/// An admission may choose the thing's name (held to
/// JITR_THING_NAME_PATTERN and AWS's rules), attributes (winning over the
/// function's, within the thing's limit) and groups (among
/// JITR_THING_GROUPS; the device group is always joined). Err: the hook was
/// not asked, or its answer breaks those rules: the hook's fault, not the
/// device's, so the record fails (it comes back), never admitted or revoked.
pub fn verified(
    activation: Activation,
    verdict: &Verdict,
    config: &Config,
) -> Result<Plan, String> {
    let choices = match verdict {
        Verdict::NotAsked if !needs_verdict(config) => return Ok(Plan::Activate(activation)),
        Verdict::NotAsked => return Err("the verifier hook was not asked".into()),
        Verdict::Reject(reason) => {
            let reason = Some(reason.trim())
                .filter(|r| !r.is_empty())
                .unwrap_or("(no reason given)");
            return Ok(Plan::Reject {
                reason: format!("rejected by the verifier hook: {reason}"),
                revoke: config.on_reject == OnReject::Revoke,
            });
        }
        Verdict::Admit(choices) => choices,
    };
    let mut a = activation;
    if let Some(name) = &choices.thing_name {
        a.thing_name = checked_name(name.clone(), config)?;
    }
    if let Some(chosen) = &choices.thing_groups {
        let configured =
            |g: &String| config.thing_groups.contains(g) || config.device_group.as_ref() == Some(g);
        if let Some(bad) = chosen.iter().find(|g| !configured(g)) {
            return Err(format!(
                "thing group \"{bad}\" is not one of JITR_THING_GROUPS ({})",
                if config.thing_groups.is_empty() {
                    "none configured".to_string()
                } else {
                    config.thing_groups.join(", ")
                }
            ));
        }
        a.thing_groups = config.device_group.iter().cloned().collect();
        for g in chosen {
            if !a.thing_groups.contains(g) {
                a.thing_groups.push(g.clone());
            }
        }
    }
    if !choices.attributes.is_empty() {
        let limit = naming::max_attributes(config.thing_type.is_some());
        if choices.attributes.len() > limit {
            return Err(format!(
                "{} attributes, more than the {limit} a thing {} may carry",
                choices.attributes.len(),
                if config.thing_type.is_some() {
                    "of a thing type"
                } else {
                    "without a thing type"
                }
            ));
        }
        let mut attributes = choices.attributes.clone();
        for (name, value) in &a.attributes {
            if attributes.len() >= limit {
                break;
            }
            attributes
                .entry(name.clone())
                .or_insert_with(|| value.clone());
        }
        a.attributes = attributes;
    }
    Ok(Plan::Activate(a))
}
