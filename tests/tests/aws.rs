//! `jitr ca register | list | show | activate | deactivate | auto-registration | deregister`,
//! `jitr device register` and `jitr endpoint` against the ministack emulator
//! (IAM enforced where credentials matter), with boto3 as the independent
//! check of what AWS holds.

use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, Output};

use jitr_tests::ministack::Ministack;
use jitr_tests::{bin, free_port, jitr, jitr_args, openssl, run, words};
use serde_json::json;

/// The emulator, for AWS IoT's control plane (no MQTT listener).
struct Aws(Ministack);

impl Aws {
    fn start() -> Aws {
        Aws(Ministack::start())
    }
    fn jitr(&self, cwd: &std::path::Path, args: &[&str]) -> jitr_tests::Run {
        self.0.jitr(cwd, args)
    }
    /// An AWS IoT call with boto3 (see `Ministack::boto3`).
    fn boto3(&self, operation: &str, params: serde_json::Value) -> serde_json::Value {
        self.0.boto3("iot", operation, params)
    }
}

#[test]
fn registers_root_and_intermediate_idempotently() {
    let aws = Aws::start();
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let root_id = jitr(d, &["--json", "ca", "create", "root"]).json()["certificate_id"]
        .as_str()
        .unwrap()
        .to_string();
    jitr_args(d, "ca create inter --issuer root --key rsa-2048").success();

    // Default mode: the stand-in only accepts a verification certificate whose
    // CN is a registration code it issued and which the CA signed.
    let report = aws.jitr(d, &["--json", "ca", "register", "root"]).json();
    assert_eq!(report["outcome"], "registered");
    assert_eq!(
        report["certificate_id"],
        root_id.as_str(),
        "AWS's id is the SHA-256 of the DER"
    );
    assert_eq!(report["status"], "ACTIVE");
    assert_eq!(report["auto_registration"], "ENABLE");
    assert_eq!(report["mode"], "DEFAULT");
    assert_eq!(report["account"], jitr_tests::ministack::ACCOUNT);
    let described = aws.boto3(
        "describe_ca_certificate",
        json!({ "certificateId": root_id }),
    );
    assert_eq!(described["certificateDescription"]["status"], "ACTIVE");
    assert_eq!(
        described["certificateDescription"]["autoRegistrationStatus"],
        "ENABLE"
    );
    let recorded: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("root/aws.json")).unwrap()).unwrap();
    assert_eq!(recorded["certificate_id"], root_id.as_str());
    assert_eq!(recorded["region"], "eu-west-1");
    // The text output names the id the infrastructure needs.
    let text = aws
        .jitr(d, &["ca", "register", "root"])
        .success()
        .to_string();
    assert!(
        text.contains(&format!(
            "caCertificateId for the infrastructure: {root_id}"
        )),
        "{text}"
    );
    assert!(text.starts_with("already registered"), "{text}");

    // Re-registering brings a CA that drifted back to the requested state.
    aws.boto3("update_ca_certificate", json!({ "certificateId": root_id, "newStatus": "INACTIVE", "newAutoRegistrationStatus": "DISABLE" }));
    let again = aws.jitr(d, &["--json", "ca", "register", "root"]).json();
    assert_eq!(again["outcome"], "already registered");
    assert_eq!(
        (
            again["status"].as_str(),
            again["auto_registration"].as_str()
        ),
        (Some("ACTIVE"), Some("ENABLE"))
    );
    let described = aws.boto3(
        "describe_ca_certificate",
        json!({ "certificateId": root_id }),
    );
    assert_eq!(described["certificateDescription"]["status"], "ACTIVE");

    // The intermediate too, here SNI-only and inactive, without auto-registration.
    let inter = aws
        .jitr(
            d,
            &words("--json ca register inter --mode sni-only --inactive --no-auto-registration"),
        )
        .json();
    assert_eq!(
        (
            inter["status"].as_str(),
            inter["auto_registration"].as_str(),
            inter["mode"].as_str()
        ),
        (Some("INACTIVE"), Some("DISABLE"), Some("SNI_ONLY"))
    );
    let listed = aws.jitr(d, &["--json", "ca", "list"]).json();
    let mut ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["certificate_id"].as_str().unwrap())
        .collect();
    ids.sort();
    let mut want = vec![root_id.as_str(), inter["certificate_id"].as_str().unwrap()];
    want.sort();
    assert_eq!(ids, want);
}

