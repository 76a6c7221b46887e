//! The JITR function against the moto stand-in: the built binary under
//! `cargo lambda watch` (direct events, SQS batches, malformed input), the
//! handler in-process, and `jitr provision` / `jitr reconcile`.

use std::path::Path;

use jitr_tests::lambda::Watch;
use jitr_tests::moto::Moto;
use jitr_tests::runtime_api::{function_env, init_error, runtime_api};
use jitr_tests::{jitr, words};
use serde_json::json;

const ARN_PREFIX: &str = "arn:aws:iot:eu-west-1:123456789012:cert/";

/// Issues device `name` under `root` and registers it pending; returns its id.
fn pending_device(moto: &Moto, d: &Path, name: &str) -> String {
    jitr_tests::issue_device_with(d, "root", "dev", name, "O=Acme,serialNumber=SN-9");
    moto.register_pending(d, &format!("dev/{name}/device.crt"))
}

/// A device whose CN is not a valid thing name, signed by `root` with openssl.
fn badly_named_device(moto: &Moto, d: &Path) -> String {
    jitr_tests::ec_csr(d, "bad.key", "bad.csr", "/CN=bad name!");
    jitr_tests::openssl_sign(d, "bad.csr", "root", "bad.crt");
    moto.register_pending(d, "bad.crt")
}

fn write(d: &Path, name: &str, value: &serde_json::Value) -> std::path::PathBuf {
    let path = d.join(name);
    std::fs::write(&path, value.to_string()).unwrap();
    path
}

#[test]
fn the_built_function_under_cargo_lambda_provisions_events_and_batches() {
    let (moto, tmp, ca) = Moto::start_for_jitr();
    let d = tmp.path();
    let mut env = moto.env();
    env.push(("JITR_POLICY_NAME", "jitr-device".into()));
    env.push(("JITR_ALLOWED_CA_IDS", ca.clone()));
    env.push(("AWS_LAMBDA_LOG_FORMAT", "json".into()));
    let watch = Watch::start(&env, &d.join("watch.log"));

    // A direct event (the rule's Lambda action).
    let id = pending_device(&moto, d, "robot-1");
    let out = watch.invoke(&write(d, "event.json", &Moto::event(&id, &ca)));
    let answer = out.json();
    assert_eq!(answer["results"][0]["outcome"], "Activated", "{answer}");
    assert_eq!(moto.status(&id), "ACTIVE");
    let arn = format!("{ARN_PREFIX}{id}");
    assert_eq!(moto.thing_principals("robot-1"), std::slice::from_ref(&arn));
    assert_eq!(moto.policies_of(&arn), ["jitr-device"]);
    let thing = moto.boto3("describe_thing", json!({ "thingName": "robot-1" }));
    assert_eq!(
        thing["attributes"],
        json!({ "organization": "Acme", "serialNumber": "SN-9" })
    );

    // The same event again (AWS republishes while a device retries): success, nothing changes.
    let again = watch.invoke(&d.join("event.json")).json();
    assert_eq!(again["results"][0]["outcome"], "AlreadyActive");

    // Malformed events: an error answer, no AWS call, and the function keeps serving.
    for (n, bad) in [
        json!({ "certificateId": 12 }),
        json!("just a string"),
        json!({ "timestamp": 1 }),
    ]
    .iter()
    .enumerate()
    {
        let out = watch.invoke(&write(d, &format!("bad-{n}.json"), bad));
        assert!(!out.ok(), "{bad}: {out:?}");
        assert!(
            format!("{}{}", out.stdout, out.stderr).contains("malformed event"),
            "{bad}: {out:?}"
        );
    }

    // An SQS batch: two good records and a malformed one; only that one is reported failed.
    let (a, b) = (
        pending_device(&moto, d, "robot-2"),
        pending_device(&moto, d, "robot-3"),
    );
    let record = |mid: &str, body: String| json!({ "messageId": mid, "receiptHandle": "h", "body": body, "eventSource": "aws:sqs", "awsRegion": "eu-west-1", "attributes": {}, "messageAttributes": {} });
    let batch = json!({ "Records": [
        record("m1", Moto::event(&a, &ca).to_string()),
        record("m2", "{\"certificateId\": false}".into()),
        record("m3", Moto::event(&b, &ca).to_string()),
    ]});
    let answer = watch.invoke(&write(d, "batch.json", &batch)).json();
    assert_eq!(
        answer,
        json!({ "batchItemFailures": [{ "itemIdentifier": "m2" }] })
    );
    assert_eq!(
        (moto.status(&a), moto.status(&b)),
        ("ACTIVE".into(), "ACTIVE".into())
    );

    // A certificate whose name fails the pattern is revoked and gets no thing.
    let bad = badly_named_device(&moto, d);
    let answer = watch
        .invoke(&write(d, "bad-name.json", &Moto::event(&bad, &ca)))
        .json();
    assert_eq!(answer["results"][0]["outcome"], "Rejected", "{answer}");
    assert_eq!(moto.status(&bad), "REVOKED");
    assert_eq!(
        moto.policies_of(&format!("{ARN_PREFIX}{bad}")),
        Vec::<String>::new()
    );

    // One JSON log line and one EMF metric line per certificate.
    drop(watch);
    let log = std::fs::read_to_string(d.join("watch.log")).unwrap()
        + &std::fs::read_to_string(d.join("watch.err")).unwrap();
    let emf: Vec<serde_json::Value> = log
        .lines()
        .filter(|l| l.contains("CloudWatchMetrics"))
        .map(|l| serde_json::from_str(&l[l.find('{').unwrap()..]).unwrap())
        .collect();
    let names: Vec<&str> = emf
        .iter()
        .map(|m| {
            m["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(
        names.iter().filter(|n| **n == "Activated").count(),
        3,
        "{log}"
    );
    assert_eq!(
        names.iter().filter(|n| **n == "AlreadyActive").count(),
        1,
        "{log}"
    );
    assert_eq!(
        names.iter().filter(|n| **n == "Rejected").count(),
        1,
        "{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("\"outcome\":\"Rejected\"") && l.contains("does not match")),
        "{log}"
    );
}

