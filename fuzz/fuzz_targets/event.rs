//! The registration event as an SQS body carries it: any text either
//! parses into an event with a normalised certificate id or is a named error.
#![no_main]

use jitr_core::event::RegisteredEvent;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match RegisteredEvent::parse_text(text) {
        Ok(event) => {
            assert_eq!(event.certificate_id.len(), 64);
            assert!(event
                .certificate_id
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
