//! How a setting's text becomes a value: a list, one of a few words, a
//! number within bounds, a name of AWS's characters.

use std::fmt::Display;
use std::ops::RangeInclusive;
use std::str::FromStr;

use super::error::{err, ConfigError};

/// The settings by name, trimmed; an empty one is unset (None).
pub(super) type Get<'a> = &'a dyn Fn(&str) -> Option<String>;

/// A comma-separated list: items trimmed, empty ones dropped.
pub(super) fn list(value: Option<String>) -> Vec<String> {
    value
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// `variable` as one of `choices` (its word, its value); unset: `default`.
pub(super) fn one_of<T: Copy>(
    get: Get,
    variable: &'static str,
    default: T,
    choices: &[(&str, T)],
) -> Result<T, ConfigError> {
    let Some(word) = get(variable) else {
        return Ok(default);
    };
    match choices.iter().find(|(w, _)| *w == word) {
        Some((_, value)) => Ok(*value),
        None => {
            let words: Vec<&str> = choices.iter().map(|(w, _)| *w).collect();
            Err(err(
                variable,
                format!("\"{word}\" is not one of {}", words.join(", ")),
            ))
        }
    }
}

/// `variable` as a number of `unit` within `bounds`; unset: `default`.
pub(super) fn number_in<T: FromStr + PartialOrd + Display>(
    get: Get,
    variable: &'static str,
    default: T,
    bounds: RangeInclusive<T>,
    unit: &str,
) -> Result<T, ConfigError> {
    let Some(v) = get(variable) else {
        return Ok(default);
    };
    v.parse::<T>()
        .ok()
        .filter(|n| bounds.contains(n))
        .ok_or_else(|| {
            err(
                variable,
                format!(
                    "\"{v}\" is not a number of {unit} from {} to {}",
                    bounds.start(),
                    bounds.end()
                ),
            )
        })
}

/// Whether `value` is 1 to `max` characters of a-z A-Z 0-9 and `others`:
/// the shape of AWS's names (policies, thing types and groups, event buses).
pub(super) fn is_name(value: &str, max: usize, others: &str) -> bool {
    (1..=max).contains(&value.len())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || others.contains(c))
}
