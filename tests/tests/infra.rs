//! infra/: the SAM template passes cfn-lint and keeps the deployment's
//! guarantees (read with cfn-lint's own YAML decoder, intrinsics in long form).

use std::process::Command;

use jitr_tests::lambda::workspace;
use jitr_tests::run;
use serde_json::Value;

fn sam() -> Value {
    let path = workspace().join("infra/sam/template.yaml");
    let script = "import json, sys\nfrom cfnlint.decode import decode\ntemplate, errors = decode(sys.argv[1])\nassert not errors, errors\nprint(json.dumps(template, default=str))";
    run(Command::new("python3").args(["-c", script, path.to_str().unwrap()])).json()
}

/// Every IAM statement of the template: inline role policies and function policies.
fn statements(t: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for (_, r) in t["Resources"].as_object().unwrap() {
        let policies = match r["Type"].as_str().unwrap() {
            "AWS::IAM::Role" => r["Properties"]["Policies"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|p| p["PolicyDocument"].clone())
                .collect(),
            "AWS::Serverless::Function" => r["Properties"]["Policies"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
            _ => vec![],
        };
        for p in policies {
            out.extend(p["Statement"].as_array().cloned().unwrap_or_default());
        }
    }
    out
}

fn as_list(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a.clone(),
        other => vec![other.clone()],
    }
}

#[test]
fn cfn_lint_passes_on_the_sam_template() {
    let out = run(Command::new("cfn-lint").arg(workspace().join("infra/sam/template.yaml")));
    out.success();
}

#[test]
fn the_sam_template_keeps_the_guarantees() {
    let t = sam();
    let res = &t["Resources"];

    // The rule reads the registered-certificate topic of the CA parameter.
    let rule = &res["RegisteredRule"]["Properties"]["TopicRulePayload"];
    let sql = rule["Sql"]["Fn::If"][2]["Fn::Sub"].as_str().unwrap();
    assert_eq!(
        sql,
        "SELECT * FROM '$aws/events/certificates/registered/${CaCertificateId}'"
    );
    assert_eq!(
        rule["Sql"]["Fn::If"][1],
        "SELECT * FROM '$aws/events/certificates/registered/+'"
    );

    // Delivery: rule -> queue -> function with capped concurrency and partial batch
    // failures; the queue's redrive and the rule's error action lead to the DLQ, which is alarmed.
    assert_eq!(rule["Actions"][0]["Sqs"]["QueueUrl"]["Ref"], "EventQueue");
    assert_eq!(
        rule["ErrorAction"]["Sqs"]["QueueUrl"]["Ref"],
        "DeadLetterQueue"
    );
    assert_eq!(
        res["EventQueue"]["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0],
        "DeadLetterQueue"
    );
    let event = &res["JitrFunction"]["Properties"]["Events"]["Registered"];
    assert_eq!(event["Type"], "SQS");
    assert_eq!(event["Properties"]["Queue"]["Fn::GetAtt"][0], "EventQueue");
    assert_eq!(
        event["Properties"]["FunctionResponseTypes"][0],
        "ReportBatchItemFailures"
    );
    assert_eq!(
        event["Properties"]["ScalingConfig"]["MaximumConcurrency"]["Ref"],
        "MaxConcurrency"
    );
    let alarm = &res["DeadLetterAlarm"]["Properties"];
    assert_eq!(
        alarm["Dimensions"][0]["Value"]["Fn::GetAtt"][0],
        "DeadLetterQueue"
    );

    // Only this rule (as iot.amazonaws.com, in this account) may enqueue.
    let trust = &res["RuleRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0];
    assert_eq!(trust["Principal"]["Service"], "iot.amazonaws.com");
    let source = trust["Condition"]["ArnEquals"]["aws:SourceArn"]["Fn::Sub"]
        .as_str()
        .unwrap();
    assert!(source.ends_with(":rule/${RuleName}"), "{source}");
    assert_eq!(
        res["RegisteredRule"]["Properties"]["RuleName"]["Ref"],
        "RuleName"
    );

    // The function runs on provided.al2023 / arm64, built by cargo-lambda.
    let f = &res["JitrFunction"];
    assert_eq!(f["Metadata"]["BuildMethod"], "rust-cargolambda");
    assert_eq!(f["Properties"]["Runtime"], "provided.al2023");
    assert_eq!(f["Properties"]["Architectures"][0], "arm64");
    assert_eq!(
        f["Properties"]["Environment"]["Variables"]["JITR_POLICY_NAME"]["Ref"],
        "DevicePolicy"
    );

    // Least privilege: no wildcard actions, no iot:*, no Resource "*".
    let all = statements(&t);
    assert!(all.len() >= 5);
    for s in &all {
        for action in as_list(&s["Action"]) {
            let a = action.as_str().unwrap();
            assert!(a != "*" && !a.ends_with(":*"), "wildcard action {a} in {s}");
        }
        for resource in as_list(&s["Resource"]) {
            assert_ne!(resource, "*", "Resource * in {s}");
        }
    }
    let iot_actions: Vec<String> = all
        .iter()
        .flat_map(|s| as_list(&s["Action"]))
        .filter_map(|a| a.as_str().map(str::to_string))
        .filter(|a| a.starts_with("iot:"))
        .collect();
    for needed in [
        "iot:DescribeCertificate",
        "iot:UpdateCertificate",
        "iot:CreateThing",
        "iot:AttachPolicy",
        "iot:AttachThingPrincipal",
    ] {
        assert!(iot_actions.iter().any(|a| a == needed), "{needed} missing");
    }

    // The device policy: connect only as its own thing; topics under the thing's prefix and shadow.
    let policy = &res["DevicePolicy"]["Properties"]["PolicyDocument"]["Statement"];
    for s in policy.as_array().unwrap() {
        for resource in as_list(&s["Resource"]) {
            let text = resource["Fn::Sub"].as_str().unwrap();
            assert!(
                text.contains("${!iot:Connection.Thing.ThingName}"),
                "{text}"
            );
        }
        for action in as_list(&s["Action"]) {
            assert!(
                ["iot:Connect", "iot:Publish", "iot:Receive", "iot:Subscribe"]
                    .contains(&action.as_str().unwrap())
            );
        }
    }
}
