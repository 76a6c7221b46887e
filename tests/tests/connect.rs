//! `jitr connect` on its own: against a real mosquitto requiring client
//! certificates, against an untrusted broker and nothing at all, and with bad input.

use jitr_tests::mosquitto::Broker;
use jitr_tests::{bin, free_port, issue_device, issue_device_with, jitr, run, words};
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

/// [`one_device`] and a mosquitto broker (in `broker/`) trusting CA `root`.
fn one_device_and_broker() -> (tempfile::TempDir, Broker) {
    let tmp = one_device();
    let broker = Broker::start(&tmp.path().join("broker"), &tmp.path().join("root/ca.crt"));
    (tmp, broker)
}

/// `jitr connect dev/robot-1` to `endpoint`, trusting Amazon's roots (no `--ca-file`).
fn connect_trusting_amazon(
    cwd: &std::path::Path,
    endpoint: &str,
    timeout: &str,
) -> jitr_tests::Run {
    connect(
        cwd,
        &["dev/robot-1", "--endpoint", endpoint, "--timeout", timeout],
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
    let (tmp, broker) = one_device_and_broker();
    let d = tmp.path();
    let endpoint = broker.endpoint();

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
    let (tmp, broker) = one_device_and_broker();
    let d = tmp.path();

    // Amazon's roots by default: the local broker's certificate is not trusted; no retry helps.
    let out = connect_trusting_amazon(d, &broker.endpoint(), "20");
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("not trusted") && out.stderr.contains("--ca-file"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("(1 attempt(s)"), "{}", out.stderr);

    // Nothing listening: retried with backoff until the timeout, then exit 1.
    let closed = jitr_tests::closed_endpoint();
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
    let endpoint = broker.endpoint();
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
    let endpoint = broker.endpoint();
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
    let endpoint = jitr_tests::closed_endpoint();

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

/// `jitr connect dev/robot-1` to a closed local port with `extra` flags, for at most a second.
fn connect_nowhere(d: &std::path::Path, extra: &[&str]) -> jitr_tests::Run {
    let endpoint = jitr_tests::closed_endpoint();
    let mut args = vec!["dev/robot-1", "--endpoint", &endpoint, "--timeout", "1"];
    args.extend_from_slice(extra);
    connect(d, &args)
}

#[test]
fn messages_up_to_aws_iot_128_kib_are_published_and_larger_refused_before_connecting() {
    let (tmp, broker) = one_device_and_broker();
    let d = tmp.path();
    let endpoint = broker.endpoint();
    // 20 KB on the command line, 128 KiB exactly from a file: both delivered.
    let text = "x".repeat(20_000);
    std::fs::write(d.join("big.bin"), vec![b'y'; 128 * 1024]).unwrap();
    for message in [["--message", text.as_str()], ["--message-file", "big.bin"]] {
        let mut args = vec![
            "dev/robot-1",
            "--endpoint",
            &endpoint,
            "--ca-file",
            &broker.server_ca,
        ];
        args.extend_from_slice(&message);
        let out = connect(d, &args);
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        assert!(out.stdout.contains("message delivered"), "{}", out.stdout);
    }
    // One byte more: refused at once, naming AWS IoT's limit, nothing attempted.
    std::fs::write(d.join("huge.bin"), vec![b'z'; 128 * 1024 + 1]).unwrap();
    let out = connect(
        d,
        &[
            "dev/robot-1",
            "--endpoint",
            &endpoint,
            "--ca-file",
            &broker.server_ca,
            "--message-file",
            "huge.bin",
        ],
    );
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("huge.bin")
            && out.stderr.contains("131073 bytes")
            && out.stderr.contains("AWS IoT's limit of 131072 bytes"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("attempt"), "{}", out.stderr);
}

#[test]
fn topic_filters_empty_topics_and_empty_client_ids_are_refused_at_parse_time() {
    let tmp = one_device();
    let d = tmp.path();
    for topic in ["#", "a/+/b", "things/#", ""] {
        let out = connect_nowhere(d, &["--topic", topic]);
        assert_eq!(out.code, Some(2), "--topic '{topic}': {}", out.stderr);
        assert!(out.stderr.contains("--topic"), "{}", out.stderr);
        assert!(!out.stderr.contains("attempt"), "{}", out.stderr);
    }
    let out = connect_nowhere(d, &["--topic", "a/+/b"]);
    assert!(out.stderr.contains("wildcards"), "{}", out.stderr);
    let out = connect_nowhere(d, &["--client-id", ""]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("--client-id") && out.stderr.contains("empty"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_client_id_that_makes_no_default_topic_is_refused_before_connecting() {
    let tmp = one_device();
    let d = tmp.path();
    for id in ["a/#", "+", "x/../y", "a/b"] {
        let out = connect_nowhere(d, &["--client-id", id]);
        assert_eq!(out.code, Some(1), "--client-id '{id}': {}", out.stderr);
        assert!(
            out.stderr.contains(&format!("--client-id {id}: "))
                && out.stderr.contains("things/")
                && out.stderr.contains("--topic"),
            "--client-id '{id}': {}",
            out.stderr
        );
        assert!(!out.stderr.contains("attempt"), "{}", out.stderr);
    }
    // With a topic of its own, such a client id is MQTT's business: it connects (nowhere).
    let out = connect_nowhere(d, &["--client-id", "a/#", "--topic", "t/1"]);
    assert!(out.stderr.contains("attempt"), "{}", out.stderr);
}

/// A device certificate of CA `root` for `name`, valid from `start` to
/// `end` (openssl's `YYYYMMDDHHMMSSZ`), signed with `openssl ca`, in
/// `dev/NAME/` as device-and-ca.crt + device.key.
fn dated_device(d: &std::path::Path, name: &str, start: &str, end: &str) {
    let work = d.join(format!(".{name}-openssl"));
    std::fs::create_dir_all(&work).unwrap();
    jitr_tests::ec_csr(&work, "device.key", "device.csr", &format!("/CN={name}"));
    let root = d.join("root");
    let (cert, key) = (root.join("ca.crt"), root.join("ca.key"));
    jitr_tests::openssl_ca_sign(
        &work,
        &[
            "-cert",
            cert.to_str().unwrap(),
            "-keyfile",
            key.to_str().unwrap(),
        ],
        "device.csr",
        "device.crt",
        (start, end),
    );
    let dir = d.join("dev").join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let bundle = std::fs::read_to_string(work.join("device.crt")).unwrap()
        + &std::fs::read_to_string(root.join("ca.crt")).unwrap();
    std::fs::write(dir.join("device-and-ca.crt"), bundle).unwrap();
    std::fs::copy(work.join("device.key"), dir.join("device.key")).unwrap();
}

#[test]
fn an_expired_or_not_yet_valid_certificate_is_warned_about_before_connecting() {
    let tmp = one_device();
    let d = tmp.path();
    dated_device(d, "old-1", "20200101000000Z", "20210101000000Z");
    dated_device(d, "early-1", "20990101000000Z", "21000101000000Z");
    let endpoint = jitr_tests::closed_endpoint();
    for (name, expected) in [
        ("old-1", "expired (notAfter 2021-01-01T00:00:00Z)"),
        ("early-1", "not valid yet (notBefore 2099-01-01T00:00:00Z)"),
    ] {
        let dir = format!("dev/{name}");
        let out = connect(d, &[&dir, "--endpoint", &endpoint, "--timeout", "1"]);
        let warning = out.stderr.lines().next().unwrap_or_default();
        assert!(
            warning.starts_with("jitr: warning: ") && warning.contains(expected),
            "{}",
            out.stderr
        );
    }
    // A valid one gets no warning.
    let out = connect(
        d,
        &["dev/robot-1", "--endpoint", &endpoint, "--timeout", "1"],
    );
    assert!(!out.stderr.contains("warning"), "{}", out.stderr);
}

/// With each thing-name source of the deployment, the client id connect
/// uses is the name of the thing the function's provisioning creates
/// (`jitr provision` runs the same planner as the function), and the broker
/// sees that client id.
#[test]
fn the_client_id_is_the_thing_name_under_each_naming_source() {
    let (moto, tmp, _) = jitr_tests::moto::Moto::start_for_jitr();
    let d = tmp.path();
    let broker = Broker::start(&d.join("broker"), &d.join("root/ca.crt"));
    let endpoint = broker.endpoint();
    for (n, source) in ["common-name", "serial-number", "certificate-id"]
        .iter()
        .enumerate()
    {
        let name = format!("robot-{n}");
        let serial = format!("serialNumber=SN-{n}");
        issue_device_with(d, "root", "dev", &name, &serial);
        let bundle = format!("dev/{name}/device-and-ca.crt");
        let id = moto.register_pending(d, &bundle);
        let provisioned = run(Command::new(bin("jitr"))
            .args(["--json", "provision", &id, "--policy", "jitr-device"])
            .envs(moto.env())
            .env("JITR_THING_NAME_SOURCE", source)
            .current_dir(d));
        provisioned.success();
        let dir = format!("dev/{name}");
        let out = run(Command::new(bin("jitr"))
            .args([
                "--json",
                "connect",
                &dir,
                "--endpoint",
                &endpoint,
                "--ca-file",
                &broker.server_ca,
            ])
            .args(["--thing-name-source", source])
            .current_dir(d));
        assert_eq!(out.code, Some(0), "{source}: {}", out.stderr);
        let client_id = out.json()["client_id"].as_str().unwrap().to_string();
        let principals = moto.thing_principals(&client_id);
        assert!(
            principals.iter().any(|p| p.ends_with(&id)),
            "{source}: no thing {client_id} holding {id}: {principals:?}"
        );
        let expected = match *source {
            "common-name" => name.clone(),
            "serial-number" => format!("SN-{n}"),
            _ => id.clone(),
        };
        assert_eq!(client_id, expected, "{source}");
        let log = std::fs::read_to_string(d.join("broker/mosquitto.log")).unwrap();
        assert!(log.contains(&format!("as {client_id}")), "{log}");
    }
    // A source the certificate cannot name a thing by is refused, naming it;
    // --client-id still overrides any source.
    jitr_tests::issue_device(d, "root", "dev", "plain-1");
    let out = connect(
        d,
        &[
            "dev/plain-1",
            "--endpoint",
            &endpoint,
            "--ca-file",
            &broker.server_ca,
            "--thing-name-source",
            "serial-number",
        ],
    );
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("serialNumber") && out.stderr.contains("--client-id"),
        "{}",
        out.stderr
    );
    let out = run(Command::new(bin("jitr"))
        .args([
            "--json",
            "connect",
            "dev/plain-1",
            "--endpoint",
            &endpoint,
            "--ca-file",
            &broker.server_ca,
        ])
        .args([
            "--thing-name-source",
            "serial-number",
            "--client-id",
            "chosen",
        ])
        .current_dir(d));
    assert_eq!(out.json()["client_id"], "chosen", "{}", out.stderr);
}

/// With --stack, the thing-name source is the stack function's
/// JITR_THING_NAME_SOURCE (a stack of just a function, made in moto's
/// CloudFormation); a stack that is not there is named.
#[test]
fn the_naming_source_is_read_from_the_stack_function() {
    const STACK: &str = r#"
import boto3, json
t = {"Resources": {
  "Role": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": {"Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}}},
  "Fn": {"Type": "AWS::Lambda::Function", "Properties": {"Runtime": "python3.12", "Handler": "index.h",
    "Role": {"Fn::GetAtt": ["Role", "Arn"]}, "Code": {"ZipFile": "def h(e, c): pass"},
    "Environment": {"Variables": {"JITR_POLICY_NAME": "jitr-device", "JITR_THING_NAME_SOURCE": "serial-number"}}}}}}
boto3.client("cloudformation").create_stack(StackName="jitr", TemplateBody=json.dumps(t))
print("{}")
"#;
    let moto = jitr_tests::moto::Moto::start();
    run(Command::new("python3").args(["-c", STACK]).envs(moto.env())).success();
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    jitr(d, &["ca", "create", "root"]).success();
    issue_device_with(d, "root", "dev", "robot-1", "serialNumber=SN-7");
    let endpoint = jitr_tests::closed_endpoint();
    let nowhere = ["--endpoint", endpoint.as_str(), "--timeout", "1"];
    let mut args = vec!["--json", "connect", "dev/robot-1", "--stack", "jitr"];
    args.extend_from_slice(&nowhere);
    let out = moto.jitr(d, &args);
    assert_eq!(out.json()["client_id"], "SN-7", "{}", out.stderr);
    // The flag wins over the stack.
    args.extend_from_slice(&["--thing-name-source", "common-name"]);
    assert_eq!(moto.jitr(d, &args).json()["client_id"], "robot-1");
    let mut args = vec!["connect", "dev/robot-1", "--stack", "nope"];
    args.extend_from_slice(&nowhere);
    let out = moto.jitr(d, &args);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("--stack") && out.stderr.contains("no stack nope"),
        "{}",
        out.stderr
    );
}

