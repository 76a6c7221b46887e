//! Admission on the deployed stack (issue 26): `Admission=allow-list` with
//! the list filled by `jitr device allow` from a manifest and from a
//! certificate file, a `ThingNameTemplate` and `ThingAttributes`. Of devices
//! of one CA, the one allowed from its manifest is ACTIVE under its manifest
//! name, the one allowed by its certificate alone is named by the template,
//! and the one never allowed is REVOKED "not on the allow-list"; things
//! carry the templated attributes, an entry's winning key by key, and a
//! subject value AWS refuses in an attribute revokes its certificate. Then
//! the templates' allow-list: its table, its one grant, its parameters and
//! output.

use std::process::Command;
use std::time::Duration;

use jitr_tests::lambda::workspace;
use jitr_tests::rehearsal::{cert_arn, Options, Rehearsal};
use jitr_tests::{issue_device, issue_device_with, run};
use serde_json::{json, Value};

/// A thing's attributes, as DescribeThing answers.
fn attributes(r: &Rehearsal, thing: &str) -> Value {
    r.iot("describe_thing", json!({ "thingName": thing }))["attributes"].clone()
}

#[test]
fn only_allowed_devices_get_in_under_their_manifest_or_template_names() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let parameters = [
        ("Admission", "allow-list"),
        ("ThingNameTemplate", "unit-{CN}"),
        (
            "ThingAttributes",
            "model={O},serial=sn-{serialNumber},cert={certificateId}",
        ),
    ];
    let r = Rehearsal::with_parameters(d, &parameters);
    let one = issue_device_with(d, "root", "dev", "robot-1", "O=Acme,serialNumber=SN-1");
    let two = issue_device(d, "root", "other", "robot-2");
    let three = issue_device_with(d, "root", "third", "robot-3", "O=Acme-EU,serialNumber=SN-3");

    // robot-1 from its manifest (OUTDIR), robot-3 by its certificate file.
    let allow = [
        "--json",
        "device",
        "allow",
        "dev",
        "third/robot-3/device.crt",
        "--stack",
        "jitr",
    ];
    let first = r.ms.jitr(d, &allow);
    assert!(first.ok(), "{}\n{}", first.stderr, first.stdout);
    let summary = first.json();
    assert_eq!(
        (
            &summary["added"],
            &summary["already_there"],
            &summary["refused"]
        ),
        (&json!(2), &json!(0), &json!([])),
        "{summary}"
    );
    assert_eq!(summary["table"], r.output("AllowListTableName").as_str());
    // Idempotent: a second run writes nothing.
    let again = r.ms.jitr(d, &allow).json();
    assert_eq!(
        (&again["added"], &again["already_there"]),
        (&json!(0), &json!(2)),
        "{again}"
    );

    // An entry's attributes (as another tool may write them) win over the
    // templates' key by key.
    r.ms.boto3(
        "dynamodb",
        "put_item",
        json!({
            "TableName": r.output("AllowListTableName"),
            "Item": {
                "certificateId": { "S": one },
                "thingName": { "S": "robot-1" },
                "attributes": { "M": { "model": { "S": "M-7" } } },
            },
        }),
    );

    // Allowed from the manifest: ACTIVE under the manifest's name (the
    // entry's name wins over the template's unit-robot-1).
    let out = r.connect(&["dev/robot-1", "--client-id", "robot-1"], "60");
    assert_eq!(out.code, Some(0), "{}\n{}", out.stderr, r.ms.log());
    assert_eq!(r.status(&one), "ACTIVE");
    assert_eq!(r.thing_principals("robot-1"), vec![cert_arn(&one)]);
    assert_eq!(
        attributes(&r, "robot-1"),
        json!({ "model": "M-7", "serial": "sn-SN-1", "cert": one })
    );

    // Never allowed: REVOKED, with the reason in the function's log, no thing.
    r.assert_refused_then_revoked("other/robot-2", &two, Duration::from_secs(15));
    let lines = r.outcome_lines(&two);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("not on the allow-list") && l.contains("Rejected")),
        "{lines:?}"
    );

    // Allowed by its certificate alone: the template names the thing, and
    // `jitr connect --stack` takes the same name for its client id.
    let out = run(r
        .connect_command(&["third/robot-3", "--stack", "jitr"], "60")
        .envs(r.ms.env()));
    assert_eq!(out.code, Some(0), "{}\n{}", out.stderr, r.ms.log());
    assert_eq!(out.json()["client_id"], "unit-robot-3");
    assert_eq!(r.status(&three), "ACTIVE");
    assert_eq!(r.thing_principals("unit-robot-3"), vec![cert_arn(&three)]);
    assert_eq!(
        attributes(&r, "unit-robot-3"),
        json!({ "model": "Acme-EU", "serial": "sn-SN-3", "cert": three })
    );

    // Allowed, but its O holds a space, which AWS refuses in an attribute
    // value: REVOKED with the attribute named, as a bad name would be.
    let four = issue_device_with(
        d,
        "root",
        "fourth",
        "robot-4",
        "O=Acme Inc,serialNumber=SN-4",
    );
    let added = r.ms.jitr(
        d,
        &[
            "--json",
            "device",
            "allow",
            "fourth/robot-4/device.crt",
            "--stack",
            "jitr",
        ],
    );
    assert_eq!(added.json()["added"], json!(1), "{}", added.stderr);
    r.assert_refused_then_revoked("fourth/robot-4", &four, Duration::from_secs(15));
    let lines = r.outcome_lines(&four);
    assert!(
        lines.iter().any(|l| l.contains("Rejected")
            && l.contains("attribute model:")
            && l.contains("Acme Inc")
            && l.contains("has ' '")),
        "{lines:?}"
    );

    assert_eq!(r.thing_names(), ["robot-1", "unit-robot-3"]);

    // disallow takes them off; what is not there is counted as such.
    let off =
        r.ms.jitr(
            d,
            &[
                "--json",
                "device",
                "disallow",
                "dev",
                "other/robot-2/device.crt",
                "--stack",
                "jitr",
            ],
        )
        .json();
    assert_eq!(
        (&off["removed"], &off["not_there"]),
        (&json!(1), &json!(1)),
        "{off}"
    );
    let item = r.ms.boto3(
        "dynamodb",
        "get_item",
        json!({ "TableName": r.output("AllowListTableName"), "Key": { "certificateId": { "S": one } } }),
    );
    assert!(item.get("Item").is_none(), "{item}");
}

