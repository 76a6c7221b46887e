//! infra/: the SAM template and the template `cdk synth` makes of the CDK
//! app both pass cfn-lint and keep the deployment's guarantees. The SAM
//! template is checked as CloudFormation deploys it: after the SAM transform
//! (cfn-lint's own), so the generated role and event source mapping are seen.

use std::path::PathBuf;
use std::process::Command;

use jitr_tests::lambda::workspace;
use jitr_tests::run;
use serde_json::Value;

fn sam_path() -> PathBuf {
    workspace().join("infra/sam/template.yaml")
}

/// The SAM template after the SAM transform, as JSON.
fn sam() -> Value {
    let script = "import json, sys
from cfnlint.decode import decode
from cfnlint.template import Template
from cfnlint.template.transforms.transform import Transform
template, errors = decode(sys.argv[1])
assert not errors, errors
cfn = Template(sys.argv[1], template, ['us-east-1'])
matches = Transform().transform(cfn)
assert not matches, matches
print(json.dumps(cfn.template, default=str))";
    run(Command::new("python3").args(["-c", script, sam_path().to_str().unwrap()])).json()
}

/// `cdk synth` of infra/cdk without building the function (offline), once
/// per test binary (shared with the rehearsal, which deploys it).
fn cdk_out() -> &'static PathBuf {
    jitr_tests::rehearsal::cdk_out()
}

fn cdk() -> Value {
    let text = std::fs::read_to_string(cdk_out().join("jitr.template.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn as_list(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a.clone(),
        Value::Null => vec![],
        other => vec![other.clone()],
    }
}

/// The (logical id, resource) pairs of one type.
fn of_type<'a>(t: &'a Value, kind: &str) -> Vec<(&'a str, &'a Value)> {
    t["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"] == kind)
        .map(|(id, r)| (id.as_str(), r))
        .collect()
}

/// The one resource of a type.
fn single<'a>(t: &'a Value, kind: &str) -> (&'a str, &'a Value) {
    let all = of_type(t, kind);
    assert_eq!(all.len(), 1, "expected one {kind}");
    all[0]
}

/// Every IAM statement of the template: inline role policies and policy resources.
fn statements(t: &Value) -> Vec<Value> {
    let mut docs: Vec<Value> = Vec::new();
    for (_, role) in of_type(t, "AWS::IAM::Role") {
        for p in as_list(&role["Properties"]["Policies"]) {
            docs.push(p["PolicyDocument"].clone());
        }
    }
    for (_, policy) in of_type(t, "AWS::IAM::Policy") {
        docs.push(policy["Properties"]["PolicyDocument"].clone());
    }
    docs.iter().flat_map(|d| as_list(&d["Statement"])).collect()
}

/// The resource kinds a template creates, sorted, with repeats.
fn kinds(t: &Value) -> Vec<String> {
    let mut kinds: Vec<String> = t["Resources"]
        .as_object()
        .unwrap()
        .values()
        .map(|r| r["Type"].as_str().unwrap().to_string())
        .collect();
    kinds.sort();
    kinds
}

/// The logical id a `Ref` or `Fn::GetAtt` points at.
fn target(v: &Value) -> &str {
    v["Ref"]
        .as_str()
        .or_else(|| v["Fn::GetAtt"][0].as_str())
        .unwrap_or_else(|| panic!("not a reference: {v}"))
}

