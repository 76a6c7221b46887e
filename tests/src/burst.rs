//! A fleet powering on at once (issue 14), shared by the burst scenarios
//! (`tests/tests/burst.rs`) and `make bench-burst`
//! (`tests/examples/bench_burst.rs`): the deployed SAM stack on ministack,
//! its function's IoT calls through a proxy that enforces AWS IoT's
//! per-operation quotas and injects server errors, a fleet issued, powered
//! on, and what came of it.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::rehearsal::{Options, Rehearsal};
use crate::throttle_proxy::{api_rates, Faults, ThrottleProxy};
use crate::{free_port, jitr};

const FLEET: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/fleet.py");

/// How a burst is set up.
pub struct Burst {
    pub devices: usize,
    /// Quotas = AWS's defaults x scale (so runs stay short).
    pub scale: f64,
    pub max_concurrency: u32,
    pub error_rate: f64,
    /// How long the fleet may take to be all ACTIVE.
    pub patience: Duration,
}

/// What a burst did.
#[derive(Debug)]
pub struct Outcome {
    pub devices: usize,
    pub wall_s: f64,
    /// From the first activation to the last (the registration of the
    /// fleet's first CONNECTs comes before the first event).
    pub activating_s: f64,
    pub active: usize,
    pub calls: u64,
    /// DescribeCertificate calls (the binding operation: one per event, duplicates included).
    pub describes: u64,
    pub throttled: u64,
    pub errors: u64,
    pub redeliveries: usize,
    pub dead_lettered: usize,
    /// Things without exactly one principal that is ACTIVE with the device policy.
    pub duplicates: usize,
    pub timed_out: usize,
    pub binding: f64,
    /// Devices that connected (and published) in the end.
    pub connected: usize,
    /// CONNECTs the fleet sent that were refused (each one while pending
    /// publishes a registered event).
    pub refused: u64,
    /// Function instances the emulator started.
    pub instances: usize,
    /// When the last device got in (its backoff may end after the last activation).
    pub last_connect_s: f64,
}

impl Outcome {
    pub fn rate(&self) -> f64 {
        self.devices as f64 / self.wall_s
    }
    /// Activations per second while the fleet was being activated.
    pub fn sustained(&self) -> f64 {
        (self.devices.saturating_sub(1)) as f64 / self.activating_s.max(0.001)
    }
    pub fn stranded(&self) -> usize {
        self.devices - self.active - self.dead_lettered.min(self.devices - self.active)
    }
    /// DescribeCertificate calls per second as % of its quota.
    pub fn describe_use_pct(&self) -> f64 {
        100.0 * self.describes as f64 / self.wall_s / self.binding
    }
    pub fn throttled_pct(&self) -> f64 {
        100.0 * self.throttled as f64 / self.calls.max(1) as f64
    }
    pub fn table(&self) -> String {
        format!(
            "| devices | wall time | devices/s | binding limit | % of limit | sustained devices/s, % of limit | DescribeCertificate calls/s, % of quota | DescribeCertificate per device | events per device | instances | last device in | throttled % of calls | 5xx injected | redeliveries | dead-lettered | activated exactly once |\n\
             |---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n\
             | {} | {:.1} s | {:.2} | {:.0}/s | {:.0}% | {:.2} = {:.0}% | {:.0}% | {:.2} | {:.2} | {} | {:.1} s | {:.2}% | {} | {} | {} | {} |",
            self.devices,
            self.wall_s,
            self.rate(),
            self.binding,
            100.0 * self.rate() / self.binding,
            self.sustained(),
            100.0 * self.sustained() / self.binding,
            self.describe_use_pct(),
            self.describes as f64 / self.devices as f64,
            self.refused as f64 / self.devices as f64,
            self.instances,
            self.last_connect_s,
            self.throttled_pct(),
            self.errors,
            self.redeliveries,
            self.dead_lettered,
            self.active - self.duplicates.min(self.active),
        )
    }
    pub fn line(&self) -> String {
        format!(
            "burst: {} devices, {:.2} devices/s = {:.0}% of the binding limit, throttled {:.2}% of calls, dead-lettered {}, stranded {}, duplicates {}",
            self.devices,
            self.rate(),
            100.0 * self.rate() / self.binding,
            self.throttled_pct(),
            self.dead_lettered,
            self.stranded(),
            self.duplicates
        )
    }
}

