//! `jitr doctor` against one deployed stack (the rehearsal on ministack,
//! IAM enforced): healthy, every check passes; then one fault at a time,
//! each reported by its own check with its fix while the others pass, and
//! undone before the next: where the fix is a `jitr` or `aws` command, by
//! running it exactly as printed (in a shell with credentials only), after
//! which the check passes. The emulator runs the function with its own
//! credentials, not its role's, so an AccessDenied in the function's log is
//! a unit test (`doctor::function`). The checks that need no deployment (the
//! issuing CA, the endpoint's TLS) also run against moto and a local mosquitto.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use jitr_tests::ministack::venv_program;
use jitr_tests::rehearsal::{cert_arn, Options, Rehearsal};
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

/// Runs a fix exactly as doctor printed it: leading `NAME=VALUE` words are
/// its environment, then `jitr` (this build) or `aws` (the project's AWS
/// CLI). The shell has credentials only: region and endpoint must be on the
/// printed line. `None` when the fix is a plain instruction.
fn run_fix(r: &Rehearsal, fix: &str) -> Option<jitr_tests::Run> {
    // `A && B` (one command per lane): each in turn, as a shell would.
    let mut last = None;
    for one in fix.split(" && ") {
        let run = run_one(r, one)?;
        let ok = run.ok();
        last = Some(run);
        if !ok {
            break;
        }
    }
    last
}

/// One command of a fix, as [`run_fix`] runs it.
fn run_one(r: &Rehearsal, fix: &str) -> Option<jitr_tests::Run> {
    let mut ws = words(fix);
    let mut env = Vec::new();
    while let Some((k, v)) = ws.first().and_then(|w| w.split_once('=')) {
        if !k.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
            break;
        }
        env.push((k, v));
        ws.remove(0);
    }
    let program = match ws.first().copied() {
        Some("jitr") => jitr_tests::bin("jitr"),
        Some("aws") => venv_program("awscli", "aws"),
        _ => return None,
    };
    let mut cmd = std::process::Command::new(program);
    cmd.args(&ws[1..]).current_dir(&r.dir).envs(env);
    for k in [
        "AWS_ENDPOINT_URL",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_PROFILE",
    ] {
        cmd.env_remove(k);
    }
    cmd.envs([
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_CONFIG_FILE", "/dev/null"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
    ]);
    Some(jitr_tests::run(&mut cmd))
}

/// Every FAIL of `report` whose fix is a `jitr` or `aws` command: run as
/// printed, it succeeds, and `jitr doctor ARGS` then passes that check.
/// Returns the checks so repaired.
fn repair(r: &Rehearsal, args: &[&str], report: &(Value, bool)) -> Vec<String> {
    let mut repaired = Vec::new();
    for c in report.0["checks"].as_array().unwrap() {
        let (name, fix) = (c["name"].as_str().unwrap(), c["fix"].as_str().unwrap_or(""));
        if c["status"] != "FAIL" {
            continue;
        }
        let Some(run) = run_fix(r, fix) else {
            continue;
        };
        assert!(
            run.ok(),
            "{name}: the fix as printed failed: {fix}\n{}\n{}",
            run.stdout,
            run.stderr
        );
        let after = doctor(r, args);
        assert_eq!(
            status_of(&after, name)["status"],
            "PASS",
            "{name} after {fix}: {:#}",
            after.0
        );
        repaired.push(name.to_string());
    }
    repaired
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
    step_failing_function_fails_the_function_check(&r, d, &function);
    step_throttled_function_fails_function_concurrency(&r, &function);
    step_disabled_mapping_fails_event_source_mapping(&r, &function);
    step_short_visibility_timeout_fails_event_queue(&r);
    step_deleted_device_policy_fails_device_policy(&r);
    step_certificate_without_thing_fails_device_certificate(&r, d);
    step_missing_claims_table_warns(&r, d);
    step_ca_revoked_by_its_issuer_fails_its_check(&r, d);
    step_dead_letter_event_warns_with_count_and_reconcile(&r, &dlq);
}