/// The guarantees of the infra issue, on a deployable template.
fn assert_guarantees(t: &Value) {
    assert!(t["Parameters"]["CaCertificateId"].is_object());

    // The rule reads the registered-certificate topic of the CA parameter (or of every CA).
    let (_, rule) = single(t, "AWS::IoT::TopicRule");
    let rule = &rule["Properties"];
    let payload = &rule["TopicRulePayload"];
    let sql = &payload["Sql"]["Fn::If"];
    assert_eq!(
        sql[2]["Fn::Sub"],
        "SELECT * FROM '$aws/events/certificates/registered/${CaCertificateId}'"
    );
    assert_eq!(
        sql[1],
        "SELECT * FROM '$aws/events/certificates/registered/+'"
    );
    let all_cas = as_list(&t["Conditions"][sql[0].as_str().unwrap()]["Fn::Equals"]);
    assert!(all_cas.contains(&"all".into()), "{all_cas:?}");
    assert!(
        all_cas.iter().any(|v| v["Ref"] == "CaCertificateId"),
        "{all_cas:?}"
    );
    assert_eq!(rule["RuleName"]["Ref"], "RuleName");

    // Delivery: rule -> queue -> function with capped concurrency and partial
    // batch failures; the queue's redrive and the rule's error action lead to
    // the DLQ, which is alarmed.
    let queue = target(&payload["Actions"][0]["Sqs"]["QueueUrl"]);
    let dlq = target(&payload["ErrorAction"]["Sqs"]["QueueUrl"]);
    assert_ne!(queue, dlq);
    let queues: Vec<&str> = of_type(t, "AWS::SQS::Queue")
        .iter()
        .map(|(id, _)| *id)
        .collect();
    assert!(
        queues.contains(&queue) && queues.contains(&dlq),
        "{queues:?}"
    );
    let redrive = &t["Resources"][queue]["Properties"]["RedrivePolicy"];
    assert_eq!(target(&redrive["deadLetterTargetArn"]), dlq);
    assert!(redrive["maxReceiveCount"].as_u64().unwrap() >= 3);

    let (function, f) = single(t, "AWS::Lambda::Function");
    let (_, mapping) = single(t, "AWS::Lambda::EventSourceMapping");
    let mapping = &mapping["Properties"];
    assert_eq!(target(&mapping["EventSourceArn"]), queue);
    assert_eq!(target(&mapping["FunctionName"]), function);
    assert!(as_list(&mapping["FunctionResponseTypes"]).contains(&"ReportBatchItemFailures".into()));
    assert_eq!(
        mapping["ScalingConfig"]["MaximumConcurrency"]["Ref"],
        "MaxConcurrency"
    );

    let (_, alarm) = single(t, "AWS::CloudWatch::Alarm");
    let dimension = &alarm["Properties"]["Dimensions"][0];
    assert_eq!(dimension["Name"], "QueueName");
    assert_eq!(target(&dimension["Value"]), dlq);

    // Only this rule (as iot.amazonaws.com, in this account) may enqueue.
    let rule_role = target(&payload["Actions"][0]["Sqs"]["RoleArn"]);
    let trust = &t["Resources"][rule_role]["Properties"]["AssumeRolePolicyDocument"]["Statement"];
    let trust = &as_list(trust)[0];
    assert_eq!(
        as_list(&trust["Principal"]["Service"]),
        vec![Value::from("iot.amazonaws.com")]
    );
    let source = trust["Condition"]["ArnEquals"]["aws:SourceArn"]["Fn::Sub"]
        .as_str()
        .unwrap();
    assert!(source.ends_with(":rule/${RuleName}"), "{source}");
    assert_eq!(
        trust["Condition"]["StringEquals"]["aws:SourceAccount"]["Ref"],
        "AWS::AccountId"
    );

    // The function: provided.al2023, arm64 unless the Architecture parameter
    // says otherwise (the local rehearsal deploys a build for its own machine),
    // its configuration from parameters, its logs in the template's log group
    // with a retention.
    let props = &f["Properties"];
    assert_eq!(props["Runtime"], "provided.al2023");
    assert_eq!(
        props["Architectures"],
        serde_json::json!([{ "Ref": "Architecture" }])
    );
    let arch = &t["Parameters"]["Architecture"];
    assert_eq!(arch["Default"], "arm64");
    assert_eq!(
        arch["AllowedValues"],
        serde_json::json!(["arm64", "x86_64"])
    );
    let (device_policy, policy) = single(t, "AWS::IoT::Policy");
    // Deleting the stack keeps the device policy: it is attached to every
    // activated certificate, and AWS refuses to delete an attached policy.
    assert_eq!(policy["DeletionPolicy"], "Retain");
    assert_eq!(policy["UpdateReplacePolicy"], "Retain");
    let env = &props["Environment"]["Variables"];
    assert_eq!(env["JITR_POLICY_NAME"]["Ref"], device_policy);
    for (var, param) in [
        ("JITR_THING_NAME_SOURCE", "ThingNameSource"),
        ("JITR_THING_NAME_PATTERN", "ThingNamePattern"),
        ("JITR_ALLOWED_CA_IDS", "AllowedCaIds"),
        ("JITR_ON_REJECT", "OnReject"),
        ("JITR_ON_ROTATION", "OnRotation"),
        ("JITR_EXCLUSIVE_THING", "ExclusiveThing"),
        ("JITR_CLOCK_SKEW_SECONDS", "ClockSkewSeconds"),
        ("JITR_MAX_CONCURRENCY", "MaxConcurrency"),
        ("JITR_API_RATES", "ApiRates"),
    ] {
        assert_eq!(env[var]["Ref"], param, "{var}");
    }
    assert_eq!(t["Parameters"]["ClockSkewSeconds"]["Default"], 300);
    // Rotation and exclusive attachment: the function's defaults, and only
    // the values its configuration accepts.
    for (param, default, allowed) in [
        (
            "OnRotation",
            "keep",
            serde_json::json!(["keep", "retire-previous"]),
        ),
        (
            "ExclusiveThing",
            "false",
            serde_json::json!(["true", "false"]),
        ),
    ] {
        let p = &t["Parameters"][param];
        assert_eq!(p["Type"], "String", "{param}");
        assert_eq!(p["Default"], default, "{param}");
        assert_eq!(p["AllowedValues"], allowed, "{param}");
    }
    let max = &t["Parameters"]["MaxConcurrency"];
    assert_eq!(
        (max["MinValue"].as_u64(), max["MaxValue"].as_u64()),
        (Some(2), Some(20))
    );

    // Batch, timeouts and redrive chosen together from the quotas: at every
    // MaxConcurrency, a full batch of new certificates at the instance's
    // share (10/s over MaxConcurrency) fits the function's timeout twice,
    // and holds at least 100 records (most of a burst's records are
    // duplicates the claims settle); the visibility timeout is six times
    // the timeout, and a record gets ten deliveries before the DLQ.
    let timeout = props["Timeout"].as_u64().unwrap();
    let lookup = &mapping["BatchSize"]["Fn::FindInMap"];
    assert_eq!(lookup[1]["Ref"], "MaxConcurrency", "{lookup}");
    let sizes = &t["Mappings"][lookup[0].as_str().unwrap()];
    for concurrency in 2..=20u64 {
        let batch = sizes[concurrency.to_string()][lookup[2].as_str().unwrap()]
            .as_u64()
            .unwrap_or_else(|| panic!("no batch size for MaxConcurrency {concurrency}"));
        let share = 10.0 / concurrency as f64;
        assert!(
            (batch as f64 / share) * 2.0 <= timeout as f64 && batch >= 100,
            "a batch of {batch} at {share}/s does not fit twice in {timeout} s"
        );
    }
    let visibility = t["Resources"][queue]["Properties"]["VisibilityTimeout"]
        .as_u64()
        .unwrap();
    assert!(
        visibility >= 6 * timeout,
        "visibility {visibility} s, timeout {timeout} s"
    );
    assert!(redrive["maxReceiveCount"].as_u64().unwrap() >= 10);
    let (log_group, logs) = single(t, "AWS::Logs::LogGroup");
    assert_eq!(props["LoggingConfig"]["LogGroup"]["Ref"], log_group);
    assert_eq!(
        logs["Properties"]["RetentionInDays"]["Ref"],
        "LogRetentionDays"
    );

    // Least privilege: inline policies only, no wildcard action, no iot:*,
    // no Resource "*"; the function may attach the device policy and no other.
    for (id, role) in of_type(t, "AWS::IAM::Role") {
        let managed = &role["Properties"]["ManagedPolicyArns"];
        assert!(
            as_list(managed).is_empty(),
            "{id} has managed policies {managed}"
        );
    }
    let all = statements(t);
    assert!(all.len() >= 7, "{all:?}");
    for s in &all {
        assert_eq!(s["Effect"], "Allow");
        for action in as_list(&s["Action"]) {
            let a = action.as_str().unwrap();
            assert!(a != "*" && !a.ends_with(":*"), "wildcard action {a} in {s}");
        }
        for resource in as_list(&s["Resource"]) {
            assert_ne!(resource, "*", "Resource * in {s}");
        }
    }
    let allows = |action: &str| -> Vec<Value> {
        all.iter()
            .filter(|s| as_list(&s["Action"]).contains(&action.into()))
            .flat_map(|s| as_list(&s["Resource"]))
            .collect()
    };
    // Every IoT action the function calls (a rotation describes the thing's
    // other certificates and sets them INACTIVE: DescribeCertificate and
    // UpdateCertificate on any certificate of the account).
    let on_certificates = |action: &str| {
        allows(action)
            .iter()
            .filter_map(|r| r["Fn::Sub"].as_str().map(str::to_string))
            .any(|r| r.ends_with(":cert/*"))
    };
    assert!(on_certificates("iot:DescribeCertificate"));
    assert!(on_certificates("iot:UpdateCertificate"));
    for needed in [
        "iot:DescribeCertificate",
        "iot:UpdateCertificate",
        "iot:ListThingPrincipals",
        "iot:CreateThing",
        "iot:AttachThingPrincipal",
        "iot:AttachPolicy",
        "iot:AddThingToThingGroup",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "logs:PutLogEvents",
    ] {
        assert!(!allows(needed).is_empty(), "{needed} missing");
    }
    let attach = allows("iot:AttachPolicy");
    let policies: Vec<&str> = attach
        .iter()
        .filter_map(|r| r["Fn::Sub"].as_str())
        .filter(|r| r.contains(":policy/"))
        .collect();
    assert_eq!(policies.len(), 1, "{attach:?}");
    assert!(
        policies[0].ends_with(&format!(":policy/${{{device_policy}}}")),
        "{policies:?}"
    );
    assert_eq!(target(&allows("sqs:ReceiveMessage")[0]), queue);

    // The claims the instances share: a table keyed by certificate id whose
    // items expire by themselves, named to the function, which may write
    // items of that table and nothing else of DynamoDB.
    let (table_id, table) = single(t, "AWS::DynamoDB::Table");
    let table = &table["Properties"];
    assert_eq!(
        table["KeySchema"],
        serde_json::json!([{ "AttributeName": "certificateId", "KeyType": "HASH" }])
    );
    assert_eq!(table["BillingMode"], "PAY_PER_REQUEST");
    assert_eq!(
        table["TimeToLiveSpecification"],
        serde_json::json!({ "AttributeName": "expiresAt", "Enabled": true })
    );
    assert_eq!(
        props["Environment"]["Variables"]["JITR_CLAIMS_TABLE"]["Ref"],
        table_id
    );
    let dynamodb: Vec<&Value> = all
        .iter()
        .filter(|s| {
            as_list(&s["Action"])
                .iter()
                .any(|a| a.as_str().is_some_and(|a| a.starts_with("dynamodb:")))
        })
        .collect();
    assert_eq!(dynamodb.len(), 1, "{dynamodb:?}");
    assert_eq!(
        as_list(&dynamodb[0]["Action"]),
        [
            "dynamodb:UpdateItem",
            "dynamodb:PutItem",
            "dynamodb:DeleteItem"
        ]
        .map(Value::from)
    );
    let resources = as_list(&dynamodb[0]["Resource"]);
    assert_eq!(resources.len(), 1, "{resources:?}");
    assert_eq!(target(&resources[0]), table_id);

    // The device policy: connect only as its own thing; topics under the thing's prefix and shadow.
    let statements = as_list(&policy["Properties"]["PolicyDocument"]["Statement"]);
    assert_eq!(statements.len(), 3);
    for s in &statements {
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

#[test]
fn cfn_lint_passes_on_the_sam_template() {
    run(Command::new("cfn-lint").arg(sam_path())).success();
}

#[test]
fn cfn_lint_passes_on_the_synthesized_cdk_template() {
    run(Command::new("cfn-lint").arg(cdk_out().join("jitr.template.json"))).success();
}

#[test]
fn the_sam_template_keeps_the_guarantees() {
    let t = sam();
    assert_guarantees(&t);
    let (_, f) = single(&t, "AWS::Lambda::Function");
    assert_eq!(f["Metadata"]["BuildMethod"], "rust-cargolambda");
    assert_eq!(f["Metadata"]["BuildProperties"]["Binary"], "jitr-lambda");
}

#[test]
fn the_cdk_template_keeps_the_guarantees() {
    let t = cdk();
    assert_guarantees(&t);
    // The function is cargo-lambda-cdk's RustFunction (tree.json records each construct's class).
    let tree = std::fs::read_to_string(cdk_out().join("tree.json")).unwrap();
    let tree: Value = serde_json::from_str(&tree).unwrap();
    let function = &tree["tree"]["children"]["jitr"]["children"]["JitrFunction"];
    assert_eq!(
        function["constructInfo"]["fqn"],
        "cargo-lambda-cdk.RustFunction"
    );
}

#[test]
fn both_templates_create_the_same_kinds_of_resources() {
    let (sam, cdk) = (kinds(&sam()), kinds(&cdk()));
    assert_eq!(sam, cdk);
    assert!(sam.len() >= 10, "{sam:?}");
}

/// The same parameters, with the same types, defaults and allowed values,
/// in both templates (CDK adds only its BootstrapVersion).
#[test]
fn both_templates_take_the_same_parameters() {
    let (sam, cdk) = (sam(), cdk());
    let names = |t: &Value| -> Vec<String> {
        let mut n: Vec<String> = t["Parameters"]
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| *k != "BootstrapVersion")
            .cloned()
            .collect();
        n.sort();
        n
    };
    assert_eq!(names(&sam), names(&cdk));
    // The batch size each MaxConcurrency gets.
    assert_eq!(
        sam["Mappings"]["BatchSizeByConcurrency"],
        cdk["Mappings"]["BatchSizeByConcurrency"]
    );
    assert!(names(&sam).contains(&"OnRotation".to_string()));
    assert!(names(&sam).contains(&"ExclusiveThing".to_string()));
    // CloudFormation passes parameter values as strings: 30 and "30" are one value.
    fn text(v: &Value) -> Value {
        match v {
            Value::Number(n) => Value::from(n.to_string()),
            Value::Array(a) => Value::Array(a.iter().map(text).collect()),
            other => other.clone(),
        }
    }
    for name in names(&sam) {
        for field in ["Type", "Default", "AllowedValues", "MinValue", "MaxValue"] {
            assert_eq!(
                text(&sam["Parameters"][&name][field]),
                text(&cdk["Parameters"][&name][field]),
                "{name}.{field}"
            );
        }
    }
}