#[test]
fn without_flags_the_naming_comes_from_the_function_behind_the_cas_registration_rule() {
    // The function (serial-number naming) by a stack; the rule, its queue
    // and the queue's mapping to the function made by hand, as doctor finds them.
    const FUNCTION: &str = r#"
import boto3, json
t = {"Resources": {
  "Role": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": {"Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}}},
  "Fn": {"Type": "AWS::Lambda::Function", "Properties": {"FunctionName": "jitr-fn", "Runtime": "python3.12", "Handler": "index.h",
    "Role": {"Fn::GetAtt": ["Role", "Arn"]}, "Code": {"ZipFile": "def h(e, c): pass"},
    "Environment": {"Variables": {"JITR_POLICY_NAME": "jitr-device", "JITR_THING_NAME_SOURCE": "serial-number"}}}}}}
boto3.client("cloudformation").create_stack(StackName="other", TemplateBody=json.dumps(t))
"#;
    const RULE: &str = r#"
import boto3, hashlib, ssl, sys
ca = hashlib.sha256(ssl.PEM_cert_to_DER_cert(open(sys.argv[1]).read())).hexdigest()
sqs = boto3.client("sqs")
url = sqs.create_queue(QueueName="jitr-events")["QueueUrl"]
arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
boto3.client("lambda").create_event_source_mapping(EventSourceArn=arn, FunctionName="jitr-fn")
boto3.client("iot").create_topic_rule(ruleName="jitr_registered", topicRulePayload={
  "sql": "SELECT * FROM '$aws/events/certificates/registered/" + ca + "'",
  "actions": [{"sqs": {"queueUrl": url, "roleArn": "arn:aws:iam::123456789012:role/r"}}]})
