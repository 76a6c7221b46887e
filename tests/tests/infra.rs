//! infra/: the SAM template and the template `cdk synth` makes of the CDK
//! app both pass cfn-lint and keep the deployment's guarantees. The SAM
//! template is checked as CloudFormation deploys it: after the SAM transform
//! (cfn-lint's own), so the generated role and event source mapping are seen.

use std::path::PathBuf;
use std::process::Command;

use jitr_tests::lambda::workspace;
use jitr_tests::run;
use serde_json::{json, Value};

fn sam_path() -> PathBuf {
    workspace().join("infra/sam/template.yaml")
}

/// The SAM template after the SAM transform (scripts/sam_transform.py), as JSON.
fn sam() -> Value {
    let script = workspace().join("scripts/sam_transform.py");
    run(Command::new("python3").arg(script).arg(sam_path())).json()
}

/// Which of `values` the template parameter's AllowedPattern accepts (a
/// whole-string match, as CloudFormation applies it), with Python's `re`.
fn accepted(t: &Value, parameter: &str, values: &[&str]) -> Vec<bool> {
    let pattern = t["Parameters"][parameter]["AllowedPattern"]
        .as_str()
        .unwrap();
    let script = "import json, re, sys
p = re.compile(sys.argv[1])
print(json.dumps([p.fullmatch(v) is not None for v in json.loads(sys.argv[2])]))";
    let values = serde_json::to_string(values).unwrap();
    let out = run(Command::new("python3").args(["-c", script, pattern, &values])).json();
    serde_json::from_value(out).unwrap()
}

