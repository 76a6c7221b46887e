//! AWS IoT's answers the emulators do not give, produced by the fault proxy
//! (`scripts/throttle_proxy.py`) in front of moto as AWS gives them, and
//! what `jitr` does with them: a resource quota reached (HTTP 410,
//! LimitExceededException) is one clear failure, not a throttle retried;
//! DeleteThing refused while DetachThingPrincipal propagates is waited out,
//! and named when it never clears.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use jitr_tests::moto::Moto;
use jitr_tests::throttle_proxy::{Faults, ThrottleProxy};
use jitr_tests::{free_port, issue_device, run, words, Run};
use serde_json::json;

/// The proxy in front of moto, with its usual faults off.
fn proxy(moto: &Moto) -> ThrottleProxy {
    ThrottleProxy::start_on(free_port(), &moto.url, Faults::default())
}

/// `jitr ARGS` in `cwd` against moto through `proxy`.
fn jitr_via(proxy: &ThrottleProxy, moto: &Moto, cwd: &Path, args: &[&str]) -> Run {
    run(Command::new(jitr_tests::bin("jitr"))
        .args(args)
        .current_dir(cwd)
        .envs(moto.env())
        .env("AWS_ENDPOINT_URL", &proxy.url))
}

/// Device `name` of CA `root`, registered ACTIVE and attached to its thing,
/// as the function leaves it; returns its certificate ARN.
fn provisioned(moto: &Moto, d: &Path, name: &str) -> String {
    issue_device(d, "root", "dev", name);
    let cert = format!("dev/{name}/device.crt");
    moto.jitr(
        d,
        &["device", "register", &cert, "--ca", "root", "--activate"],
    )
    .success();
    let id = jitr_tests::certificate_id(d, &cert);
    let arn = moto.boto3("describe_certificate", json!({ "certificateId": id }))
        ["certificateDescription"]["certificateArn"]
        .as_str()
        .unwrap()
        .to_string();
    moto.boto3("create_thing", json!({ "thingName": name }));
    let attached = moto.boto3(
        "attach_thing_principal",
        json!({ "thingName": name, "principal": arn }),
    );
    assert!(attached.get("Error").is_none(), "{attached}");
    arn
}

/// The report `--json` prints first (a failed run adds an error line).
fn report(out: &Run) -> serde_json::Value {
    serde_json::Deserializer::from_str(&out.stdout)
        .into_iter::<serde_json::Value>()
        .next()
        .and_then(Result::ok)
        .unwrap_or_else(|| panic!("no JSON report: {}\n{}", out.stdout, out.stderr))
}

/// Whether moto still holds thing `name`.
fn thing_exists(moto: &Moto, name: &str) -> bool {
    moto.boto3("describe_thing", json!({ "thingName": name }))
        .get("Error")
        .is_none()
}

#[test]
fn a_quota_reached_is_one_clear_failure_not_a_throttle_retried() {
    let (moto, tmp, _) = Moto::start_for_jitr();
    let d = tmp.path();
    issue_device(d, "root", "dev", "robot-1");
    let id = moto.register_pending(d, "dev/robot-1/device.crt");
    let proxy = proxy(&moto);
    proxy.set_limit_exceeded(&["AttachPolicy"]);

    let started = Instant::now();
    let out = jitr_via(
        &proxy,
        &moto,
        d,
        &["provision", &id, "--policy", "jitr-device"],
    );
    let err = out.failure();
    assert!(
        err.contains("exceeds the limit of 10") && err.contains("LimitExceededException"),
        "{err}"
    );
    assert!(!err.contains("throttled"), "{err}");
    assert_eq!(
        err.trim().lines().count(),
        1,
        "one sentence on stderr: {err}"
    );
    let stats = proxy.stats();
    assert_eq!(stats["AttachPolicy"].calls, 1, "not retried: {stats:?}");
    assert_eq!(stats["AttachPolicy"].refused, 1, "{stats:?}");
    assert!(started.elapsed() < Duration::from_secs(10), "no backoff");
    assert_eq!(
        moto.status(&id),
        "PENDING_ACTIVATION",
        "never activated without its policy"
    );
}

#[test]
fn revoke_delete_thing_waits_for_the_detachment_to_propagate() {
    let (moto, tmp, _) = Moto::start_for_jitr();
    let d = tmp.path();
    provisioned(&moto, d, "robot-1");
    let proxy = proxy(&moto);
    proxy.set_detach_propagation(3.0);

    let started = Instant::now();
    let out = jitr_via(
        &proxy,
        &moto,
        d,
        &words("--json device revoke --ca root --out dev robot-1 --delete-thing"),
    );
    let report = report(&out);
    assert_eq!(out.code, Some(0), "{report} {}", out.stderr);
    assert_eq!(report[0]["outcome"], "revoked", "{report}");
    assert_eq!(
        report[0]["changes"],
        json!(["REVOKED", "thing robot-1 detached", "thing robot-1 deleted"]),
        "{report}"
    );
    let stats = proxy.stats();
    assert!(stats["DeleteThing"].refused >= 1, "{stats:?}");
    assert_eq!(stats["DeleteThing"].passed, 1, "{stats:?}");
    assert!(started.elapsed() >= Duration::from_secs(3));
    assert!(!thing_exists(&moto, "robot-1"), "the thing is deleted");
}

#[test]
fn revoke_delete_thing_names_the_principal_when_the_detachment_never_propagates() {
    let (moto, tmp, _) = Moto::start_for_jitr();
    let d = tmp.path();
    let arn = provisioned(&moto, d, "robot-2");
    let proxy = proxy(&moto);
    proxy.set_detach_propagation(3600.0);

    let started = Instant::now();
    let out = jitr_via(
        &proxy,
        &moto,
        d,
        &words("--json device revoke --ca root --out dev robot-2 --delete-thing"),
    );
    let waited = started.elapsed();
    assert!(out.code.is_some_and(|c| c != 0), "{}", out.stderr);
    let report = report(&out);
    assert_eq!(report[0]["outcome"], "failed", "{report}");
    let error = report[0]["error"].as_str().unwrap_or_default();
    assert!(error.contains("thing robot-2"), "{error}");
    assert!(error.contains(&arn), "names the principal: {error}");
    assert!(error.contains("still attached"), "{error}");
    let stats = proxy.stats();
    assert!(stats["DeleteThing"].refused >= 5, "retried: {stats:?}");
    assert_eq!(stats["DeleteThing"].passed, 0, "{stats:?}");
    assert!(
        (Duration::from_secs(25)..Duration::from_secs(60)).contains(&waited),
        "bounded: {waited:?}"
    );
    assert!(thing_exists(&moto, "robot-2"), "nothing deleted");
    assert_eq!(
        report[0]["changes"],
        json!(["REVOKED", "thing robot-2 detached"]),
        "what was done is reported: {report}"
    );
}

#[test]
fn a_bad_thing_type_stops_the_function_at_init_with_the_setting_named() {
    // The function as Lambda starts it, with a thing type AWS IoT would
    // refuse on every event: it reports the init error to the Runtime API
    // (what Lambda shows as the invocation's error) and exits.
    let body = jitr_tests::runtime_api::init_error(&[("JITR_THING_TYPE", "robot arm")]);
    let message = body["errorMessage"].as_str().unwrap_or_default();
    assert!(
        message.contains("JITR_THING_TYPE") && message.contains("\"robot arm\""),
        "{}",
        body
    );
    assert_eq!(body["errorType"], "InvalidConfiguration", "{}", body);
}
