//! `jitr doctor` against one deployed stack (the rehearsal on ministack,
//! IAM enforced): healthy, every check passes; then one fault at a time,
//! each reported by its own check with its fix while the others pass, and
//! undone before the next. The checks that need no deployment (the issuing
//! CA, the endpoint's TLS) also run against moto and a local mosquitto.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use jitr_tests::rehearsal::{Options, Rehearsal};
use jitr_tests::{certificate_id, issue_device, jitr_args, words};
use serde_json::{json, Value};

/// `jitr --json doctor ARGS` against the rehearsal; the report and the exit status.
fn doctor(r: &Rehearsal, args: &[&str]) -> (Value, bool) {
    let server_ca = r.server_ca.to_str().unwrap();
    let mut all = vec!["--json", "doctor"];
    all.extend_from_slice(args);
    all.extend_from_slice(&[
        "--stack",
        "jitr",
        "--endpoint",
        &r.endpoint,
        "--ca-file",
        server_ca,
    ]);
    let run = r.ms.jitr(&r.dir, &all);
    let report: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", run.stdout, run.stderr));
    (report, run.ok())
}

/// Asserts the report: the checks in `faults` have those statuses and a
/// fix, every other check passes, and `ok` / the exit status agree.
fn expect(report: &(Value, bool), faults: &[(&str, &str)]) {
    let (v, exited_ok) = report;
    let checks: BTreeMap<String, &Value> = v["checks"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .map(|c| (c["name"].as_str().unwrap().to_string(), c))
        .collect();
    for (name, status) in faults {
        let c = checks
            .get(*name)
            .unwrap_or_else(|| panic!("no check {name}: {v:#}"));
        assert_eq!(c["status"], *status, "{name}: {v:#}");
        assert!(
            c["fix"].as_str().is_some_and(|f| !f.is_empty()),
            "{name} has no fix: {v:#}"
        );
    }
    for (name, c) in &checks {
        if !faults.iter().any(|(f, _)| f == name) {
            assert_eq!(c["status"], "PASS", "{name} should pass: {v:#}");
        }
    }
    let failed = faults.iter().any(|(_, s)| *s == "FAIL");
    assert_eq!(v["ok"], !failed, "{v:#}");
    assert_eq!(*exited_ok, !failed, "exit status: {v:#}");
}

fn status_of<'a>(report: &'a (Value, bool), name: &str) -> &'a Value {
    report.0["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name}: {:#}", report.0))
}

/// The rule's SQL replaced (the rest of the rule kept), with boto3.
fn set_rule_sql(r: &Rehearsal, rule: &str, sql: &str) {
    const SCRIPT: &str = r#"
import boto3, sys
c = boto3.client("iot")
rule = c.get_topic_rule(ruleName=sys.argv[1])["rule"]
payload = {"sql": sys.argv[2], "actions": rule["actions"], "ruleDisabled": rule.get("ruleDisabled", False),
           "awsIotSqlVersion": rule.get("awsIotSqlVersion", "2016-03-23")}
if rule.get("errorAction"):
    payload["errorAction"] = rule["errorAction"]
c.replace_topic_rule(ruleName=sys.argv[1], topicRulePayload=payload)
print("{}")
"#;
    r.ms.python(SCRIPT, &[rule, sql]).success();
}

fn function_env(r: &Rehearsal, function: &str) -> Value {
    r.ms.boto3(
        "lambda",
        "get_function_configuration",
        json!({ "FunctionName": function }),
    )["Environment"]["Variables"]
        .clone()
}

fn set_function_env(r: &Rehearsal, function: &str, env: &Value) {
    let out = r.ms.boto3(
        "lambda",
        "update_function_configuration",
        json!({ "FunctionName": function, "Environment": { "Variables": env } }),
    );
    assert!(out.get("Error").is_none(), "{out}");
}

