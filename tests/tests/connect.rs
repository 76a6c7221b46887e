//! `jitr connect` on its own: against a real mosquitto requiring client
//! certificates, against an untrusted broker and nothing at all, and with bad input.

use jitr_tests::mosquitto::Broker;
use jitr_tests::{bin, free_port, issue_device, jitr, run, words};
use std::process::Command;

fn connect(cwd: &std::path::Path, args: &[&str]) -> jitr_tests::Run {
    run(Command::new(bin("jitr"))
        .arg("connect")
        .args(args)
        .current_dir(cwd))
}

/// `jitr connect dev/robot-1` to `endpoint`, trusting only `ca_file`.
fn connect_pinned(
    cwd: &std::path::Path,
    endpoint: &str,
    ca_file: &str,
    timeout: &str,
) -> jitr_tests::Run {
    connect(
        cwd,
        &[
            "dev/robot-1",
            "--endpoint",
            endpoint,
            "--ca-file",
            ca_file,
            "--timeout",
            timeout,
        ],
    )
}

/// A temp dir with CA `root` and device `dev/robot-1`.
fn one_device() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    jitr(tmp.path(), &["ca", "create", "root"]).success();
    issue_device(tmp.path(), "root", "dev", "robot-1");
    tmp
}

#[test]
fn connects_to_mosquitto_with_its_certificate_and_publishes() {
    let tmp = one_device();
    let d = tmp.path();
    let broker = Broker::start(&d.join("broker"), &d.join("root/ca.crt"));
    let endpoint = format!("127.0.0.1:{}", broker.port);

    let out = run(Command::new(bin("jitr"))
        .args([
            "--json",
            "connect",
            "dev/robot-1",
            "--endpoint",
            &endpoint,
            "--ca-file",
            &broker.server_ca,
        ])
        .args(["--topic", "things/robot-1/telemetry", "--message", "42"])
        .current_dir(d));
    let report = out.json();
    assert_eq!(out.code, Some(0), "{report} {}", out.stderr);
    assert_eq!(report["client_id"], "robot-1");
    assert_eq!(report["topic"], "things/robot-1/telemetry");
    assert_eq!(report["attempts"][0]["result"], "published");
    // The broker saw the client id and the certificate's identity.
    let log = std::fs::read_to_string(d.join("broker/mosquitto.log")).unwrap();
    assert!(log.contains("as robot-1"), "{log}");
    assert!(
        log.contains("u'CN=robot-1") || log.contains("u'robot-1"),
        "{log}"
    );
}

#[test]
fn an_untrusted_broker_fails_at_once_and_a_closed_port_after_the_timeout() {
    let tmp = one_device();
    let d = tmp.path();
    let broker = Broker::start(&d.join("broker"), &d.join("root/ca.crt"));

    // Amazon's roots by default: the local broker's certificate is not trusted; no retry helps.
    let endpoint = format!("127.0.0.1:{}", broker.port);
    let out = connect(
        d,
        &["dev/robot-1", "--endpoint", &endpoint, "--timeout", "20"],
    );
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("not trusted") && out.stderr.contains("--ca-file"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("(1 attempt(s)"), "{}", out.stderr);

    // Nothing listening: retried with backoff until the timeout, then exit 1.
    let closed = format!("127.0.0.1:{}", free_port());
    let out = connect_pinned(d, &closed, &broker.server_ca, "2");
    assert_eq!(out.code, Some(1));
    let retries = out.stderr.matches("retrying in").count();
    assert!(retries >= 2, "{}", out.stderr);
    assert!(out.stderr.contains("connection refused"), "{}", out.stderr);
}