#[test]
fn the_emulator_refuses_a_wrong_proof_of_possession() {
    // Guards the check above: a verification certificate with another CN is refused.
    let aws = Aws::start();
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    jitr(d, &["ca", "create", "root"]).success();
    jitr_args(
        d,
        "ca verification-cert root --code 0123456789abcdef --out verify.crt",
    )
    .success();
    let ca = std::fs::read_to_string(d.join("root/ca.crt")).unwrap();
    let verification = std::fs::read_to_string(d.join("verify.crt")).unwrap();
    let answer = aws.boto3("register_ca_certificate", json!({ "caCertificate": ca, "verificationCertificate": verification, "setAsActive": true }));
    assert_eq!(
        answer["Error"], "RegistrationCodeValidationException",
        "{answer}"
    );
}

#[test]
fn lifecycle_commands_by_directory_and_by_id() {
    let aws = Aws::start();
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    jitr(d, &["ca", "create", "root"]).success();
    let id = aws.jitr(d, &["--json", "ca", "register", "root"]).json()["certificate_id"]
        .as_str()
        .unwrap()
        .to_string();

    let shown = aws.jitr(d, &["--json", "ca", "show", &id]).json();
    assert_eq!(shown["certificate_id"], id.as_str());
    let off = aws.jitr(d, &["--json", "ca", "deactivate", "root"]).json();
    assert_eq!(off["status"], "INACTIVE");
    assert_eq!(
        aws.boto3("describe_ca_certificate", json!({ "certificateId": id }))
            ["certificateDescription"]["status"],
        "INACTIVE"
    );
    let text = aws
        .jitr(d, &["ca", "deactivate", &id])
        .success()
        .to_string();
    assert!(text.contains("already in that state"), "{text}");
    aws.jitr(d, &["ca", "activate", "root"]).success();
    let auto = aws
        .jitr(d, &["--json", "ca", "auto-registration", "disable", "root"])
        .json();
    assert_eq!(auto["auto_registration"], "DISABLE");
    assert_eq!(auto["status"], "ACTIVE");
    assert_eq!(
        aws.boto3("describe_ca_certificate", json!({ "certificateId": id }))
            ["certificateDescription"]["autoRegistrationStatus"],
        "DISABLE"
    );

    // Deregistering leaves registered device certificates alone, and may run twice.
    jitr_tests::issue_device(d, "root", "dev", "d1");
    aws.jitr(
        d,
        &words("device register dev/d1/device.crt --ca root --activate"),
    )
    .success();
    assert_eq!(
        aws.jitr(d, &["--json", "ca", "deregister", "root"]).json()["outcome"],
        "deregistered"
    );
    assert_eq!(
        aws.jitr(d, &["--json", "ca", "deregister", "root"]).json()["outcome"],
        "was not registered"
    );
    assert_eq!(
        aws.boto3("describe_ca_certificate", json!({ "certificateId": id }))["Error"],
        "ResourceNotFoundException"
    );
    assert!(!d.join("root/aws.json").exists());
    let err = aws.jitr(d, &["ca", "show", "root"]).failure().to_string();
    assert!(err.contains("not registered"), "{err}");
    let listed = aws.boto3("list_certificates", json!({}));
    assert_eq!(
        listed["certificates"][0]["status"], "ACTIVE",
        "device certificate unaffected: {listed}"
    );
}