"#;
    let moto = jitr_tests::moto::Moto::start();
    run(Command::new("python3")
        .args(["-c", FUNCTION])
        .envs(moto.env()))
    .success();
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    jitr(d, &["ca", "create", "root"]).success();
    jitr(
        d,
        &words("device issue --ca root --out dev --name robot-1 --subject-extra serialNumber=SN-7"),
    )
    .success();
    let endpoint = jitr_tests::closed_endpoint();
    let args = [
        "--json",
        "connect",
        "dev/robot-1",
        "--endpoint",
        endpoint.as_str(),
        "--timeout",
        "1",
    ];
    // No rule yet: the CN, and a note saying so and how to choose.
    let out = moto.jitr(d, &args);
    assert_eq!(out.json()["client_id"], "robot-1", "{}", out.stderr);
    assert!(
        out.stderr
            .contains("note: client id from the certificate's CN")
            && out.stderr.contains("no topic rule")
            && out
                .stderr
                .contains("--thing-name-source, --stack or --client-id"),
        "{}",
        out.stderr
    );
    let ca = d.join("root/ca.crt");
    run(Command::new("python3")
        .args(["-c", RULE, ca.to_str().unwrap()])
        .envs(moto.env()))
    .success();
    let out = moto.jitr(d, &args);
    assert_eq!(out.json()["client_id"], "SN-7", "{}", out.stderr);
    assert!(!out.stderr.contains("note:"), "{}", out.stderr);
    // The flags still choose without asking AWS.
    let mut flagged = args.to_vec();
    flagged.extend_from_slice(&["--thing-name-source", "common-name"]);
    assert_eq!(moto.jitr(d, &flagged).json()["client_id"], "robot-1");
    // AWS unreachable: the CN, a note, and no long wait.
    let started = std::time::Instant::now();
    let out = run(Command::new(bin("jitr"))
        .args(args)
        .current_dir(d)
        .envs(moto.env())
        .env(
            "AWS_ENDPOINT_URL",
            format!("http://127.0.0.1:{}", free_port()),
        ));
    assert_eq!(out.json()["client_id"], "robot-1", "{}", out.stderr);
    assert!(
        out.stderr
            .contains("note: client id from the certificate's CN"),
        "{}",
        out.stderr
    );
    assert!(started.elapsed().as_secs() < 9, "{:?}", started.elapsed());
    // Another broker (no AWS endpoint URL): no lookup, no note.
    let out = run(Command::new(bin("jitr")).args(args).current_dir(d));
    assert_eq!(out.json()["client_id"], "robot-1", "{}", out.stderr);
    assert!(!out.stderr.contains("note:"), "{}", out.stderr);
}