/// `jitr reconcile` and `jitr provision` read the function's settings:
/// under JITR_ADMISSION=allow-list without JITR_ALLOW_LIST_TABLE every
/// lookup would fail and nothing could be admitted, so they refuse to
/// start, naming the setting, before any AWS call (the endpoint here is a
/// closed port: a call would fail differently).
#[test]
fn provisioning_commands_under_the_allow_list_need_its_table() {
    let tmp = tempfile::tempdir().unwrap();
    let id = "ab".repeat(32);
    let closed = format!("http://127.0.0.1:{}", jitr_tests::free_port());
    for args in [
        vec!["reconcile", "--ca", &id, "--policy", "jitr-device"],
        vec![
            "reconcile",
            "--ca",
            &id,
            "--policy",
            "jitr-device",
            "--dry-run",
        ],
        vec!["provision", &id, "--policy", "jitr-device"],
    ] {
        let out = run(Command::new(jitr_tests::bin("jitr"))
            .args(&args)
            .current_dir(tmp.path())
            .env("JITR_ADMISSION", "allow-list")
            .env_remove("JITR_ALLOW_LIST_TABLE")
            .env("AWS_ENDPOINT_URL", &closed)
            .env("AWS_REGION", "eu-west-1")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_EC2_METADATA_DISABLED", "true"));
        let err = out.failure();
        assert!(
            err.contains("JITR_ALLOW_LIST_TABLE")
                && err.contains("is required with JITR_ADMISSION=allow-list"),
            "{args:?}: {err}"
        );
    }
}

/// `jitr reconcile` under the allow-list (the function's provisioning, run
/// from the administrator's machine) reads the stack's list as the
/// function does. Two devices connected before they were allowed, and the
/// stack (`OnReject=ignore`) left them pending; one is allowed since, from
/// its manifest. The dry run plans it under its manifest name and plans to
/// reject the other; the run activates the first and revokes the other,
/// "not on the allow-list".
#[test]
fn reconcile_under_the_allow_list_admits_only_the_allowed() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let parameters = [("Admission", "allow-list"), ("OnReject", "ignore")];
    let r = Rehearsal::with_parameters(d, &parameters);
    let one = issue_device(d, "root", "dev", "robot-1");
    let two = issue_device(d, "root", "other", "robot-2");
    for (dir, id) in [("dev/robot-1", &one), ("other/robot-2", &two)] {
        let out = r.connect(&[dir], "4");
        assert_eq!(out.code, Some(1), "{}", out.stdout);
        let refused = || {
            r.outcome_lines(id)
                .iter()
                .any(|l| l.contains("not on the allow-list"))
        };
        assert!(
            r.eventually(Duration::from_secs(15), refused),
            "{}",
            r.ms.log()
        );
        assert_eq!(r.status(id), "PENDING_ACTIVATION");
    }
    let allowed = r.ms.jitr(d, &["device", "allow", "dev", "--stack", "jitr"]);
    assert!(allowed.ok(), "{}", allowed.stderr);

    let (table, group, policy) = (
        r.output("AllowListTableName"),
        r.output("DeviceGroupName"),
        r.output("DevicePolicyName"),
    );
    let reconcile = |extra: &[&str]| {
        run(Command::new(jitr_tests::bin("jitr"))
            .args(["--json", "reconcile", "--ca", "root", "--policy", &policy])
            .args(extra)
            .current_dir(d)
            .envs(r.ms.env())
            .env("JITR_ADMISSION", "allow-list")
            .env("JITR_ALLOW_LIST_TABLE", &table)
            .env("JITR_DEVICE_GROUP", &group))
    };
    let of = |items: &Value, id: &str| -> Value {
        items
            .as_array()
            .unwrap_or_else(|| panic!("not a list: {items}"))
            .iter()
            .find(|i| i["certificateId"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("{id} not in {items}"))
    };

    let plans = reconcile(&["--dry-run"]);
    assert!(plans.ok(), "{}\n{}", plans.stderr, plans.stdout);
    let plans = plans.json();
    assert_eq!(of(&plans, &one)["plan"]["action"], "activate", "{plans}");
    assert_eq!(of(&plans, &one)["plan"]["thing_name"], "robot-1", "{plans}");
    assert_eq!(
        of(&plans, &two)["plan"],
        json!({ "action": "reject", "reason": "not on the allow-list", "revoke": true }),
        "{plans}"
    );
    assert_eq!(
        (r.status(&one), r.status(&two)),
        ("PENDING_ACTIVATION".into(), "PENDING_ACTIVATION".into())
    );

    let done = reconcile(&[]);
    let outcomes = done.json();
    assert!(done.ok(), "{}\n{outcomes}", done.stderr);
    assert_eq!(of(&outcomes, &one)["outcome"], "Activated", "{outcomes}");
    assert_eq!(of(&outcomes, &one)["thing"], "robot-1", "{outcomes}");
    assert_eq!(of(&outcomes, &two)["outcome"], "Rejected", "{outcomes}");
    assert_eq!(
        of(&outcomes, &two)["reason"],
        "not on the allow-list",
        "{outcomes}"
    );
    assert_eq!(r.status(&one), "ACTIVE");
    assert_eq!(r.status(&two), "REVOKED");
    assert_eq!(r.thing_principals("robot-1"), vec![cert_arn(&one)]);
}

/// A stack without the allow-list output is refused by name, before any write.
#[test]
fn allow_names_a_stack_without_an_allow_list() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let ms = jitr_tests::ministack::Ministack::start();
    jitr_tests::jitr(d, &["ca", "create", "root"]).success();
    issue_device(d, "root", "dev", "robot-1");
    let out = ms.jitr(d, &["device", "allow", "dev", "--stack", "nope"]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("--stack") && out.stderr.contains("AllowListTableName"),
        "{}",
        out.stderr
    );
    // A directory that is not an output directory is named.
    std::fs::create_dir(d.join("empty")).unwrap();
    let out = ms.jitr(d, &["device", "allow", "empty", "--stack", "nope"]);
    assert!(
        out.stderr.contains("no manifest.csv here"),
        "{}",
        out.stderr
    );
}

