//! A fleet powering on at once (issue 14): devices connect together through
//! the emulator with the deployed stack's rule, queue and function, while a
//! proxy in front of the emulator enforces AWS IoT's per-operation quotas
//! and injects server errors. Also `make bench-burst` (ignored here).

use std::process::Stdio;
use std::time::{Duration, Instant};

use jitr_tests::rehearsal::{Options, Rehearsal};
use jitr_tests::throttle_proxy::{api_rates, Faults, ThrottleProxy};
use jitr_tests::{free_port, jitr};
use serde_json::json;

/// How a burst is set up.
struct Burst {
    devices: usize,
    /// Quotas = AWS's defaults x scale (so runs stay short).
    scale: f64,
    max_concurrency: u32,
    error_rate: f64,
    /// How long the fleet may take to be all ACTIVE.
    patience: Duration,
}

/// What a burst did.
#[derive(Debug)]
struct Outcome {
    devices: usize,
    wall_s: f64,
    active: usize,
    calls: u64,
    /// DescribeCertificate calls (the binding operation: one per event, duplicates included).
    describes: u64,
    throttled: u64,
    errors: u64,
    redeliveries: usize,
    dead_lettered: usize,
    /// Things without exactly one principal that is ACTIVE with the device policy.
    duplicates: usize,
    timed_out: usize,
    binding: f64,
    /// Devices that connected (and published) in the end.
    connected: usize,
}

