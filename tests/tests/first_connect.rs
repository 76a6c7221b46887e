//! First connect, end to end, with real parts on loopback: `jitr connect`
//! (MQTT over TLS) -> the IoT Core stand-in (registers, delivers the event,
//! drops; passes ACTIVE devices through) -> the function under
//! `cargo lambda watch` -> moto; messages land on mosquitto.

use std::process::Stdio;

use jitr_tests::rehearsal::{Options, Rehearsal};
use jitr_tests::{issue_device, jitr};
use serde_json::json;

const ARN_PREFIX: &str = "arn:aws:iot:eu-west-1:123456789012:cert/";
/// The stand-in sees CA changes within a second (it caches moto's answer that long).
const CA_CACHE: std::time::Duration = std::time::Duration::from_millis(1200);

fn certificate_id(dir: &std::path::Path, cert: &str) -> String {
    let pem = std::fs::read(dir.join(cert)).unwrap();
    jitr_core::CertFacts::from_pem(&pem).unwrap().certificate_id
}

#[test]
fn first_connect_is_refused_then_the_device_is_provisioned_and_gets_in() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let r = Rehearsal::start(d, Options::default());
    issue_device(d, "root", "dev", "robot-1");
    let id = certificate_id(d, "dev/robot-1/device.crt");
    let before = r
        .moto
        .boto3("describe_certificate", json!({ "certificateId": id }));
    assert_eq!(before["Error"], "ResourceNotFoundException", "{before}");

    let out = r.connect(&["dev/robot-1", "--message", "first light"], "60");
    let report = out.json();
    assert_eq!(out.code, Some(0), "{report} {}", out.stderr);
    assert_eq!(report["connected"], true);
    assert_eq!(report["client_id"], "robot-1");
    let attempts = report["attempts"].as_array().unwrap();
    assert!(attempts.len() >= 2, "{report}");
    assert_eq!(attempts[0]["result"], "refused", "{report}");
    assert_eq!(attempts.last().unwrap()["result"], "published");

    // The stand-in registered the certificate PENDING_ACTIVATION on the first
    // connect and dropped it, delivered the event, and let the device in once ACTIVE.
    let history = r.history(&id);
    assert_eq!(
        history[0],
        ("connect".into(), "registered".into()),
        "{history:?}"
    );
    assert!(
        history.contains(&("delivery".into(), "true".into())),
        "{history:?}"
    );
    assert_eq!(
        history.last().unwrap(),
        &("connect".to_string(), "passed".to_string())
    );
    let registered = history.iter().filter(|(_, o)| o == "registered").count();
    assert_eq!(registered, 1, "{history:?}");

    // What the function did, read back with boto3.
    assert_eq!(r.moto.status(&id), "ACTIVE");
    let arn = format!("{ARN_PREFIX}{id}");
    assert_eq!(r.moto.thing_principals("robot-1"), vec![arn.clone()]);
    assert_eq!(r.moto.policies_of(&arn), vec!["jitr-device".to_string()]);
    let ca = r
        .moto
        .boto3("describe_certificate", json!({ "certificateId": id }));
    assert_eq!(
        ca["certificateDescription"]["caCertificateId"],
        r.ca_id.as_str()
    );

    // The message reached a subscriber on the real broker.
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(
        r.received().contains("things/robot-1/hello first light"),
        "{}",
        r.received()
    );

    // A second connect is accepted at once, and creates nothing new.
    let again = r.connect(&["dev/robot-1"], "10").json();
    assert_eq!(again["attempts"].as_array().unwrap().len(), 1, "{again}");
    let things = r.moto.boto3("list_things", json!({}));
    assert_eq!(things["things"].as_array().unwrap().len(), 1, "{things}");
}