/// The handler in-process against the stand-in, with its own runtime and
/// IoT client, at the time it was made.
struct InProcess {
    rt: tokio::runtime::Runtime,
    api: jitr_core::iot::SdkIot,
    now: i64,
}

impl InProcess {
    fn new(moto: &Moto) -> InProcess {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let sdk = rt.block_on(jitr_tests::sdk::config(&moto.env(), None));
        let api = jitr_core::iot::SdkIot {
            client: jitr_core::aws::iot_client(&sdk),
            endpoint: moto.url.clone(),
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        InProcess { rt, api, now }
    }

    /// The handler's answer, under `config`, to the registered event of
    /// certificate `id` of CA `ca` (no claims table, no deadline).
    fn handle(&self, config: &jitr_core::config::Config, id: &str, ca: &str) -> serde_json::Value {
        self.rt
            .block_on(jitr_core::handler::handle(
                &jitr_core::handler::Services::new(&self.api, &jitr_core::claims::NoClaims),
                config,
                Moto::event(id, ca),
                self.now,
                jitr_core::deadline::Deadline::none(),
            ))
            .unwrap()
    }
}

#[test]
fn the_handler_in_process_honours_type_groups_and_allowed_cas() {
    let (moto, tmp, ca) = Moto::start_for_jitr();
    let d = tmp.path();
    moto.boto3("create_thing_type", json!({ "thingTypeName": "robot" }));
    moto.boto3("create_thing_group", json!({ "thingGroupName": "fleet" }));
    let id = pending_device(&moto, d, "robot-9");
    let vars = [
        ("JITR_POLICY_NAME", "jitr-device"),
        ("JITR_THING_TYPE", "robot"),
        ("JITR_THING_GROUPS", "fleet"),
    ];
    let config = |extra: Option<(&str, &str)>| {
        jitr_core::config::Config::from_lookup(|k| {
            vars.iter()
                .chain(extra.iter())
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        })
        .unwrap()
    };
    let handler = InProcess::new(&moto);

    // A CA that is not allowed: rejected and revoked.
    let other = "f".repeat(64);
    let answer = handler.handle(&config(Some(("JITR_ALLOWED_CA_IDS", &other))), &id, &ca);
    assert_eq!(answer["results"][0]["outcome"], "Rejected");
    assert_eq!(moto.status(&id), "REVOKED");

    let id = pending_device(&moto, d, "robot-10");
    let answer = handler.handle(&config(Some(("JITR_ALLOWED_CA_IDS", &ca))), &id, &ca);
    assert_eq!(answer["results"][0]["outcome"], "Activated", "{answer}");
    let thing = moto.boto3("describe_thing", json!({ "thingName": "robot-10" }));
    assert_eq!(thing["thingTypeName"], "robot");
    let groups = moto.boto3(
        "list_thing_groups_for_thing",
        json!({ "thingName": "robot-10" }),
    );
    assert_eq!(groups["thingGroups"][0]["groupName"], "fleet", "{groups}");
}

#[test]
fn reconcile_provisions_what_events_missed() {
    let (moto, tmp, _) = Moto::start_for_jitr();
    let d = tmp.path();
    let ids: Vec<String> = (1..=4)
        .map(|n| pending_device(&moto, d, &format!("lost-{n}")))
        .collect();
    let bad = badly_named_device(&moto, d);

    // Dry run: the plan for each, nothing changed.
    let plans = moto
        .jitr(
            d,
            &words("--json reconcile --ca root --dry-run --policy jitr-device"),
        )
        .json();
    assert_eq!(plans.as_array().unwrap().len(), 5);
    assert!(plans
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["plan"]["action"] == "reject" && p["certificateId"] == bad.as_str()));
    assert!(ids.iter().all(|id| moto.status(id) == "PENDING_ACTIVATION"));