#[test]
fn device_certificates_register_with_and_without_activation() {
    let aws = Aws::start();
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    jitr(d, &["ca", "create", "root"]).success();
    aws.jitr(d, &["ca", "register", "root"]).success();
    let issued = jitr_args(
        d,
        "--json device issue --ca root --out dev --count 12 --name-template d{n:02}",
    )
    .json();
    let id_of = |name: &str| {
        issued["issued"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .unwrap()["certificate_id"]
            .as_str()
            .unwrap()
            .to_string()
    };

    let files: Vec<String> = (1..=10)
        .map(|n| format!("dev/d{n:02}/device-and-ca.crt"))
        .collect();
    let mut args = vec!["--json", "device", "register", "--ca", "root"];
    args.extend(files.iter().map(String::as_str));
    let report = aws.jitr(d, &args).json();
    let rows = report.as_array().unwrap();
    assert_eq!(rows.len(), 10);
    assert!(
        rows.iter()
            .all(|r| r["outcome"] == "registered" && r["status"] == "INACTIVE"),
        "{report}"
    );
    let described = aws.boto3(
        "describe_certificate",
        json!({ "certificateId": id_of("d03") }),
    );
    assert_eq!(described["certificateDescription"]["status"], "INACTIVE");

    // Again with --activate: already there, now ACTIVE; plus a new one.
    let text = aws
        .jitr(
            d,
            &words("device register --ca root --activate dev/d03/device.crt dev/d11/device.crt"),
        )
        .success()
        .to_string();
    assert!(
        text.contains("1 registered, 1 already registered, 0 failed"),
        "{text}"
    );
    for name in ["d03", "d11"] {
        let described = aws.boto3(
            "describe_certificate",
            json!({ "certificateId": id_of(name) }),
        );
        assert_eq!(
            described["certificateDescription"]["status"], "ACTIVE",
            "{name}"
        );
    }
    // Multi-account registration without the CA.
    aws.jitr(
        d,
        &["device", "register", "--without-ca", "dev/d12/device.crt"],
    )
    .success();
    assert_eq!(
        aws.boto3(
            "describe_certificate",
            json!({ "certificateId": id_of("d12") })
        )["certificateDescription"]["status"],
        "INACTIVE"
    );
    // A CA certificate given as a device is refused before any call.
    let err = aws
        .jitr(d, &["device", "register", "root/ca.crt"])
        .failure()
        .to_string();
    assert!(
        err.contains("root/ca.crt") && err.contains("jitr ca register"),
        "{err}"
    );
}

#[test]
fn endpoint_is_the_ats_data_endpoint() {
    let aws = Aws::start();
    let tmp = tempfile::tempdir().unwrap();
    let out = aws.jitr(tmp.path(), &["--json", "endpoint"]).json();
    // AWS's shape, `<account prefix>-ats.iot.<region>.amazonaws.com`; the
    // emulator answers with its own domain and port in place of amazonaws.com.
    let address = out["endpoint"].as_str().unwrap();
    let (prefix, rest) = address.split_once('-').unwrap();
    assert!(rest.starts_with("ats.iot.eu-west-1."), "{out}");
    assert_eq!(out["type"], "iot:Data-ATS", "{out}");
    assert!(
        prefix.len() == 14 && prefix.bytes().all(|b| b.is_ascii_alphanumeric()),
        "{out}"
    );
    let text = aws.jitr(tmp.path(), &["endpoint"]).success().to_string();
    assert!(text.trim() == address, "{text}");
}

#[test]
fn a_ca_aws_iot_would_refuse_is_refused_before_any_call() {
    let aws = Aws::start();
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::create_dir(d.join("weak")).unwrap();
    openssl(
        d,
        &words("req -x509 -newkey rsa:1024 -nodes -keyout weak/ca.key -out weak/ca.crt -subj /CN=Weak -days 10 -sha1"),
    )
    .success();
    let err = aws
        .jitr(d, &["ca", "register", "weak"])
        .failure()
        .to_string();
    assert!(
        err.contains("weak/ca.crt") && err.contains("AWS IoT would refuse") && err.contains("1024"),
        "{err}"
    );
    assert_eq!(
        aws.boto3("list_ca_certificates", json!({}))["certificates"],
        json!([]),
        "nothing registered"
    );
}

#[test]
fn aws_failures_are_one_clear_sentence() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    jitr(d, &["ca", "create", "root"]).success();
    let base = [
        ("AWS_REGION", "eu-west-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_CONFIG_FILE", "/dev/null"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
    ];
    let jitr_env = |env: &[(&str, &str)], args: &[&str]| {
        let mut cmd = Command::new(bin("jitr"));
        cmd.args(args)
            .current_dir(d)
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_PROFILE");
        cmd.envs(base.iter().copied()).envs(env.iter().copied());
        run(&mut cmd)
    };
    let keys = [
        ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE"),
        ("AWS_SECRET_ACCESS_KEY", "secret"),
    ];

    // Endpoint down.
    let down = format!("http://127.0.0.1:{}", free_port());
    let err = jitr_env(&keys, &["ca", "register", "root", "--endpoint-url", &down])
        .failure()
        .to_string();
    assert!(
        err.contains("cannot reach AWS IoT at") && err.contains(&down),
        "{err}"
    );
    // No credentials at all.
    let err = jitr_env(&[], &["ca", "list", "--endpoint-url", &down])
        .failure()
        .to_string();
    assert!(err.contains("no AWS credentials found"), "{err}");
    // A profile that does not exist.
    let err = jitr_env(&keys, &["ca", "list", "--profile", "nosuch"])
        .failure()
        .to_string();
    assert!(err.contains("profile `nosuch` is not defined"), "{err}");
    // No region.
    let err = jitr_env(
        &[("AWS_REGION", ""), keys[0], keys[1]],
        &["endpoint", "--endpoint-url", &down],
    )
    .failure()
    .to_string();
    assert!(err.contains("no AWS region"), "{err}");
    // Credentials the service rejects (the emulator checking them: AUTH=true).
    let ms = Ministack::start_with(&[("AUTH", "true"), ("IOT_MTLS_ENABLED", "0")]);
    let err = jitr_env(
        &keys,
        &["ca", "register", "root", "--endpoint-url", &ms.url],
    )
    .failure()
    .to_string();
    assert!(err.contains("AWS rejected the credentials"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(!d.join("root/aws.json").exists());
}

/// A temp dir with CAs `root` and `other`, and the directory `root` open
/// (for the test to lock).
fn root_and_other() -> (tempfile::TempDir, File) {
    let tmp = tempfile::tempdir().unwrap();
    jitr(tmp.path(), &["ca", "create", "root"]).success();
    jitr(tmp.path(), &["ca", "create", "other"]).success();
    let root = File::open(tmp.path().join("root")).unwrap();
    (tmp, root)
}

/// `jitr ca register root` started while the test holds the directory
/// `root` locked, once it waits for that lock.
fn register_root_waiting_on_its_lock(
    aws: &Aws,
    d: &Path,
) -> (Child, Result<(), std::process::ExitStatus>) {
    jitr_tests::spawn_until_waiting_on(
        Command::new(bin("jitr"))
            .args(["ca", "register", "root"])
            .current_dir(d)
            .envs(aws.0.env()),
        &d.join("root"),
    )
}

/// Replaces CA `root` with `other`'s files (as `ca create --force` would),
/// lets go of the lock `held` on it, and waits for `child`.
fn replace_root_with_other_and_release(d: &Path, held: File, child: Child) -> Output {
    for f in ["ca.crt", "ca.key", "chain.pem"] {
        std::fs::copy(d.join("other").join(f), d.join("root").join(f)).unwrap();
    }
    drop(held);
    child.wait_with_output().unwrap()
}

#[test]
fn register_records_aws_json_under_the_ca_lock_and_only_for_the_ca_still_there() {
    let aws = Aws::start();
    let (tmp, held) = root_and_other();
    let d = tmp.path();
    // Another run holds the CA directory (here a reader, so that register
    // loads the CA and registers it, then has to wait to write its record).
    held.lock_shared().unwrap();
    let (child, waited) = register_root_waiting_on_its_lock(&aws, d);
    // Registration done, the record waits for the lock (not for a clock).
    if let Err(status) = waited {
        panic!(
            "register finished ({status}) while the CA directory was locked; aws.json written: {}",
            d.join("root/aws.json").exists()
        );
    }
    assert!(!d.join("root/aws.json").exists());
    // Meanwhile the CA is replaced (as `ca create --force` would, once it
    // gets the lock before register does).
    let out = replace_root_with_other_and_release(d, held, child);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("root/ca.crt") && err.contains("was replaced meanwhile"),
        "{err}"
    );
    assert!(
        !d.join("root/aws.json").exists(),
        "no record of the old CA beside the new one"
    );
    // Registering the CA now there records it.
    aws.jitr(d, &["ca", "register", "root"]).success();
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("root/aws.json")).unwrap()).unwrap();
    // `ca show DIR` takes the id from DIR/ca.crt (now `other`'s).
    let shown = aws.jitr(d, &["--json", "ca", "show", "root"]).json();
    assert_eq!(shown["certificate_id"], record["certificate_id"]);
}

#[test]
fn register_refuses_a_ca_replaced_while_it_was_being_read() {
    let aws = Aws::start();
    let (tmp, held) = root_and_other();
    let d = tmp.path();
    // A writer holds the CA directory: register reads ca.crt, then waits to
    // load the CA (key included) until the writer is done.
    held.lock().unwrap();
    let (child, waited) = register_root_waiting_on_its_lock(&aws, d);
    if let Err(status) = waited {
        panic!("register finished ({status}) without waiting for the writer");
    }
    let out = replace_root_with_other_and_release(d, held, child);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("root/ca.crt: was replaced while being read"),
        "one clear sentence, not AWS refusing the proof: {err}"
    );
    assert_eq!(
        aws.boto3("list_ca_certificates", json!({}))["certificates"],
        json!([]),
        "nothing registered"
    );
    assert!(!d.join("root/aws.json").exists());
}