#[test]
fn endpoint_connect_and_doctor_agree_on_an_endpoint_that_carries_a_port() {
    // The emulator's DescribeEndpoint answers HOST:PORT, as a proxy's or a
    // custom domain's may: connect and doctor use it as it is.
    let ms = jitr_tests::ministack::Ministack::start();
    let tmp = one_device();
    let d = tmp.path();
    let described = ms.jitr(d, &["endpoint"]).success().trim().to_string();
    let (host, port) = described.rsplit_once(':').expect("HOST:PORT");
    assert!(port.parse::<u16>().is_ok(), "{described}");
    let out = ms.jitr(
        d,
        &words("--json connect dev/robot-1 --timeout 1 --thing-name-source common-name"),
    );
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert_eq!(out.json()["endpoint"], described.as_str(), "{}", out.stderr);
    let doctor = ms.jitr(d, &["--json", "doctor", "dev/robot-1"]).json();
    let check = doctor["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "endpoint")
        .cloned()
        .unwrap_or_else(|| panic!("{doctor}"));
    let detail = check["detail"].as_str().unwrap();
    assert!(!detail.contains("not a host name"), "{check}");
    assert!(
        detail.contains(&described) || detail.contains(host),
        "{check}"
    );
}

#[test]
fn each_failure_is_one_sentence_with_the_activation_hint_only_where_it_applies() {
    let (tmp, broker) = one_device_and_broker();
    let d = tmp.path();

    // An untrusted broker: why, and the fix; nothing about activation.
    let out = connect_trusting_amazon(d, &broker.endpoint(), "5");
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("not trusted"), "{}", out.stderr);
    assert!(
        !out.stderr.contains("PENDING_ACTIVATION") && !out.stderr.contains("likely causes"),
        "{}",
        out.stderr
    );

    // Nothing listening: says so, points at the address; nothing about activation.
    let closed = jitr_tests::closed_endpoint();
    let out = connect_pinned(d, &closed, &broker.server_ca, "1");
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("nothing accepts connections") && out.stderr.contains(&closed),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("PENDING_ACTIVATION") && !out.stderr.contains("likely causes"),
        "{}",
        out.stderr
    );
}

