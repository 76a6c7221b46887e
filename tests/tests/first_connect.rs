//! First connect, end to end, on the ministack emulator with IAM enforced:
//! `jitr connect` (MQTT over TLS) -> the emulator's IoT broker (JITR:
//! registers PENDING_ACTIVATION, publishes the event, drops) -> the deployed
//! topic rule -> the deployed SQS queue -> the deployed event source mapping
//! -> the deployed function (the host build, under the template's role) ->
//! thing in the device group (which carries the device policy), principal,
//! ACTIVE -> the device gets in and publishes.

use std::process::Stdio;
use std::time::{Duration, Instant};

use jitr_tests::rehearsal::{cert_arn, Options, Rehearsal, Template, DEPLOY};
use jitr_tests::{certificate_id, issue_device, jitr, jitr_args, run, words};
use serde_json::json;

/// One device's first connect through a deployed stack, checked from every side.
fn first_connect_through(template: Template) -> (tempfile::TempDir, Rehearsal) {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let r = Rehearsal::start(
        d,
        Options {
            template,
            ..Options::default()
        },
    );

    // The stack holds what the template declares, wired together.
    let kinds: Vec<&str> = r.stack["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["type"].as_str().unwrap())
        .collect();
    for kind in [
        "AWS::IoT::TopicRule",
        "AWS::IoT::Policy",
        "AWS::IoT::ThingGroup",
        "Custom::ThingGroupPolicyAttachment",
        "AWS::SQS::Queue",
        "AWS::Lambda::Function",
        "AWS::Lambda::EventSourceMapping",
        "AWS::IAM::Role",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing: {kinds:?}");
    }
    // The device policy is attached to the device group (the custom
    // resource did it at deployment), to nothing else.
    let (policy, group) = (r.output("DevicePolicyName"), r.output("DeviceGroupName"));
    let group_arn = group_arn(&r, &group);
    assert_eq!(r.policies_of(&group_arn), vec![policy.clone()]);
    let targets = r.iot("list_targets_for_policy", json!({ "policyName": policy }));
    assert_eq!(targets["targets"], json!([group_arn]), "{targets}");
    // The function runs under the template's own role, fed by the template's
    // mapping (MaximumConcurrency a number, as AWS stores it: see
    // scripts/emulator_deploy.py for the emulator bug this corrects).
    let function = r.ms.boto3(
        "lambda",
        "get_function_configuration",
        json!({ "FunctionName": r.output("FunctionName") }),
    );
    assert!(
        function["Role"]
            .as_str()
            .unwrap()
            .contains(":role/jitr-FunctionRole"),
        "{function}"
    );
    let mappings = r.ms.boto3(
        "lambda",
        "list_event_source_mappings",
        json!({ "FunctionName": r.output("FunctionName") }),
    );
    // The bulk lane's mapping (the fast lane's: tests/tests/infra.rs, burst.rs).
    let queue = r.output("EventQueueUrl");
    let queue = format!(":{}", queue.rsplit('/').next().unwrap());
    let mapping = mappings["EventSourceMappings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["EventSourceArn"].as_str().unwrap().ends_with(&queue))
        .unwrap_or_else(|| panic!("no mapping reads the event queue: {mappings}"));
    assert_eq!(
        mapping["ScalingConfig"]["MaximumConcurrency"], 2,
        "{mapping}"
    );
    // BatchSizeByConcurrency: 2000 / MaxConcurrency records a batch.
    assert_eq!(mapping["BatchSize"], 1000, "{mapping}");
    assert_eq!(
        mapping["FunctionResponseTypes"],
        json!(["ReportBatchItemFailures"]),
        "{mapping}"
    );

    let id = issue_device(d, "root", "dev", "robot-1");
    assert_eq!(r.status(&id), "ResourceNotFoundException");

    let started = Instant::now();
    let out = r.connect(&["dev/robot-1", "--message", "first light"], "60");
    let report = out.json();
    assert_eq!(out.code, Some(0), "{report} {}\n{}", out.stderr, r.ms.log());
    eprintln!(
        "{template:?}: first connect to ACTIVE and published in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(report["connected"], true);
    assert_eq!(report["client_id"], "robot-1");
    let attempts = report["attempts"].as_array().unwrap();
    assert!(attempts.len() >= 2, "{report}");
    assert_eq!(attempts[0]["result"], "refused", "{report}");
    assert_eq!(attempts.last().unwrap()["result"], "published");
    // The emulator registered it on a CONNECT and published the event.
    assert!(r.events_published(&id) >= 1);

    // What the deployed function did, under the template's role.
    assert_eq!(r.status(&id), "ACTIVE");
    let arn = cert_arn(&id);
    assert_eq!(r.thing_principals("robot-1"), vec![arn.clone()]);
    // Its rights come from the device group: the thing joined it, and no
    // policy was attached to the certificate (the role cannot).
    assert_eq!(groups_of(&r, "robot-1"), vec![group.clone()]);
    assert!(r.policies_of(&arn).is_empty());
    let desc = r.iot("describe_certificate", json!({ "certificateId": id }));
    assert_eq!(
        desc["certificateDescription"]["caCertificateId"],
        r.ca_id.as_str()
    );

    // The message reached a subscriber on the emulator's broker.
    assert!(
        r.eventually(Duration::from_secs(5), || r
            .received()
            .contains("things/robot-1/hello first light")),
        "{}",
        r.received()
    );

    // With the function running (its Runtime API is one more listener of the
    // emulator), everything the emulator listens on is still on loopback.
    let listening = jitr_tests::ministack::listening_addresses(r.ms.pid());
    assert!(listening.len() >= 3, "{listening:?}");
    assert!(
        listening.iter().all(|a| a.starts_with("127.0.0.1:")),
        "{listening:?}"
    );

    // A second connect is accepted at once, and creates nothing new.
    let again = r.connect(&["dev/robot-1"], "10").json();
    assert_eq!(again["attempts"].as_array().unwrap().len(), 1, "{again}");
    let things = r.iot("list_things", json!({}));
    assert_eq!(things["things"].as_array().unwrap().len(), 1, "{things}");
    (tmp, r)
}

/// The ARN of thing group `name`.
fn group_arn(r: &Rehearsal, name: &str) -> String {
    let g = r.iot("describe_thing_group", json!({ "thingGroupName": name }));
    g["thingGroupArn"]
        .as_str()
        .unwrap_or_else(|| panic!("{g}"))
        .to_string()
}

/// The groups thing `name` belongs to.
fn groups_of(r: &Rehearsal, name: &str) -> Vec<String> {
    let g = r.iot("list_thing_groups_for_thing", json!({ "thingName": name }));
    g["thingGroups"]
        .as_array()
        .unwrap_or_else(|| panic!("{g}"))
        .iter()
        .map(|g| g["groupName"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn first_connect_through_the_deployed_sam_stack_then_the_stack_is_removed() {
    let (tmp, r) = first_connect_through(Template::Sam);

    // Removing the deployment: the stack goes; the device policy, the
    // device group and the attachment stay, so devices keep working.
    let (function, policy, group) = (
        r.output("FunctionName"),
        r.output("DevicePolicyName"),
        r.output("DeviceGroupName"),
    );
    let deleted = run(
        std::process::Command::new(jitr_tests::ministack::venv_program("ministack", "python"))
            .args([DEPLOY, "delete", "--stack", "jitr"])
            .envs(r.ms.env()),
    );
    assert!(deleted.ok(), "{}", deleted.stderr);
    assert_eq!(deleted.json()["status"], "DELETE_COMPLETE");
    let function = r.ms.boto3(
        "lambda",
        "get_function",
        json!({ "FunctionName": function }),
    );
    assert_eq!(function["Error"], "ResourceNotFoundException", "{function}");
    assert_eq!(r.policies_of(&group_arn(&r, &group)), vec![policy]);
    assert_eq!(groups_of(&r, "robot-1"), vec![group]);
    let again = r.connect(&["dev/robot-1"], "10");
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    drop(tmp);
}

#[test]
fn first_connect_through_the_deployed_cdk_stack() {
    let _ = first_connect_through(Template::Cdk);
}

/// AUTH=true holds devices to the deployed device policy: connect only as
/// the thing's own name, publish only under its own topics.
#[test]
fn the_device_policy_holds_a_device_to_its_thing_name_and_topics() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let r = Rehearsal::start(d, Options::default());
    issue_device(d, "root", "dev", "robot-1");
    issue_device(d, "root", "dev", "robot-2");
    let ok = r.connect(&["dev/robot-1"], "60");
    assert_eq!(ok.code, Some(0), "{}", ok.stderr);

    let other_client = r.connect(&["dev/robot-1", "--client-id", "robot-2"], "3");
    assert_eq!(other_client.code, Some(1), "{}", other_client.stdout);
    assert!(
        other_client.stderr.contains("could not connect"),
        "{}",
        other_client.stderr
    );

    let other_topic = r.connect(
        &[
            "dev/robot-1",
            "--topic",
            "things/robot-2/hello",
            "--message",
            "spoofed",
        ],
        "3",
    );
    assert_eq!(other_topic.code, Some(1), "{}", other_topic.stdout);

    // The same device, its own name and topic: still accepted.
    let own = r.connect(&["dev/robot-1", "--message", "own topic"], "10");
    assert_eq!(own.code, Some(0), "{}", own.stderr);
    assert!(r.eventually(Duration::from_secs(5), || r
        .received()
        .contains("things/robot-1/hello own topic")));
    assert!(!r.received().contains("spoofed"), "{}", r.received());
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
    let id = issue_device(d, "stranger", "dev", "robot-9");

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
    assert_eq!(r.events_published(&id), 0);
    assert_eq!(r.status(&id), "ResourceNotFoundException");
    let certs = r.iot("list_certificates", json!({}));
    assert_eq!(certs["certificates"], json!([]), "{certs}");
    let things = r.iot("list_things", json!({}));
    assert_eq!(things["things"], json!([]), "{things}");
    assert!(!r.received().contains("robot-9"));
}

#[test]
fn devices_of_a_ca_with_auto_registration_off_are_not_registered_until_it_is_on() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let r = Rehearsal::start(d, Options::default());
    r.ms.jitr(d, &words("ca auto-registration disable root"))
        .success();
    let id = issue_device(d, "root", "dev", "robot-8");

    let out = r.connect(&["dev/robot-8"], "3");
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    assert_eq!(r.status(&id), "ResourceNotFoundException");
    assert_eq!(r.events_published(&id), 0);

    // Turned back on, the same device registers on its next connect.
    r.ms.jitr(d, &words("ca auto-registration enable root"))
        .success();
    let out = r.connect(&["dev/robot-8"], "60");
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(r.status(&id), "ACTIVE");
}

#[test]
fn a_device_whose_name_fails_the_pattern_ends_revoked() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let parameters = [("ThingNamePattern", "^robot-[0-9]+$")];
    let r = Rehearsal::with_parameters(d, &parameters);
    let id = issue_device(d, "root", "dev", "intruder-1");

    r.assert_refused_then_revoked("dev/intruder-1", &id, Duration::from_secs(10));
    assert!(r.events_published(&id) >= 1);
    assert!(r.thing_principals("intruder-1").is_empty());
    assert_eq!(r.thing_names(), Vec::<String>::new());
    // Revoked stays out.
    let again = r.connect(&["dev/intruder-1"], "2");
    assert_eq!(again.code, Some(1));
}

/// An event the function cannot process (a certificate that does not exist)
/// is reported in batchItemFailures, received again and, after the queue's
/// maxReceiveCount (10), moved to the dead-letter queue by the deployed
/// redrive policy, while a device's event in the same queue is provisioned.
#[test]
fn an_event_that_keeps_failing_reaches_the_dead_letter_queue_after_ten_receives() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let r = Rehearsal::start(d, Options::default());
    let queue = r.output("EventQueueUrl");
    let dlq = r.output("DeadLetterQueueUrl");
    // Time compression, test-only: the template's 2700 s visibility timeout
    // would make ten receives take 7.5 hours.
    let set = r.ms.boto3(
        "sqs",
        "set_queue_attributes",
        json!({ "QueueUrl": queue, "Attributes": { "VisibilityTimeout": "2" } }),
    );
    assert!(set.get("Error").is_none(), "{set}");
    let ghost = "ab".repeat(32);
    let event = json!({ "certificateId": ghost, "caCertificateId": r.ca_id, "timestamp": 1_700_000_000_000_i64,
        "certificateStatus": "PENDING_ACTIVATION", "awsAccountId": "000000000000", "certificateRegistrationTimestamp": null });
    let sent = r.ms.boto3(
        "sqs",
        "send_message",
        json!({ "QueueUrl": queue, "MessageBody": event.to_string() }),
    );
    assert!(sent.get("Error").is_none(), "{sent}");

    issue_device(d, "root", "dev", "robot-3");
    let out = r.connect(&["dev/robot-3"], "60");
    assert_eq!(out.code, Some(0), "{}", out.stderr);

    let mut dead = json!(null);
    let arrived = r.eventually(Duration::from_secs(120), || {
        dead = r.ms.boto3(
            "sqs",
            "receive_message",
            json!({ "QueueUrl": dlq, "MessageSystemAttributeNames": ["ApproximateReceiveCount"] }),
        );
        dead["Messages"].as_array().is_some_and(|m| !m.is_empty())
    });
    assert!(
        arrived,
        "nothing in the dead-letter queue: {dead}\n{}",
        r.ms.log()
    );
    let messages = dead["Messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "{dead}");
    let body: serde_json::Value =
        serde_json::from_str(messages[0]["Body"].as_str().unwrap()).unwrap();
    assert_eq!(body["certificateId"], ghost.as_str());
    let failures = r.ms.log().matches("partial failures").count();
    assert!(
        failures >= 10,
        "received {failures} times before dead-lettering"
    );
    assert_eq!(
        r.status(&certificate_id(d, "dev/robot-3/device.crt")),
        "ACTIVE"
    );
}

/// A fleet powering on together: every device ends ACTIVE exactly once
/// (one certificate, one thing, one principal, the device policy through
/// the device group), through the
/// deployed queue and event source mapping (batches of up to 10, the
/// template's MaximumConcurrency 2). Minutes: the slow tier (`make test-slow`).
#[test]
#[ignore = "slow"]
fn two_hundred_devices_connecting_at_once_all_end_active_exactly_once() {
    const N: usize = 200;
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let r = Rehearsal::start(d, Options::default());
    jitr_args(
        d,
        "device issue --ca root --out fleet --count 200 --name-template robot-{n:03}",
    )
    .success();
    let names: Vec<String> = (1..=N).map(|n| format!("robot-{n:03}")).collect();

    let started = Instant::now();
    let children: Vec<_> = names
        .iter()
        .map(|name| {
            r.connect_command(&[&format!("fleet/{name}")], "300")
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

    let certs = r.iot("list_certificates", json!({ "pageSize": 250 }));
    let certs = certs["certificates"].as_array().unwrap();
    assert_eq!(certs.len(), N);
    assert!(
        certs.iter().all(|c| c["status"] == "ACTIVE"),
        "not all ACTIVE"
    );
    let report = r.things_report();
    let things = report.as_object().unwrap();
    assert_eq!(things.len(), N);
    // Each device holds the device policy through the device group.
    let (policy, function) = (r.output("DevicePolicyName"), r.output("FunctionName"));
    for name in &names {
        let id = certificate_id(d, &format!("fleet/{name}/device.crt"));
        let expected = json!([{ "arn": cert_arn(&id), "status": "ACTIVE", "policies": [&policy] }]);
        assert_eq!(things[name], expected, "{name}");
    }
    let log = r.ms.log();
    let events = log
        .lines()
        .filter(|l| l.contains("is PENDING_ACTIVATION under CA"))
        .count();
    let invocations = log
        .lines()
        .filter(|l| l.contains(&format!("ESM: Lambda {function} processed")))
        .count();
    eprintln!("{N} devices: all connected in {elapsed:.1} s, {attempts} connection attempts, {events} registered events published, {invocations} batch invocations");
    assert!(events >= N);
    assert!(r.eventually(Duration::from_secs(10), || {
        r.received()
            .lines()
            .filter(|l| l.ends_with("hello from jitr connect"))
            .count()
            == N
    }));
}
