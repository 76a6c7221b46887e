//! Admission on the deployed stack (issue 26): `Admission=allow-list` with
//! the list filled by `jitr device allow` from a manifest and from a
//! certificate file, and a `ThingNameTemplate`. Of devices of one CA, the
//! one allowed from its manifest is ACTIVE under its manifest name, the one
//! allowed by its certificate alone is named by the template, and the one
//! never allowed is REVOKED "not on the allow-list". Then the templates'
//! allow-list: its table, its one grant, its parameters and output.

use std::process::Command;
use std::time::Duration;

use jitr_tests::lambda::workspace;
use jitr_tests::rehearsal::{cert_arn, Options, Rehearsal};
use jitr_tests::{certificate_id, issue_device, run};
use serde_json::{json, Value};

/// The function's log lines about a certificate.
fn function_lines(r: &Rehearsal, id: &str) -> Vec<String> {
    r.ms.log()
        .lines()
        .filter(|l| l.contains(id) && l.contains("outcome"))
        .map(str::to_string)
        .collect()
}

#[test]
fn only_allowed_devices_get_in_under_their_manifest_or_template_names() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let parameters = [
        ("Admission", "allow-list"),
        ("ThingNameTemplate", "unit-{CN}"),
    ];
    let r = Rehearsal::start(
        d,
        Options {
            parameters: &parameters,
            ..Options::default()
        },
    );
    issue_device(d, "root", "dev", "robot-1");
    issue_device(d, "root", "other", "robot-2");
    issue_device(d, "root", "third", "robot-3");
    let (one, two, three) = (
        certificate_id(d, "dev/robot-1/device.crt"),
        certificate_id(d, "other/robot-2/device.crt"),
        certificate_id(d, "third/robot-3/device.crt"),
    );

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

    // Allowed from the manifest: ACTIVE under the manifest's name (the
    // entry's name wins over the template's unit-robot-1).
    let out = r.connect(&["dev/robot-1", "--client-id", "robot-1"], "60");
    assert_eq!(out.code, Some(0), "{}\n{}", out.stderr, r.ms.log());
    assert_eq!(r.status(&one), "ACTIVE");
    assert_eq!(r.thing_principals("robot-1"), vec![cert_arn(&one)]);

    // Never allowed: REVOKED, with the reason in the function's log, no thing.
    let out = r.connect(&["other/robot-2"], "4");
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    assert!(
        r.eventually(Duration::from_secs(15), || r.status(&two) == "REVOKED"),
        "{}\n{}",
        r.status(&two),
        r.ms.log()
    );
    let lines = function_lines(&r, &two);
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

    let things: Vec<String> = r.iot("list_things", json!({}))["things"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["thingName"].as_str().unwrap().to_string())
        .collect();
    let mut sorted = things.clone();
    sorted.sort();
    assert_eq!(sorted, ["robot-1", "unit-robot-3"], "{things:?}");

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
