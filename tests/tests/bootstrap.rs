//! The function as it is deployed: the release `bootstrap` that cargo-lambda
//! builds for this machine (`make build` puts it in <target>/lambda-host/),
//! started as Lambda starts it, under a Runtime API, answering events.

use jitr_tests::runtime_api::{function_env, runtime_api};
use serde_json::json;

/// The release bootstrap for this machine's architecture.
fn bootstrap() -> std::path::PathBuf {
    let root = jitr_tests::target_dir()
        .parent()
        .expect("the target directory")
        .to_path_buf();
    let path = root.join("lambda-host/jitr-lambda/bootstrap");
    assert!(
        path.exists(),
        "{} is missing: `make build` builds it (cargo lambda build --release --compiler cargo --lambda-dir <target>/lambda-host)",
        path.display()
    );
    path
}

#[test]
fn the_release_bootstrap_starts_under_a_runtime_api_and_answers_events() {
    // Nothing listens on this port: the events below need no AWS call.
    let aws = format!("http://127.0.0.1:{}", jitr_tests::free_port());
    let record = json!({ "messageId": "m1", "receiptHandle": "h", "body": "not json", "eventSource": "aws:sqs", "awsRegion": "eu-west-1", "attributes": {}, "messageAttributes": {} });
    let events = vec![json!({ "hello": "world" }), json!({ "Records": [record] })];
    let (runtime, answers) = runtime_api(events, std::time::Duration::from_secs(30));
    let _function = jitr_tests::Guard(
        std::process::Command::new(bootstrap())
            .env_clear()
            .envs(function_env(runtime, aws))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("the bootstrap runs on this machine"),
    );
    let wait = std::time::Duration::from_secs(60);

    // A direct event that is not a certificate event: a named error answer.
    let (answer, _) = answers
        .recv_timeout(wait)
        .expect("an answer to the first event");
    assert!(answer.path.ends_with("/req-1/error"), "{}", answer.path);
    assert_eq!(
        answer.body["errorType"], "MalformedEvent",
        "{}",
        answer.body
    );

    // The function keeps serving: an SQS batch whose record is not JSON is
    // answered with that record as the batch's failure.
    let (answer, _) = answers.recv_timeout(wait).expect("an answer to the batch");
    assert!(answer.path.ends_with("/req-2/response"), "{}", answer.path);
    assert_eq!(
        answer.body["batchItemFailures"],
        json!([{ "itemIdentifier": "m1" }]),
        "{}",
        answer.body
    );
}
