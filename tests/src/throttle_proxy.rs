//! The fault-injecting proxy (`scripts/throttle_proxy.py`) in front of an
//! AWS emulator: AWS IoT's per-operation quotas (times a scale factor)
//! enforced with token buckets, optional injected 5xx and dropped
//! connections, AWS IoT answers the emulators do not give (a quota reached,
//! DetachThingPrincipal's propagation delay), counts per operation.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::{wait_for_port, Guard};

pub const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/throttle_proxy.py");

/// How the proxy misbehaves.
#[derive(Debug, Clone, Copy)]
pub struct Faults {
    /// Quotas = AWS's defaults x scale.
    pub scale: f64,
    /// Fraction of IoT calls answered 500 (half before, half after the upstream did the work).
    pub error_rate: f64,
    /// Fraction of IoT calls whose connection is closed without an answer.
    pub drop_rate: f64,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            scale: 1.0,
            error_rate: 0.0,
            drop_rate: 0.0,
        }
    }
}

/// Calls seen by the proxy for one operation.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counts {
    pub calls: u64,
    pub passed: u64,
    pub throttled: u64,
    pub errors: u64,
    pub dropped: u64,
    /// Answered with an AWS refusal the proxy adds (LimitExceededException,
    /// DeleteThing while the detachment propagates).
    pub refused: u64,
    /// Unix time (seconds) of the first and the last call the upstream answered.
    pub first_passed_at: Option<f64>,
    pub last_passed_at: Option<f64>,
}

/// A running proxy on 127.0.0.1; stopped on drop.
pub struct ThrottleProxy {
    pub port: u16,
    pub url: String,
    _child: Guard,
}

impl ThrottleProxy {
    /// Starts the proxy on `port` (chosen free beforehand, so the emulator
    /// can hand it to its functions) in front of `upstream`.
    pub fn start_on(port: u16, upstream: &str, faults: Faults) -> ThrottleProxy {
        let mut child = Command::new("python3")
            .arg(SCRIPT)
            .args(["--port", &port.to_string(), "--upstream", upstream])
            .args(["--scale", &faults.scale.to_string()])
            .args(["--error-rate", &faults.error_rate.to_string()])
            .args(["--drop-rate", &faults.drop_rate.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs the throttle proxy");
        wait_for_port(port, &mut child, "throttle proxy");
        ThrottleProxy {
            port,
            url: format!("http://127.0.0.1:{port}"),
            _child: Guard(child),
        }
    }

    /// The proxy's answer to a control request (`/__proxy/...`).
    fn control(&self, method: &str, path: &str) -> Value {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        let request =
            format!("{method} {path} HTTP/1.1\r\nHost: proxy\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        s.write_all(request.as_bytes()).unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {text}"))
    }

    /// Changes the injected faults from now on (e.g. a window of 100% 5xx).
    pub fn set_faults(&self, error_rate: f64, drop_rate: f64) {
        self.control(
            "PUT",
            &format!("/__proxy/faults?error_rate={error_rate}&drop_rate={drop_rate}"),
        );
    }

    /// Answers every call of `operations` as AWS IoT answers a resource quota
    /// reached: HTTP 410, LimitExceededException (none: back to normal).
    pub fn set_limit_exceeded(&self, operations: &[&str]) {
        self.control(
            "PUT",
            &format!("/__proxy/faults?limit_exceeded={}", operations.join(",")),
        );
    }

    /// For `seconds` after each DetachThingPrincipal, DeleteThing of that
    /// thing is refused as AWS IoT refuses it while the detachment propagates.
    pub fn set_detach_propagation(&self, seconds: f64) {
        self.control(
            "PUT",
            &format!("/__proxy/faults?detach_propagation={seconds}"),
        );
    }

    /// Answers every call of each operation with its error, as AWS shapes
    /// it (`(OP, "STATUS:CODE:MESSAGE")`, see `--answer` in the script);
    /// replaces the answers set before (none: back to forwarding).
    pub fn set_answers(&self, answers: &[(&str, &str)]) {
        let map: serde_json::Map<String, Value> = answers
            .iter()
            .map(|(op, spec)| (op.to_string(), Value::from(*spec)))
            .collect();
        let json = Value::Object(map).to_string();
        let encoded: String = json
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        self.control("PUT", &format!("/__proxy/faults?answers={encoded}"));
    }

    /// Per Unix second, per operation, the calls answered and throttled
    /// (`{"SECOND": {"OP": {"passed": n, "throttled": n}}}`): the burst
    /// benchmark's chart.
    pub fn timeline(&self) -> Value {
        self.control("GET", "/__proxy/timeline")
    }

    /// Counts per IoT operation so far.
    pub fn stats(&self) -> BTreeMap<String, Counts> {
        let v = self.control("GET", "/__proxy/stats");
        v.as_object()
            .unwrap()
            .iter()
            .map(|(op, c)| {
                let n = |k: &str| c[k].as_u64().unwrap_or(0);
                (
                    op.clone(),
                    Counts {
                        calls: n("calls"),
                        passed: n("passed"),
                        throttled: n("throttled"),
                        errors: n("errors"),
                        dropped: n("dropped"),
                        refused: n("refused"),
                        first_passed_at: c["first_passed_at"].as_f64(),
                        last_passed_at: c["last_passed_at"].as_f64(),
                    },
                )
            })
            .collect()
    }
}

/// AWS IoT's default quotas (requests/s per account), as the proxy enforces
/// them (AWS IoT Core endpoints and quotas, "AWS IoT Core API throttling
/// limits"; UpdateCertificate's is not published: 10 assumed).
pub const QUOTAS: [(&str, f64); 8] = [
    ("DescribeCertificate", 10.0),
    ("UpdateCertificate", 10.0),
    ("CreateThing", 100.0),
    ("AttachPolicy", 15.0),
    ("AttachThingPrincipal", 100.0),
    ("AddThingToThingGroup", 100.0),
    ("ListThingPrincipals", 10.0),
    ("ListCertificatesByCA", 10.0),
];

/// The function's `JITR_API_RATES` (template parameter `ApiRates`) for an
/// account whose quotas are AWS's defaults x `scale`.
pub fn api_rates(scale: f64) -> String {
    QUOTAS
        .iter()
        .map(|(op, q)| format!("{op}={}", q * scale))
        .collect::<Vec<_>>()
        .join(",")
}