    let text = moto
        .jitr(d, &words("reconcile --ca root --policy jitr-device"))
        .success()
        .to_string();
    assert!(text.contains("4 activated, 1 rejected, 0 failed"), "{text}");
    assert!(ids.iter().all(|id| moto.status(id) == "ACTIVE"));
    assert_eq!(moto.status(&bad), "REVOKED");
    // Nothing pending any more; provisioning one again is an idempotent success.
    let text = moto
        .jitr(d, &words("reconcile --ca root --policy jitr-device"))
        .success()
        .to_string();
    assert!(text.starts_with("0 PENDING_ACTIVATION"), "{text}");
    let again = moto
        .jitr(
            d,
            &["--json", "provision", &ids[0], "--policy", "jitr-device"],
        )
        .json();
    assert_eq!(again["outcome"], "AlreadyActive");
    // Without a policy the settings are refused, named.
    let err = moto.jitr(d, &["provision", &ids[0]]).failure().to_string();
    assert!(err.contains("--policy / JITR_POLICY_NAME"), "{err}");
}

/// Issues device `name` under CA directory `ca` into `out` and registers it
/// pending under that CA; returns its id.
fn pending_device_of(moto: &Moto, d: &Path, ca: &str, out: &str, name: &str) -> String {
    jitr_tests::issue_device(d, ca, out, name);
    moto.register_pending_under(d, &format!("{out}/{name}/device.crt"), ca)
}

#[test]
fn a_device_of_a_second_ca_does_not_take_over_an_existing_thing() {
    let (moto, tmp, first_ca) = Moto::start_for_jitr();
    let d = tmp.path();
    jitr(d, &["ca", "create", "second", "--subject", "CN=Second CA"]).success();
    let second_ca = moto.jitr(d, &words("--json ca register second")).json()["certificate_id"]
        .as_str()
        .unwrap()
        .to_string();
    // The default: every CA the rule covers is admitted (no JITR_ALLOWED_CA_IDS).
    let config = jitr_core::config::Config::from_lookup(|k| {
        (k == "JITR_POLICY_NAME").then(|| "jitr-device".to_string())
    })
    .unwrap();
    let handler = InProcess::new(&moto);
    let handle = |id: &str, ca: &str| handler.handle(&config, id, ca);

    let owner = pending_device_of(&moto, d, "root", "dev", "robot-1");
    let answer = handle(&owner, &first_ca);
    assert_eq!(answer["results"][0]["outcome"], "Activated", "{answer}");

    // Same name, the other registered CA: refused, revoked, the thing untouched.
    let intruder = pending_device_of(&moto, d, "second", "dev2", "robot-1");
    let answer = handle(&intruder, &second_ca);
    assert_eq!(answer["results"][0]["outcome"], "Rejected", "{answer}");
    assert_eq!(
        answer["results"][0]["reason"],
        format!("thing robot-1 belongs to CA {first_ca}")
    );
    assert_eq!(moto.status(&intruder), "REVOKED");
    assert_eq!(
        moto.thing_principals("robot-1"),
        [format!("{ARN_PREFIX}{owner}")]
    );
    assert_eq!(
        moto.policies_of(&format!("{ARN_PREFIX}{intruder}")),
        Vec::<String>::new()
    );
    assert_eq!(moto.status(&owner), "ACTIVE");

    // A new certificate from the thing's own CA (a re-issued device) joins it.
    let reissued = pending_device_of(&moto, d, "root", "dev3", "robot-1");
    let answer = handle(&reissued, &first_ca);
    assert_eq!(answer["results"][0]["outcome"], "Activated", "{answer}");
    let mut principals = moto.thing_principals("robot-1");
    principals.sort();
    let mut expected = vec![
        format!("{ARN_PREFIX}{owner}"),
        format!("{ARN_PREFIX}{reissued}"),
    ];
    expected.sort();
    assert_eq!(principals, expected);
}

