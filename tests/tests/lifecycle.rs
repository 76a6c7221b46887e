//! A device certificate's life after issuance: `jitr device rotate` (files,
//! previous/, manifest, openssl verifies the successor), `jitr device revoke`
//! against the ministack emulator (by name, id and file, with and without
//! --delete-thing, a second run changing nothing, bad input changing
//! nothing), `jitr ca crl` verified with openssl, `jitr fleet status` counts
//! checked against what the test created, `jitr check`'s expiry warning.

use std::collections::BTreeMap;
use std::path::Path;

use jitr_tests::ministack::Ministack;
use jitr_tests::rehearsal::cert_arn;
use jitr_tests::{certificate_id, ec_csr, issue_device, jitr, jitr_args, mode, openssl, words};
use serde_json::json;

fn serial(dir: &Path, cert: &str) -> String {
    let pem = std::fs::read(dir.join(cert)).unwrap();
    jitr_core::CertFacts::from_pem(&pem).unwrap().serial_hex
}

/// The manifest's rows as (column -> value) maps (no value holds a comma).
fn manifest(out: &Path) -> Vec<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(out.join("manifest.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    lines
        .map(|l| {
            header
                .iter()
                .map(|h| h.to_string())
                .zip(l.split(',').map(str::to_string))
                .collect()
        })
        .collect()
}

fn read(d: &Path, file: &str) -> String {
    std::fs::read_to_string(d.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

#[test]
fn rotation_keeps_one_predecessor_and_the_successor_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    step_two_devices_of_an_intermediate(d);
    let old_id = certificate_id(d, "dev/robot-1/device.crt");
    let old_key = read(d, "dev/robot-1/device.key");

    let new_id = step_rotate_moves_the_predecessor_aside(d, &old_id, &old_key);
    step_successor_keeps_the_subject_and_verifies(d);
    step_manifest_records_current_and_previous(d, &new_id, &old_id);
    step_second_rotation_is_refused_without_force(d, &new_id);
    step_force_keeps_only_the_newest_predecessor(d, &new_id);
    step_csr_rotation_writes_no_key(d);
    step_bad_rotation_input_changes_nothing(d);
    step_issue_counts_devices_not_predecessors(d);
}

/// Setup: CAs root and int, robot-1 (with O=Acme) and robot-2 issued by int into dev.
fn step_two_devices_of_an_intermediate(d: &Path) {
    jitr(d, &["ca", "create", "root", "--subject", "CN=Test Root"]).success();
    jitr(
        d,
        &[
            "ca",
            "create",
            "int",
            "--issuer",
            "root",
            "--subject",
            "CN=Test Int",
        ],
    )
    .success();
    jitr_args(
        d,
        "device issue --ca int --out dev --name robot-1 --subject-extra O=Acme",
    )
    .success();
    issue_device(d, "int", "dev", "robot-2");
}

/// Rotating reports both ids; the predecessor, whole, in previous/; the
/// successor under today's names. Returns the successor's id.
fn step_rotate_moves_the_predecessor_aside(d: &Path, old_id: &str, old_key: &str) -> String {
    let out = jitr_args(d, "--json device rotate --ca int --out dev --name robot-1");
    let report = out.json();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let new_id = certificate_id(d, "dev/robot-1/device.crt");
    assert_ne!(new_id, old_id);
    assert_eq!(report["rotated"][0]["previous_certificate_id"], old_id);
    assert_eq!(report["rotated"][0]["certificate_id"], new_id.as_str());
    // The predecessor, whole, in previous/; the successor under today's names.
    assert_eq!(certificate_id(d, "dev/robot-1/previous/device.crt"), old_id);
    assert_eq!(read(d, "dev/robot-1/previous/device.key"), old_key);
    assert_ne!(read(d, "dev/robot-1/device.key"), old_key);
    for key in ["dev/robot-1/device.key", "dev/robot-1/previous/device.key"] {
        assert_eq!(mode(&d.join(key)), 0o600, "{key}");
    }
    let bundle = read(d, "dev/robot-1/device-and-ca.crt");
    assert!(bundle.starts_with(&read(d, "dev/robot-1/device.crt")));
    assert!(bundle.ends_with(&read(d, "int/chain.pem")));
    new_id
}

/// The certificate's subject, RFC 2253, as openssl prints it.
fn subject(d: &Path, cert: &str) -> String {
    openssl(
        d,
        &[
            "x509", "-in", cert, "-noout", "-subject", "-nameopt", "RFC2253",
        ],
    )
    .success()
    .trim()
    .to_string()
}

/// Same subject; openssl verifies the successor against the chain.
fn step_successor_keeps_the_subject_and_verifies(d: &Path) {
    assert_eq!(
        subject(d, "dev/robot-1/device.crt"),
        subject(d, "dev/robot-1/previous/device.crt")
    );
    assert!(subject(d, "dev/robot-1/device.crt").contains("CN=robot-1,O=Acme"));
    openssl(
        d,
        &[
            "verify",
            "-CAfile",
            "root/ca.crt",
            "-untrusted",
            "int/ca.crt",
            "dev/robot-1/device.crt",
        ],
    )
    .success();
}

/// The manifest records both, and which is current.
fn step_manifest_records_current_and_previous(d: &Path, new_id: &str, old_id: &str) {
    let rows = manifest(&d.join("dev"));
    let robot1: Vec<_> = rows.iter().filter(|r| r["name"] == "robot-1").collect();
    assert_eq!(robot1.len(), 2, "{rows:?}");
    assert_eq!(robot1[0]["role"], "current");
    assert_eq!(robot1[0]["certificate_id"], new_id);
    assert_eq!(robot1[1]["role"], "previous");
    assert_eq!(robot1[1]["certificate_id"], old_id);
    assert_eq!(robot1[1]["cert_path"], "robot-1/previous/device.crt");
}

/// Again: refused (the device may still use its predecessor), nothing
/// changed; --all stops on the same device before rotating any.
fn step_second_rotation_is_refused_without_force(d: &Path, new_id: &str) {
    let err = jitr_args(d, "device rotate --ca int --out dev --name robot-1");
    let msg = err.failure();
    assert!(
        msg.contains("dev/robot-1: was rotated before") && msg.contains("--force"),
        "{msg}"
    );
    assert_eq!(certificate_id(d, "dev/robot-1/device.crt"), new_id);
    // --all stops on the same device before rotating any.
    jitr_args(d, "device rotate --ca int --out dev --all").failure();
    assert_eq!(
        manifest(&d.join("dev"))
            .iter()
            .filter(|r| r["name"] == "robot-2")
            .count(),
        1
    );
}

/// With --force: one previous/ only, the newest predecessor; no staging left.
fn step_force_keeps_only_the_newest_predecessor(d: &Path, new_id: &str) {
    jitr_args(d, "device rotate --ca int --out dev --all --force").success();
    assert_eq!(certificate_id(d, "dev/robot-1/previous/device.crt"), new_id);
    assert!(d.join("dev/robot-2/previous/device.crt").exists());
    assert!(!d.join("dev/robot-1/previous/previous").exists());
    let hidden: Vec<String> = jitr_tests::list_dir(&d.join("dev"))
        .into_iter()
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(hidden.is_empty(), "staging left behind: {hidden:?}");
}

/// From a device-made CSR: no key written, the predecessor's key kept aside.
fn step_csr_rotation_writes_no_key(d: &Path) {
    ec_csr(d, "r2.key", "r2.csr", "/CN=ignored");
    jitr_args(
        d,
        "device rotate --ca int --out dev --name robot-2 --csr r2.csr --force",
    )
    .success();
    assert!(!d.join("dev/robot-2/device.key").exists());
    assert!(d.join("dev/robot-2/previous/device.key").exists());
    assert!(subject(d, "dev/robot-2/device.crt").contains("CN=robot-2"));
    let pubkey = |args: &[&str]| openssl(d, args).success().to_string();
    assert_eq!(
        pubkey(&["x509", "-in", "dev/robot-2/device.crt", "-noout", "-pubkey"]),
        pubkey(&["pkey", "-in", "r2.key", "-pubout"])
    );
}

/// Bad input: unknown device, another CA's device; nothing changes.
fn step_bad_rotation_input_changes_nothing(d: &Path) {
    let before = read(d, "dev/manifest.csv");
    let msg = jitr_args(d, "device rotate --ca int --out dev --name nope");
    assert!(
        msg.failure()
            .contains("--name nope: no device \"nope\" in dev"),
        "{}",
        msg.stderr
    );
    jitr_args(d, "ca create other --subject CN=Other").success();
    let msg = jitr_args(d, "device rotate --ca other --out dev --name robot-1");
    assert!(
        msg.failure().contains("was not issued by the CA other"),
        "{}",
        msg.stderr
    );
    assert_eq!(read(d, "dev/manifest.csv"), before);
}

/// Issuing counts devices, not their predecessors' rows.
fn step_issue_counts_devices_not_predecessors(d: &Path) {
    let report = jitr_args(d, "--json device issue --ca int --out dev --name robot-3").json();
    assert_eq!(report["manifest_rows"], 3, "{report}");
}

#[test]
fn check_warns_thirty_days_before_expiry() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    jitr(d, &["ca", "create", "root"]).success();
    for (name, days) in [("soon", "10"), ("later", "365")] {
        jitr(
            d,
            &[
                "device", "issue", "--ca", "root", "--out", "dev", "--name", name, "--days", days,
            ],
        )
        .success();
    }
    let out = jitr(d, &["check", "dev/soon/device-and-ca.crt"]);
    let text = out.success();
    assert!(
        text.contains("WARN expiry") && text.contains("days, within 30)"),
        "{text}"
    );
    assert!(text.contains("jitr device rotate"), "{text}");
    let text = jitr(d, &["check", "dev/later/device-and-ca.crt"])
        .success()
        .to_string();
    assert!(!text.contains("WARN"), "{text}");
    let report = jitr(d, &["--json", "check", "dev/soon/device-and-ca.crt"]).json();
    assert_eq!(
        report[0]["warnings"].as_array().unwrap().len(),
        1,
        "{report}"
    );
}

/// Devices `names` issued by CA `root` into `dev`, registered ACTIVE with
/// AWS IoT, each with its thing and the policy `p`, as the function would.
fn provisioned(ms: &Ministack, d: &Path, names: &[&str]) {
    ms.boto3(
        "iot",
        "create_policy",
        json!({"policyName": "p", "policyDocument": r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iot:Connect","iot:Publish"],"Resource":"*"}]}"#}),
    );
    for name in names {
        issue_device(d, "root", "dev", name);
        let cert = format!("dev/{name}/device.crt");
        ms.jitr(
            d,
            &["device", "register", &cert, "--ca", "root", "--activate"],
        )
        .success();
        let arn = cert_arn(&certificate_id(d, &cert));
        ms.boto3("iot", "create_thing", json!({"thingName": name}));
        ms.boto3(
            "iot",
            "attach_thing_principal",
            json!({"thingName": name, "principal": arn}),
        );
        ms.boto3(
            "iot",
            "attach_policy",
            json!({"policyName": "p", "target": arn}),
        );
    }
}

fn status(ms: &Ministack, id: &str) -> String {
    let d = ms.boto3("iot", "describe_certificate", json!({"certificateId": id}));
    d["certificateDescription"]["status"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| d["Error"].as_str().unwrap_or_default().to_string())
}

fn principals(ms: &Ministack, thing: &str) -> Option<usize> {
    let d = ms.boto3("iot", "list_thing_principals", json!({"thingName": thing}));
    d["principals"].as_array().map(Vec::len)
}

fn policies(ms: &Ministack, id: &str) -> usize {
    let d = ms.boto3(
        "iot",
        "list_attached_policies",
        json!({"target": cert_arn(id)}),
    );
    d["policies"].as_array().unwrap().len()
}

#[test]
fn revoke_by_name_id_and_file_then_the_crl_lists_them() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let ms = Ministack::start_iot();
    jitr(d, &["ca", "create", "root"]).success();
    ms.jitr(d, &["ca", "register", "root"]).success();
    provisioned(&ms, d, &["a", "b", "c", "keep"]);

    step_bad_revoke_input_changes_nothing(&ms, d);
    step_revoke_by_name_id_and_file(&ms, d);
    step_revoking_again_changes_nothing_but_can_delete_the_thing(&ms, d);
    step_unseen_certificate_is_registered_revoked(&ms, d);
    step_revoked_list_and_manifest_record_them(d);
    step_crl_is_signed_and_lists_exactly_the_revoked(d);
}

/// The id of device `name`'s certificate in dev.
fn device_id(d: &Path, name: &str) -> String {
    certificate_id(d, &format!("dev/{name}/device.crt"))
}

/// Bad input first (unknown name, another CA's device, an unknown id, a CA
/// certificate, a name without --out): nothing may change.
fn step_bad_revoke_input_changes_nothing(ms: &Ministack, d: &Path) {
    jitr_args(d, "ca create other --subject CN=Other").success();
    jitr_args(d, "device issue --ca other --out elsewhere --name x").success();
    let zeros = "0".repeat(64);
    let bad = [
        (vec!["keep", "nope"], "no device \"nope\" in dev"),
        (
            vec!["keep", "elsewhere/x/device.crt"],
            "was not issued by the CA in root",
        ),
        (vec!["keep", &zeros], "no such certificate in AWS IoT"),
        (vec!["keep", "root/ca.crt"], "is a CA certificate"),
    ];
    for (items, words) in bad {
        let mut args = vec!["device", "revoke", "--ca", "root", "--out", "dev"];
        args.extend(items);
        let out = ms.jitr(d, &args);
        assert!(out.failure().contains(words), "{words}: {}", out.stderr);
    }
    // A device name is a directory of --out: paths that resolve outside it
    // (by .. or a symbolic link) are refused, even for a device of root.
    issue_device(d, "root", "outside", "y");
    std::os::unix::fs::symlink("../outside/y", d.join("dev/link")).unwrap();
    for item in ["../outside/y", "link", "keep/../../outside/y"] {
        let out = ms.jitr(
            d,
            &[
                "device", "revoke", "--ca", "root", "--out", "dev", "keep", item,
            ],
        );
        let err = out.failure();
        assert!(
            err.contains(item) && err.contains("outside --out dev"),
            "{item}: {err}"
        );
        assert_ne!(
            status(ms, &certificate_id(d, "outside/y/device.crt")),
            "REVOKED"
        );
    }
    std::fs::remove_file(d.join("dev/link")).unwrap();
    assert_eq!(status(ms, &device_id(d, "keep")), "ACTIVE");
    assert!(!d.join("root/revoked.json").exists());
    let msg = ms.jitr(d, &words("device revoke --ca root a"));
    assert!(
        msg.failure().contains("a device name needs --out OUTDIR"),
        "{}",
        msg.stderr
    );
}

/// By name, by id, by file (with --delete-thing): revoked, policies and
/// things detached, c's thing deleted, keep untouched.
fn step_revoke_by_name_id_and_file(ms: &Ministack, d: &Path) {
    let b_id = device_id(d, "b");
    let out = ms.jitr(
        d,
        &[
            "--json", "device", "revoke", "--ca", "root", "--out", "dev", "a", &b_id,
        ],
    );
    let report = out.json();
    assert_eq!(out.code, Some(0), "{report} {}", out.stderr);
    assert_eq!(report[0]["outcome"], "revoked", "{report}");
    assert_eq!(report[1]["outcome"], "revoked", "{report}");
    assert_eq!(
        report[0]["changes"],
        json!(["REVOKED", "policy p detached", "thing a detached"])
    );
    let out = ms.jitr(
        d,
        &words("--json device revoke --ca root dev/c/device-and-ca.crt --delete-thing"),
    );
    let report = out.json();
    assert_eq!(report[0]["outcome"], "revoked", "{report} {}", out.stderr);
    assert_eq!(report[0]["changes"][3], "thing c deleted", "{report}");
    for n in ["a", "b", "c"] {
        assert_eq!(status(ms, &device_id(d, n)), "REVOKED", "{n}");
        assert_eq!(policies(ms, &device_id(d, n)), 0, "{n}");
    }
    assert_eq!(principals(ms, "a"), Some(0), "thing a kept, empty");
    assert_eq!(principals(ms, "b"), Some(0));
    assert_eq!(principals(ms, "c"), None, "thing c deleted");
    assert_eq!(status(ms, &device_id(d, "keep")), "ACTIVE");
    assert_eq!(principals(ms, "keep"), Some(1));
}

/// Again: already revoked, nothing changed; --delete-thing later still
/// finds the emptied thing by the certificate's CN.
fn step_revoking_again_changes_nothing_but_can_delete_the_thing(ms: &Ministack, d: &Path) {
    let b_id = device_id(d, "b");
    let out = ms.jitr(
        d,
        &[
            "--json", "device", "revoke", "--ca", "root", "--out", "dev", "a", &b_id, "c",
        ],
    );
    let report = out.json();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    for i in 0..3 {
        assert_eq!(report[i]["outcome"], "already revoked", "{report}");
        assert_eq!(report[i]["changes"], json!([]), "{report}");
    }
    let out = ms.jitr(
        d,
        &words("--json device revoke --ca root --out dev a --delete-thing"),
    );
    assert_eq!(
        out.json()[0]["changes"],
        json!(["thing a deleted"]),
        "{}",
        out.stdout
    );
    assert_eq!(principals(ms, "a"), None);
}

/// A certificate AWS IoT never saw is registered REVOKED: it can never come in.
fn step_unseen_certificate_is_registered_revoked(ms: &Ministack, d: &Path) {
    issue_device(d, "root", "dev", "never");
    let out = ms.jitr(d, &words("--json device revoke --ca root --out dev never"));
    assert_eq!(
        out.json()[0]["outcome"],
        "registered as revoked",
        "{} {}",
        out.stdout,
        out.stderr
    );
    assert_eq!(status(ms, &device_id(d, "never")), "REVOKED");
}

/// The records: the CA's list (for the CRL) and the manifest.
fn step_revoked_list_and_manifest_record_them(d: &Path) {
    let rows = manifest(&d.join("dev"));
    for r in &rows {
        let revoked = ["a", "b", "c", "never"].contains(&r["name"].as_str());
        assert_eq!(!r["revoked_at"].is_empty(), revoked, "{r:?}");
    }
    let list: serde_json::Value = serde_json::from_str(&read(d, "root/revoked.json")).unwrap();
    assert_eq!(list["revoked"].as_array().unwrap().len(), 4, "{list}");
}

/// The CRL: signed by the CA, listing exactly those serials; openssl refuses
/// a revoked device with it and accepts keep; another CA's CRL does not
/// verify under root.
fn step_crl_is_signed_and_lists_exactly_the_revoked(d: &Path) {
    let out = jitr_args(d, "--json ca crl root --days 7");
    assert_eq!(out.json()["revoked"], 4, "{}", out.stderr);
    jitr_tests::assert_crl_verifies(d, "root");
    let text = openssl(d, &["crl", "-in", "root/crl.pem", "-noout", "-text"])
        .success()
        .to_lowercase();
    for n in ["a", "b", "c", "never"] {
        assert!(
            text.contains(&serial(d, &format!("dev/{n}/device.crt"))),
            "{n}: {text}"
        );
    }
    assert!(!text.contains(&serial(d, "dev/keep/device.crt")));
    let verify = |cert: &str| {
        openssl(
            d,
            &[
                "verify",
                "-crl_check",
                "-CAfile",
                "root/ca.crt",
                "-CRLfile",
                "root/crl.pem",
                cert,
            ],
        )
    };
    let refused = verify("dev/a/device.crt");
    assert!(
        !refused.ok() && refused.stdout.contains("certificate revoked")
            || refused.stderr.contains("certificate revoked"),
        "{refused:?}"
    );
    verify("dev/keep/device.crt").success();
    // Another CA's CRL does not verify under root.
    jitr_args(d, "ca crl other --out other.crl").success();
    assert!(!openssl(d, &words("crl -in other.crl -CAfile root/ca.crt -noout")).ok());
}

#[test]
fn fleet_status_counts_what_the_test_made() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let ms = Ministack::start_iot();
    jitr(d, &["ca", "create", "root"]).success();
    let ca_id = ms.jitr(d, &words("--json ca register root")).json()["certificate_id"]
        .as_str()
        .unwrap()
        .to_string();
    provisioned(&ms, d, &["ok-1", "ok-2", "gone"]);
    // One expiring soon, ACTIVE; one INACTIVE; one revoked (thing left empty).
    jitr_args(d, "device issue --ca root --out dev --name soon --days 10").success();
    ms.jitr(
        d,
        &words("device register dev/soon/device.crt --ca root --activate"),
    )
    .success();
    issue_device(d, "root", "dev", "off");
    ms.jitr(d, &words("device register dev/off/device.crt --ca root"))
        .success();
    ms.jitr(d, &words("device revoke --ca root --out dev gone"))
        .success();
    // One PENDING_ACTIVATION: connected through JITR, no function to provision it.
    issue_device(d, "root", "dev", "pending");
    ms.boto3(
        "iot",
        "update_ca_certificate",
        json!({"certificateId": ca_id, "newAutoRegistrationStatus": "ENABLE"}),
    );
    let server_ca = d.join("server-ca.pem");
    ms.write_server_ca(&server_ca);
    let endpoint = format!("127.0.0.1:{}", ms.mqtt_port.unwrap());
    let connected = ms.jitr(
        d,
        &[
            "connect",
            "dev/pending",
            "--endpoint",
            &endpoint,
            "--ca-file",
            server_ca.to_str().unwrap(),
            "--timeout",
            "10",
        ],
    );
    let pending_id = certificate_id(d, "dev/pending/device.crt");
    assert_eq!(
        status(&ms, &pending_id),
        "PENDING_ACTIVATION",
        "{connected:?}\n{}",
        ms.log()
    );

    let out = ms.jitr(
        d,
        &words("--json fleet status --ca root --pending-older-than 0 --rate 10"),
    );
    let s = out.json();
    assert_eq!(out.code, Some(0), "{s} {}", out.stderr);
    assert_eq!(s["ca_certificate_id"], ca_id.as_str());
    assert_eq!(s["certificates"], 6, "{s}");
    assert_eq!(
        s["by_status"],
        json!({"ACTIVE": 3, "INACTIVE": 1, "REVOKED": 1, "PENDING_ACTIVATION": 1}),
        "{s}"
    );
    let things = |key: &str| -> Vec<String> {
        s[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["thing"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(things("expiring"), ["soon"], "{s}");
    assert_eq!(
        s["expiring"][0]["fix"],
        "jitr device rotate --ca root --out OUTDIR --name soon"
    );
    assert_eq!(things("pending"), ["pending"], "{s}");
    assert_eq!(s["pending"][0]["fix"], "jitr reconcile --ca root");
    assert_eq!(things("things_without_certificates"), ["gone"], "{s}");
    let fix = s["things_without_certificates"][0]["fix"].as_str().unwrap();
    assert!(
        fix.contains("jitr device revoke gone --ca root --out OUTDIR --delete-thing")
            && !fix.contains("aws iot"),
        "{fix}"
    );
    // The text names the same, and a longer window finds nothing more.
    let text = ms
        .jitr(d, &["fleet", "status", "--ca", &ca_id])
        .success()
        .to_string();
    assert!(
        text.contains("6 certificate(s): 3 ACTIVE, 1 INACTIVE, 1 PENDING_ACTIVATION, 1 REVOKED"),
        "{text}"
    );
    assert!(text.contains("pending longer than 10 minutes: 0"), "{text}");
    let bad = ms.jitr(d, &words("fleet status --ca nope"));
    assert!(
        bad.failure().contains("nope: is neither a CA directory"),
        "{}",
        bad.stderr
    );
}

#[test]
fn a_rotated_device_connects_with_its_successor_and_its_revoked_predecessor_cannot() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let ms = Ministack::start_iot();
    jitr(d, &["ca", "create", "root"]).success();
    ms.jitr(d, &words("ca register root --no-auto-registration"))
        .success();
    provisioned(&ms, d, &["r"]);
    let server_ca = d.join("server-ca.pem");
    ms.write_server_ca(&server_ca);
    let endpoint = format!("127.0.0.1:{}", ms.mqtt_port.unwrap());
    let connect = |args: &[&str]| {
        let mut all = vec!["--json", "connect"];
        all.extend(args);
        all.extend([
            "--endpoint",
            &endpoint,
            "--ca-file",
            server_ca.to_str().unwrap(),
        ]);
        all.extend(["--timeout", "10"]);
        ms.jitr(d, &all)
    };
    let out = connect(&["dev/r"]);
    assert_eq!(out.code, Some(0), "{} {}", out.stdout, out.stderr);
    let old_id = certificate_id(d, "dev/r/device.crt");

    jitr_args(d, "device rotate --ca root --out dev --name r").success();
    let new_id = certificate_id(d, "dev/r/device.crt");
    // AWS IoT learns of the successor (here registered as the function would
    // leave it: ACTIVE, on the same thing, with the device policy).
    ms.jitr(
        d,
        &words("device register dev/r/device.crt --ca root --activate"),
    )
    .success();
    let arn = cert_arn(&new_id);
    ms.boto3(
        "iot",
        "attach_thing_principal",
        json!({"thingName": "r", "principal": arn}),
    );
    ms.boto3(
        "iot",
        "attach_policy",
        json!({"policyName": "p", "target": arn}),
    );
    let out = connect(&["dev/r", "--message", "from the successor"]);
    assert_eq!(out.code, Some(0), "{} {}", out.stdout, out.stderr);

    // Revoking the predecessor keeps the thing: its successor is attached.
    let out = ms.jitr(
        d,
        &words("--json device revoke --ca root dev/r/previous/device.crt --delete-thing"),
    );
    let report = out.json();
    assert_eq!(report[0]["outcome"], "revoked", "{report} {}", out.stderr);
    assert_eq!(report[0]["certificate_id"], old_id.as_str());
    assert_eq!(
        report[0]["kept_things"],
        json!(["thing r: 1 other principal(s) attached"])
    );
    assert_eq!(principals(&ms, "r"), Some(1));
    let refused = connect(&[
        "--cert",
        "dev/r/previous/device-and-ca.crt",
        "--key",
        "dev/r/previous/device.key",
        "--client-id",
        "r",
    ]);
    assert_ne!(
        refused.code,
        Some(0),
        "{} {}",
        refused.stdout,
        refused.stderr
    );
    let out = connect(&["dev/r", "--message", "still in"]);
    assert_eq!(out.code, Some(0), "{} {}", out.stdout, out.stderr);
}

#[test]
fn concurrent_rotations_take_turns_and_leave_whole_devices() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    jitr(d, &["ca", "create", "root"]).success();
    jitr_args(
        d,
        "device issue --ca root --out dev --count 20 --name-template d-{n:02}",
    )
    .success();
    let spawn = || {
        std::process::Command::new(jitr_tests::bin("jitr"))
            .args([
                "--json", "device", "rotate", "--ca", "root", "--out", "dev", "--all", "--force",
            ])
            .current_dir(d)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let runs: Vec<_> = (0..3).map(|_| spawn()).collect();
    let mut chains: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for run in runs {
        let out = run.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        for r in report["rotated"].as_array().unwrap() {
            chains
                .entry(r["name"].as_str().unwrap().to_string())
                .or_default()
                .push((
                    r["previous_certificate_id"].as_str().unwrap().to_string(),
                    r["certificate_id"].as_str().unwrap().to_string(),
                ));
        }
    }
    let rows = manifest(&d.join("dev"));
    assert_eq!(rows.len(), 40, "a current and a previous row per device");
    for i in 1..=20 {
        let name = format!("d-{i:02}");
        // Three rotations, one after another: each run's predecessor is the
        // successor of the run before it.
        let steps = &chains[&name];
        assert_eq!(steps.len(), 3, "{name}: {steps:?}");
        let current = certificate_id(d, &format!("dev/{name}/device.crt"));
        let previous = certificate_id(d, &format!("dev/{name}/previous/device.crt"));
        assert!(
            steps.iter().any(|(p, n)| *p == previous && *n == current),
            "{name}: {steps:?}"
        );
        let linked = steps
            .iter()
            .filter(|(p, _)| steps.iter().any(|(_, n)| n == p))
            .count();
        assert_eq!(linked, 2, "{name}: a chain of three rotations {steps:?}");
        assert_eq!(mode(&d.join(format!("dev/{name}/device.key"))), 0o600);
        assert_eq!(
            mode(&d.join(format!("dev/{name}/previous/device.key"))),
            0o600
        );
    }
    let hidden: Vec<String> = jitr_tests::list_dir(&d.join("dev"))
        .into_iter()
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(hidden.is_empty(), "{hidden:?}");
}

#[test]
fn a_rotation_killed_at_any_point_leaves_each_device_all_old_or_all_new() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    jitr(d, &["ca", "create", "root"]).success();
    jitr_args(
        d,
        "device issue --ca root --out dev --count 200 --name-template k{n:03}",
    )
    .success();
    let name = |i: u32| format!("k{i:03}");
    let original: Vec<String> = (1..=200)
        .map(|i| certificate_id(d, &format!("dev/{}/device.crt", name(i))))
        .collect();
    // RSA-3072 keys: slow enough that the run is killed midway.
    let mut run = std::process::Command::new(jitr_tests::bin("jitr"))
        .args([
            "device", "rotate", "--ca", "root", "--out", "dev", "--all", "--key", "rsa-3072",
        ])
        .current_dir(d)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    while !d.join("dev/k002/previous").exists() {
        assert!(run.try_wait().unwrap().is_none(), "the run ended too soon");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    run.kill().unwrap(); // SIGKILL
    run.wait().unwrap();

    let mut rotated = 0;
    for i in 1..=200 {
        let n = name(i);
        let current = certificate_id(d, &format!("dev/{n}/device.crt"));
        if d.join(format!("dev/{n}/previous")).exists() {
            rotated += 1;
            let previous = certificate_id(d, &format!("dev/{n}/previous/device.crt"));
            assert_eq!(previous, original[i as usize - 1], "{n}");
            assert_ne!(current, previous, "{n}");
            // The new key is the new certificate's.
            let key = |args: &[&str]| openssl(d, args).success().to_string();
            assert_eq!(
                key(&[
                    "x509",
                    "-in",
                    &format!("dev/{n}/device.crt"),
                    "-noout",
                    "-pubkey"
                ]),
                key(&["pkey", "-in", &format!("dev/{n}/device.key"), "-pubout"]),
                "{n}"
            );
        } else {
            assert_eq!(current, original[i as usize - 1], "{n} untouched");
        }
    }
    assert!(
        (2..200).contains(&rotated),
        "killed midway: {rotated} rotated"
    );
    // The next run cleans up after the killed one and records the disk.
    jitr_args(d, "device rotate --ca root --out dev --name k200").success();
    let hidden: Vec<String> = jitr_tests::list_dir(&d.join("dev"))
        .into_iter()
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(hidden.is_empty(), "{hidden:?}");
    let rows = manifest(&d.join("dev"));
    assert_eq!(rows.len(), 200 + rotated + 1, "{rotated}");
}

/// Writes `CA/revoked.json` listing `cert`, as `jitr device revoke` would.
fn list_as_revoked(d: &Path, ca: &str, cert: &str) {
    let pem = std::fs::read(d.join(cert)).unwrap();
    let facts = jitr_core::CertFacts::from_pem(&pem).unwrap();
    let list = json!({"revoked": [{
        "certificate_id": facts.certificate_id,
        "serial": facts.serial_hex,
        "name": "x",
        "revoked_at": "2026-01-02T03:04:05Z",
    }]});
    std::fs::write(d.join(ca).join("revoked.json"), list.to_string()).unwrap();
}

/// The CRL of `ca` verifies under its certificate and refuses `revoked`.
fn crl_refuses(d: &Path, ca: &str, revoked: &str, good: &str) {
    jitr_tests::assert_crl_verifies(d, ca);
    let (crl, cafile) = (format!("{ca}/crl.pem"), format!("{ca}/ca.crt"));
    let verify = |cert: &str| {
        openssl(
            d,
            &[
                "verify",
                "-crl_check",
                "-CAfile",
                &cafile,
                "-CRLfile",
                &crl,
                cert,
            ],
        )
    };
    let refused = verify(revoked);
    assert!(
        !refused.ok()
            && format!("{}{}", refused.stdout, refused.stderr).contains("certificate revoked"),
        "{refused:?}"
    );
    verify(good).success();
}

#[test]
fn the_crl_is_signed_through_the_cas_key_store() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    // An encrypted file store: the passphrase from a file.
    std::fs::write(d.join("pw"), "correct horse battery staple\n").unwrap();
    std::fs::write(d.join("wrong"), "wrong\n").unwrap();
    jitr_args(
        d,
        "ca create enc --key rsa-2048 --encrypt --password-file pw",
    )
    .success();
    for n in ["e1", "e2"] {
        jitr(
            d,
            &[
                "device",
                "issue",
                "--ca",
                "enc",
                "--out",
                "dev",
                "--name",
                n,
                "--password-file",
                "pw",
            ],
        )
        .success();
    }
    list_as_revoked(d, "enc", "dev/e1/device.crt");
    let err = jitr_args(d, "ca crl enc --password-file wrong");
    err.failure();
    assert!(
        !d.join("enc/crl.pem").exists(),
        "nothing written with a wrong passphrase"
    );
    jitr_args(d, "ca crl enc --password-file pw").success();
    crl_refuses(d, "enc", "dev/e1/device.crt", "dev/e2/device.crt");

    // A KMS key on the emulator.
    let ms = Ministack::start();
    ms.jitr(
        d,
        &[
            "ca",
            "create",
            "kms",
            "--key-store",
            "kms",
            "--subject",
            "CN=KMS Root",
        ],
    )
    .success();
    for n in ["k1", "k2"] {
        ms.jitr(
            d,
            &[
                "device", "issue", "--ca", "kms", "--out", "dev", "--name", n,
            ],
        )
        .success();
    }
    list_as_revoked(d, "kms", "dev/k1/device.crt");
    let report = ms.jitr(d, &words("--json ca crl kms --days 1")).json();
    assert_eq!(report["revoked"], 1, "{report}");
    crl_refuses(d, "kms", "dev/k1/device.crt", "dev/k2/device.crt");
    // A revocation list jitr did not write is named.
    std::fs::write(d.join("kms/revoked.json"), "{}").unwrap();
    let err = ms.jitr(d, &["ca", "crl", "kms", "--force"]);
    assert!(
        err.failure()
            .contains("kms/revoked.json: not a revocation list"),
        "{}",
        err.stderr
    );
}

#[test]
fn a_key_jitr_cannot_generate_refuses_the_whole_rotation_before_any_device_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    jitr(d, &["ca", "create", "root"]).success();
    issue_device(d, "root", "dev", "a-1");
    issue_device(d, "root", "dev", "z-1");
    // z-1 now holds a certificate for an RSA-2560 key made by the device.
    openssl(
        d,
        &words("req -new -newkey rsa:2560 -nodes -keyout z.key -out z.csr -subj /CN=x"),
    )
    .success();
    jitr_args(
        d,
        "device rotate --ca root --out dev --name z-1 --csr z.csr",
    )
    .success();
    let before = std::fs::read(d.join("dev/a-1/device.crt")).unwrap();

    let err = jitr_args(d, "device rotate --ca root --out dev --all --force");
    err.failure();
    assert!(err.stderr.contains("dev/z-1"), "{}", err.stderr);
    assert!(err.stderr.contains("--key"), "{}", err.stderr);
    // a-1 comes first and was not touched.
    assert_eq!(std::fs::read(d.join("dev/a-1/device.crt")).unwrap(), before);
    assert!(!d.join("dev/a-1/previous").exists());
}

/// Device directories of `out` that hold a predecessor.
fn rotated_on_disk(out: &Path) -> Vec<String> {
    jitr_tests::list_dir(out)
        .into_iter()
        .filter(|n| out.join(n).join("previous").is_dir())
        .collect()
}

/// `rotate --all` killed midway: the manifest already shows what was
/// rotated, and running the same command again (no --force) finishes the
/// run: every device rotated exactly once, its ORIGINAL files in previous/.
#[test]
fn a_killed_rotate_all_is_finished_by_running_it_again() {
    const N: usize = 400;
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    jitr(d, &["ca", "create", "root"]).success();
    jitr_args(
        d,
        &format!("device issue --ca root --out dev --count {N} --name-template r{{n:03}}"),
    )
    .success();
    let names: Vec<String> = (1..=N).map(|i| format!("r{i:03}")).collect();
    let original: BTreeMap<String, (Vec<u8>, Vec<u8>)> = names
        .iter()
        .map(|n| {
            let f = |file: &str| std::fs::read(d.join(format!("dev/{n}/{file}"))).unwrap();
            (n.clone(), (f("device.crt"), f("device.key")))
        })
        .collect();

    // P-256 keys, as issued: killed once a quarter of the devices are rotated.
    let mut run = std::process::Command::new(jitr_tests::bin("jitr"))
        .args(words("device rotate --ca root --out dev --all"))
        .current_dir(d)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    while rotated_on_disk(&d.join("dev")).len() < N / 4 {
        assert!(run.try_wait().unwrap().is_none(), "the run ended too soon");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    run.kill().unwrap(); // SIGKILL
    run.wait().unwrap();
    let rotated = rotated_on_disk(&d.join("dev"));
    assert!(rotated.len() < N, "killed midway: {}", rotated.len());

    // The manifest shows each device as the disk holds it: a rotated device
    // with its successor and its predecessor (at most the devices being
    // swapped in at the kill may be one step behind).
    let rows = manifest(&d.join("dev"));
    let mut behind = Vec::new();
    for n in &names {
        let mine: Vec<_> = rows.iter().filter(|r| &r["name"] == n).collect();
        let current = certificate_id(d, &format!("dev/{n}/device.crt"));
        let shown: Vec<(&str, &str)> = mine
            .iter()
            .map(|r| (r["role"].as_str(), r["certificate_id"].as_str()))
            .collect();
        let expected: Vec<(&str, String)> = if rotated.contains(n) {
            let previous = certificate_id(d, &format!("dev/{n}/previous/device.crt"));
            vec![("current", current), ("previous", previous)]
        } else {
            vec![("current", current)]
        };
        let expected: Vec<(&str, &str)> = expected.iter().map(|(r, i)| (*r, i.as_str())).collect();
        if shown != expected {
            behind.push(format!("{n}: manifest {shown:?}, disk {expected:?}"));
        }
    }
    eprintln!(
        "killed with {} of {N} rotated; manifest behind the disk for {}",
        rotated.len(),
        behind.len()
    );
    assert!(
        behind.len() <= 1,
        "{} of {}: {behind:#?}",
        behind.len(),
        rotated.len()
    );

    // The same command again finishes the run: no refusal, no second rotation.
    let out = jitr_args(d, "--json device rotate --ca root --out dev --all");
    let report = out.json();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let again: Vec<&str> = report["rotated"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(again.len(), N - rotated.len(), "{}", out.stderr);
    assert!(again.iter().all(|n| !rotated.iter().any(|r| r == n)));
    assert_eq!(
        report["finished_earlier"].as_array().unwrap().len(),
        rotated.len(),
        "{report}"
    );
    for n in &names {
        let (crt, key) = &original[n];
        let f = |file: &str| std::fs::read(d.join(format!("dev/{n}/{file}"))).unwrap();
        assert_eq!(
            &f("previous/device.crt"),
            crt,
            "{n}: the original certificate"
        );
        assert_eq!(&f("previous/device.key"), key, "{n}: the original key");
        assert_ne!(&f("device.crt"), crt, "{n}");
        assert!(!d.join(format!("dev/{n}/previous/previous")).exists());
    }
    let mut verify = vec!["verify".to_string(), "-CAfile".into(), "root/ca.crt".into()];
    verify.extend(names.iter().map(|n| format!("dev/{n}/device.crt")));
    let verify: Vec<&str> = verify.iter().map(String::as_str).collect();
    let verified = openssl(d, &verify).success().to_string();
    assert_eq!(verified.matches(": OK").count(), N, "{verified}");
    let rows = manifest(&d.join("dev"));
    assert_eq!(rows.len(), 2 * N);
    for r in rows.iter().filter(|r| r["role"] == "previous") {
        assert_eq!(
            r["certificate_id"],
            jitr_core::CertFacts::from_pem(&original[&r["name"]].0)
                .unwrap()
                .certificate_id
        );
    }
    let left: Vec<String> = jitr_tests::list_dir(&d.join("dev"))
        .into_iter()
        .filter(|n| n.starts_with('.') || n.ends_with(".json"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // Finished: another rotation of these devices needs --force again.
    let refused = jitr_args(d, "device rotate --ca root --out dev --all");
    assert!(
        refused.failure().contains("was rotated before"),
        "{}",
        refused.stderr
    );
}

/// The serials `jitr ca crl` put in `ca`'s CRL, written to `file`
/// (lowercase hex, as openssl prints them).
fn crl_serials(d: &Path, ca: &str, file: &str) -> String {
    jitr_args(d, &format!("ca crl {ca} --out {file}")).success();
    openssl(d, &["crl", "-in", file, "-noout", "-text"])
        .success()
        .to_lowercase()
        .replace(':', "")
}

/// The certificate ids `ca/revoked.json` lists.
fn listed(d: &Path, ca: &str) -> Vec<String> {
    let path = d.join(ca).join("revoked.json");
    if !path.exists() {
        return Vec::new();
    }
    let list: serde_json::Value =
        serde_json::from_str(&read(d, &format!("{ca}/revoked.json"))).unwrap();
    list["revoked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["certificate_id"].as_str().unwrap().to_string())
        .collect()
}

/// `device revoke` killed midway (six devices at one a second, killed at
/// 3.5 s): every certificate AWS IoT shows REVOKED is already recorded, so
/// the CRL lists it; running the command again revokes the rest.
#[test]
fn a_killed_revoke_has_recorded_every_certificate_aws_revoked() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let ms = Ministack::start_iot();
    jitr(d, &["ca", "create", "root"]).success();
    ms.jitr(d, &["ca", "register", "root"]).success();
    let names = ["v1", "v2", "v3", "v4", "v5", "v6"];
    provisioned(&ms, d, &names);
    let mut args = words("device revoke --ca root --out dev --rate 1");
    args.extend(names);
    let mut run = std::process::Command::new(jitr_tests::bin("jitr"))
        .args(&args)
        .current_dir(d)
        .envs(ms.env())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(3500));
    run.kill().unwrap(); // SIGKILL
    let _ = run.wait();

    let revoked: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| status(&ms, &device_id(d, n)) == "REVOKED")
        .collect();
    assert!(
        !revoked.is_empty() && revoked.len() < names.len(),
        "killed midway: {revoked:?}"
    );
    eprintln!("killed with {revoked:?} REVOKED in AWS IoT");
    let recorded = listed(d, "root");
    let serials = crl_serials(d, "root", "after-kill.crl");
    for n in &revoked {
        assert!(
            recorded.contains(&device_id(d, n)),
            "{n} not in revoked.json"
        );
        let serial = serial(d, &format!("dev/{n}/device.crt"));
        assert!(
            serials.contains(&serial),
            "{n} ({serial}) not in the CRL: {serials}"
        );
    }

    // Again: the rest are revoked, and everything is recorded.
    let out = ms.jitr(d, &args);
    assert_eq!(out.code, Some(0), "{} {}", out.stdout, out.stderr);
    let recorded = listed(d, "root");
    let serials = crl_serials(d, "root", "after-rerun.crl");
    for n in &names {
        assert_eq!(status(&ms, &device_id(d, n)), "REVOKED", "{n}");
        assert!(recorded.contains(&device_id(d, n)), "{n}");
        assert!(
            serials.contains(&serial(d, &format!("dev/{n}/device.crt"))),
            "{n}"
        );
    }
    assert_eq!(recorded.len(), names.len(), "{recorded:?}");
    let rows = manifest(&d.join("dev"));
    assert!(rows.iter().all(|r| !r["revoked_at"].is_empty()), "{rows:?}");
}

/// `jitr ARGS` in `d` with stdin, stdout and stderr on a terminal (a pty
/// made by `script`), with `env`; what the terminal showed.
fn on_a_terminal(d: &Path, env: &[(&'static str, String)], args: &[&str]) -> String {
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let mut line = quote(jitr_tests::bin("jitr").to_str().unwrap());
    for a in args {
        line += " ";
        line += &quote(a);
    }
    let out = std::process::Command::new("script")
        .args(["-qfec", &line, "/dev/null"])
        .current_dir(d)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{shown}");
    shown
}

/// `jitr ARGS` with stderr a pipe: its stderr.
fn stderr_of(d: &Path, env: &[(&'static str, String)], args: &[&str]) -> String {
    let out = std::process::Command::new(jitr_tests::bin("jitr"))
        .args(args)
        .current_dir(d)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{err}");
    err
}

#[test]
fn rotating_all_devices_shows_progress_on_a_terminal_only() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    jitr(d, &["ca", "create", "root"]).success();
    jitr_args(
        d,
        "device issue --ca root --out dev --count 3 --name-template d-{n}",
    )
    .success();
    let rotate = words("device rotate --ca root --out dev --all --force");
    let shown = on_a_terminal(d, &[], &rotate);
    assert!(
        shown.contains("rotating [") && shown.contains("3/3"),
        "{shown}"
    );
    // Not a terminal, or --json: nothing but what was there before.
    let err = stderr_of(d, &[], &rotate);
    assert!(
        !err.contains("rotating") && !err.contains('\x1b'),
        "{err:?}"
    );
    let mut json = vec!["--json"];
    json.extend(&rotate);
    let shown = on_a_terminal(d, &[], &json);
    assert!(!shown.contains("rotating ["), "{shown}");
}

#[test]
fn revoke_fleet_status_and_reconcile_show_progress_on_a_terminal_only() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let ms = Ministack::start_iot();
    jitr(d, &["ca", "create", "root"]).success();
    ms.jitr(d, &words("ca register root")).success();
    provisioned(&ms, d, &["a", "b", "c"]);
    let env = ms.env();

    let fleet = words("fleet status --ca root --rate 10");
    let shown = on_a_terminal(d, &env, &fleet);
    assert!(
        shown.contains("describing [") && shown.contains("3/3"),
        "{shown}"
    );
    let err = stderr_of(d, &env, &fleet);
    assert!(
        !err.contains("describing") && !err.contains('\x1b'),
        "{err:?}"
    );
    let mut json = vec!["--json"];
    json.extend(&fleet);
    assert!(!on_a_terminal(d, &env, &json).contains("describing ["));

    // reconcile: three PENDING_ACTIVATION certificates, registered by their
    // first connects (no function activates them); a dry run changes nothing.
    let server_ca = d.join("server-ca.pem");
    ms.write_server_ca(&server_ca);
    let endpoint = format!("127.0.0.1:{}", ms.mqtt_port.unwrap());
    let connecting: Vec<_> = ["p1", "p2", "p3"]
        .iter()
        .map(|name| {
            issue_device(d, "root", "dev", name);
            std::process::Command::new(jitr_tests::bin("jitr"))
                .args(["connect", &format!("dev/{name}"), "--endpoint", &endpoint])
                .args(["--ca-file", server_ca.to_str().unwrap(), "--timeout", "10"])
                .current_dir(d)
                .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (name, child) in ["p1", "p2", "p3"].iter().zip(connecting) {
        let out = child.wait_with_output().unwrap();
        let id = certificate_id(d, &format!("dev/{name}/device.crt"));
        assert_eq!(status(&ms, &id), "PENDING_ACTIVATION", "{out:?}");
    }
    let reconcile = words("reconcile --ca root --policy p --dry-run");
    let shown = on_a_terminal(d, &env, &reconcile);
    assert!(
        shown.contains("reconciling [") && shown.contains("3/3"),
        "{shown}"
    );
    let err = stderr_of(d, &env, &reconcile);
    assert!(
        !err.contains("reconciling") && !err.contains('\x1b'),
        "{err:?}"
    );

    let revoke = words("device revoke a b --ca root --out dev");
    let shown = on_a_terminal(d, &env, &revoke);
    assert!(
        shown.contains("revoking [") && shown.contains("2/2"),
        "{shown}"
    );
    let err = stderr_of(
        d,
        &env,
        &words("--json device revoke c --ca root --out dev"),
    );
    assert!(
        !err.contains("revoking") && !err.contains('\x1b'),
        "{err:?}"
    );
}

#[test]
fn revoke_help_says_a_name_is_the_current_certificate_and_how_to_reach_a_predecessor() {
    let tmp = tempfile::tempdir().unwrap();
    let help = jitr(tmp.path(), &["device", "revoke", "--help"])
        .success()
        .to_string();
    assert!(help.contains("current certificate"), "{help}");
    assert!(help.contains("previous/device.crt"), "{help}");
}
