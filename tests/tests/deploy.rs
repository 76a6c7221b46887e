//! `make deploy` as the README documents it, run as written against the
//! ministack emulator (`AWS_ENDPOINT_URL`, IAM enforced): the SAM CLI from
//! its own venv, `sam build` building the function with cargo-lambda (the
//! template's `BuildMethod: rust-cargolambda`), `sam deploy` through a
//! CloudFormation change set with the SAM CLI's managed bucket
//! (`--resolve-s3`); then a device gets in through what it deployed. The
//! `make deploy` runs are the slow tier (`make test-slow`).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use jitr_tests::lambda::workspace;
use jitr_tests::ministack::Ministack;
use jitr_tests::rehearsal::lambda_architecture;
use jitr_tests::{free_port, issue_device, jitr, run, Run};
use serde_json::json;

/// `make TARGET VARS...` in the workspace with `env`, outside any outer make.
fn make(args: &[&str], env: &[(&str, String)]) -> Run {
    run(Command::new("make")
        .args(args)
        .current_dir(workspace())
        .env_remove("MAKEFLAGS")
        .env_remove("MFLAGS")
        .env_remove("MAKELEVEL")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str()))))
}

/// One bounded connection to the emulator's broker: it builds its TLS
/// context on the first connection, which stalls (see rehearsal.rs).
fn warm_broker(port: u16, ca: &Path) {
    let mut probe = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-t", "things/probe", "-m", "probe", "-q", "1", "--cafile"])
        .arg(ca)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("mosquitto_pub is installed");
    for _ in 0..30 {
        if probe.try_wait().unwrap().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = probe.kill();
    let _ = probe.wait();
}

/// `make deploy CA_ID=... STACK=... ARCH=<this machine>` with nothing but
/// the emulator's environment (and cargo-lambda told to build with this
/// machine's toolchain, since the emulator runs the function here): the
/// stack is created through a change set, the function is the one
/// `sam build` built, and a device's first connect ends ACTIVE and online.
/// Minutes (a release build of the function when it changed): the slow tier.
#[test]
#[ignore = "slow"]
fn make_deploy_deploys_with_the_sam_cli_and_devices_get_in() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let mqtt = free_port();
    let ms = Ministack::start_with(&[
        ("AUTH", "true"),
        ("IOT_MTLS_PORT", &mqtt.to_string()),
        ("LOG_LEVEL", "INFO"),
    ]);
    jitr(d, &["ca", "create", "root"]).success();
    let ca_id = ms.jitr(d, &["--json", "ca", "register", "root"]).json()["certificate_id"]
        .as_str()
        .unwrap()
        .to_string();

    let mut env = ms.env();
    env.push(("CARGO_LAMBDA_COMPILER", "cargo".into()));
    env.push((
        "SAM_BUILD_DIR",
        d.join("sam-build").to_str().unwrap().into(),
    ));
    let ca = format!("CA_ID={ca_id}");
    let arch = format!("ARCH={}", lambda_architecture());
    let out = make(&["deploy", &ca, "STACK=jitr-sam", &arch], &env);
    assert!(
        out.ok(),
        "make deploy failed ({:?})\nstdout:\n{}\nstderr:\n{}\nemulator:\n{}",
        out.code,
        out.stdout,
        out.stderr,
        ms.log()
    );
    assert!(out.stdout.contains("Build Succeeded"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("Successfully created/updated stack - jitr-sam"),
        "{}",
        out.stdout
    );

    // The stack, its parameters as given, and the function sam build made.
    let stack = &ms.boto3(
        "cloudformation",
        "describe_stacks",
        json!({ "StackName": "jitr-sam" }),
    )["Stacks"][0];
    assert_eq!(stack["StackStatus"], "CREATE_COMPLETE", "{stack}");
    let param = |k: &str| {
        stack["Parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["ParameterKey"] == k)
            .map(|p| p["ParameterValue"].as_str().unwrap().to_string())
    };
    assert_eq!(param("CaCertificateId"), Some(ca_id.clone()));
    assert_eq!(
        param("Architecture").as_deref(),
        Some(lambda_architecture())
    );
    let output = |k: &str| {
        stack["Outputs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["OutputKey"] == k)
            .and_then(|o| o["OutputValue"].as_str())
            .unwrap_or_else(|| panic!("no output {k}: {stack}"))
            .to_string()
    };
    let built = d.join("sam-build/JitrFunction/bootstrap");
    assert!(built.exists(), "sam build wrote no {}", built.display());
    let function = ms.boto3(
        "lambda",
        "get_function_configuration",
        json!({ "FunctionName": output("FunctionName") }),
    );
    assert_eq!(function["Runtime"], "provided.al2023", "{function}");
    assert_eq!(
        function["Architectures"],
        json!([lambda_architecture()]),
        "{function}"
    );
    // sam deploy uploaded the zip to the bucket of its managed stack.
    let managed = ms.boto3(
        "cloudformation",
        "describe_stacks",
        json!({ "StackName": "aws-sam-cli-managed-default" }),
    );
    assert_eq!(
        managed["Stacks"][0]["StackStatus"], "CREATE_COMPLETE",
        "{managed}"
    );

    // A device's first connect through it: refused while pending, then in.
    issue_device(d, "root", "dev", "robot-1");
    let server_ca = d.join("server-ca.pem");
    ms.write_server_ca(&server_ca);
    warm_broker(mqtt, &server_ca);
    let endpoint = format!("127.0.0.1:{mqtt}");
    let out = ms.jitr(
        d,
        &[
            "--json",
            "connect",
            "dev/robot-1",
            "--endpoint",
            &endpoint,
            "--ca-file",
            server_ca.to_str().unwrap(),
            "--timeout",
            "90",
        ],
    );
    let report = out.json();
    assert_eq!(out.code, Some(0), "{report} {}\n{}", out.stderr, ms.log());
    assert_eq!(report["connected"], true, "{report}");
    let id = jitr_tests::certificate_id(d, "dev/robot-1/device.crt");
    let cert = ms.boto3(
        "iot",
        "describe_certificate",
        json!({ "certificateId": id }),
    );
    assert_eq!(cert["certificateDescription"]["status"], "ACTIVE", "{cert}");
    let things = ms.boto3(
        "iot",
        "list_thing_principals",
        json!({ "thingName": "robot-1" }),
    );
    assert_eq!(
        things["principals"],
        json!([cert["certificateDescription"]["certificateArn"]]),
        "{things}"
    );
}

/// Bad settings are refused before anything is built or deployed, naming
/// the setting and what it takes. `make deploy` installs the SAM CLI first
/// (minutes, once per machine): the slow tier.
#[test]
#[ignore = "slow"]
fn make_deploy_refuses_missing_or_malformed_settings() {
    let env = vec![
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:9".to_string()),
        ("CARGO_LAMBDA_COMPILER", "cargo".to_string()),
    ];
    let arch = format!("ARCH={}", lambda_architecture());
    let cases: &[(&[&str], &str)] = &[
        (&["deploy"], "CA_ID is required"),
        (
            &["deploy", "CA_ID=abc"],
            "CA_ID=abc: expected 64 lowercase hex digits",
        ),
        (
            &["deploy", "CA_ID=all", "ARCH=sparc"],
            "ARCH=sparc: expected arm64 or x86_64",
        ),
        (
            &["deploy", "CA_ID=all", "STACK=9lives", &arch],
            "STACK=9lives",
        ),
        (
            &["deploy", "CA_ID=all", "PARAMS=MaxConcurrency", &arch],
            "PARAMS: \"MaxConcurrency\" is not NAME=VALUE",
        ),
    ];
    for (args, expected) in cases {
        let out = make(args, &env);
        let err = out.failure();
        assert!(err.contains(expected), "{args:?}: {err}");
        assert!(
            !out.stdout.contains("sam build"),
            "{args:?}: {}",
            out.stdout
        );
    }
}

/// `scripts/venv.sh DIR pip`, the step `make deploy` (and `make deps`) takes
/// first: two runs at once on a fresh DIR both end with a working pip (two
/// tests running `make deploy` on a clean clone once failed here with "No
/// module named pip"), and a DIR left without pip, as a creation killed
/// half-way leaves it, is made afresh.
#[test]
fn the_venv_step_survives_concurrent_runs_and_an_interrupted_creation() {
    let tmp = tempfile::tempdir().unwrap();
    let script = workspace().join("scripts/venv.sh");
    let venv = |dir: &Path| {
        Command::new(&script)
            .arg(dir)
            .arg("pip")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let fresh = tmp.path().join("fresh");
    let runs: Vec<_> = (0..3).map(|_| venv(&fresh)).collect();
    for child in runs {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "a concurrent run failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let pip_works = |dir: &Path| {
        Command::new(dir.join("bin/python"))
            .args(["-m", "pip", "--version"])
            .output()
            .unwrap()
            .status
            .success()
    };
    assert!(pip_works(&fresh));

    let interrupted = tmp.path().join("interrupted");
    let made = Command::new("python3")
        .args(["-m", "venv", "--without-pip"])
        .arg(&interrupted)
        .status()
        .unwrap();
    assert!(made.success());
    assert!(!pip_works(&interrupted), "the stand-in has no pip");
    let out = venv(&interrupted).wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(pip_works(&interrupted));
}