/// The device's bundle without its CA chain (the leaf alone).
fn leaf_only(d: &Path, bundle: &str, out: &str) {
    let text = std::fs::read_to_string(d.join(bundle)).unwrap();
    let end = "-----END CERTIFICATE-----";
    let leaf = &text[..text.find(end).unwrap() + end.len()];
    std::fs::write(d.join(out), format!("{leaf}\n")).unwrap();
}

#[test]
fn doctor_names_each_fault_by_its_own_check() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let r = Rehearsal::start(d, Options::default());
    let rule = r.output("TopicRuleName");
    let function = r.output("FunctionName");
    let dlq = r.output("DeadLetterQueueUrl");

    step_healthy_device_passes_every_check(&r, d);
    step_healthy_text_report_is_one_line_per_check(&r, d);
    step_chainless_bundle_fails_device_chain(&r, d);
    step_unregistered_intermediate_fails_ca_and_rule_topic(&r, d);
    step_auto_registration_off_fails_its_check(&r, d);
    step_inactive_ca_fails_ca_status(&r, d);
    step_disabled_rule_fails_topic_rule_and_strands_devices(&r, d, &rule);
    step_rule_topic_on_another_ca_fails_rule_topic(&r, &rule);
    step_missing_policy_fails_device_policy_and_provisioning(&r, &function);
    step_dead_letter_event_warns_with_count_and_reconcile(&r, &dlq);
}

/// Healthy: a device of CA root connected, provisioned, every check passes.
fn step_healthy_device_passes_every_check(r: &Rehearsal, d: &Path) {
    issue_device(d, "root", "dev", "robot-1");
    let connected = r.connect(&["dev/robot-1"], "60");
    assert!(connected.ok(), "{}\n{}", connected.stdout, connected.stderr);
    let healthy = doctor(r, &["dev/robot-1"]);
    expect(&healthy, &[]);
    assert!(
        status_of(&healthy, "device certificate")["detail"]
            .as_str()
            .unwrap()
            .contains("ACTIVE"),
        "{:#}",
        healthy.0
    );
}

/// Text: one line per check, exit 0.
fn step_healthy_text_report_is_one_line_per_check(r: &Rehearsal, d: &Path) {
    let text = r.ms.jitr(
        d,
        &[
            "doctor",
            "dev/robot-1",
            "--stack",
            "jitr",
            "--endpoint",
            &r.endpoint,
            "--ca-file",
            r.server_ca.to_str().unwrap(),
        ],
    );
    assert!(text.ok(), "{}\n{}", text.stdout, text.stderr);
    assert!(
        text.stdout
            .lines()
            .any(|l| l.starts_with("PASS ca status: ACTIVE")),
        "{}",
        text.stdout
    );
}

/// The bundle without its chain fails the device chain check, with or without --ca.
fn step_chainless_bundle_fails_device_chain(r: &Rehearsal, d: &Path) {
    leaf_only(d, "dev/robot-1/device-and-ca.crt", "leaf.crt");
    expect(
        &doctor(
            r,
            &[
                "--cert",
                "leaf.crt",
                "--key",
                "dev/robot-1/device.key",
                "--ca",
                "root",
            ],
        ),
        &[("device chain", "FAIL")],
    );
    // Without --ca, the chain-less leaf's CA is still found among the registered ones.
    expect(
        &doctor(r, &["--cert", "leaf.crt"]),
        &[("device chain", "FAIL")],
    );
}

/// A device of an intermediate that is not registered (only its root is):
/// the CA check says so, the rule (on root's topic) does not cover it,
/// and AWS IoT never saw the device.
fn step_unregistered_intermediate_fails_ca_and_rule_topic(r: &Rehearsal, d: &Path) {
    jitr_args(d, "ca create int --issuer root").success();
    issue_device(d, "int", "dev2", "robot-2");
    let report = doctor(r, &["dev2/robot-2"]);
    expect(
        &report,
        &[
            ("ca registered", "FAIL"),
            ("rule topic", "FAIL"),
            ("device certificate", "WARN"),
        ],
    );
    let detail = status_of(&report, "ca registered")["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        detail.contains(&r.ca_id),
        "names the registered root: {detail}"
    );
}