impl Outcome {
    fn rate(&self) -> f64 {
        self.devices as f64 / self.wall_s
    }
    fn stranded(&self) -> usize {
        self.devices - self.active - self.dead_lettered.min(self.devices - self.active)
    }
    /// DescribeCertificate calls per second as % of its quota.
    fn describe_use_pct(&self) -> f64 {
        100.0 * self.describes as f64 / self.wall_s / self.binding
    }
    fn throttled_pct(&self) -> f64 {
        100.0 * self.throttled as f64 / self.calls.max(1) as f64
    }
    fn table(&self) -> String {
        format!(
            "| devices | wall time | devices/s | binding limit | % of limit | DescribeCertificate calls/s, % of quota | throttled % of calls | 5xx injected | redeliveries | dead-lettered | activated exactly once |\n\
             |---|---|---|---|---|---|---|---|---|---|---|\n\
             | {} | {:.1} s | {:.2} | {:.0}/s | {:.0}% | {:.0}% | {:.2}% | {} | {} | {} | {} |",
            self.devices,
            self.wall_s,
            self.rate(),
            self.binding,
            100.0 * self.rate() / self.binding,
            self.describe_use_pct(),
            self.throttled_pct(),
            self.errors,
            self.redeliveries,
            self.dead_lettered,
            self.active - self.duplicates.min(self.active),
        )
    }
    fn line(&self) -> String {
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
const STATUS_COUNTS: &str = r#"
import boto3, json
c = boto3.client("iot")
out = {}
for page in c.get_paginator("list_certificates").paginate(pageSize=250):
    for cert in page["certificates"]:
        out[cert["status"]] = out.get(cert["status"], 0) + 1
print(json.dumps(out))
"#;

fn run(b: &Burst) -> (Outcome, Rehearsal, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let proxy_port = free_port();
    let rates = api_rates(b.scale);
    let concurrency = b.max_concurrency.to_string();
    let parameters = [
        ("MaxConcurrency", concurrency.as_str()),
        ("ApiRates", rates.as_str()),
    ];
    let r = Rehearsal::start(
        d,
        Options {
            parameters: &parameters,
            function_endpoint_port: Some(proxy_port),
            ..Options::default()
        },
    );
    let proxy = ThrottleProxy::start_on(
        proxy_port,
        &r.ms.url,
        Faults {
            scale: b.scale,
            error_rate: b.error_rate,
            ..Faults::default()
        },
    );
    let count = b.devices.to_string();
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

    // Power-on: every device connects and retries until it is in, as a
    // fleet does (AWS IoT registers its certificate on the first attempt and
    // publishes the event; attempts are refused while it is pending). At
    // most 100 devices connect at a time, so this machine keeps up.
    let started = Instant::now();
    let names: Vec<String> = (1..=b.devices).map(|n| format!("robot-{n:05}")).collect();
    let timeout = b.patience.as_secs().to_string();
    let mut waiting = names.iter();
    let mut running: Vec<std::process::Child> = Vec::new();
    let mut connected = 0;
    loop {
        while running.len() < 100 {
            let Some(name) = waiting.next() else { break };
            let child = r
                .connect_command(&[&format!("fleet/{name}")], &timeout)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            running.push(child);
        }
        if running.is_empty() {
            break;
        }
        running.retain_mut(|c| match c.try_wait().unwrap() {
            Some(status) => {
                connected += usize::from(status.success());
                false
            }
            None => true,
        });
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut active = 0;
    r.eventually(b.patience, || {
        let counts = r.ms.python(STATUS_COUNTS, &[]).json();
        active = counts["ACTIVE"].as_u64().unwrap_or(0) as usize;
        active >= b.devices
    });
    let wall_s = started.elapsed().as_secs_f64();

    let stats = proxy.stats();
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
    let report = r.things_report();
    let things = report.as_object().unwrap();
    let good = |rows: &serde_json::Value| {
        rows.as_array().is_some_and(|a| {
            a.len() == 1 && a[0]["status"] == "ACTIVE" && a[0]["policies"] == json!(["jitr-device"])
        })
    };
    let duplicates =
        things.values().filter(|rows| !good(rows)).count() + things.len().saturating_sub(b.devices);
    eprintln!("proxy: {stats:?}");
    let outcome = Outcome {
        devices: b.devices,
        wall_s,
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
    };
    drop(proxy);
    (outcome, r, tmp)
}

/// Part of `make test`: a few hundred devices, quotas enforced (x2 so the
/// run stays short), 10% of IoT calls answered 500. Every certificate ends
/// ACTIVE exactly once with one thing, one principal and one policy;
/// nothing is dead-lettered; no invocation ran past its deadline; and the
/// function paced itself instead of being throttled.
#[test]
fn a_fleet_powering_on_at_once_is_provisioned_exactly_once_under_quotas_and_5xx() {
    let (o, r, _tmp) = run(&Burst {
        devices: 200,
        scale: 2.0,
        max_concurrency: 2,
        error_rate: 0.1,
        patience: Duration::from_secs(300),
    });
    eprintln!("{}\n{}", o.table(), o.line());
    assert_eq!(o.active, o.devices, "{}", o.line());
    assert_eq!(o.connected, o.devices, "{}", o.line());
    assert_eq!(r.things_report().as_object().unwrap().len(), o.devices);
    assert_eq!(o.duplicates, 0, "{}", o.line());
    assert_eq!(o.dead_lettered, 0, "{}", o.line());
    assert_eq!(o.timed_out, 0, "an invocation ran past its deadline");
    assert!(o.errors > 0, "the proxy injected no 5xx: {}", o.line());
    assert!(o.throttled_pct() < 5.0, "{}", o.line());
}

/// 30% of IoT calls answered 500: nothing is lost. Whatever the function
/// could not finish (dead-lettered, or left pending) `jitr reconcile`
/// provisions afterwards, through the same quotas; every device ends ACTIVE
/// exactly once.
#[test]
fn with_thirty_percent_5xx_nothing_is_lost_and_reconcile_recovers_the_rest() {
    let (o, r, tmp) = run(&Burst {
        devices: 50,
        scale: 2.0,
        max_concurrency: 2,
        error_rate: 0.3,
        patience: Duration::from_secs(180),
    });
    eprintln!("{}", o.line());
    assert!(o.errors > 0, "{}", o.line());
    let out =
        r.ms.jitr(
            tmp.path(),
            &["reconcile", "--ca", "root", "--policy", "jitr-device"],
        )
        .success()
        .to_string();
    assert!(out.contains(" 0 failed"), "{out}");
    let report = r.things_report();
    let things = report.as_object().unwrap();
    assert_eq!(things.len(), o.devices, "{out}");
    assert!(
        things
            .values()
            .all(|rows| rows.as_array().is_some_and(|a| a.len() == 1
                && a[0]["status"] == "ACTIVE"
                && a[0]["policies"] == json!(["jitr-device"]))),
        "{report}"
    );
}

/// `make bench-burst`: BURST_DEVICES (default 2000), BURST_SCALE (quota
/// scale, default 1), BURST_MAX_CONCURRENCY (default 2), BURST_ERROR_RATE
/// (default 0). Prints the table and the one-line summary.
#[test]
#[ignore = "a benchmark: make bench-burst"]
fn bench_burst() {
    let var = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_string());
    let devices: usize = var("BURST_DEVICES", "2000").parse().unwrap();
    let scale: f64 = var("BURST_SCALE", "1").parse().unwrap();
    let b = Burst {
        devices,
        scale,
        max_concurrency: var("BURST_MAX_CONCURRENCY", "2").parse().unwrap(),
        error_rate: var("BURST_ERROR_RATE", "0").parse().unwrap(),
        // Twice the time the binding limit needs, plus a few minutes.
        patience: Duration::from_secs_f64(2.0 * devices as f64 / (10.0 * scale) + 300.0),
    };
    let (o, _r, _tmp) = run(&b);
    println!("{}\n{}", o.table(), o.line());
}
