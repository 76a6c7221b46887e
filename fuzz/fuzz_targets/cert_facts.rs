//! Certificate facts from PEM or DER, as the CLI reads files and the Lambda
//! reads DescribeCertificate's PEM: any bytes either give facts (that survive
//! a PEM round trip and feed the provisioning decision) or a named error.
//! The same bytes, cut in two (a big-endian u16 prefix gives the cut), go to the issuer-signature check.
#![no_main]

use jitr_core::admission::Listing;
use jitr_core::facts::{rfc3339, verify_issued_by, CertFacts};
use jitr_core::pem::{certificates, encode_certificate};
use jitr_core::plan::{decide, Observed};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match certificates(data) {
        Ok(ders) => assert!(!ders.is_empty()),
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    match CertFacts::from_pem(data) {
        Ok(facts) => {
            assert_eq!(facts.certificate_id.len(), 64);
            let _ = (facts.key.to_string(), facts.signature.to_string());
            let _ = (rfc3339(facts.not_before), rfc3339(facts.not_after));
            serde_json::to_string(&facts).expect("facts serialise");
            let der = &certificates(data).expect("parsed above")[0];
            let again = CertFacts::from_pem(encode_certificate(der).as_bytes())
                .expect("re-encoded PEM parses");
            assert_eq!(again.certificate_id, facts.certificate_id);
            let observed = Observed {
                certificate_id: facts.certificate_id.clone(),
                certificate_arn: "arn:aws:iot:eu-west-1:123456789012:cert/x".into(),
                status: "PENDING_ACTIVATION".into(),
                ca_certificate_id: None,
                facts: Ok(facts),
                created_ms: None,
            };
            let _ = decide(
                &observed,
                &Listing::NotAsked,
                jitr_fuzz::config(),
                1_700_000_000,
            );
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    if let [hi, lo, rest @ ..] = data {
        let cut = usize::from(u16::from_be_bytes([*hi, *lo]));
        let (child, issuer) = rest.split_at(cut.min(rest.len()));
        if let Err(e) = verify_issued_by(child, issuer) {
            assert!(!e.is_empty());
        }
    }
});