/// Auto-registration off fails its check; then back on.
fn step_auto_registration_off_fails_its_check(r: &Rehearsal, d: &Path) {
    r.ms.jitr(d, &words("ca auto-registration disable root"))
        .success();
    expect(
        &doctor(r, &["dev/robot-1"]),
        &[("ca auto-registration", "FAIL")],
    );
    r.ms.jitr(d, &words("ca auto-registration enable root"))
        .success();
}

/// The CA inactive fails the CA status check; then active again.
fn step_inactive_ca_fails_ca_status(r: &Rehearsal, d: &Path) {
    r.ms.jitr(d, &["ca", "deactivate", "root"]).success();
    expect(&doctor(r, &["dev/robot-1"]), &[("ca status", "FAIL")]);
    r.ms.jitr(d, &["ca", "activate", "root"]).success();
}

/// The rule disabled fails its check; a device connecting meanwhile stays
/// PENDING_ACTIVATION: a warning at first, stranded past the threshold.
fn step_disabled_rule_fails_topic_rule_and_strands_devices(r: &Rehearsal, d: &Path, rule: &str) {
    r.iot("disable_topic_rule", json!({ "ruleName": rule }));
    expect(&doctor(r, &["dev/robot-1"]), &[("topic rule", "FAIL")]);
    issue_device(d, "root", "dev3", "robot-3");
    let refused = r.connect(&["dev3/robot-3"], "3");
    assert!(!refused.ok(), "{}", refused.stdout);
    // connect names the likely causes it can see and points at doctor.
    assert!(
        refused.stderr.contains("likely causes")
            && refused.stderr.contains("jitr doctor dev3/robot-3"),
        "{}",
        refused.stderr
    );
    r.iot("enable_topic_rule", json!({ "ruleName": rule }));
    // Pending a moment: a warning; pending past the threshold: stranded.
    expect(
        &doctor(r, &["dev3/robot-3"]),
        &[("device certificate", "WARN")],
    );
    std::thread::sleep(Duration::from_secs(2));
    let stranded = doctor(r, &["dev3/robot-3", "--stranded-after", "1"]);
    expect(&stranded, &[("device certificate", "FAIL")]);
    assert!(
        status_of(&stranded, "device certificate")["fix"]
            .as_str()
            .unwrap()
            .contains("jitr reconcile"),
        "{:#}",
        stranded.0
    );
}

/// The rule's topic on another CA fails the rule topic check; then restored.
fn step_rule_topic_on_another_ca_fails_rule_topic(r: &Rehearsal, rule: &str) {
    let sql = format!(
        "SELECT * FROM '$aws/events/certificates/registered/{}'",
        r.ca_id
    );
    set_rule_sql(
        r,
        rule,
        &format!(
            "SELECT * FROM '$aws/events/certificates/registered/{}'",
            "0".repeat(64)
        ),
    );
    expect(&doctor(r, &["dev/robot-1"]), &[("rule topic", "FAIL")]);
    set_rule_sql(r, rule, &sql);
}

/// The function's policy name does not exist, and its device group is not
/// the stack's: the policy and provisioning checks fail; then restored.
fn step_missing_policy_fails_device_policy_and_provisioning(r: &Rehearsal, function: &str) {
    let env = function_env(r, function);
    let mut broken = env.clone();
    broken["JITR_POLICY_NAME"] = json!("no-such-policy");
    broken["JITR_DEVICE_GROUP"] = json!("no-such-group");
    set_function_env(r, function, &broken);
    // The function's role may add things to the stack's device group only.
    expect(
        &doctor(r, &["dev/robot-1"]),
        &[
            ("device policy", "FAIL"),
            ("function may provision", "FAIL"),
        ],
    );
    set_function_env(r, function, &env);
}