/// Healthy: a device of CA root connected, provisioned, every check passes.
fn step_healthy_device_passes_every_check(r: &Rehearsal, d: &Path) {
    issue_device(d, "root", "dev", "robot-1");
    let connected = r.connect(&["dev/robot-1"], "60");
    assert!(connected.ok(), "{}\n{}", connected.stdout, connected.stderr);
    let healthy = doctor(r, &["dev/robot-1"]);
    expect(&healthy, &[]);
    // The function's counts say their source, and a CloudWatch that does
    // not answer is said, not fatal (ministack 1.5.33 refuses the SDK's
    // GetMetricData; with AWS the counts are "(from CloudWatch)").
    let function = status_of(&healthy, "function")["detail"].as_str().unwrap();
    assert!(
        [
            "(from CloudWatch)",
            "CloudWatch had no datapoints",
            "CloudWatch metrics could not be read: "
        ]
        .iter()
        .any(|source| function.contains(source)),
        "{function}"
    );
    let queues = healthy.0["checks"].as_array().unwrap().iter();
    for q in queues.filter(|c| c["name"] == "event queue") {
        let detail = q["detail"].as_str().unwrap();
        assert!(detail.contains("oldest event"), "{detail}");
    }
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
        &[("device chain", "WARN")],
    );
    // Without --ca, the chain-less leaf's CA is still found among the registered ones.
    expect(
        &doctor(r, &["--cert", "leaf.crt"]),
        &[("device chain", "WARN")],
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
    // Named by its directory, the CA's registration is a command that works as printed.
    let args = ["dev2/robot-2", "--ca", "int"];
    let named = doctor(r, &args);
    expect(
        &named,
        &[
            ("ca registered", "FAIL"),
            ("rule topic", "FAIL"),
            ("device certificate", "WARN"),
        ],
    );
    assert_eq!(repair(r, &args, &named), ["ca registered"]);
}

/// Auto-registration off fails its check; then back on.
fn step_auto_registration_off_fails_its_check(r: &Rehearsal, d: &Path) {
    r.ms.jitr(d, &words("ca auto-registration disable root"))
        .success();
    let report = doctor(r, &["dev/robot-1"]);
    expect(&report, &[("ca auto-registration", "FAIL")]);
    assert_eq!(
        repair(r, &["dev/robot-1"], &report),
        ["ca auto-registration"]
    );
}

/// The CA inactive fails the CA status check; then active again.
fn step_inactive_ca_fails_ca_status(r: &Rehearsal, d: &Path) {
    r.ms.jitr(d, &["ca", "deactivate", "root"]).success();
    let report = doctor(r, &["dev/robot-1"]);
    expect(&report, &[("ca status", "FAIL")]);
    assert_eq!(repair(r, &["dev/robot-1"], &report), ["ca status"]);
}