/// A listener on a free 127.0.0.1 port that accepts connections and never
/// answers: an AWS endpoint that hangs. Connections are held until drop.
struct Stall {
    port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Stall {
    fn start() -> Stall {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s = stop.clone();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for conn in listener.incoming() {
                if s.load(std::sync::atomic::Ordering::SeqCst) {
                    return;
                }
                held.extend(conn.ok());
            }
        });
        Stall { port, stop }
    }
}

impl Drop for Stall {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
    }
}

#[test]
fn the_built_function_answers_before_its_deadline_when_aws_hangs() {
    let stall = Stall::start();
    let id = "ab".repeat(32);
    let body = |n: u8| json!({ "certificateId": format!("{n:064x}") }).to_string();
    let record = |mid: &str, body: String| json!({ "messageId": mid, "receiptHandle": "h", "body": body, "eventSource": "aws:sqs", "awsRegion": "eu-west-1", "attributes": {}, "messageAttributes": {} });
    let events = vec![
        json!({ "certificateId": id, "certificateStatus": "PENDING_ACTIVATION" }),
        json!({ "Records": [record("m1", body(1)), record("m2", body(2))] }),
    ];
    // Lambda's deadline: 4 s after the event is handed out.
    let (runtime, answers) = runtime_api(events, std::time::Duration::from_secs(4));
    let _function = jitr_tests::Guard(
        std::process::Command::new(jitr_tests::bin("jitr-lambda"))
            .env_clear()
            .envs(function_env(
                runtime,
                format!("http://127.0.0.1:{}", stall.port),
            ))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let wait = std::time::Duration::from_secs(120);

    // The direct event: an error naming the certificate, before the deadline.
    let (answer, deadline) = answers
        .recv_timeout(wait)
        .expect("an answer to the direct event");
    assert!(answer.at < deadline, "answered after the deadline");
    assert!(answer.path.ends_with("/req-1/error"), "{}", answer.path);
    assert_eq!(
        answer.body["errorType"], "ProvisioningUnfinished",
        "{}",
        answer.body
    );
    let message = answer.body["errorMessage"].as_str().unwrap();
    assert!(
        message.starts_with(&format!("provisioning {id} unfinished")),
        "{message}"
    );

    // The SQS batch: both records named as batch item failures, before the deadline.
    let (answer, deadline) = answers.recv_timeout(wait).expect("an answer to the batch");
    assert!(answer.at < deadline, "answered after the deadline");
    assert!(answer.path.ends_with("/req-2/response"), "{}", answer.path);
    let mut failed: Vec<&str> = answer.body["batchItemFailures"]
        .as_array()
        .unwrap_or_else(|| panic!("{}", answer.body))
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap())
        .collect();
    failed.sort();
    assert_eq!(failed, ["m1", "m2"], "{}", answer.body);
}

/// Admission and attribute settings the function cannot work with stop it
/// at start-up, reported as its init error (what Lambda shows as the
/// invocation's error) naming the setting and the offending part.
#[test]
fn the_built_function_refuses_an_allow_list_without_its_table_and_bad_attributes() {
    for (vars, message) in [
        (
            vec![("JITR_ADMISSION", "allow-list")],
            "configuration JITR_ALLOW_LIST_TABLE: is required with JITR_ADMISSION=allow-list",
        ),
        (
            vec![("JITR_THING_ATTRIBUTES", "model={O},serial={Serial}")],
            "configuration JITR_THING_ATTRIBUTES: \"serial={Serial}\": no field {Serial}",
        ),
        (
            vec![("JITR_THING_ATTRIBUTES", "model={O},site=a b")],
            "configuration JITR_THING_ATTRIBUTES: \"site=a b\": ' ' cannot be in an attribute value",
        ),
        (
            vec![("JITR_THING_ATTRIBUTES", "a={CN},b={O},c=x,d=y")],
            "configuration JITR_THING_ATTRIBUTES: 4 attributes: a thing without a thing type carries at most 3",
        ),
    ] {
        let body = init_error(&vars);
        assert_eq!(body["errorType"], "InvalidConfiguration", "{body}");
        let got = body["errorMessage"].as_str().unwrap_or_default();
        assert!(got.starts_with(message), "{vars:?}: {body}");
    }
}