/// An event in the dead-letter queue: a warning with the count and reconcile.
fn step_dead_letter_event_warns_with_count_and_reconcile(r: &Rehearsal, dlq: &str) {
    r.ms.boto3(
        "sqs",
        "send_message",
        json!({ "QueueUrl": dlq, "MessageBody": "{}" }),
    );
    let report = doctor(r, &["dev/robot-1"]);
    expect(&report, &[("dead-letter queue", "WARN")]);
    let dl = status_of(&report, "dead-letter queue");
    assert!(
        dl["detail"].as_str().unwrap().starts_with("1 event"),
        "{dl}"
    );
    assert!(
        dl["fix"].as_str().unwrap().contains("jitr reconcile"),
        "{dl}"
    );
}

/// The inline policy `name` of `role`, as boto3 returns it (decoded).
fn role_policy(r: &Rehearsal, role: &str, name: &str) -> Value {
    let out = r.ms.boto3(
        "iam",
        "get_role_policy",
        json!({ "RoleName": role, "PolicyName": name }),
    );
    assert!(out.get("Error").is_none(), "{out}");
    out["PolicyDocument"].clone()
}

/// The role an SQS action of the rule sends with (its name).
fn rule_role(r: &Rehearsal, rule: &str) -> String {
    let rule = r.iot("get_topic_rule", json!({ "ruleName": rule }));
    let arn = rule["rule"]["actions"][0]["sqs"]["roleArn"]
        .as_str()
        .unwrap_or_else(|| panic!("{rule}"))
        .to_string();
    arn.rsplit('/').next().unwrap().to_string()
}

#[test]
fn doctor_reads_permissions_logs_account_and_stack() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let r = Rehearsal::start(d, Options::default());
    let rule = r.output("TopicRuleName");
    let function = r.output("FunctionName");

    // Healthy: the permission and account checks run, and pass.
    issue_device(d, "root", "dev", "robot-1");
    let connected = r.connect(&["dev/robot-1"], "60");
    assert!(connected.ok(), "{}\n{}", connected.stdout, connected.stderr);
    let healthy = doctor(&r, &["dev/robot-1", "--ca", "root"]);
    expect(&healthy, &[]);
    for name in [
        "ca account and region",
        "rule may send to queue",
        "function may read queue",
        "function may provision",
    ] {
        status_of(&healthy, name);
    }

    // Without --stack, the deployment is found from the rule on the registration topic.
    let found = r.ms.jitr(
        d,
        &[
            "--json",
            "doctor",
            "dev/robot-1",
            "--endpoint",
            &r.endpoint,
            "--ca-file",
            r.server_ca.to_str().unwrap(),
        ],
    );
    let report: Value = serde_json::from_str(&found.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", found.stdout, found.stderr));
    expect(&(report.clone(), found.ok()), &[]);
    assert_eq!(
        report["checks"].as_array().unwrap().len(),
        healthy.0["checks"].as_array().unwrap().len(),
        "{report:#}"
    );

    // The rule's role loses its permission to send to the queue, then gets it back.
    let role = rule_role(&r, &rule);
    const POLICY: &str = "enqueue-registration-events";
    let document = role_policy(&r, &role, POLICY);
    let deleted = r.ms.boto3(
        "iam",
        "delete_role_policy",
        json!({ "RoleName": role, "PolicyName": POLICY }),
    );
    assert!(deleted.get("Error").is_none(), "{deleted}");
    let report = doctor(&r, &["dev/robot-1"]);
    expect(&report, &[("rule may send to queue", "FAIL")]);
    let check = status_of(&report, "rule may send to queue");
    assert!(
        check["detail"]
            .as_str()
            .unwrap()
            .contains("does not allow sqs:SendMessage"),
        "{check}"
    );
    assert!(
        check["fix"].as_str().unwrap().contains("sqs:SendMessage"),
        "{check}"
    );
    let restored = r.ms.boto3(
        "iam",
        "put_role_policy",
        json!({ "RoleName": role, "PolicyName": POLICY, "PolicyDocument": document.to_string() }),
    );
    assert!(restored.get("Error").is_none(), "{restored}");
    expect(&doctor(&r, &["dev/robot-1"]), &[]);

    // A device the function rejects (its pattern changed meanwhile) is
    // REVOKED, and doctor names the reason the function logged.
    let env = function_env(&r, &function);
    let mut strict = env.clone();
    strict["JITR_THING_NAME_PATTERN"] = json!("^sensor-[0-9]+$");
    set_function_env(&r, &function, &strict);
    issue_device(d, "root", "dev4", "robot-4");
    let _refused = r.connect(&["dev4/robot-4"], "5");
    set_function_env(&r, &function, &env);
    let id = certificate_id(d, "dev4/robot-4/device-and-ca.crt");
    assert!(
        r.eventually(Duration::from_secs(60), || r.status(&id) == "REVOKED"),
        "{}",
        r.status(&id)
    );
    let report = doctor(&r, &["dev4/robot-4"]);
    expect(&report, &[("device certificate", "FAIL")]);
    let detail = status_of(&report, "device certificate")["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        detail.starts_with("REVOKED: the function rejected it: ") && detail.contains("sensor"),
        "{detail}"
    );

    // The profile points at another region: the CA is not registered there,
    // and its aws.json says where it is.
    let elsewhere = doctor(&r, &["--ca", "root", "--region", "us-west-2"]);
    let place = status_of(&elsewhere, "ca account and region");
    assert_eq!(place["status"], "FAIL", "{:#}", elsewhere.0);
    assert!(
        place["fix"]
            .as_str()
            .unwrap()
            .contains("--region eu-west-1"),
        "{place}"
    );
    assert!(!elsewhere.1);

    // --stack names no stack: one check says so.
    let run = r.ms.jitr(
        d,
        &[
            "--json",
            "doctor",
            "--ca",
            "root",
            "--stack",
            "no-such-stack",
            "--endpoint",
            &r.endpoint,
            "--ca-file",
            r.server_ca.to_str().unwrap(),
        ],
    );
    let v: Value =
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stderr));
    let stack = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "stack")
        .unwrap_or_else(|| panic!("{v:#}"));
    assert_eq!(stack["status"], "FAIL", "{v:#}");
    assert!(!run.ok());
}