/// Every statement of every role of `t` that grants a DynamoDB action.
fn dynamodb_grants(t: &Value) -> Vec<Value> {
    let mut found = Vec::new();
    for r in t["Resources"].as_object().unwrap().values() {
        if r["Type"] != "AWS::IAM::Role" {
            continue;
        }
        for p in r["Properties"]["Policies"].as_array().into_iter().flatten() {
            for s in p["PolicyDocument"]["Statement"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let actions = match &s["Action"] {
                    Value::Array(a) => a.clone(),
                    a => vec![a.clone()],
                };
                if actions
                    .iter()
                    .any(|a| a.as_str().is_some_and(|a| a.starts_with("dynamodb:")))
                {
                    found.push(s.clone());
                }
            }
        }
    }
    found
}

fn check_template(t: &Value) {
    let env = t["Resources"]
        .as_object()
        .unwrap()
        .values()
        .find(|r| r["Properties"]["Environment"]["Variables"]["JITR_ADMISSION"].is_object())
        .map(|r| r["Properties"]["Environment"]["Variables"].clone())
        .expect("a function with JITR_ADMISSION");
    assert_eq!(env["JITR_ADMISSION"]["Ref"], "Admission");
    assert_eq!(env["JITR_THING_NAME_TEMPLATE"]["Ref"], "ThingNameTemplate");
    let table_id = env["JITR_ALLOW_LIST_TABLE"]["Ref"].as_str().unwrap();
    let table = &t["Resources"][table_id];
    assert_eq!(table["Type"], "AWS::DynamoDB::Table");
    assert_eq!(table["Properties"]["BillingMode"], "PAY_PER_REQUEST");
    assert_eq!(
        table["Properties"]["KeySchema"],
        json!([{ "AttributeName": "certificateId", "KeyType": "HASH" }])
    );
    let admission = &t["Parameters"]["Admission"];
    assert_eq!(admission["Default"], "any");
    assert_eq!(admission["AllowedValues"], json!(["any", "allow-list"]));
    assert_eq!(t["Parameters"]["ThingNameTemplate"]["Default"], "");
    assert_eq!(env["JITR_THING_ATTRIBUTES"]["Ref"], "ThingAttributes");
    assert_eq!(t["Parameters"]["ThingAttributes"]["Default"], "");
    // Its pattern (CloudFormation's whole-string match, with Python's re)
    // passes what the function may accept and stops what it never would.
    let pattern = t["Parameters"]["ThingAttributes"]["AllowedPattern"]
        .as_str()
        .unwrap();
    let values = [
        ("", true),
        (
            "model={O},serial=sn-{serialNumber},cert={certificateId}",
            true,
        ),
        ("a.b@c/d:e#f_g-h=[x]=y", true),
        ("model=a b", false),
        ("model=x;y", false),
    ];
    let script = "import re, sys\nprint(re.fullmatch(sys.argv[1], sys.argv[2]) is not None)";
    for (value, ok) in values {
        let out = run(Command::new("python3").args(["-c", script, pattern, value]));
        assert_eq!(
            out.success().trim(),
            if ok { "True" } else { "False" },
            "{value}"
        );
    }
    assert_eq!(t["Outputs"]["AllowListTableName"]["Value"]["Ref"], table_id);
    // The function reads the list with GetItem on that table, and nothing else reads it.
    let on_table: Vec<Value> = dynamodb_grants(t)
        .into_iter()
        .filter(|s| s.to_string().contains(&format!("\"{table_id}\"")))
        .collect();
    assert_eq!(on_table.len(), 1, "{on_table:?}");
    assert_eq!(
        on_table[0]["Action"]
            .as_str()
            .or(on_table[0]["Action"][0].as_str()),
        Some("dynamodb:GetItem"),
        "{on_table:?}"
    );
    assert!(on_table[0]["Action"]
        .as_array()
        .is_none_or(|a| a.len() == 1));
    assert!(!dynamodb_grants(t)
        .iter()
        .any(|s| s.to_string().contains("GetItem") && !s.to_string().contains(table_id)));
}