#[test]
fn a_pinned_self_signed_ca_true_broker_certificate_is_accepted() {
    let tmp = one_device();
    let d = tmp.path();
    let broker = Broker::start_self_signed(
        &d.join("broker"),
        &d.join("root/ca.crt"),
        Some("IP:127.0.0.1,DNS:localhost"),
    );
    // The one-liner's certificate really is a CA certificate.
    let text = jitr_tests::openssl(d, &["x509", "-in", &broker.server_ca, "-noout", "-text"]);
    assert!(text.success().contains("CA:TRUE"), "{}", text.stdout);
    // mosquitto_pub accepts it ...
    let dev = d.join("dev/robot-1");
    broker
        .publish(
            &dev.join("device-and-ca.crt"),
            &dev.join("device.key"),
            "robot-1",
        )
        .success();
    // ... and so does jitr connect, when it is the pinned --ca-file.
    let endpoint = format!("127.0.0.1:{}", broker.port);
    let out = connect_pinned(d, &endpoint, &broker.server_ca, "20");
    assert_eq!(out.code, Some(0), "{}", out.stderr);

    // Pinning is exact: with another self-signed certificate for the same
    // name as --ca-file, the broker is refused at once, saying what its certificate is.
    let other = Broker::start_self_signed(
        &d.join("other"),
        &d.join("root/ca.crt"),
        Some("IP:127.0.0.1"),
    );
    let out = connect_pinned(d, &endpoint, &other.server_ca, "20");
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr
            .contains("is a CA certificate (basicConstraints CA:TRUE)")
            && out
                .stderr
                .contains("pass exactly that certificate with --ca-file")
            && out.stderr.contains("(1 attempt(s)"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_pinned_broker_certificate_without_the_host_in_its_san_is_named_as_such() {
    let tmp = one_device();
    let d = tmp.path();
    // The bare one-liner: CN=localhost, no subjectAltName.
    let broker = Broker::start_self_signed(&d.join("broker"), &d.join("root/ca.crt"), None);
    let endpoint = format!("127.0.0.1:{}", broker.port);
    let out = connect_pinned(d, &endpoint, &broker.server_ca, "20");
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("does not name the host") && out.stderr.contains("subjectAltName="),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("pass --ca-file"), "{}", out.stderr);
}

#[test]
fn bad_input_is_named_before_any_connection() {
    let tmp = one_device();
    let d = tmp.path();
    issue_device(d, "root", "dev", "robot-2");
    let endpoint = format!("127.0.0.1:{}", free_port());

    let out = connect(d, &["dev/nothing-here", "--endpoint", &endpoint]);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("dev/nothing-here") && out.stderr.contains("device.key"),
        "{}",
        out.stderr
    );

    let out = connect(
        d,
        &words(&format!("--cert dev/robot-1/device-and-ca.crt --key dev/robot-2/device.key --endpoint {endpoint}")),
    );
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("dev/robot-2/device.key") && out.stderr.contains("does not belong"),
        "{}",
        out.stderr
    );

    let out = connect(d, &["dev/robot-1", "--endpoint", "mqtts://somewhere"]);
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("--endpoint"), "{}", out.stderr);

    let out = connect(
        d,
        &["dev/robot-1", "--endpoint", &endpoint, "--timeout", "0"],
    );
    assert_eq!(out.code, Some(2), "{}", out.stderr);

    let out = connect(
        d,
        &words(&format!(
            "dev/robot-1 --endpoint {endpoint} --ca-file root/ca.key"
        )),
    );
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("root/ca.key"), "{}", out.stderr);
}

#[test]
fn the_endpoint_defaults_to_the_accounts_ats_endpoint_on_port_8883() {
    let moto = jitr_tests::moto::Moto::start();
    let tmp = one_device();
    let d = tmp.path();
    // DescribeEndpoint answers an amazonaws.com name, which does not resolve here.
    let out = moto.jitr(d, &["--json", "connect", "dev/robot-1", "--timeout", "1"]);
    assert_eq!(out.code, Some(1));
    let endpoint = out.json()["endpoint"].as_str().unwrap().to_string();
    assert!(
        endpoint.ends_with("-ats.iot.eu-west-1.amazonaws.com:8883"),
        "{endpoint}"
    );
}