/// `jitr doctor`'s endpoint check alone (moto for AWS, so no deployment):
/// the status of the "endpoint" check against `endpoint` with `ca_file`.
fn endpoint_check(d: &Path, moto: &jitr_tests::moto::Moto, endpoint: &str, ca_file: &str) -> Value {
    let run = moto.jitr(
        d,
        &[
            "--json",
            "doctor",
            "dev/robot-1",
            "--endpoint",
            endpoint,
            "--ca-file",
            ca_file,
        ],
    );
    let v: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", run.stdout, run.stderr));
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "endpoint")
        .unwrap_or_else(|| panic!("{v:#}"))
        .clone()
}

/// The endpoint check verifies the broker as `jitr connect` does: the
/// README's self-signed (CA:TRUE) broker pinned with --ca-file passes both;
/// an endpoint that accepts TCP and never answers TLS is said to stall.
#[test]
fn the_endpoint_check_agrees_with_connect_and_names_a_stall() {
    let moto = jitr_tests::moto::Moto::start();
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    jitr_tests::jitr(d, &["ca", "create", "root"]).success();
    issue_device(d, "root", "dev", "robot-1");
    let broker = jitr_tests::mosquitto::Broker::start_self_signed(
        &d.join("broker"),
        &d.join("root/ca.crt"),
        Some("IP:127.0.0.1,DNS:localhost"),
    );
    let endpoint = format!("127.0.0.1:{}", broker.port);
    let connect = jitr_tests::jitr(
        d,
        &[
            "connect",
            "dev/robot-1",
            "--endpoint",
            &endpoint,
            "--ca-file",
            &broker.server_ca,
        ],
    );
    assert_eq!(connect.code, Some(0), "{}", connect.stderr);
    let check = endpoint_check(d, &moto, &endpoint, &broker.server_ca);
    assert_eq!(check["status"], "PASS", "{check:#}");

    // Another self-signed certificate pinned: both refuse it, the same way.
    let other = jitr_tests::mosquitto::Broker::start_self_signed(
        &d.join("other"),
        &d.join("root/ca.crt"),
        Some("IP:127.0.0.1"),
    );
    let check = endpoint_check(d, &moto, &endpoint, &other.server_ca);
    assert_eq!(check["status"], "FAIL", "{check:#}");
    assert!(
        check["detail"]
            .as_str()
            .unwrap()
            .contains("basicConstraints CA:TRUE"),
        "{check:#}"
    );

    // Accepts the connection, never answers the handshake.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent = format!("127.0.0.1:{}", listener.local_addr().unwrap().port());
    let check = endpoint_check(d, &moto, &silent, &broker.server_ca);
    assert_eq!(check["status"], "WARN", "{check:#}");
    let detail = check["detail"].as_str().unwrap();
    assert!(
        detail.contains("stalled")
            && detail.contains("timed out during the TLS handshake after 10 s")
            && !detail.contains("os error"),
        "{check:#}"
    );
    drop(listener);
}

