//! `--subject` strings: anything either fails with a message or gives
//! attributes that rcgen encodes and x509-parser reads back unchanged
//! (the last value of a repeated attribute wins).
#![no_main]

use std::collections::BTreeMap;

use jitr_cli::pki::subject;
use jitr_core::facts::CertFacts;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let attrs = match subject::parse(text) {
        Ok(attrs) => attrs,
        Err(e) => {
            assert!(!e.is_empty());
            return;
        }
    };
    let mut expected = BTreeMap::new();
    for a in &attrs {
        assert_eq!(subject::canonical_name(a.name), Some(a.name));
        assert!(!a.value.is_empty() && a.value.chars().count() <= 128);
        expected.insert(a.name.to_string(), a.value.clone());
    }
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = subject::to_distinguished_name(&attrs);
    let cert = params
        .self_signed(jitr_fuzz::signer())
        .expect("a parsed subject encodes");
    let facts = CertFacts::from_der(cert.der()).expect("the certificate reads back");
    let got: BTreeMap<String, String> = facts
        .subject
        .into_iter()
        .map(|a| (a.name, a.value))
        .collect();
    assert_eq!(got, expected, "{text:?}");
});