#[test]
fn both_templates_create_the_allow_list_with_one_read_grant() {
    let sam = run(Command::new("python3")
        .arg(workspace().join("scripts/sam_transform.py"))
        .arg(workspace().join("infra/sam/template.yaml")));
    check_template(&serde_json::from_str(sam.success()).unwrap());
    let cdk = jitr_tests::rehearsal::cdk_out().join("jitr.template.json");
    check_template(&serde_json::from_str(&std::fs::read_to_string(cdk).unwrap()).unwrap());
}

/// The measurement of the docs' Benchmarks (not a timed test; run with
/// `--ignored --nocapture`): `jitr device allow` of a synthetic manifest of
/// 100,000 certificates on the emulator, then the same again (all there).
#[test]
#[ignore]
fn bench_allow_100k_from_one_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let r = Rehearsal::start(d, Options::default());
    let n = 100_000;
    let mut csv = String::from(
        "name,certificate_id,serial,not_after,key_path,cert_path,bundle_path,role,revoked_at\n",
    );
    for i in 0..n {
        let id = format!("{:064x}", i as u128 * 0x9e37_79b9_7f4a_7c15 + 1);
        csv += &format!(
            "robot-{i:06},{id},{i:x},2030-01-01T00:00:00Z,,robot-{i:06}/device.crt,robot-{i:06}/bundle.crt,current,\n"
        );
    }
    std::fs::write(d.join("manifest.csv"), csv).unwrap();
    for (pass, added, there) in [("first", n, 0), ("again", 0, n)] {
        let started = std::time::Instant::now();
        let out = r.ms.jitr(
            d,
            &[
                "--json",
                "device",
                "allow",
                "manifest.csv",
                "--stack",
                "jitr",
            ],
        );
        let secs = started.elapsed().as_secs_f64();
        assert!(out.ok(), "{}", out.stderr);
        let s = out.json();
        assert_eq!(
            (&s["added"], &s["already_there"]),
            (&json!(added), &json!(there)),
            "{s}"
        );
        eprintln!(
            "BENCH {pass}: {n} certificates in {secs:.1} s ({:.0}/s): added {} already there {} refused {}",
            n as f64 / secs,
            s["added"],
            s["already_there"],
            s["refused"].as_array().unwrap().len()
        );
    }
    let count = r.ms.boto3(
        "dynamodb",
        "scan",
        json!({ "TableName": r.output("AllowListTableName"), "Select": "COUNT" }),
    );
    eprintln!("BENCH table count (first page): {count}");
}