/// The status and detail of check `name` in `jitr --json doctor ARGS` against moto.
fn check_of(d: &Path, moto: &jitr_tests::moto::Moto, args: &[&str], name: &str) -> Option<Value> {
    let mut all = vec!["--json", "doctor"];
    all.extend_from_slice(args);
    let run = moto.jitr(d, &all);
    let v: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", run.stdout, run.stderr));
    v["checks"]
        .as_array()
        .unwrap_or_else(|| panic!("{v:#}"))
        .iter()
        .find(|c| c["name"] == name)
        .cloned()
}

/// --ca names a registered, healthy CA that did not sign the device (its
/// issuer's root, or another CA): that fails, naming both, and the CA that
/// did sign it is what the CA checks look at.
#[test]
fn a_ca_that_did_not_issue_the_device_fails_naming_both() {
    let moto = jitr_tests::moto::Moto::start();
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let root_id = moto.jitr_setup(d);
    jitr_args(d, "ca create int --issuer root").success();
    issue_device(d, "int", "dev", "robot-2");
    issue_device(d, "root", "dev", "robot-1");
    jitr_tests::jitr(d, &["ca", "create", "other"]).success();
    moto.jitr(d, &["ca", "register", "other"]).success();
    let other_id = certificate_id(d, "other/ca.crt");

    let cases = [
        ("dev/robot-2", "root", &root_id),
        ("dev/robot-1", "other", &other_id),
    ];
    for (device, ca, ca_id) in cases {
        let check = check_of(d, &moto, &[device, "--ca", ca], "ca issued device")
            .unwrap_or_else(|| panic!("{device} --ca {ca}: no \"ca issued device\" check"));
        assert_eq!(check["status"], "FAIL", "{check:#}");
        let detail = check["detail"].as_str().unwrap();
        assert!(
            detail.contains(device)
                && detail.contains(&format!("--ca {ca}"))
                && detail.contains(ca_id.as_str()),
            "{detail}"
        );
    }
    // The CA checks are about the intermediate that signed robot-2: not registered.
    let registered = check_of(d, &moto, &["dev/robot-2", "--ca", "root"], "ca registered").unwrap();
    assert_eq!(registered["status"], "FAIL", "{registered:#}");
    assert!(
        registered["detail"].as_str().unwrap().contains(&root_id),
        "{registered:#}"
    );
    // The CA that did sign it: no such check.
    assert!(check_of(
        d,
        &moto,
        &["dev/robot-1", "--ca", "root"],
        "ca issued device"
    )
    .is_none());
    assert!(check_of(d, &moto, &["dev/robot-2"], "ca issued device").is_none());
}
