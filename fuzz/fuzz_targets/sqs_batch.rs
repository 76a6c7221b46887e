//! The Lambda's entry point with any JSON payload: a direct event or an SQS
//! batch. Against an AWS IoT that knows no certificate, a direct event is an
//! error and every record of a batch is a batch item failure, reported once;
//! only well-formed events reach DescribeCertificate, once per certificate.
#![no_main]

use std::collections::HashSet;

use jitr_core::deadline::Deadline;
use jitr_core::event::RegisteredEvent;
use jitr_core::handler::{handle, Services};
use jitr_fuzz::{config, NoCertificates};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(payload) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let api = NoCertificates::default();
    let answer = futures::executor::block_on(handle(
        &Services::new(&api, &jitr_core::claims::NoClaims),
        config(),
        payload.clone(),
        1_700_000_000,
        Deadline::none(),
    ));
    let describes = api.describes.load(std::sync::atomic::Ordering::Relaxed);
    match answer {
        Ok(response) => {
            // Only a batch answers Ok here: every record failed, each listed.
            let records = payload["Records"].as_array().expect("a batch");
            let failures = response["batchItemFailures"]
                .as_array()
                .expect("batchItemFailures");
            assert_eq!(failures.len(), records.len(), "{response}");
            // Records of one certificate are looked up once.
            let certificates: HashSet<String> = records
                .iter()
                .filter_map(|r| RegisteredEvent::parse_text(r["body"].as_str()?).ok())
                .map(|e| e.certificate_id)
                .collect();
            assert_eq!(
                describes,
                certificates.len(),
                "only parsed records reach AWS, once per certificate"
            );
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
            // A direct event that parsed was looked up once; nothing else was.
            assert!(describes <= 1, "{e}");
            if describes == 1 {
                assert!(RegisteredEvent::parse(&payload).is_ok(), "{e}");
            }
        }
    }
});
