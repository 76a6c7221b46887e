//! `--names FILE`, plain or CSV: any text either fails with a message or
//! gives at least one device, each a valid thing name, none twice, with
//! subject attributes that passed validation.
#![no_main]

use std::collections::HashSet;
use std::path::Path;

use jitr_cli::issue::names::from_text;
use jitr_cli::pki::subject;
use jitr_core::rules::is_thing_name;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match from_text(text, Path::new("names.csv")) {
        Ok(specs) => {
            assert!(!specs.is_empty());
            let mut seen = HashSet::new();
            for s in &specs {
                assert!(is_thing_name(&s.name), "{:?}", s.name);
                assert!(seen.insert(s.name.as_str()), "{:?} twice", s.name);
                for a in &s.subject {
                    assert_ne!(a.name, "CN");
                    assert_eq!(subject::validated(a.name, &a.value).as_ref(), Ok(a));
                }
            }
        }
        Err(e) => assert!(e.to_string().contains("names.csv"), "{e}"),
    }
});