/// Certificates of the account by status, in one boto3 process.
pub const STATUS_COUNTS: &str = r#"
import boto3, json
c = boto3.client("iot")
out = {}
for page in c.get_paginator("list_certificates").paginate(pageSize=250):
    for cert in page["certificates"]:
        out[cert["status"]] = out.get(cert["status"], 0) + 1
print(json.dumps(out))
"#;

/// Power-on: every device of `fleet` connects at once and reconnects as the
/// AWS IoT Device SDKs do while its certificate is pending (1 s doubling to
/// 120 s, full jitter), for up to `patience`: scripts/fleet.py, one process
/// for the fleet. Its summary (connected, attempts, refused, ...).
pub fn power_on(r: &Rehearsal, fleet: &std::path::Path, patience: Duration) -> serde_json::Value {
    let out = std::process::Command::new("python3")
        .arg(FLEET)
        .args(["--endpoint", &r.endpoint, "--ca-file"])
        .arg(&r.server_ca)
        .args(["--timeout", &patience.as_secs().to_string()])
        .arg(fleet)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("fleet.py: {e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// `devices` devices issued by CA `root` into `d/fleet` (robot-00001, ...).
pub fn issue_fleet(d: &std::path::Path, devices: usize) {
    let count = devices.to_string();
    jitr(
        d,
        &[
            "device",
            "issue",
            "--ca",
            "root",
            "--out",
            "fleet",
            "--count",
            &count,
            "--name-template",
            "robot-{n:05}",
        ],
    )
    .success();
}

/// The SAM stack deployed on ministack, its function's IoT calls through
/// the proxy (quotas x `b.scale`, `b.error_rate` 5xx), and a fleet issued.
pub fn deploy(b: &Burst) -> (tempfile::TempDir, Rehearsal, ThrottleProxy) {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let proxy_port = free_port();
    let rates = api_rates(b.scale);
    let concurrency = b.max_concurrency.to_string();
    let parameters = [
        ("MaxConcurrency", concurrency.as_str()),
        ("ApiRates", rates.as_str()),
    ];
    // The proxy starts before the deployment: the stack's own functions
    // (the device group's policy attachment) call AWS through it while it
    // deploys. Faults are injected from the fleet's first event on only: a
    // deployment that rolls back is not what these runs measure.
    let proxy = std::cell::OnceCell::new();
    let start_proxy = |ms: &crate::ministack::Ministack| {
        let faults = Faults {
            scale: b.scale,
            ..Faults::default()
        };
        assert!(proxy
            .set(ThrottleProxy::start_on(proxy_port, &ms.url, faults))
            .is_ok());
    };
    let r = Rehearsal::start(
        d,
        Options {
            parameters: &parameters,
            function_endpoint_port: Some(proxy_port),
            before_deploy: Some(&start_proxy),
            ..Options::default()
        },
    );
    let proxy = proxy.into_inner().expect("started before the deployment");
    proxy.set_faults(b.error_rate, 0.0);
    issue_fleet(d, b.devices);
    (tmp, r, proxy)
}

/// A burst deployed ([`deploy`]), the fleet powered on, and what came of
/// it once every device is ACTIVE or `b.patience` has passed. With
/// `BURST_TIMELINE=FILE`, the proxy's per-second timeline is written there
/// (`make bench-burst` draws its chart from it).
pub fn run(b: &Burst) -> (Outcome, Rehearsal, tempfile::TempDir) {
    let (tmp, r, proxy) = deploy(b);
    let d = tmp.path();
    let started = std::time::SystemTime::now();
    let clock = Instant::now();
    // Devices keep trying past the patience by one capped backoff (120 s),
    // so one activated late still gets in.
    let summary = power_on(&r, &d.join("fleet"), b.patience + Duration::from_secs(120));
    let connected = summary["connected"].as_u64().unwrap_or(0) as usize;
    let mut active = 0;
    r.eventually(b.patience, || {
        let counts = r.ms.python(STATUS_COUNTS, &[]).json();
        active = counts["ACTIVE"].as_u64().unwrap_or(0) as usize;
        active >= b.devices
    });
    let stats = proxy.stats();
    // `make bench-burst` draws the chart from this (scripts/burst_chart.py).
    if let Ok(path) = std::env::var("BURST_TIMELINE") {
        let started_at = started
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let timeline = json!({ "started_at": started_at, "devices": b.devices,
            "max_concurrency": b.max_concurrency, "seconds": proxy.timeline() });
        std::fs::write(&path, timeline.to_string()).expect("BURST_TIMELINE is writable");
    }
    // The clock stops at the last activation (the proxy's last answered
    // UpdateCertificate), not when the slowest device's backoff ends.
    let since_start = |at: f64| {
        at - started
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
    };
    let activations = stats.get("UpdateCertificate");
    let wall_s = activations
        .and_then(|c| c.last_passed_at)
        .map(since_start)
        .unwrap_or_else(|| clock.elapsed().as_secs_f64());
    let activating_s = wall_s
        - activations
            .and_then(|c| c.first_passed_at)
            .map(since_start)
            .unwrap_or(0.0);

    let (calls, throttled, errors) = stats.values().fold((0, 0, 0), |(c, t, e), s| {
        (c + s.calls, t + s.throttled, e + s.errors + s.dropped)
    });
    let dlq = r.output("DeadLetterQueueUrl");
    let attrs = r.ms.boto3(
        "sqs",
        "get_queue_attributes",
        json!({ "QueueUrl": dlq, "AttributeNames": ["ApproximateNumberOfMessages"] }),
    );
    let dead_lettered = attrs["Attributes"]["ApproximateNumberOfMessages"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let log = r.ms.log();
    let redeliveries = log
        .lines()
        .filter_map(|l| l.split_once(" partial failures)"))
        .filter_map(|(head, _)| head.rsplit_once('(')?.1.trim().parse::<usize>().ok())
        .sum();
    let timed_out = log.matches("Task timed out").count();
    let instances = log.matches("(cold start)").count();
    let report = r.things_report();
    let things = report.as_object().unwrap();
    let good = |rows: &serde_json::Value| {
        rows.as_array().is_some_and(|a| {
            a.len() == 1
                && a[0]["status"] == "ACTIVE"
                && a[0]["policies"] == json!([r.output("DevicePolicyName")])
        })
    };
    let duplicates =
        things.values().filter(|rows| !good(rows)).count() + things.len().saturating_sub(b.devices);
    eprintln!("proxy: {stats:?}");
    // Where calls beyond one a device come from: the function's outcomes,
    // and claims it could not make or settle (the table slow or unreachable).
    let kinds = [
        "Activated",
        "AlreadyActive",
        "Duplicate",
        "ClaimedElsewhere",
        "Deferred",
        "Failed",
    ];
    let outcomes: Vec<String> = kinds
        .iter()
        .map(|k| format!("{k} {}", log.matches(&format!("outcome=\"{k}\"")).count()))
        .collect();
    eprintln!(
        "claims: outcomes {}; provisioned without a claim {}, claims not settled {}",
        outcomes.join(", "),
        log.matches("provisioning without a claim").count(),
        log.matches("claim not settled").count()
    );
    let outcome = Outcome {
        devices: b.devices,
        wall_s,
        activating_s,
        active,
        calls,
        describes: stats.get("DescribeCertificate").map_or(0, |c| c.calls),
        throttled,
        errors,
        redeliveries,
        dead_lettered,
        duplicates,
        timed_out,
        binding: 10.0 * b.scale,
        connected,
        refused: summary["refused"].as_u64().unwrap_or(0),
        instances,
        last_connect_s: summary["last_connect_s"].as_f64().unwrap_or(0.0),
    };
    eprintln!("fleet: {summary}");
    drop(proxy);
    (outcome, r, tmp)
}

/// Records the emulator's event source mappings delivered from `queue_url`'s
/// queue, by its log ("ESM: Lambda F processed N SQS messages from QUEUE").
pub fn delivered_from(r: &Rehearsal, queue_url: &str) -> usize {
    let queue = queue_url.rsplit('/').next().unwrap();
    r.ms.log()
        .lines()
        .filter_map(|l| {
            l.split_once(" processed ")?
                .1
                .split_once(" SQS messages from ")
        })
        .filter(|(_, rest)| rest.split_whitespace().next() == Some(queue))
        .filter_map(|(n, _)| n.trim().parse::<usize>().ok())
        .sum()
}
