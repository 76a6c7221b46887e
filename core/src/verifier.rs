//! The verifier hook (`JITR_VERIFIER_FUNCTION`): a Lambda function of the
//! operator's, asked synchronously about each certificate the function's
//! own checks admitted ([`Question`]), answering `{"admit": bool, "reason":
//! str}` and optionally the thing's name, attributes and groups. Asking is
//! the only I/O ([`crate::verifier_function`]); what the answer means is
//! [`crate::plan::verified`]'s decision. A hook that cannot be asked, fails
//! or answers malformed JSON fails the record (it comes back): never
//! admitted, never revoked, on a guess.

use std::collections::BTreeMap;
use std::future::Future;

use serde::Serialize;
use serde_json::Value;

use crate::facts::CertFacts;

/// What the hook is told about a certificate (JSON, camelCase).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Question {
    pub certificate_id: String,
    pub ca_certificate_id: Option<String>,
    /// The subject's attributes by short name (`CN`, `O`, `serialNumber`,
    /// ...); the first value of a repeated one.
    pub subject: BTreeMap<String, String>,
    /// The subject as text (RFC 4514).
    pub subject_text: String,
    /// The certificate's serial number, hex.
    pub serial: String,
    /// Validity, RFC 3339 (UTC).
    pub not_before: String,
    pub not_after: String,
    /// `EC P-256`, `EC P-384`, `RSA-2048`, ...
    pub key_type: String,
    /// What the function would do without the hook.
    pub proposed: Proposed,
}

/// The function's own choices, which the hook may keep or replace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Proposed {
    pub thing_name: String,
    pub attributes: BTreeMap<String, String>,
    pub thing_groups: Vec<String>,
}

impl Question {
    /// The question about certificate `certificate_id` of CA
    /// `ca_certificate_id`, which says `facts`, and which the function's
    /// own checks admitted as `proposed`.
    pub fn new(
        certificate_id: &str,
        ca_certificate_id: Option<&str>,
        facts: &CertFacts,
        proposed: Proposed,
    ) -> Question {
        let mut subject = BTreeMap::new();
        for a in &facts.subject {
            subject
                .entry(a.name.clone())
                .or_insert_with(|| a.value.clone());
        }
        Question {
            certificate_id: certificate_id.to_string(),
            ca_certificate_id: ca_certificate_id.map(str::to_string),
            subject,
            subject_text: facts.subject_text.clone(),
            serial: facts.serial_hex.clone(),
            not_before: crate::facts::rfc3339(facts.not_before),
            not_after: crate::facts::rfc3339(facts.not_after),
            key_type: facts.key.to_string(),
            proposed,
        }
    }
}

/// What the hook said: a fact for the decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Not asked: no hook configured, or nothing to ask it about.
    NotAsked,
    /// Admitted, with the hook's choices (checked against the
    /// configuration by [`crate::plan::verified`]).
    Admit(Choices),
    /// Refused, with the hook's reason.
    Reject(String),
}

/// What an admitting hook chose; None / empty: the function's own choice.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Choices {
    pub thing_name: Option<String>,
    /// Win over the function's own attributes.
    pub attributes: BTreeMap<String, String>,
    /// Replace the configured groups (JITR_THING_GROUPS), among which they
    /// must be; the device group is always joined.
    pub thing_groups: Option<Vec<String>>,
}

/// Why the hook gave no usable answer: it could not be invoked, it failed
/// (a FunctionError), or its answer is malformed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("verifier hook {function}: {reason}")]
pub struct VerifierError {
    pub function: String,
    pub reason: String,
}

/// The hook (a Lambda function in the deployed function).
pub trait Verifier: Sync {
    /// The hook's verdict on the certificate `question` describes.
    fn verify(
        &self,
        question: &Question,
    ) -> impl Future<Output = Result<Verdict, VerifierError>> + Send;
}

/// No hook wired: every question fails, so with `JITR_VERIFIER_FUNCTION`
/// set but no hook wired (`jitr provision`, `jitr reconcile`) nothing is
/// admitted (nor revoked).
pub struct NoVerifier;