/// The custom resource attaching the device policy to the device group.
fn attachment_id(t: &Value) -> &str {
    single(t, "Custom::ThingGroupPolicyAttachment").0
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

/// Every IAM statement of the template: inline role policies (a
/// conditional one, `Fn::If`, as if its condition held) and policy resources.
fn statements(t: &Value) -> Vec<Value> {
    let mut docs: Vec<Value> = Vec::new();
    for (_, role) in of_type(t, "AWS::IAM::Role") {
        for p in as_list(&role["Properties"]["Policies"]) {
            let p = if p["Fn::If"].is_array() {
                &p["Fn::If"][1]
            } else {
                &p
            };
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

    // The function is the one the mapping invokes (the other one attaches
    // the device policy to the device group at deployment). The bulk lane's
    // mapping here; the fast lane's in `assert_two_lanes`.
    let bulk: Vec<&Value> = of_type(t, "AWS::Lambda::EventSourceMapping")
        .into_iter()
        .map(|(_, m)| &m["Properties"])
        .filter(|m| target(&m["EventSourceArn"]) == queue)
        .collect();
    assert_eq!(bulk.len(), 1, "mappings of {queue}: {bulk:?}");
    let mapping = bulk[0];
    assert_eq!(target(&mapping["EventSourceArn"]), queue);
    let function = target(&mapping["FunctionName"]);
    let f = &t["Resources"][function];
    assert_eq!(f["Type"], "AWS::Lambda::Function");
    // Named by CloudFormation: an explicit name is at most 64 characters,
    // which `${AWS::StackName}-jitr` exceeds for stack names over 59.
    assert!(f["Properties"]["FunctionName"].is_null(), "{f}");
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
    let (device_group, group) = single(t, "AWS::IoT::ThingGroup");
    let (_, attachment) = single(t, "Custom::ThingGroupPolicyAttachment");
    // The device policy is attached to the device group, by the custom
    // resource; no names given (CloudFormation's fit any stack name).
    assert_eq!(attachment["Properties"]["PolicyName"]["Ref"], device_policy);
    assert_eq!(
        target(&attachment["Properties"]["ThingGroupArn"]),
        device_group
    );
    assert!(policy["Properties"]["PolicyName"].is_null(), "{policy}");
    assert!(group["Properties"]["ThingGroupName"].is_null(), "{group}");
    // No event is provisioned before the group carries the policy.
    assert_eq!(
        as_list(&f["DependsOn"]),
        [Value::from(attachment_id(t))],
        "{f}"
    );
    // Deleting the stack keeps policy, group and attachment: devices keep working.
    for (id, r) in [
        (device_policy, policy),
        (device_group, group),
        ("attachment", attachment),
    ] {
        assert_eq!(r["DeletionPolicy"], "Retain", "{id}");
        assert_eq!(r["UpdateReplacePolicy"], "Retain", "{id}");
    }
    // The attaching function's code is infra/shared/device_group_policy.py.
    let token = target(&attachment["Properties"]["ServiceToken"]);
    let code =
        std::fs::read_to_string(workspace().join("infra/shared/device_group_policy.py")).unwrap();
    assert_eq!(
        t["Resources"][token]["Properties"]["Code"]["ZipFile"].as_str(),
        Some(code.as_str())
    );
    let env = &props["Environment"]["Variables"];
    assert_eq!(env["JITR_POLICY_NAME"]["Ref"], device_policy);
    assert_eq!(env["JITR_DEVICE_GROUP"]["Ref"], device_group);
    for (var, param) in [
        ("JITR_THING_NAME_SOURCE", "ThingNameSource"),
        ("JITR_THING_NAME_PATTERN", "ThingNamePattern"),
        ("JITR_ALLOWED_CA_IDS", "AllowedCaIds"),
        ("JITR_ON_REJECT", "OnReject"),
        ("JITR_ON_ROTATION", "OnRotation"),
        ("JITR_EXCLUSIVE_THING", "ExclusiveThing"),
        ("JITR_CLOCK_SKEW_SECONDS", "ClockSkewSeconds"),
        ("JITR_API_RATES", "ApiRates"),
        ("JITR_THING_TYPE", "ThingType"),
        ("JITR_THING_GROUPS", "ThingGroups"),
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

    // Thing type and groups as AWS names them (ThingTypeName, ThingGroupName
    // in AWS IoT's API model: 1-128 of [a-zA-Z0-9:_-]), so a typo fails the
    // deployment rather than every event; at most 9 groups (10 per thing,
    // one the device group).
    let (longest, too_long) = ("t".repeat(128), "t".repeat(129));
    let (nine, ten) = (["g"; 9].join(","), ["g"; 10].join(","));
    assert_eq!(
        accepted(
            t,
            "ThingType",
            &[
                "",
                "robot",
                "Robot:v2_a-1",
                &longest,
                &too_long,
                "robot arm",
                "robot/arm",
                "r\u{f6}bot"
            ]
        ),
        [true, true, true, true, false, false, false, false]
    );
    assert_eq!(
        accepted(
            t,
            "ThingGroups",
            &[
                "",
                "fleet",
                "fleet,line-4",
                &nine,
                &ten,
                "fleet, line-4",
                "fleet,",
                ",fleet",
                "site/berlin",
                &too_long
            ]
        ),
        [true, true, true, true, false, false, false, false, false, false]
    );

    // Least privilege: inline policies only, no wildcard action, no iot:*,
    // no Resource "*"; the function may attach no policy at all (AWS
    // authorises AttachPolicy on its target only). tests/tests/iam.rs checks
    // every action and resource against AWS's IAM reference.
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
        "iot:AddThingToThingGroup",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "logs:PutLogEvents",
    ] {
        assert!(!allows(needed).is_empty(), "{needed} missing");
    }
    let function_role = target(&props["Role"]);
    let function_statements: Vec<Value> =
        as_list(&t["Resources"][function_role]["Properties"]["Policies"])
            .iter()
            .flat_map(|p| as_list(&p["PolicyDocument"]["Statement"]))
            .collect();
    assert!(
        !function_statements
            .iter()
            .any(|s| as_list(&s["Action"]).contains(&"iot:AttachPolicy".into())),
        "the function may attach policies: {function_statements:?}"
    );
    // Only the attaching function may, on the device group only.
    let attach = allows("iot:AttachPolicy");
    assert_eq!(attach.len(), 1, "{attach:?}");
    assert_eq!(target(&attach[0]), device_group);
    assert_eq!(target(&allows("sqs:ReceiveMessage")[0]), queue);

    // The claims the instances share: a table keyed by certificate id whose
    // items expire by themselves, named to the function, which may write
    // items of that table and nothing else of DynamoDB.
    // (The other table, the allow-list's: tests/tests/admission.rs.)
    let table_id = props["Environment"]["Variables"]["JITR_CLAIMS_TABLE"]["Ref"]
        .as_str()
        .unwrap();
    let table = &t["Resources"][table_id];
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
                && !as_list(&s["Action"]).contains(&Value::from("dynamodb:GetItem"))
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

/// Events downstream (issue 26): `EventBusName` (a bus name as PutEvents
/// takes it; empty: none) becomes `JITR_EVENT_BUS`, and only when it is set
/// may the function put events, on that bus alone.
fn assert_event_bus(t: &Value) {
    let p = &t["Parameters"]["EventBusName"];
    assert_eq!(
        (&p["Type"], &p["Default"]),
        (&json!("String"), &json!("")),
        "{p}"
    );
    let (longest, too_long) = ("b".repeat(256), "b".repeat(257));
    assert_eq!(
        accepted(
            t,
            "EventBusName",
            &[
                "",
                "jitr-devices",
                "Fleet_events.v2",
                &longest,
                &too_long,
                "arn:aws:events:eu-west-1:123456789012:event-bus/jitr",
                "partner/bus",
                "my bus"
            ]
        ),
        [true, true, true, true, false, false, false, false]
    );
    let functions = of_type(t, "AWS::Lambda::Function");
    let (_, function) = functions
        .iter()
        .find(|(_, f)| f["Properties"]["Environment"]["Variables"]["JITR_POLICY_NAME"].is_object())
        .expect("the JITR function");
    let props = &function["Properties"];
    assert_eq!(
        props["Environment"]["Variables"]["JITR_EVENT_BUS"],
        json!({ "Ref": "EventBusName" })
    );
    let role = &t["Resources"][target(&props["Role"])];
    let conditional: Vec<&Value> = role["Properties"]["Policies"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["Fn::If"].is_array())
        .collect();
    assert_eq!(conditional.len(), 1, "{conditional:?}");
    let branches = conditional[0]["Fn::If"].as_array().unwrap();
    let condition = branches[0].as_str().unwrap();
    assert_eq!(
        t["Conditions"][condition],
        json!({ "Fn::Not": [{ "Fn::Equals": [{ "Ref": "EventBusName" }, ""] }] })
    );
    assert_eq!(branches[2], json!({ "Ref": "AWS::NoValue" }));
    let granted = as_list(&branches[1]["PolicyDocument"]["Statement"]);
    assert_eq!(granted.len(), 1, "{granted:?}");
    assert_eq!(as_list(&granted[0]["Action"]), [json!("events:PutEvents")]);
    assert_eq!(
        as_list(&granted[0]["Resource"]),
        [
            json!({ "Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/${EventBusName}" })
        ]
    );
    // Nothing else of EventBridge, anywhere.
    let events: Vec<Value> = statements(t)
        .into_iter()
        .filter(|s| {
            as_list(&s["Action"])
                .iter()
                .any(|a| a.as_str().is_some_and(|a| a.starts_with("events:")))
        })
        .collect();
    assert_eq!(events.len(), 1, "{events:?}");
}

#[test]
fn the_sam_template_sends_events_only_to_its_event_bus_parameter() {
    assert_event_bus(&sam());
}

#[test]
fn the_cdk_template_sends_events_only_to_its_event_bus_parameter() {
    assert_event_bus(&cdk());
}

/// The verifier hook (issue 26): `VerifierFunction` (an unqualified
/// Lambda function ARN; empty: none) becomes `JITR_VERIFIER_FUNCTION`; the
/// parameter's pattern accepts what the function accepts at start-up
/// (`verifier::check_function_arn`), so a stack never deploys a function
/// that refuses to start. The grant itself: tests/tests/iam.rs.
fn assert_verifier_parameter(t: &Value) {
    let p = &t["Parameters"]["VerifierFunction"];
    assert_eq!(
        (&p["Type"], &p["Default"]),
        (&json!("String"), &json!("")),
        "{p}"
    );
    let long = format!(
        "arn:aws:lambda:eu-west-1:123456789012:function:{}",
        "f".repeat(64)
    );
    let longer = format!("{long}f");
    let values = [
        "arn:aws:lambda:eu-west-1:123456789012:function:verify",
        "arn:aws-cn:lambda:cn-north-1:123456789012:function:verify_2-a",
        "arn:aws-us-gov:lambda:us-gov-west-1:123456789012:function:v",
        long.as_str(),
        longer.as_str(),
        "arn:aws:lambda:eu-west-1:123456789012:function:verify:live",
        "arn:aws:lambda:eu-west-1:123456789012:function:verify:1",
        "verify",
        "arn:aws:lambda:eu-west-1:1234:function:verify",
        "arn:aws:iot:eu-west-1:123456789012:function:verify",
        "arn:aws:lambda:eu-west-1:123456789012:layer:verify",
        "arn:aws:lambda:eu-west-1:123456789012:function:a.b",
    ];
    let function_accepts: Vec<bool> = values
        .iter()
        .map(|v| jitr_core::verifier::check_function_arn(v).is_ok())
        .collect();
    assert_eq!(
        function_accepts,
        [true, true, true, true, false, false, false, false, false, false, false, false]
    );
    assert_eq!(accepted(t, "VerifierFunction", &values), function_accepts);
    assert_eq!(
        accepted(t, "VerifierFunction", &[""]),
        [true],
        "empty: no hook"
    );
    let functions = of_type(t, "AWS::Lambda::Function");
    let (_, function) = functions
        .iter()
        .find(|(_, f)| f["Properties"]["Environment"]["Variables"]["JITR_POLICY_NAME"].is_object())
        .expect("the JITR function");
    assert_eq!(
        function["Properties"]["Environment"]["Variables"]["JITR_VERIFIER_FUNCTION"],
        json!({ "Ref": "VerifierFunction" })
    );
}

#[test]
fn the_sam_template_takes_a_verifier_function_arn() {
    assert_verifier_parameter(&sam());
}

#[test]
fn the_cdk_template_takes_a_verifier_function_arn() {
    assert_verifier_parameter(&cdk());
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
    let f = &t["Resources"]["JitrFunction"];
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
    // The instances of both lanes each MaxConcurrency gets.
    assert_eq!(
        sam["Mappings"]["FunctionInstancesByConcurrency"],
        cdk["Mappings"]["FunctionInstancesByConcurrency"]
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
        for field in [
            "Type",
            "Default",
            "AllowedValues",
            "AllowedPattern",
            "MinValue",
            "MaxValue",
        ] {
            assert_eq!(
                text(&sam["Parameters"][&name][field]),
                text(&cdk["Parameters"][&name][field]),
                "{name}.{field}"
            );
        }
    }
}

/// The two lanes of issue 23 item 4 (README "A lone device on a quiet
/// deployment"): the rule sends every event to two queues. The bulk lane's
/// mapping takes large batches with a 1 s batching window (bursts); the fast
/// lane's takes batches of at most 10 with no window, so AWS invokes at once
/// for a lone device (with a window AWS may wait up to 20 s on a quiet
/// queue), at the lowest MaximumConcurrency (2). Both lanes invoke the one
/// function, redrive to the one dead-letter queue, and the function's share
/// of the quotas counts the instances of both.
fn assert_two_lanes(t: &Value) {
    let (_, rule) = single(t, "AWS::IoT::TopicRule");
    let payload = &rule["Properties"]["TopicRulePayload"];
    let actions = as_list(&payload["Actions"]);
    assert_eq!(actions.len(), 2, "the rule's actions: {actions:?}");
    let lanes: Vec<&str> = actions
        .iter()
        .map(|a| target(&a["Sqs"]["QueueUrl"]))
        .collect();
    let (bulk, fast) = (lanes[0], lanes[1]);
    assert_ne!(bulk, fast, "{lanes:?}");
    let rule_role = target(&actions[0]["Sqs"]["RoleArn"]);
    assert_eq!(target(&actions[1]["Sqs"]["RoleArn"]), rule_role);
    let dlq = target(&payload["ErrorAction"]["Sqs"]["QueueUrl"]);

    let mappings = of_type(t, "AWS::Lambda::EventSourceMapping");
    assert_eq!(mappings.len(), 2, "{mappings:?}");
    let lane = |queue: &str| -> &Value {
        let m: Vec<&Value> = mappings
            .iter()
            .map(|(_, m)| &m["Properties"])
            .filter(|m| target(&m["EventSourceArn"]) == queue)
            .collect();
        assert_eq!(m.len(), 1, "mappings of {queue}: {m:?}");
        m[0]
    };
    let (bulk_mapping, fast_mapping) = (lane(bulk), lane(fast));
    assert_eq!(
        target(&bulk_mapping["FunctionName"]),
        target(&fast_mapping["FunctionName"]),
        "both lanes invoke the one function"
    );
    // The bulk lane: large batches, 1 s window, MaxConcurrency instances.
    assert!(bulk_mapping["BatchSize"]["Fn::FindInMap"].is_array());
    assert_eq!(bulk_mapping["MaximumBatchingWindowInSeconds"], 1);
    // The fast lane: at most 10 records, no window, 2 instances.
    let batch = fast_mapping["BatchSize"].as_u64();
    assert!(
        batch.is_some_and(|b| (1..=10).contains(&b)),
        "{fast_mapping}"
    );
    let window = &fast_mapping["MaximumBatchingWindowInSeconds"];
    assert!(
        window.is_null() || *window == 0,
        "fast lane window {window}"
    );
    assert_eq!(fast_mapping["ScalingConfig"]["MaximumConcurrency"], 2);
    for m in [bulk_mapping, fast_mapping] {
        assert!(
            as_list(&m["FunctionResponseTypes"]).contains(&"ReportBatchItemFailures".into()),
            "{m}"
        );
    }
    // Both queues redrive to the dead-letter queue after ten receives, with
    // the same visibility timeout.
    let props = |q: &str| t["Resources"][q]["Properties"].clone();
    for q in [bulk, fast] {
        let p = props(q);
        assert_eq!(
            target(&p["RedrivePolicy"]["deadLetterTargetArn"]),
            dlq,
            "{q}"
        );
        assert!(
            p["RedrivePolicy"]["maxReceiveCount"].as_u64() >= Some(10),
            "{q}"
        );
        assert_eq!(p["SqsManagedSseEnabled"], true, "{q}");
    }
    assert_eq!(
        props(bulk)["VisibilityTimeout"],
        props(fast)["VisibilityTimeout"]
    );

    // Least privilege: the rule may send to both lanes and the DLQ; the
    // function may receive and delete from both lanes, nothing else of SQS.
    let targets = |statements: &[Value], action: &str| -> Vec<String> {
        let mut out: Vec<String> = statements
            .iter()
            .filter(|s| as_list(&s["Action"]).contains(&action.into()))
            .flat_map(|s| as_list(&s["Resource"]))
            .map(|r| target(&r).to_string())
            .collect();
        out.sort();
        out
    };
    let role_statements = |role: &str| -> Vec<Value> {
        as_list(&t["Resources"][role]["Properties"]["Policies"])
            .iter()
            .flat_map(|p| as_list(&p["PolicyDocument"]["Statement"]))
            .collect()
    };
    let sorted = |mut v: Vec<&str>| {
        v.sort();
        v.into_iter().map(String::from).collect::<Vec<_>>()
    };
    assert_eq!(
        targets(&role_statements(rule_role), "sqs:SendMessage"),
        sorted(vec![bulk, fast, dlq])
    );
    let function = target(&fast_mapping["FunctionName"]);
    let function_role = target(&t["Resources"][function]["Properties"]["Role"]);
    let function_statements = role_statements(function_role);
    for action in [
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
    ] {
        assert_eq!(
            targets(&function_statements, action),
            sorted(vec![bulk, fast]),
            "{action}"
        );
    }
    // Each instance's share of the quotas: the rates over the instances of
    // both lanes (MaxConcurrency + the fast lane's 2) when the claims table
    // cannot count the working ones, so both lanes at full tilt stay under.
    let env = &t["Resources"][function]["Properties"]["Environment"]["Variables"];
    // The function tells the fast lane's batches by their queue's ARN (they
    // defer to the bulk lane while it works).
    assert_eq!(
        env["JITR_FAST_LANE_QUEUE_ARN"]["Fn::GetAtt"],
        serde_json::json!([fast, "Arn"]),
        "{env}"
    );
    let lookup = &env["JITR_MAX_CONCURRENCY"]["Fn::FindInMap"];
    assert_eq!(lookup[1]["Ref"], "MaxConcurrency", "{env}");
    let instances = &t["Mappings"][lookup[0].as_str().unwrap()];
    for concurrency in 2..=20u64 {
        let n = &instances[concurrency.to_string()][lookup[2].as_str().unwrap()];
        assert_eq!(
            n.as_str().and_then(|n| n.parse::<u64>().ok()),
            Some(concurrency + 2),
            "MaxConcurrency {concurrency}: {n}"
        );
    }
}

#[test]
fn the_sam_template_has_a_fast_lane_beside_the_bulk_lane() {
    assert_two_lanes(&sam());
}

#[test]
fn the_cdk_template_has_a_fast_lane_beside_the_bulk_lane() {
    assert_two_lanes(&cdk());
}
