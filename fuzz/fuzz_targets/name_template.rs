//! `--name-template` with `--start` and `--count`: a template either fails
//! with a message or every name it renders is a valid, distinct thing name.
//! Input: 8 bytes of start (big-endian), 1 byte of count (0-15), template.
#![no_main]

use std::collections::HashSet;

use jitr_cli::issue::names::{from_template, Template};
use jitr_core::rules::is_thing_name;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 9 {
        return;
    }
    let start = u64::from_be_bytes(data[..8].try_into().expect("8 bytes"));
    let count = u64::from(data[8] % 16);
    let Ok(text) = std::str::from_utf8(&data[9..]) else {
        return;
    };
    let template = match Template::parse(text) {
        Ok(t) => t,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    match from_template(&template, start, count) {
        Ok(specs) => {
            assert_eq!(specs.len() as u64, count);
            let mut seen = HashSet::new();
            for s in &specs {
                assert!(is_thing_name(&s.name), "{text:?} rendered {:?}", s.name);
                assert!(seen.insert(s.name.clone()), "{:?} twice", s.name);
            }
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