impl Verifier for NoVerifier {
    async fn verify(&self, _: &Question) -> Result<Verdict, VerifierError> {
        Err(VerifierError {
            function: "(none)".into(),
            reason: "JITR_VERIFIER_FUNCTION is set, but no hook is wired here (only the deployed function invokes it)".into(),
        })
    }
}

/// A hook, or none configured (then as [`NoVerifier`]).
impl<V: Verifier> Verifier for Option<V> {
    async fn verify(&self, question: &Question) -> Result<Verdict, VerifierError> {
        match self {
            Some(hook) => hook.verify(question).await,
            None => NoVerifier.verify(question).await,
        }
    }
}

/// The fields an answer may have.
const ANSWER_FIELDS: [&str; 5] = ["admit", "reason", "thingName", "attributes", "thingGroups"];

/// Reads the hook's answer: a JSON object with `admit` (boolean) and
/// `reason` (string), and optionally `thingName` (string), `attributes`
/// (object of strings, each name and value as AWS IoT's API model allows)
/// and `thingGroups` (array of strings); null is absent. Anything else
/// (another type, an unknown field: a misspelt one would be ignored
/// silently) is malformed, named in the error.
pub fn parse_answer(payload: &[u8]) -> Result<Verdict, String> {
    let value: Value = serde_json::from_slice(payload).map_err(|e| format!("not JSON ({e})"))?;
    let Value::Object(answer) = &value else {
        return Err(format!("expected a JSON object, got {}", shown(&value)));
    };
    if let Some(unknown) = answer.keys().find(|k| !ANSWER_FIELDS.contains(&k.as_str())) {
        return Err(format!(
            "unknown field \"{unknown}\"; the fields are {}",
            ANSWER_FIELDS.join(", ")
        ));
    }
    let admit = match answer.get("admit") {
        Some(Value::Bool(b)) => *b,
        None => return Err("no \"admit\" (true or false)".into()),
        Some(other) => {
            return Err(format!(
                "\"admit\" is {}, expected true or false",
                shown(other)
            ))
        }
    };
    let reason = match answer.get("reason") {
        Some(Value::String(s)) => s.clone(),
        None => return Err("no \"reason\" (a string)".into()),
        Some(other) => return Err(format!("\"reason\" is {}, expected a string", shown(other))),
    };
    // A rejection's other fields mean nothing.
    if !admit {
        return Ok(Verdict::Reject(reason));
    }
    let thing_name = match answer.get("thingName") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            return Err(format!(
                "\"thingName\" is {}, expected a string",
                shown(other)
            ))
        }
    };
    let attributes = match answer.get("attributes") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(Value::Object(map)) => {
            let mut attributes = BTreeMap::new();
            for (name, value) in map {
                let Value::String(value) = value else {
                    return Err(format!(
                        "attribute \"{name}\" is {}, expected a string",
                        shown(value)
                    ));
                };
                if let Some(problem) = attribute_problem(name, value) {
                    return Err(problem);
                }
                attributes.insert(name.clone(), value.clone());
            }
            attributes
        }
        Some(other) => {
            return Err(format!(
                "\"attributes\" is {}, expected an object of strings",
                shown(other)
            ))
        }
    };
    let thing_groups = match answer.get("thingGroups") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|g| match g {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(format!(
                        "\"thingGroups\" holds {}, expected strings",
                        shown(other)
                    )),
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Some(other) => {
            return Err(format!(
                "\"thingGroups\" is {}, expected an array of strings",
                shown(other)
            ))
        }
    };
    Ok(Verdict::Admit(Choices {
        thing_name,
        attributes,
        thing_groups,
    }))
}