#[test]
fn devices_of_an_unregistered_ca_never_get_in_and_nothing_is_created() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let r = Rehearsal::start(d, Options::default());
    jitr(
        d,
        &["ca", "create", "stranger", "--subject", "CN=Stranger CA"],
    )
    .success();
    issue_device(d, "stranger", "dev", "robot-9");
    let id = certificate_id(d, "dev/robot-9/device.crt");

    let out = r.connect(&["dev/robot-9"], "3");
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    let report = out.json();
    assert_eq!(report["connected"], false);
    assert!(
        report["attempts"].as_array().unwrap().len() >= 2,
        "{report}"
    );
    assert!(
        out.stderr.contains("robot-9 could not connect"),
        "{}",
        out.stderr
    );

    // Refused in the TLS handshake: never registered, no event, no thing.
    let log = r.log();
    let refused: Vec<_> = log.iter().filter(|e| e["event"] == "connect").collect();
    assert!(!refused.is_empty());
    for e in &refused {
        assert_eq!(e["outcome"], "refused", "{e}");
        assert!(e["detail"].as_str().unwrap().contains("TLS"), "{e}");
    }
    assert!(!log.iter().any(|e| e["event"] == "delivery"), "{log:?}");
    let d = r
        .moto
        .boto3("describe_certificate", json!({ "certificateId": id }));
    assert_eq!(d["Error"], "ResourceNotFoundException", "{d}");
    let certs = r.moto.boto3("list_certificates", json!({}));
    assert_eq!(certs["certificates"], json!([]), "{certs}");
    let things = r.moto.boto3("list_things", json!({}));
    assert_eq!(things["things"], json!([]), "{things}");
    assert_eq!(r.received(), "");
}

#[test]
fn devices_of_a_ca_with_auto_registration_off_are_not_registered() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let r = Rehearsal::start(d, Options::default());
    r.moto
        .jitr(d, &["ca", "auto-registration", "disable", "root"])
        .success();
    std::thread::sleep(CA_CACHE);
    issue_device(d, "root", "dev", "robot-8");
    let id = certificate_id(d, "dev/robot-8/device.crt");

    let out = r.connect(&["dev/robot-8"], "3");
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    let found = r
        .moto
        .boto3("describe_certificate", json!({ "certificateId": id }));
    assert_eq!(found["Error"], "ResourceNotFoundException", "{found}");
    assert!(!r.log().iter().any(|e| e["event"] == "delivery"));

    // Turned back on, the same device registers on its next connect.
    r.moto
        .jitr(d, &["ca", "auto-registration", "enable", "root"])
        .success();
    std::thread::sleep(CA_CACHE);
    let out = r.connect(&["dev/robot-8"], "60");
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(r.moto.status(&id), "ACTIVE");
}

#[test]
fn a_device_whose_name_fails_the_pattern_ends_revoked() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let settings = [("JITR_THING_NAME_PATTERN", "^robot-[0-9]+$")];
    let r = Rehearsal::start(
        d,
        Options {
            settings: &settings,
            ..Options::default()
        },
    );
    issue_device(d, "root", "dev", "intruder-1");
    let id = certificate_id(d, "dev/intruder-1/device.crt");

    let out = r.connect(&["dev/intruder-1"], "4");
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    assert_eq!(r.moto.status(&id), "REVOKED");
    let history = r.history(&id);
    assert_eq!(
        history[0],
        ("connect".into(), "registered".into()),
        "{history:?}"
    );
    assert!(
        history.iter().any(|(_, o)| o == "refused"),
        "revoked, then refused: {history:?}"
    );
    assert!(!history.iter().any(|(_, o)| o == "passed"), "{history:?}");
    assert!(r.moto.thing_principals("intruder-1").is_empty());
    let things = r.moto.boto3("list_things", json!({}));
    assert_eq!(things["things"], json!([]), "{things}");
}

