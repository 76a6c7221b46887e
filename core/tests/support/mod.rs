//! What the test modules share: certificates, configurations, SQS batches,
//! AWS IoT in memory ([`registry`]) and scripted SDK answers ([`sdk`]).

pub mod registry;
pub mod sdk;

use jitr_core::config::Config;
use serde_json::{json, Value};

/// The CA of the certificates the fakes make up.
pub const CA: &str = "caca000000000000000000000000000000000000000000000000000000000000";

/// Now, in seconds since the epoch.
pub fn now() -> i64 {
    jitr_core::clock::unix_seconds()
}

/// The ARN AWS IoT gives certificate `id`.
pub fn arn(id: &str) -> String {
    format!("arn:aws:iot:eu-west-1:123456789012:cert/{id}")
}

/// A fresh self-signed device certificate whose CN is `cn`, as PEM.
pub fn device_pem(cn: &str) -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(rcgen::DnType::CommonName, cn);
    p.self_signed(&key).unwrap().pem()
}

/// The configuration of policy jitr-device and `vars` (a later one wins).
pub fn config(vars: &[(&str, &str)]) -> Config {
    let mut all = vec![("JITR_POLICY_NAME", "jitr-device")];
    all.extend_from_slice(vars);
    Config::from_lookup(|k| {
        all.iter()
            .rev()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string())
    })
    .unwrap()
}

/// An SQS batch of registration events, each (message id, certificate
/// id), from `queue` (its ARN) when given.
pub fn batch<M: AsRef<str>, C: AsRef<str>>(queue: Option<&str>, records: &[(M, C)]) -> Value {
    let records: Vec<Value> = records
        .iter()
        .map(|(m, c)| {
            let body = json!({ "certificateId": c.as_ref(), "certificateStatus": "PENDING_ACTIVATION" });
            let mut record = json!({ "messageId": m.as_ref(), "body": body.to_string(), "eventSource": "aws:sqs" });
            if let Some(queue) = queue {
                record["eventSourceARN"] = json!(queue);
            }
            record
        })
        .collect();
    json!({ "Records": records })
}

/// The message ids an SQS batch answer reports as failed, sorted.
pub fn failures(answer: &Value) -> Vec<String> {
    let mut failed: Vec<String> = answer["batchItemFailures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap().to_string())
        .collect();
    failed.sort();
    failed
}