/// The emulator's broker with CA `root` registered (auto-registration on)
/// and device `dev/robot-1`; its broker CA in `server-ca.pem`.
fn emulated_broker() -> (jitr_tests::ministack::Ministack, tempfile::TempDir, String) {
    let ms = jitr_tests::ministack::Ministack::start_iot();
    let tmp = one_device();
    let d = tmp.path();
    ms.jitr(d, &["ca", "register", "root"]).success();
    ms.write_server_ca(&d.join("server-ca.pem"));
    let endpoint = format!("127.0.0.1:{}", ms.mqtt_port.unwrap());
    (ms, tmp, endpoint)
}

#[test]
fn a_revoked_certificate_stops_the_retries_and_says_so() {
    let (ms, tmp, endpoint) = emulated_broker();
    let d = tmp.path();
    let cert = "dev/robot-1/device.crt";
    ms.jitr(
        d,
        &["device", "register", cert, "--ca", "root", "--activate"],
    )
    .success();
    ms.jitr(d, &words("device revoke robot-1 --ca root --out dev"))
        .success();
    let started = std::time::Instant::now();
    let out = ms.jitr(
        d,
        &words(&format!(
            "connect dev/robot-1 --endpoint {endpoint} --ca-file server-ca.pem --timeout 30 --thing-name-source common-name"
        )),
    );
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        started.elapsed().as_secs() < 15,
        "{:?}: {}",
        started.elapsed(),
        out.stderr
    );
    assert!(out.stderr.contains("REVOKED"), "{}", out.stderr);
    assert!(out.stderr.contains("giving up"), "{}", out.stderr);
    assert!(!out.stderr.contains("retrying"), "{}", out.stderr);
    assert!(!out.stderr.contains("PENDING_ACTIVATION"), "{}", out.stderr);
    assert!(!out.stderr.contains("Mqtt state"), "{}", out.stderr);
}

#[test]
fn a_refused_first_connect_says_what_aws_iot_holds_in_the_users_words() {
    // Registered by its first connect, nothing activates it (no function
    // deployed): each retry says PENDING_ACTIVATION, not the library's words.
    let (ms, tmp, endpoint) = emulated_broker();
    let d = tmp.path();
    let out = ms.jitr(
        d,
        &words(&format!(
            "connect dev/robot-1 --endpoint {endpoint} --ca-file server-ca.pem --timeout 12 --thing-name-source common-name"
        )),
    );
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(!out.stderr.contains("Mqtt state"), "{}", out.stderr);
    assert!(out.stderr.contains("retrying"), "{}", out.stderr);
    assert!(
        out.stderr.contains("PENDING_ACTIVATION") && out.stderr.contains("jitr doctor dev/robot-1"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_cert_without_a_key_names_the_missing_key() {
    let tmp = one_device();
    let d = tmp.path();
    let out = connect(
        d,
        &words("--cert dev/robot-1/device-and-ca.crt --endpoint 127.0.0.1:1"),
    );
    assert_ne!(out.code, Some(0));
    assert!(out.stderr.contains("--key"), "{}", out.stderr);
    assert!(!out.stderr.contains("<DEVICE_DIR>"), "{}", out.stderr);
    let out = connect(
        d,
        &words("--key dev/robot-1/device.key --endpoint 127.0.0.1:1"),
    );
    assert_ne!(out.code, Some(0));
    assert!(out.stderr.contains("--cert"), "{}", out.stderr);
}
