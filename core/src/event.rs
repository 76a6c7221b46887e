//! The `$aws/events/certificates/registered/<caId>` event, parsed strictly
//! where provisioning depends on a value (the certificate id) and not at all
//! elsewhere: everything else the event says (CA, status, account,
//! timestamps) is read again from DescribeCertificate, so an odd type in a
//! field we never read cannot fail an event.

use serde_json::Value;

/// A certificate registered by JITR, as the topic rule delivers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredEvent {
    /// 64 lowercase hex digits.
    pub certificate_id: String,
}

/// Why an event was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("the event is not a JSON object (got {0})")]
    NotAnObject(&'static str),
    #[error("the event has no certificateId")]
    MissingCertificateId,
    #[error("field {field}: expected {expected}, got {got}")]
    WrongType {
        field: &'static str,
        expected: &'static str,
        got: String,
    },
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// An optional string field: absent or null is `None`.
fn opt_string(
    obj: &serde_json::Map<String, Value>,
    field: &'static str,
) -> Result<Option<String>, EventError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(EventError::WrongType {
            field,
            expected: "a string",
            got: kind(other).into(),
        }),
    }
}

impl RegisteredEvent {
    /// Parses one event.
    pub fn parse(value: &Value) -> Result<Self, EventError> {
        let obj = value
            .as_object()
            .ok_or_else(|| EventError::NotAnObject(kind(value)))?;
        let certificate_id =
            opt_string(obj, "certificateId")?.ok_or(EventError::MissingCertificateId)?;
        if !crate::rules::is_certificate_id(&certificate_id) {
            return Err(EventError::WrongType {
                field: "certificateId",
                expected: "64 hex digits",
                got: format!("\"{certificate_id}\""),
            });
        }
        Ok(RegisteredEvent {
            certificate_id: certificate_id.to_ascii_lowercase(),
        })
    }

    /// Parses the body of an SQS message carrying one event.
    pub fn parse_text(text: &str) -> Result<Self, EventError> {
        let value: Value = serde_json::from_str(text).map_err(|e| EventError::WrongType {
            field: "body",
            expected: "JSON",
            got: e.to_string(),
        })?;
        Self::parse(&value)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const ID: &str = "4c6cb9c9d3e9bfd7b1ba5f0e3c4e48e8d5e0d3f1c2a5f7a9b0c1d2e3f4a5b6c7";

    #[test]
    fn documented_and_captured_shapes_parse() {
        let documented = json!({
            "certificateId": ID, "caCertificateId": "ca", "timestamp": 1_700_000_000_000_i64,
            "certificateStatus": "PENDING_ACTIVATION", "awsAccountId": "123456789012",
            "certificateRegistrationTimestamp": "1700000000000"
        });
        let e = RegisteredEvent::parse(&documented).unwrap();
        assert_eq!(e.certificate_id, ID);
        let captured = json!({ "certificateId": ID.to_uppercase(), "certificateRegistrationTimestamp": null, "timestamp": "1700000000000", "extra": [1, 2] });
        let e = RegisteredEvent::parse(&captured).unwrap();
        assert_eq!(e.certificate_id, ID, "ids are normalised to lowercase");
    }

    /// Fields provisioning never reads do not fail an event, whatever their type.
    #[test]
    fn fields_never_read_never_fail_an_event() {
        for odd in [
            json!({ "certificateId": ID, "timestamp": "soon" }),
            json!({ "certificateId": ID, "caCertificateId": {} }),
            json!({ "certificateId": ID, "certificateStatus": 7, "awsAccountId": [1] }),
            json!({ "certificateId": ID, "certificateRegistrationTimestamp": true }),
        ] {
            let e = RegisteredEvent::parse(&odd).unwrap_or_else(|e| panic!("{odd}: {e}"));
            assert_eq!(e.certificate_id, ID);
        }
    }

    #[test]
    fn malformed_events_are_named_errors() {
        let cases = [
            (json!([1]), "not a JSON object"),
            (json!("text"), "not a JSON object"),
            (json!({}), "no certificateId"),
            (json!({ "certificateId": null }), "no certificateId"),
            (
                json!({ "certificateId": 42 }),
                "certificateId: expected a string",
            ),
            (
                json!({ "certificateId": "abc" }),
                "certificateId: expected 64 hex digits",
            ),
        ];
        for (value, message) in cases {
            let err = RegisteredEvent::parse(&value).unwrap_err().to_string();
            assert!(err.contains(message), "{value}: {err}");
        }
        assert!(RegisteredEvent::parse_text("{not json")
            .unwrap_err()
            .to_string()
            .contains("body: expected JSON"));
    }
}