/// The rule disabled fails its check; a device connecting meanwhile stays
/// PENDING_ACTIVATION: a warning at first, stranded past the threshold.
fn step_disabled_rule_fails_topic_rule_and_strands_devices(r: &Rehearsal, d: &Path, rule: &str) {
    r.iot("disable_topic_rule", json!({ "ruleName": rule }));
    let disabled = doctor(r, &["dev/robot-1"]);
    expect(&disabled, &[("topic rule", "FAIL")]);
    issue_device(d, "root", "dev3", "robot-3");
    let refused = r.connect(&["dev3/robot-3"], "3");
    assert!(!refused.ok(), "{}", refused.stdout);
    // connect points at doctor.
    assert!(
        refused.stderr.contains("jitr doctor dev3/robot-3"),
        "{}",
        refused.stderr
    );
    assert_eq!(repair(r, &["dev/robot-1"], &disabled), ["topic rule"]);
    // Pending a moment: a warning; pending past the threshold: stranded.
    expect(
        &doctor(r, &["dev3/robot-3"]),
        &[("device certificate", "WARN")],
    );
    std::thread::sleep(Duration::from_secs(2));
    let args = ["dev3/robot-3", "--stranded-after", "1"];
    let stranded = doctor(r, &args);
    expect(&stranded, &[("device certificate", "FAIL")]);
    assert!(
        status_of(&stranded, "device certificate")["fix"]
            .as_str()
            .unwrap()
            .contains("jitr reconcile"),
        "{:#}",
        stranded.0
    );
    // The reconcile it prints (with the function's policy and group) activates it.
    assert_eq!(repair(r, &args, &stranded), ["device certificate"]);
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

/// The newest lines the functions logged (for a failure's message).
fn function_logs(r: &Rehearsal) -> String {
    const SCRIPT: &str = r#"
import boto3
c = boto3.client("logs")
for g in c.describe_log_groups(logGroupNamePrefix="/aws/lambda/")["logGroups"]:
    events = c.filter_log_events(logGroupName=g["logGroupName"])["events"]
    print(g["logGroupName"])
    for e in events[-40:]:
        print(" ", e["message"].rstrip())
"#;
    r.ms.python(SCRIPT, &[]).stdout
}

/// `jitr doctor ARGS` until `check` has `status` (the function works
/// asynchronously), within `secs`; the last report.
fn doctor_until(
    r: &Rehearsal,
    args: &[&str],
    check: &str,
    status: &str,
    secs: u64,
) -> (Value, bool) {
    let mut report = doctor(r, args);
    let reached = r.eventually(Duration::from_secs(secs), || {
        report = doctor(r, args);
        status_of(&report, check)["status"] == status
    });
    assert!(
        reached,
        "{check} not {status} within {secs} s: {:#}\n{}",
        report.0,
        function_logs(r)
    );
    report
}

/// The new user's case: the function pointed at an AWS IoT endpoint where
/// nothing listens fails every event. Doctor FAILs the function with the
/// reason it logged, and the device left pending points at it; once the
/// function works again it passes, and the reconcile its fix names
/// activates the device it left pending.
fn step_failing_function_fails_the_function_check(r: &Rehearsal, d: &Path, function: &str) {
    let env = function_env(r, function);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut broken = env.clone();
    broken["AWS_ENDPOINT_URL_IOT"] = json!(format!("http://127.0.0.1:{port}"));
    set_function_env(r, function, &broken);
    issue_device(d, "root", "dev5", "robot-5");
    let refused = r.connect(&["dev5/robot-5"], "5");
    assert!(!refused.ok(), "{}", refused.stdout);
    let report = doctor_until(r, &["dev5/robot-5"], "function", "FAIL", 120);
    expect(
        &report,
        &[("function", "FAIL"), ("device certificate", "WARN")],
    );
    let f = status_of(&report, "function");
    let detail = f["detail"].as_str().unwrap();
    assert!(
        detail.starts_with(&format!(
            "DescribeCertificate: cannot reach AWS IoT at http://127.0.0.1:{port}"
        )),
        "the reason, verbatim, naming where the calls went: {f}"
    );
    assert!(detail.contains("Failed "), "{f}");
    let pending = status_of(&report, "device certificate");
    assert!(
        pending["detail"]
            .as_str()
            .unwrap()
            .contains(detail.split(" (").next().unwrap())
            && pending["fix"]
                .as_str()
                .unwrap()
                .starts_with("see the function check"),
        "{pending}"
    );
    // Repaired: a device connecting now is activated, so the function passes.
    set_function_env(r, function, &env);
    issue_device(d, "root", "dev6", "robot-6");
    let connected = r.connect(&["dev6/robot-6"], "60");
    assert!(connected.ok(), "{}\n{}", connected.stdout, connected.stderr);
    let report = doctor_until(r, &["dev5/robot-5"], "function", "PASS", 30);
    expect(&report, &[("device certificate", "WARN")]);
    // The function's fix ends with the reconcile for what it left pending.
    let fix = f["fix"].as_str().unwrap();
    let reconcile = fix
        .split("left pending: ")
        .nth(1)
        .unwrap_or_else(|| panic!("{fix}"));
    let run = run_fix(r, reconcile).unwrap();
    assert!(run.ok(), "{reconcile}: {}\n{}", run.stdout, run.stderr);
    expect(&doctor(r, &["dev5/robot-5"]), &[]);
}

/// Reserved concurrency 0: every invocation throttled.
fn step_throttled_function_fails_function_concurrency(r: &Rehearsal, function: &str) {
    let out = r.ms.boto3(
        "lambda",
        "put_function_concurrency",
        json!({ "FunctionName": function, "ReservedConcurrentExecutions": 0 }),
    );
    assert!(out.get("Error").is_none(), "{out}");
    let report = doctor(r, &["dev/robot-1"]);
    expect(&report, &[("function concurrency", "FAIL")]);
    assert_eq!(
        repair(r, &["dev/robot-1"], &report),
        ["function concurrency"]
    );
}

/// The event source mapping disabled: queued events are not delivered.
fn step_disabled_mapping_fails_event_source_mapping(r: &Rehearsal, function: &str) {
    // Every mapping of the function (a stack may have more than one lane).
    let mappings = r.ms.boto3(
        "lambda",
        "list_event_source_mappings",
        json!({ "FunctionName": function }),
    );
    let uuids: Vec<String> = mappings["EventSourceMappings"]
        .as_array()
        .unwrap_or_else(|| panic!("{mappings}"))
        .iter()
        .map(|m| m["UUID"].as_str().unwrap().to_string())
        .collect();
    let enable = |uuid: &str, enabled: bool| {
        let out = r.ms.boto3(
            "lambda",
            "update_event_source_mapping",
            json!({ "UUID": uuid, "Enabled": enabled }),
        );
        assert!(out.get("Error").is_none(), "{out}");
    };
    for uuid in &uuids {
        enable(uuid, false);
    }
    let report = doctor(r, &["dev/robot-1"]);
    expect(&report, &[("event source mapping", "FAIL")]);
    let fix = status_of(&report, "event source mapping")["fix"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(uuids.iter().any(|u| fix.contains(u.as_str())), "{fix}");
    assert_eq!(
        repair(r, &["dev/robot-1"], &report),
        ["event source mapping"]
    );
    for uuid in &uuids {
        enable(uuid, true);
    }
}

/// The event queue's visibility timeout below the function's timeout:
/// events reappear while the function still works on them.
fn step_short_visibility_timeout_fails_event_queue(r: &Rehearsal) {
    // Every queue the function reads (a stack may have more than one lane).
    let queues: Vec<String> = ["EventQueueUrl", "FastLaneQueueUrl"]
        .iter()
        .filter_map(|k| r.stack["outputs"][*k].as_str().map(str::to_string))
        .collect();
    let visibility = |url: &str, seconds: &str| {
        let out = r.ms.boto3(
            "sqs",
            "set_queue_attributes",
            json!({ "QueueUrl": url, "Attributes": { "VisibilityTimeout": seconds } }),
        );
        assert!(out.get("Error").is_none(), "{out}");
    };
    for q in &queues {
        visibility(q, "30");
    }
    let report = doctor(r, &["dev/robot-1"]);
    expect(&report, &[("event queue", "FAIL")]);
    // One line per lane, each with its own fix.
    assert_eq!(
        repair(r, &["dev/robot-1"], &report),
        vec!["event queue"; queues.len()]
    );
    let after = doctor(r, &["dev/robot-1"]);
    let lanes = after.0["checks"].as_array().unwrap().iter();
    let lanes: Vec<&Value> = lanes.filter(|c| c["name"] == "event queue").collect();
    assert_eq!(lanes.len(), queues.len(), "{:#}", after.0);
    assert!(lanes.iter().all(|c| c["status"] == "PASS"), "{:#}", after.0);
    for q in &queues {
        visibility(q, "2700");
    }
}

/// The device policy the function attaches deleted (detached first, as
/// AWS IoT requires): its check fails; then put back as it was.
fn step_deleted_device_policy_fails_device_policy(r: &Rehearsal) {
    let policy = r.output("DevicePolicyName");
    let document = r.iot("get_policy", json!({ "policyName": policy }))["policyDocument"].clone();
    let targets =
        r.iot("list_targets_for_policy", json!({ "policyName": policy }))["targets"].clone();
    let targets: Vec<String> = targets
        .as_array()
        .unwrap_or_else(|| panic!("{targets}"))
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect();
    for t in &targets {
        r.iot(
            "detach_policy",
            json!({ "policyName": policy, "target": t }),
        );
    }
    let deleted = r.iot("delete_policy", json!({ "policyName": policy }));
    assert!(deleted.get("Error").is_none(), "{deleted}");
    // Without a device: its certificate loses the policy too, which is not this check.
    let report = doctor(r, &["--ca", "root"]);
    expect(&report, &[("device policy", "FAIL")]);
    r.iot(
        "create_policy",
        json!({ "policyName": policy, "policyDocument": document }),
    );
    for t in &targets {
        r.iot(
            "attach_policy",
            json!({ "policyName": policy, "target": t }),
        );
    }
    expect(&doctor(r, &["dev/robot-1"]), &[]);
}

/// An ACTIVE certificate attached to no thing: the printed attach works.
fn step_certificate_without_thing_fails_device_certificate(r: &Rehearsal, d: &Path) {
    let id = certificate_id(d, "dev/robot-1/device-and-ca.crt");
    let out = r.iot(
        "detach_thing_principal",
        json!({ "thingName": "robot-1", "principal": cert_arn(&id) }),
    );
    assert!(out.get("Error").is_none(), "{out}");
    let report = doctor(r, &["dev/robot-1"]);
    expect(&report, &[("device certificate", "FAIL")]);
    assert_eq!(repair(r, &["dev/robot-1"], &report), ["device certificate"]);
}

/// The claims table deleted: the function provisions without it (a
/// device still connects), doctor warns with the table's error; once the
/// table is back, a device provisioned with it passes.
fn step_missing_claims_table_warns(r: &Rehearsal, d: &Path) {
    let table = r.output("ClaimsTableName");
    let deleted =
        r.ms.boto3("dynamodb", "delete_table", json!({ "TableName": table }));
    assert!(deleted.get("Error").is_none(), "{deleted}");
    issue_device(d, "root", "dev7", "robot-7");
    let connected = r.connect(&["dev7/robot-7"], "60");
    assert!(connected.ok(), "{}\n{}", connected.stdout, connected.stderr);
    let report = doctor_until(r, &["dev7/robot-7"], "claims table", "WARN", 30);
    expect(&report, &[("claims table", "WARN")]);
    r.ms.create_claims_table(&table);
    issue_device(d, "root", "dev8", "robot-8");
    let connected = r.connect(&["dev8/robot-8"], "60");
    assert!(connected.ok(), "{}\n{}", connected.stdout, connected.stderr);
    expect(
        &doctor_until(r, &["dev8/robot-8"], "claims table", "PASS", 30),
        &[],
    );
}

/// The intermediate `int` (registered by an earlier step) in its issuer's
/// revocation list but ACTIVE in AWS IoT: its own check fails, and the
/// printed deactivation passes it. (The stack's rule listens on root only.)
fn step_ca_revoked_by_its_issuer_fails_its_check(r: &Rehearsal, d: &Path) {
    let printed = jitr_tests::openssl(d, &["x509", "-in", "int/ca.crt", "-noout", "-serial"]);
    let serial = printed
        .success()
        .trim()
        .trim_start_matches("serial=")
        .to_ascii_lowercase();
    let record = json!({ "revoked": [{
        "certificate_id": certificate_id(d, "int/ca.crt"),
        "serial": serial,
        "name": "int",
        "revoked_at": "2026-01-02T03:04:05Z",
    }] });
    std::fs::write(d.join("root/revoked.json"), record.to_string()).unwrap();
    let args = ["--ca", "int"];
    let report = doctor(r, &args);
    expect(
        &report,
        &[("ca revoked by issuer", "FAIL"), ("rule topic", "FAIL")],
    );
    assert!(
        status_of(&report, "ca revoked by issuer")["detail"]
            .as_str()
            .unwrap()
            .contains("2026-01-02T03:04:05Z"),
        "{:#}",
        report.0
    );
    assert_eq!(repair(r, &args, &report), ["ca revoked by issuer"]);
    std::fs::remove_file(d.join("root/revoked.json")).unwrap();
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
    let endpoint = broker.endpoint();
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
    let (moto, tmp, root_id) = jitr_tests::moto::Moto::start_for_jitr();
    let d = tmp.path();
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
