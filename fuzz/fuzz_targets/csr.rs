//! Device CSRs (PEM or DER): any bytes either fail with a message naming the
//! file or give a self-signed-verified key AWS IoT accepts.
#![no_main]

use jitr_cli::issue::csr;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match csr::parse(data, "device.csr") {
        Ok(key) => {
            let _ = key.is_rsa;
        }
        Err(e) => assert!(e.to_string().contains("device.csr"), "{e}"),
    }
});
