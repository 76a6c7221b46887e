//! The `$aws/events/certificates/registered/<caId>` event, parsed leniently
//! where AWS is loose (timestamps as numbers, strings or null; extra fields)
//! and strictly where provisioning depends on a value (the certificate id).

use serde_json::Value;

/// A certificate registered by JITR, as the topic rule delivers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredEvent {
    /// 64 lowercase hex digits.
    pub certificate_id: String,
    pub ca_certificate_id: Option<String>,
    pub certificate_status: Option<String>,
    pub aws_account_id: Option<String>,
    /// Epoch milliseconds.
    pub timestamp: Option<i64>,
    pub certificate_registration_timestamp: Option<i64>,
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

/// A timestamp: a number, a string of digits, or null.
fn opt_timestamp(
    obj: &serde_json::Map<String, Value>,
    field: &'static str,
) -> Result<Option<i64>, EventError> {
    let wrong = |got: String| EventError::WrongType {
        field,
        expected: "epoch milliseconds (number or digits)",
        got,
    };
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .map(Some)
            .ok_or_else(|| wrong(n.to_string())),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| wrong(format!("\"{s}\""))),
        Some(other) => Err(wrong(kind(other).into())),
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
            ca_certificate_id: opt_string(obj, "caCertificateId")?,
            certificate_status: opt_string(obj, "certificateStatus")?,
            aws_account_id: opt_string(obj, "awsAccountId")?,
            timestamp: opt_timestamp(obj, "timestamp")?,
            certificate_registration_timestamp: opt_timestamp(
                obj,
                "certificateRegistrationTimestamp",
            )?,
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
        assert_eq!(e.timestamp, Some(1_700_000_000_000));
        assert_eq!(
            e.certificate_registration_timestamp,
            Some(1_700_000_000_000)
        );
        let captured = json!({ "certificateId": ID.to_uppercase(), "certificateRegistrationTimestamp": null, "timestamp": "1700000000000", "extra": [1, 2] });
        let e = RegisteredEvent::parse(&captured).unwrap();
        assert_eq!(e.certificate_id, ID, "ids are normalised to lowercase");
        assert_eq!(e.certificate_registration_timestamp, None);
        assert_eq!(e.ca_certificate_id, None);
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
            (
                json!({ "certificateId": ID, "timestamp": "soon" }),
                "timestamp: expected epoch",
            ),
            (
                json!({ "certificateId": ID, "caCertificateId": {} }),
                "caCertificateId: expected a string",
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
