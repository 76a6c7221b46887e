//! `make bench-burst` (scripts/bench_burst.sh): a fleet powering on at once
//! against AWS IoT's quotas, and a lone device on a quiet deployment. A
//! benchmark, not a test: `cargo test` compiles it and never runs it.
//!
//! `cargo run -p jitr-tests --example bench_burst -- burst`: BURST_DEVICES
//! (default 2000), BURST_SCALE (quota scale, default 1),
//! BURST_MAX_CONCURRENCY (default 2), BURST_ERROR_RATE (default 0); prints
//! the table and the one-line summary. `-- lone`: three devices one at a
//! time at MaxConcurrency 20, each one's first CONNECT to ACTIVE.

use std::str::FromStr;
use std::time::Duration;

use jitr_tests::burst::{deploy, run, Burst};

/// `name` from the environment, `default` when unset; a value that does not
/// parse ends the run naming the variable.
fn setting<T: FromStr>(name: &str, default: &str) -> T {
    let value = std::env::var(name).unwrap_or_else(|_| default.to_string());
    value.parse().unwrap_or_else(|_| {
        eprintln!("bench_burst: {name}={value:?} is not a number");
        std::process::exit(2)
    })
}

/// The fleet, sized by the environment: prints the table and the summary.
fn burst() {
    let devices: usize = setting("BURST_DEVICES", "2000");
    let scale: f64 = setting("BURST_SCALE", "1");
    let b = Burst {
        devices,
        scale,
        max_concurrency: setting("BURST_MAX_CONCURRENCY", "2"),
        error_rate: setting("BURST_ERROR_RATE", "0"),
        // Twice the time the binding limit needs, plus a few minutes.
        patience: Duration::from_secs_f64(2.0 * devices as f64 / (10.0 * scale) + 300.0),
    };
    let (o, _r, _tmp) = run(&b);
    println!("{}\n{}", o.table(), o.line());
}

/// A lone device on a quiet deployment (issue 23): at MaxConcurrency 20 a
/// static share of DescribeCertificate's and UpdateCertificate's 10/s is
/// 0.5/s, a slot up to 2 s away for each; an instance working alone takes
/// the whole rate (its heartbeat in the claims table says it is alone).
/// Three devices one after the other, the instances idle in between: prints
/// each one's first CONNECT to ACTIVE (the emulator's own delivery, rule to
/// queue to function, included; on AWS the mapping's batching window may add
/// up to 20 s). The tests of the shared rate are `tests/tests/shares.rs` and
/// the pacing unit tests.
fn lone() {
    let b = Burst {
        devices: 3,
        scale: 1.0,
        max_concurrency: 20,
        error_rate: 0.0,
        patience: Duration::from_secs(60),
    };
    let (_tmp, r, proxy) = deploy(&b);
    let mut took = Vec::new();
    for n in 1..=b.devices {
        // Longer than a heartbeat's lease: the last device's instance is
        // no longer counted working.
        std::thread::sleep(Duration::from_secs(4));
        let device = format!("fleet/robot-{n:05}");
        let asked = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let out = r.connect(&[&device], "60");
        assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
        let activated = proxy.stats()["UpdateCertificate"]
            .last_passed_at
            .expect("activated through the proxy");
        took.push(activated - asked);
    }
    println!(
        "lone: {} devices one at a time, first CONNECT to ACTIVE: {took:.2?} s",
        took.len()
    );
}

fn main() {
    match std::env::args().nth(1).as_deref() {
        Some("burst") => burst(),
        Some("lone") => lone(),
        other => {
            eprintln!("bench_burst: expected `burst` or `lone`, got {other:?}");
            std::process::exit(2)
        }
    }
}