/// What is wrong with an attribute, by AWS IoT's API model (botocore's
/// iot service-2.json): AttributeName `[a-zA-Z0-9_.,@/:#-]+`, at most 128;
/// AttributeValue `[a-zA-Z0-9_.,@/:#=\[\]-]*`, at most 800.
pub fn attribute_problem(name: &str, value: &str) -> Option<String> {
    let name_ok = (1..=128).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.,@/:#-".contains(c));
    if !name_ok {
        return Some(format!(
            "attribute name \"{name}\" is not valid (1-128 of a-z A-Z 0-9 _ . , @ / : # -)"
        ));
    }
    let value_ok = value.len() <= 800
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.,@/:#=[]-".contains(c));
    (!value_ok).then(|| {
        format!(
            "attribute \"{name}\": value \"{value}\" is not valid (0-800 of a-z A-Z 0-9 _ . , @ / : # = [ ] -)"
        )
    })
}

/// A JSON value as an error message shows it: its text, cut short.
fn shown(v: &Value) -> String {
    let text = v.to_string();
    match text.char_indices().nth(60) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    }
}

/// Checks `JITR_VERIFIER_FUNCTION`: an unqualified Lambda function ARN
/// (`arn:<partition>:lambda:<region>:<account>:function:<name>`), exactly
/// the resource the function's role may invoke (the templates' grant).
pub fn check_function_arn(arn: &str) -> Result<(), String> {
    let parts: Vec<&str> = arn.split(':').collect();
    let ok = parts.len() == 7
        && parts[0] == "arn"
        && parts[1]
            .strip_prefix("aws")
            .is_some_and(|rest| rest.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
        && parts[2] == "lambda"
        && !parts[3].is_empty()
        && parts[3]
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && parts[4].len() == 12
        && parts[4].chars().all(|c| c.is_ascii_digit())
        && parts[5] == "function"
        && (1..=64).contains(&parts[6].len())
        && parts[6]
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "\"{arn}\" is not a Lambda function ARN \
             (arn:aws:lambda:<region>:<account>:function:<name>, without a version or alias)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admit(choices: Choices) -> Result<Verdict, String> {
        Ok(Verdict::Admit(choices))
    }

    #[test]
    fn answers_are_read_or_named_malformed() {
        let attrs = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        #[rustfmt::skip]
        let table: Vec<(&str, Result<Verdict, String>)> = vec![
            (r#"{"admit": true, "reason": ""}"#, admit(Choices::default())),
            (r#"{"admit": false, "reason": "not in the asset library"}"#, Ok(Verdict::Reject("not in the asset library".into()))),
            // A rejection's other fields mean nothing (but are known fields).
            (r#"{"admit": false, "reason": "no", "thingName": 7, "attributes": {"a b": "c"}}"#, Ok(Verdict::Reject("no".into()))),
            (r#"{"admit": true, "reason": "ok", "thingName": "robot-7", "attributes": {"batch": "B[7]=a"}, "thingGroups": ["fleet"]}"#,
                admit(Choices { thing_name: Some("robot-7".into()), attributes: attrs(&[("batch", "B[7]=a")]), thing_groups: Some(vec!["fleet".into()]) })),
            // null is absent; an empty list of groups is a choice (no configured group).
            (r#"{"admit": true, "reason": "ok", "thingName": null, "attributes": null, "thingGroups": []}"#,
                admit(Choices { thing_groups: Some(vec![]), ..Choices::default() })),
            ("", Err("not JSON (EOF while parsing a value at line 1 column 0)".into())),
            ("admit", Err("not JSON (expected value at line 1 column 1)".into())),
            ("null", Err("expected a JSON object, got null".into())),
            (r#""{\"admit\": true}""#, Err(r#"expected a JSON object, got "{\"admit\": true}""#.into())),
            (r#"[true]"#, Err("expected a JSON object, got [true]".into())),
            (r#"{"reason": "ok"}"#, Err(r#"no "admit" (true or false)"#.into())),
            (r#"{"admit": "yes", "reason": "ok"}"#, Err(r#""admit" is "yes", expected true or false"#.into())),
            (r#"{"admit": 1, "reason": "ok"}"#, Err(r#""admit" is 1, expected true or false"#.into())),
            (r#"{"admit": true}"#, Err(r#"no "reason" (a string)"#.into())),
            (r#"{"admit": true, "reason": null}"#, Err(r#""reason" is null, expected a string"#.into())),
            (r#"{"admit": true, "reason": "", "thing_name": "robot-7"}"#, Err(r#"unknown field "thing_name"; the fields are admit, reason, thingName, attributes, thingGroups"#.into())),
            (r#"{"admit": true, "reason": "", "thingName": 7}"#, Err(r#""thingName" is 7, expected a string"#.into())),
            (r#"{"admit": true, "reason": "", "attributes": ["a"]}"#, Err(r#""attributes" is ["a"], expected an object of strings"#.into())),
            (r#"{"admit": true, "reason": "", "attributes": {"n": 1}}"#, Err(r#"attribute "n" is 1, expected a string"#.into())),
            (r#"{"admit": true, "reason": "", "attributes": {"bad name": "1"}}"#, Err(r#"attribute name "bad name" is not valid (1-128 of a-z A-Z 0-9 _ . , @ / : # -)"#.into())),
            (r#"{"admit": true, "reason": "", "attributes": {"site": "Halle 4"}}"#, Err(r#"attribute "site": value "Halle 4" is not valid (0-800 of a-z A-Z 0-9 _ . , @ / : # = [ ] -)"#.into())),
            (r#"{"admit": true, "reason": "", "thingGroups": "fleet"}"#, Err(r#""thingGroups" is "fleet", expected an array of strings"#.into())),
            (r#"{"admit": true, "reason": "", "thingGroups": ["fleet", 2]}"#, Err(r#""thingGroups" holds 2, expected strings"#.into())),
        ];
        for (payload, expected) in table {
            assert_eq!(parse_answer(payload.as_bytes()), expected, "{payload}");
        }
    }

    #[test]
    fn attributes_follow_aws_s_model() {
        let long_name = "n".repeat(128);
        let too_long_name = "n".repeat(129);
        let long_value = "v".repeat(800);
        let too_long_value = "v".repeat(801);
        for (name, value, ok) in [
            ("batch", "", true),
            ("a_.,@/:#-Z9", "a_.,@/:#=[]-Z9", true),
            (long_name.as_str(), long_value.as_str(), true),
            (too_long_name.as_str(), "v", false),
            ("n", too_long_value.as_str(), false),
            ("", "v", false),
            ("a=b", "v", false),
            ("n", "caf\u{e9}", false),
            ("n", "a b", false),
        ] {
            assert_eq!(
                attribute_problem(name, value).is_none(),
                ok,
                "{name}={value}"
            );
        }
    }

    #[test]
    fn the_hook_is_an_unqualified_function_arn() {
        for (arn, ok) in [
            (
                "arn:aws:lambda:eu-west-1:123456789012:function:verify",
                true,
            ),
            (
                "arn:aws-cn:lambda:cn-north-1:123456789012:function:verify_2-a",
                true,
            ),
            (
                "arn:aws-us-gov:lambda:us-gov-west-1:123456789012:function:v",
                true,
            ),
            (
                "arn:aws:lambda:eu-west-1:123456789012:function:verify:live",
                false,
            ),
            (
                "arn:aws:lambda:eu-west-1:123456789012:function:verify:1",
                false,
            ),
            ("verify", false),
            ("arn:aws:lambda:eu-west-1:1234:function:verify", false),
            ("arn:aws:iot:eu-west-1:123456789012:function:verify", false),
            ("arn:aws:lambda::123456789012:function:verify", false),
            ("arn:aws:lambda:eu-west-1:123456789012:layer:verify", false),
            ("arn:aws:lambda:eu-west-1:123456789012:function:", false),
            ("arn:aws:lambda:eu-west-1:123456789012:function:a.b", false),
        ] {
            let checked = check_function_arn(arn);
            assert_eq!(checked.is_ok(), ok, "{arn}: {checked:?}");
            if let Err(e) = checked {
                assert!(
                    e.contains(arn) && e.contains("without a version or alias"),
                    "{e}"
                );
            }
        }
        let long = format!(
            "arn:aws:lambda:eu-west-1:123456789012:function:{}",
            "f".repeat(64)
        );
        assert!(check_function_arn(&long).is_ok());
        assert!(check_function_arn(&format!("{long}f")).is_err());
    }
}