/// A fleet powering on together: every device ends ACTIVE exactly once
/// (one certificate, one thing, one principal, one policy), with events
/// delivered as the deployment does (SQS batches of up to 10, 2 at a time)
/// and invocations throttled to 2 a second (20 certificates a second at most,
/// about the account's UpdateCertificate limit).
#[test]
fn two_hundred_devices_connecting_at_once_all_end_active_exactly_once() {
    const N: usize = 200;
    const RATE: u32 = 2;
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let r = Rehearsal::start(
        d,
        Options {
            rate: RATE,
            workers: 2,
            batch: 10,
            ..Options::default()
        },
    );
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
            "200",
            "--name-template",
            "robot-{n:03}",
        ],
    )
    .success();
    let names: Vec<String> = (1..=N).map(|n| format!("robot-{n:03}")).collect();

    let started = std::time::Instant::now();
    let children: Vec<_> = names
        .iter()
        .map(|name| {
            r.connect_command(&[&format!("fleet/{name}")], "240")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut failed = Vec::new();
    let mut attempts = 0;
    for (name, child) in names.iter().zip(children) {
        let out = child.wait_with_output().unwrap();
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        attempts += report["attempts"].as_array().map_or(0, Vec::len);
        if !out.status.success() {
            failed.push(format!("{name}: {}", String::from_utf8_lossy(&out.stderr)));
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    assert!(
        failed.is_empty(),
        "{} failed: {:?}",
        failed.len(),
        &failed[..failed.len().min(3)]
    );
    assert!(
        attempts > N,
        "every device was refused at least once ({attempts} attempts)"
    );

    // Exactly once: N certificates, N things, each thing with its one certificate.
    let certs = r
        .moto
        .boto3("list_certificates", json!({ "pageSize": 1000 }));
    let certs = certs["certificates"].as_array().unwrap();
    assert_eq!(certs.len(), N);
    assert!(
        certs.iter().all(|c| c["status"] == "ACTIVE"),
        "not all ACTIVE"
    );
    let report = r.moto.things_report();
    let things = report.as_object().unwrap();
    assert_eq!(things.len(), N);
    for name in &names {
        let id = certificate_id(d, &format!("fleet/{name}/device.crt"));
        let expected = json!([{ "arn": format!("{ARN_PREFIX}{id}"), "status": "ACTIVE", "policies": ["jitr-device"] }]);
        assert_eq!(things[name], expected, "{name}");
    }
    let log = r.log();
    let registered = log.iter().filter(|e| e["outcome"] == "registered").count();
    assert_eq!(registered, N, "each certificate registered once");
    let passed = log.iter().filter(|e| e["outcome"] == "passed").count();
    assert_eq!(passed, N);

    // The cap held: no second saw more than RATE invocations start (one more with both ends of a window).
    // One line per event delivered; the events of one invocation share its start.
    let deliveries = log.iter().filter(|e| e["event"] == "delivery").count();
    let mut starts: Vec<f64> = log
        .iter()
        .filter(|e| e["event"] == "delivery")
        .map(|e| e["started"].as_f64().unwrap())
        .collect();
    starts.sort_by(f64::total_cmp);
    starts.dedup();
    let largest = log
        .iter()
        .filter_map(|e| e["batch"].as_u64())
        .max()
        .unwrap();
    assert!(
        largest > 1 && largest <= 10,
        "batches of up to 10, got {largest}"
    );
    assert!(!log.iter().any(|e| e["event"] == "dead-lettered"));
    let busiest = starts
        .iter()
        .map(|t0| {
            starts
                .iter()
                .filter(|t| **t >= *t0 && **t < t0 + 1.0)
                .count()
        })
        .max()
        .unwrap();
    assert!(
        busiest <= RATE as usize + 1,
        "{busiest} invocations in one second"
    );
    let invocations = starts.len();
    eprintln!("{N} devices: all connected in {elapsed:.1} s, {attempts} connection attempts, {deliveries} events delivered in {invocations} invocations (batches of up to {largest}), busiest second {busiest}");
    std::thread::sleep(std::time::Duration::from_millis(500));
    let received = r.received();
    assert_eq!(
        received
            .lines()
            .filter(|l| l.ends_with("hello from jitr connect"))
            .count(),
        N
    );
}
