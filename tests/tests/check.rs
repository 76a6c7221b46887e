//! `jitr check` against certificates made by jitr and by openssl's classic
//! recipes (the subtle mistakes of the how-tos we replace).

use jitr_tests::{jitr, jitr_args, openssl, words};

fn failing_rules(report: &serde_json::Value) -> Vec<String> {
    report["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["pass"] == false)
        .map(|r| r["rule"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn jitr_made_certificates_pass_every_rule() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    jitr(d, &["ca", "create", "root"]).success();
    jitr_args(d, "ca create inter --issuer root --key rsa-3072").success();
    jitr_tests::issue_device(d, "inter", "dev", "robot-1");
    let out = jitr_args(
        d,
        "check root/ca.crt inter/ca.crt dev/robot-1/device-and-ca.crt --ca root",
    );
    let text = out.success();
    assert!(!text.contains("FAIL"), "{text}");
    assert!(text.contains("PASS chain"), "{text}");
    assert!(text.contains("PASS bundle"), "{text}");
    let json = jitr(
        d,
        &["--json", "check", "dev/robot-1/device.crt", "--ca", "inter"],
    )
    .json();
    assert_eq!(json[0]["kind"], "device");
    assert_eq!(json[0]["pass"], true);
}

#[test]
fn classic_openssl_mistakes_fail_with_the_rule_named() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    // A "CA" with no extensions at all (openssl with an empty config), a
    // SHA-1 / RSA-1024 CA, and a device whose CN is not a thing name.
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "nobc.key",
            "-out",
            "nobc.crt",
            "-subj",
            "/CN=No Basic Constraints",
            "-days",
            "10",
            "-config",
            "/dev/null",
        ],
    )
    .success();
    openssl(
        d,
        &words("req -x509 -newkey rsa:1024 -nodes -keyout weak.key -out weak.crt -subj /CN=Weak -days 10 -sha1"),
    )
    .success();
    jitr(d, &["ca", "create", "root"]).success();
    jitr_tests::ec_csr(d, "dev.key", "dev.csr", "/CN=my device");
    jitr_tests::openssl_sign(d, "dev.csr", "root", "dev.crt");

    let out = jitr(d, &["--json", "check", "nobc.crt", "weak.crt", "dev.crt"]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    let reports = out.json();
    assert_eq!(failing_rules(&reports[0]), ["basic-constraints"]);
    assert_eq!(failing_rules(&reports[1]), ["key", "signature"]);
    assert_eq!(failing_rules(&reports[2]), ["common-name"]);
    // The text form puts a line per rule.
    let out = jitr(d, &["check", "weak.crt"]);
    assert!(
        out.stdout.contains("FAIL key") && out.stdout.contains("1024"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("FAIL signature") && out.stdout.contains("sha1WithRSAEncryption"),
        "{}",
        out.stdout
    );
    assert!(
        out.failure().contains("2 check(s) failed"),
        "{}",
        out.stderr
    );
    // Chaining to the wrong CA fails the chain rule.
    jitr(d, &["ca", "create", "other"]).success();
    let json = jitr(d, &["--json", "check", "dev.crt", "--ca", "other"]).json();
    assert!(failing_rules(&json[0]).contains(&"chain".to_string()));
}

#[test]
fn unreadable_input_names_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(d.join("junk.pem"), "not a certificate").unwrap();
    let err = jitr(d, &["check", "junk.pem"]).failure().to_string();
    assert!(err.contains("junk.pem"), "{err}");
    let err = jitr(d, &["check", "absent.pem"]).failure().to_string();
    assert!(err.contains("absent.pem"), "{err}");
}

#[test]
fn a_device_directory_is_checked_as_connect_and_doctor_read_it() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    jitr(d, &["ca", "create", "root"]).success();
    jitr_tests::issue_device(d, "root", "dev", "robot-1");
    jitr_args(
        d,
        "device issue --ca root --out aws --name robot-2 --layout esp-idf",
    )
    .success();
    let out = jitr_args(d, "--json check dev/robot-1 aws/robot-2 --ca root");
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let reports = out.json();
    let files: Vec<&str> = reports
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["file"].as_str().unwrap())
        .collect();
    assert_eq!(
        files,
        [
            "dev/robot-1/device-and-ca.crt",
            "aws/robot-2/certificate.pem.crt"
        ]
    );
    // A directory without a device's files is named, with what was looked for.
    std::fs::create_dir(d.join("empty")).unwrap();
    let out = jitr_args(d, "check empty");
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("empty") && out.stderr.contains("device-and-ca.crt"),
        "{}",
        out.stderr
    );
}
