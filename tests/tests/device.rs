//! `jitr device issue`: single, bulk, names files, CSRs, layouts, re-runs,
//! interruption; every certificate verified by openssl.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use jitr_tests::{bin, jitr, jitr_args, list_dir, mode, openssl, words, x509_text};

/// A root CA in `d/root`.
fn root(d: &Path) {
    jitr(d, &["ca", "create", "root", "--subject", "CN=Test Root"]).success();
}

/// The manifest's rows as (column -> value) maps.
fn manifest(dir: &Path) -> Vec<std::collections::BTreeMap<String, String>> {
    let text = std::fs::read_to_string(dir.join("manifest.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .unwrap()
        .split(',')
        .map(str::to_string)
        .collect();
    lines
        .map(|l| {
            header
                .iter()
                .cloned()
                .zip(l.split(',').map(str::to_string))
                .collect()
        })
        .collect()
}

/// Device directories in `out` (everything but the manifest).
fn device_dirs(out: &Path) -> Vec<String> {
    list_dir(out)
        .into_iter()
        .filter(|n| n != "manifest.csv")
        .collect()
}

fn sha256_fingerprint(d: &Path, cert: &str) -> String {
    let fp = openssl(
        d,
        &["x509", "-in", cert, "-noout", "-fingerprint", "-sha256"],
    )
    .success()
    .to_string();
    fp.trim()
        .rsplit('=')
        .next()
        .unwrap()
        .replace(':', "")
        .to_lowercase()
}

#[test]
fn one_device_has_the_client_profile_and_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    root(d);
    let report = jitr(
        d,
        &[
            "--json",
            "device",
            "issue",
            "--ca",
            "root",
            "--out",
            "devices",
            "--name",
            "sensor-1",
            "--subject-extra",
            "O=Acme,OU=Line 4,serialNumber=SN-001",
        ],
    )
    .json();
    assert_eq!(report["issued"].as_array().unwrap().len(), 1);
    assert_eq!(
        list_dir(&d.join("devices/sensor-1")),
        ["device-and-ca.crt", "device.crt", "device.key"]
    );
    assert_eq!(mode(&d.join("devices/sensor-1/device.key")), 0o600);
    openssl(
        d,
        &words("verify -CAfile root/ca.crt -purpose sslclient devices/sensor-1/device.crt"),
    )
    .success();
    let text = x509_text(d, "devices/sensor-1/device.crt");
    assert!(text.contains("CN = sensor-1"), "{text}");
    assert!(
        text.contains("O = Acme, OU = Line 4, serialNumber = SN-001"),
        "{text}"
    );
    assert!(
        text.contains("X509v3 Basic Constraints: critical\n                CA:FALSE"),
        "{text}"
    );
    assert!(
        text.contains("X509v3 Key Usage: critical\n                Digital Signature\n"),
        "{text}"
    );
    assert!(
        text.contains("X509v3 Extended Key Usage: \n                TLS Web Client Authentication"),
        "{text}"
    );
    assert!(text.contains("X509v3 Authority Key Identifier"), "{text}");
    // The bundle is the device certificate followed by the chain.
    let bundle = std::fs::read_to_string(d.join("devices/sensor-1/device-and-ca.crt")).unwrap();
    let cert = std::fs::read_to_string(d.join("devices/sensor-1/device.crt")).unwrap();
    let chain = std::fs::read_to_string(d.join("root/chain.pem")).unwrap();
    assert_eq!(bundle, format!("{cert}{chain}"));
    // The manifest's certificate id is what openssl computes.
    let rows = manifest(&d.join("devices"));
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["name"], "sensor-1");
    assert_eq!(
        rows[0]["certificate_id"],
        sha256_fingerprint(d, "devices/sensor-1/device.crt")
    );
    assert_eq!(rows[0]["key_path"], "sensor-1/device.key");
    assert_eq!(
        report["issued"][0]["certificate_id"],
        rows[0]["certificate_id"].as_str()
    );
}

#[test]
fn rsa_devices_under_an_intermediate_carry_the_whole_chain() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    root(d);
    jitr_args(
        d,
        "ca create inter --issuer root --key rsa-2048 --subject CN=Issuing",
    )
    .success();
    jitr_args(
        d,
        "device issue --ca inter --out out --name gw-1 --key rsa-2048 --days 30",
    )
    .success();
    let text = x509_text(d, "out/gw-1/device.crt");
    assert!(
        text.contains("Digital Signature, Key Encipherment"),
        "{text}"
    );
    assert!(text.contains("Public-Key: (2048 bit)"), "{text}");
    // openssl verifies the leaf against the root with the bundle's intermediates.
    openssl(
        d,
        &words(
            "verify -CAfile root/ca.crt -untrusted out/gw-1/device-and-ca.crt out/gw-1/device.crt",
        ),
    )
    .success();
    let bundle = std::fs::read_to_string(d.join("out/gw-1/device-and-ca.crt")).unwrap();
    assert_eq!(bundle.matches("BEGIN CERTIFICATE").count(), 3);
    // --days is honoured: about 30 days of validity.
    let end = openssl(
        d,
        &[
            "x509",
            "-in",
            "out/gw-1/device.crt",
            "-noout",
            "-checkend",
            &(31 * 86400).to_string(),
        ],
    );
    assert!(!end.ok(), "expires within 31 days");
    openssl(
        d,
        &[
            "x509",
            "-in",
            "out/gw-1/device.crt",
            "-noout",
            "-checkend",
            &(29 * 86400).to_string(),
        ],
    )
    .success();
}

#[test]
fn bulk_run_is_parallel_complete_and_safe_to_rerun() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    root(d);
    let out = d.join("fleet");
    let report = jitr_args(d, "--json device issue --ca root --out fleet --count 50 --name-template robot-{n:05} --start 7 --jobs 2")
    .json();
    assert_eq!(report["issued"].as_array().unwrap().len(), 50);
    let dirs = device_dirs(&out);
    assert_eq!(dirs.len(), 50);
    assert_eq!(dirs.first().unwrap(), "robot-00007");
    assert_eq!(dirs.last().unwrap(), "robot-00056");
    let rows = manifest(&out);
    assert_eq!(rows.len(), 50);
    let mut ids: Vec<&String> = rows.iter().map(|r| &r["certificate_id"]).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 50, "certificate ids are distinct");
    for row in rows.iter().step_by(10) {
        let cert = format!("fleet/{}", row["cert_path"]);
        openssl(d, &["verify", "-CAfile", "root/ca.crt", &cert]).success();
        assert_eq!(row["certificate_id"], sha256_fingerprint(d, &cert));
    }

    // A re-run skips what exists and reports it; nothing changes on disk.
    let before = std::fs::read(out.join("robot-00010/device.crt")).unwrap();
    let again = jitr_args(d, "--json device issue --ca root --out fleet --count 52 --name-template robot-{n:05} --start 7")
    .json();
    assert_eq!(again["issued"].as_array().unwrap().len(), 2);
    assert_eq!(again["skipped"].as_array().unwrap().len(), 50);
    assert_eq!(
        std::fs::read(out.join("robot-00010/device.crt")).unwrap(),
        before
    );
    assert_eq!(manifest(&out).len(), 52);
    let text = jitr_args(d, "device issue --ca root --out fleet --name robot-00010")
        .success()
        .to_string();
    assert!(
        text.contains("skipped 1 already present (robot-00010; --force re-issues)"),
        "{text}"
    );

    // --force re-issues: a new certificate and key, and the manifest follows.
    jitr_args(
        d,
        "device issue --ca root --out fleet --name robot-00010 --force",
    )
    .success();
    assert_ne!(
        std::fs::read(out.join("robot-00010/device.crt")).unwrap(),
        before
    );
    let row = manifest(&out)
        .into_iter()
        .find(|r| r["name"] == "robot-00010")
        .unwrap();
    assert_eq!(
        row["certificate_id"],
        sha256_fingerprint(d, "fleet/robot-00010/device.crt")
    );
    assert_eq!(
        device_dirs(&out).len(),
        52,
        "no staging or retired directories remain"
    );
}

#[test]
fn names_come_from_plain_and_csv_files() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    root(d);
    std::fs::write(d.join("names.txt"), "# line 4\npump-a\n\npump-b\n").unwrap();
    jitr_args(d, "device issue --ca root --out plain --names names.txt").success();
    assert_eq!(device_dirs(&d.join("plain")), ["pump-a", "pump-b"]);

    std::fs::write(
        d.join("fleet.csv"),
        "name,O,serialNumber\nvalve-1,\"Acme, Inc.\",SN-1\nvalve-2,,SN-2\n",
    )
    .unwrap();
    jitr_args(d, "device issue --ca root --out csv --names fleet.csv").success();
    let text = x509_text(d, "csv/valve-1/device.crt");
    assert!(
        text.contains("Subject: O = \"Acme, Inc.\", serialNumber = SN-1, CN = valve-1"),
        "{text}"
    );
    let text = x509_text(d, "csv/valve-2/device.crt");
    assert!(
        text.contains("Subject: serialNumber = SN-2, CN = valve-2"),
        "{text}"
    );
}

#[test]
fn a_device_csr_is_signed_and_its_key_never_written() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    root(d);
    jitr_tests::ec_csr(d, "device-own.key", "device.csr", "/CN=ignored");
    jitr_args(
        d,
        "device issue --ca root --out out --csr device.csr --name meter-9",
    )
    .success();
    assert_eq!(
        list_dir(&d.join("out/meter-9")),
        ["device-and-ca.crt", "device.crt"]
    );
    openssl(
        d,
        &["verify", "-CAfile", "root/ca.crt", "out/meter-9/device.crt"],
    )
    .success();
    // The certificate carries the CSR's public key, and the CN is the name given.
    let csr_pub = openssl(d, &["req", "-in", "device.csr", "-noout", "-pubkey"])
        .success()
        .to_string();
    let cert_pub = openssl(
        d,
        &["x509", "-in", "out/meter-9/device.crt", "-noout", "-pubkey"],
    )
    .success()
    .to_string();
    assert_eq!(csr_pub, cert_pub);
    assert!(x509_text(d, "out/meter-9/device.crt").contains("Subject: CN = meter-9"));
    assert_eq!(manifest(&d.join("out"))[0]["key_path"], "");

    // A CSR whose signature does not verify is refused, naming the file.
    let pem_text = std::fs::read_to_string(d.join("device.csr")).unwrap();
    let mut block = pem::parse(pem_text).unwrap();
    let mut der = block.contents().to_vec();
    let last = der.len() - 3;
    der[last] ^= 0x01; // inside the signature's BIT STRING
    block = pem::Pem::new("CERTIFICATE REQUEST", der);
    std::fs::write(d.join("bad.csr"), pem::encode(&block)).unwrap();
    let err = jitr_args(
        d,
        "device issue --ca root --out out2 --csr bad.csr --name meter-10",
    )
    .failure()
    .to_string();
    assert!(
        err.contains("bad.csr") && err.contains("signature"),
        "{err}"
    );
    assert!(!d.join("out2").exists(), "nothing written");
}

#[test]
fn esp_idf_layout_uses_the_example_file_names() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    root(d);
    jitr_args(
        d,
        "device issue --ca root --out esp --name esp32-1 --layout esp-idf",
    )
    .success();
    assert_eq!(
        list_dir(&d.join("esp/esp32-1")),
        ["aws-root-ca.pem", "certificate.pem.crt", "private.pem.key"]
    );
    assert_eq!(mode(&d.join("esp/esp32-1/private.pem.key")), 0o600);
    let bundle = std::fs::read_to_string(d.join("esp/esp32-1/certificate.pem.crt")).unwrap();
    assert_eq!(
        bundle.matches("BEGIN CERTIFICATE").count(),
        2,
        "device certificate and the CA, for JITR's first connect"
    );
    openssl(
        d,
        &words("verify -CAfile root/ca.crt esp/esp32-1/certificate.pem.crt"),
    )
    .success();
    assert!(x509_text(d, "esp/esp32-1/aws-root-ca.pem")
        .contains("Subject: C = US, O = Amazon, CN = Amazon Root CA 1"));
}

#[test]
fn bad_input_is_refused_before_anything_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    root(d);
    jitr_tests::issue_device(d, "root", "leaf", "leaf-1");
    let cases: &[(&[&str], &str)] = &[
        (&["--ca", "missing", "--name", "x"], "missing"),
        (&["--ca", "leaf/leaf-1", "--name", "x"], "--ca"),
        (
            &words("--ca root --count 3 --name-template robot-{m}"),
            "--name-template",
        ),
        (
            &["--ca", "root", "--count", "3", "--name-template", "robot"],
            "--name-template",
        ),
        (&["--ca", "root", "--name", "bad name/../x"], "--name"),
        (
            &["--ca", "root", "--name", "ok", "--subject-extra", "O"],
            "--subject-extra",
        ),
        (
            &words("--ca root --name ok --subject-extra CN=other"),
            "--subject-extra",
        ),
        (&["--ca", "root", "--names", "nope.txt"], "nope.txt"),
        (
            &["--ca", "root", "--csr", "nope.csr", "--name", "x"],
            "nope.csr",
        ),
    ];
    for (args, named) in cases {
        let mut all = vec!["device", "issue", "--out", "never"];
        all.extend_from_slice(args);
        let err = jitr(d, &all).failure().to_string();
        assert!(err.contains(named), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "one clear message: {err}");
        assert!(!d.join("never").exists(), "{args:?} wrote something");
    }
}

#[test]
fn leftovers_of_a_killed_run_are_cleaned_up() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    root(d);
    jitr_tests::issue_device(d, "root", "out", "kept");
    // A dead process's staging directory, and a retired device whose replacement never landed.
    std::fs::create_dir_all(d.join("out/.jitr-tmp-999999999-half")).unwrap();
    std::fs::write(d.join("out/.jitr-tmp-999999999-half/device.key"), "partial").unwrap();
    std::fs::rename(d.join("out/kept"), d.join("out/.jitr-old-999999999-kept")).unwrap();
    jitr_tests::issue_device(d, "root", "out", "new");
    assert_eq!(device_dirs(&d.join("out")), ["kept", "new"]);
    assert_eq!(manifest(&d.join("out")).len(), 2);
}

/// Ctrl-C in a run of a million devices (two workers, held to 5 signatures
/// a second so the run is slow and its progress countable): the run ends
/// within seconds with exit 130. It keeps every device it had placed, adds
/// at most those its workers had started (a worker checks for Ctrl-C before
/// each device), leaves every device directory complete and no staging
/// directory, and its manifest names exactly the devices on disk.
#[test]
fn ctrl_c_stops_cleanly_with_a_manifest_matching_the_disk() {
    const JOBS: usize = 2;
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    root(d);
    let out = d.join("big");
    let jobs = JOBS.to_string();
    let mut child = Command::new(bin("jitr"))
        .args(["device", "issue", "--ca", "root", "--out", "big"])
        .args(["--count", "1000000", "--name-template", "n-{n}"])
        .args(["--jobs", &jobs, "--sign-rate", "5"])
        .current_dir(d)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let placed = || -> Vec<String> {
        device_dirs(&out)
            .into_iter()
            .filter(|n| n.starts_with("n-"))
            .collect()
    };
    // Wait until devices are landing, then interrupt.
    let deadline = Instant::now() + Duration::from_secs(60);
    let before = loop {
        let names = placed();
        if names.len() >= 5 {
            break names;
        }
        assert!(Instant::now() < deadline, "no devices after 60 s");
        std::thread::sleep(Duration::from_millis(20));
    };
    let pid = child.id().to_string();
    jitr_tests::run(Command::new("kill").args(["-INT", &pid])).success();
    // A run that ignored Ctrl-C would go on for days.
    let stop_by = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > stop_by {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!(
                "still issuing 30 s after Ctrl-C: {} devices",
                placed().len()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(130), "exit code of an interrupted run");
    let dirs = device_dirs(&out);
    assert!(
        dirs.iter().all(|n| n.starts_with("n-")),
        "no staging directories left: {dirs:?}"
    );
    let lost: Vec<&String> = before.iter().filter(|n| !dirs.contains(n)).collect();
    assert!(
        lost.is_empty(),
        "devices placed before Ctrl-C are gone: {lost:?}"
    );
    // The workers' devices in flight, and one more each if it landed while
    // `kill` started (a new device starts 200 ms after the last at 5/s).
    let added = dirs.len() - before.len();
    assert!(
        added <= 2 * JOBS,
        "{added} devices placed after Ctrl-C with {JOBS} workers (before: {})",
        before.len()
    );
    let rows = manifest(&out);
    let mut names: Vec<String> = rows.iter().map(|r| r["name"].clone()).collect();
    names.sort();
    assert_eq!(names, dirs, "manifest matches the disk");
    for name in &dirs {
        assert_eq!(list_dir(&out.join(name)).len(), 3, "{name} is complete");
    }
}

/// Every device directory in `out` with the certificate id of its
/// `device.crt`, read from the disk (the truth the manifest must match).
fn disk_ids(out: &Path) -> std::collections::BTreeMap<String, String> {
    device_dirs(out)
        .into_iter()
        .filter(|n| !n.starts_with('.'))
        .map(|n| {
            let id = jitr_tests::certificate_id(&out.join(&n), "device.crt");
            (n, id)
        })
        .collect()
}

/// The manifest's (name -> certificate id), asserting one row per name.
fn manifest_ids(out: &Path) -> std::collections::BTreeMap<String, String> {
    let rows = manifest(out);
    let ids: std::collections::BTreeMap<String, String> = rows
        .iter()
        .map(|r| (r["name"].clone(), r["certificate_id"].clone()))
        .collect();
    assert_eq!(ids.len(), rows.len(), "one row per device");
    ids
}

/// Asserts the manifest of `out` names exactly the devices on disk, each
/// with the certificate id of the certificate on disk; shows the first
/// differences only.
#[track_caller]
fn assert_manifest_matches_disk(out: &Path) {
    let (rows, disk) = (manifest_ids(out), disk_ids(out));
    let wrong: Vec<String> = disk
        .keys()
        .chain(rows.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter(|n| rows.get(*n) != disk.get(*n))
        .map(|n| format!("{n}: manifest {:?}, disk {:?}", rows.get(n), disk.get(n)))
        .collect();
    assert!(
        wrong.is_empty(),
        "{} of {} devices: the manifest does not match the disk, e.g.\n{}",
        wrong.len(),
        disk.len(),
        wrong[..wrong.len().min(5)].join("\n")
    );
}

/// Starts `jitr ARGS` in `cwd` in the background, stdout captured.
fn spawn_jitr(cwd: &Path, args: &[&str]) -> std::process::Child {
    Command::new(bin("jitr"))
        .args(args)
        .current_dir(cwd)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until `out` holds at least `n` devices (the run is under way).
fn wait_for_devices(out: &Path, n: usize, child: &mut std::process::Child) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while device_dirs(out)
        .iter()
        .filter(|d| !d.starts_with('.'))
        .count()
        < n
    {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before {n} devices"
        );
        assert!(
            Instant::now() < deadline,
            "fewer than {n} devices after 120 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The names of a `--json` report's list `key` (issued rows or names).
fn reported(report: &serde_json::Value, key: &str) -> Vec<String> {
    report[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.get("name").unwrap_or(v).as_str().unwrap().to_string())
        .collect()
}

#[test]
fn concurrent_runs_never_replace_each_others_devices() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    root(d);
    let out = d.join("o");
    // A long run, one device at a time, and while it is under way two runs
    // covering names it will reach later: one single device, one range.
    let mut long = spawn_jitr(
        d,
        &words(
            "--json device issue --ca root --out o --count 3000 --name-template r{n:05} --jobs 1",
        ),
    );
    wait_for_devices(&out, 20, &mut long);
    let single = jitr_args(d, "--json device issue --ca root --out o --name r02999").json();
    let range = jitr_args(
        d,
        "--json device issue --ca root --out o --count 300 --name-template r{n:05} --start 2500",
    )
    .json();
    let long_out = long.wait_with_output().unwrap();
    assert!(
        long_out.status.success(),
        "{}",
        String::from_utf8_lossy(&long_out.stderr)
    );
    let long: serde_json::Value = serde_json::from_slice(&long_out.stdout).unwrap();

    // Each device was issued by exactly one run, and its files on disk are
    // that run's: nothing was replaced without --force.
    let on_disk = disk_ids(&out);
    assert_eq!(on_disk.len(), 3000);
    let mut issued_by: std::collections::BTreeMap<String, String> = Default::default();
    for report in [&long, &single, &range] {
        for row in report["issued"].as_array().unwrap() {
            let name = row["name"].as_str().unwrap().to_string();
            let id = row["certificate_id"].as_str().unwrap().to_string();
            assert!(
                issued_by.insert(name.clone(), id).is_none(),
                "{name} reported issued by two runs"
            );
        }
    }
    assert_eq!(
        issued_by, on_disk,
        "every device on disk is the one its run reported"
    );
    // The single device was made before the long run reached it: the long run
    // says so instead of claiming it.
    assert_eq!(reported(&single, "issued"), ["r02999"]);
    assert!(
        reported(&long, "made_by_another_run").contains(&"r02999".to_string()),
        "{long}"
    );
    let accounted = |r: &serde_json::Value| {
        reported(r, "issued").len()
            + reported(r, "skipped").len()
            + reported(r, "made_by_another_run").len()
    };
    assert_eq!(accounted(&long), 3000);
    assert_eq!(accounted(&range), 300);
    assert_manifest_matches_disk(&out);
    assert!(
        list_dir(&out).iter().all(|n| !n.starts_with('.')),
        "no staging left: {:?}",
        list_dir(&out)
            .iter()
            .filter(|n| n.starts_with('.'))
            .collect::<Vec<_>>()
    );
}

#[test]
fn a_killed_force_run_leaves_no_stale_manifest_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    root(d);
    let out = d.join("o");
    let args = [
        "device",
        "issue",
        "--ca",
        "root",
        "--out",
        "o",
        "--count",
        "3000",
        "--name-template",
        "k{n:05}",
        "--jobs",
        "1",
    ];
    jitr(d, &args).success();
    let before = disk_ids(&out);
    let mut force_args = args.to_vec();
    force_args.push("--force");
    let mut run = spawn_jitr(d, &force_args);
    // Kill it once it has replaced some devices, far from the end.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let first = std::fs::read(out.join("k00030/device.crt")).unwrap_or_default();
        let replaced = jitr_core::CertFacts::from_pem(&first)
            .is_ok_and(|f| f.certificate_id != before["k00030"]);
        if replaced {
            break;
        }
        assert!(
            run.try_wait().unwrap().is_none(),
            "the --force run ended too soon"
        );
        assert!(Instant::now() < deadline, "nothing replaced after 120 s");
        std::thread::sleep(Duration::from_millis(5));
    }
    run.kill().unwrap(); // SIGKILL
    run.wait().unwrap();
    let after_kill = disk_ids(&out);
    assert_eq!(
        after_kill.len(),
        3000,
        "every device is still there, old or new"
    );
    assert!(after_kill != before, "the killed run replaced some devices");

    // The next run (any run into OUTDIR) rewrites the manifest from the disk.
    jitr_tests::issue_device(d, "root", "o", "extra");
    let on_disk = disk_ids(&out);
    assert_eq!(on_disk.len(), 3001);
    assert_manifest_matches_disk(&out);
    assert!(
        list_dir(&out).iter().all(|n| !n.starts_with('.')),
        "the killed run's staging was cleaned up"
    );
}

#[test]
fn a_live_runs_staging_is_left_alone_and_a_dead_ones_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    root(d);
    jitr_tests::issue_device(d, "root", "o", "first");
    // A run in another container (another PID namespace) is alive while it
    // holds the lock on its run directory; a killed run's lock is gone.
    let live = d.join("o/.jitr-run-live01");
    let dead = d.join("o/.jitr-run-dead01");
    for dir in [&live, &dead] {
        std::fs::create_dir_all(dir.join("half")).unwrap();
        std::fs::write(dir.join("half/device.key"), "partial").unwrap();
    }
    let held = std::fs::File::open(&live).unwrap();
    held.lock().unwrap();
    jitr_tests::issue_device(d, "root", "o", "second");
    assert!(
        live.join("half/device.key").exists(),
        "a live run's staging was deleted"
    );
    assert!(!dead.exists(), "a dead run's staging was left behind");
    assert_eq!(manifest(&d.join("o")).len(), 2);
    drop(held);
}

#[test]
fn device_directories_are_not_world_writable_under_umask_000() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    root(d);
    let script = format!(
        "umask 000; exec '{}' device issue --ca root --out o --count 2 --name-template 'u{{n}}'",
        bin("jitr").display()
    );
    jitr_tests::run(Command::new("sh").args(["-c", &script]).current_dir(d)).success();
    assert_eq!(mode(&d.join("o")), 0o755);
    for n in ["u1", "u2"] {
        assert_eq!(mode(&d.join("o").join(n)), 0o755, "{n}");
        assert_eq!(mode(&d.join("o").join(n).join("device.key")), 0o600, "{n}");
        assert_eq!(mode(&d.join("o").join(n).join("device.crt")), 0o644, "{n}");
    }
}

#[test]
fn expired_and_not_yet_valid_cas_do_not_issue() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    jitr_tests::openssl_ca_dated(d, "old", "20200101000000Z", "20210101000000Z");
    jitr_tests::openssl_ca_dated(d, "future", "20990101000000Z", "21000101000000Z");
    for (ca, needle) in [
        (
            "old",
            "expired on 2021-01-01T00:00:00Z (valid 2020-01-01T00:00:00Z to 2021-01-01T00:00:00Z)",
        ),
        ("future", "is not valid before 2099-01-01T00:00:00Z"),
    ] {
        let err = jitr(
            d,
            &["device", "issue", "--ca", ca, "--out", "o", "--name", "x"],
        )
        .failure()
        .to_string();
        assert!(
            err.contains(&format!("--ca {ca}: the CA")) && err.contains(needle),
            "{err}"
        );
        assert!(!d.join("o").exists(), "{ca}: something was written");
        let err = jitr(d, &["ca", "create", "sub", "--issuer", ca])
            .failure()
            .to_string();
        assert!(
            err.contains(&format!("--issuer {ca}")) && err.contains(needle),
            "{err}"
        );
        assert!(!d.join("sub").exists(), "{ca}: something was written");
    }
}

#[test]
fn a_chain_pem_that_is_not_the_cas_chain_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    root(d);
    jitr(d, &["ca", "create", "other", "--subject", "CN=Other Root"]).success();
    jitr(d, &["ca", "create", "int", "--issuer", "root"]).success();
    let good = std::fs::read_to_string(d.join("int/chain.pem")).unwrap();
    let other = std::fs::read_to_string(d.join("other/chain.pem")).unwrap();
    let int_cert = std::fs::read_to_string(d.join("int/ca.crt")).unwrap();
    for (chain, needle) in [
        ("garbage".to_string(), "not a PEM chain"),
        (
            other.clone(),
            "does not start with the certificate in ca.crt",
        ),
        (
            format!("{int_cert}{other}"),
            "certificate 1 is not issued by certificate 2",
        ),
    ] {
        std::fs::write(d.join("int/chain.pem"), &chain).unwrap();
        let err = jitr_args(d, "device issue --ca int --out o --name x")
            .failure()
            .to_string();
        assert!(
            err.contains("int/chain.pem") && err.contains(needle),
            "{err}"
        );
        assert!(!d.join("o").exists(), "something was written");
    }
    std::fs::write(d.join("int/chain.pem"), &good).unwrap();
    jitr_tests::issue_device(d, "root", "o", "fine");
    jitr_tests::issue_device(d, "int", "o", "fine-int");
}

#[test]
fn a_fifo_for_a_key_or_chain_is_refused_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    root(d);
    for file in ["chain.pem", "ca.key"] {
        jitr(d, &["ca", "create", "f", "--force"]).success();
        std::fs::remove_file(d.join("f").join(file)).unwrap();
        jitr_tests::run(Command::new("mkfifo").arg(d.join("f").join(file))).success();
        // `timeout` only guards the test against the hang this fixes.
        let run = jitr_tests::run(
            Command::new("timeout")
                .args(["60"])
                .arg(bin("jitr"))
                .args(["device", "issue", "--ca", "f", "--out", "o", "--name", "x"])
                .current_dir(d),
        );
        let err = run.failure();
        assert!(
            err.contains(&format!("f/{file}: is not a regular file")),
            "{file}: {run:?}"
        );
        std::fs::remove_file(d.join("f").join(file)).unwrap();
    }
}

#[test]
fn smaller_input_defects_are_refused_or_accepted_as_they_should() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    root(d);
    // A run may end at the largest number.
    jitr_args(d, "device issue --ca root --out big --count 2 --name-template n{n} --start 18446744073709551614")
    .success();
    assert_eq!(
        device_dirs(&d.join("big")),
        ["n18446744073709551614", "n18446744073709551615"]
    );
    // Excel's CSV: a byte order mark and CRLF.
    std::fs::write(d.join("excel.csv"), "\u{feff}name,O\r\nbom-1,Acme\r\n").unwrap();
    jitr_args(d, "device issue --ca root --out x --names excel.csv").success();
    assert!(x509_text(d, "x/bom-1/device.crt").contains("O = Acme, CN = bom-1"));
    // An RSA-1024 CSR is too weak, not "a bad signature".
    openssl(
        d,
        &words("req -new -newkey rsa:1024 -nodes -keyout weak.key -out weak.csr -subj /CN=weak"),
    )
    .success();
    let err = jitr_args(
        d,
        "device issue --ca root --out never --csr weak.csr --name weak",
    )
    .failure()
    .to_string();
    assert!(
        err.contains("weak.csr: the CSR's key is too weak: RSA key of 1024 bits"),
        "{err}"
    );
    std::fs::write(d.join("dup.csv"), "name,O,o\na,b,c\n").unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["--name", "a", "--jobs", "5000"],
            "--jobs: 5000 is more than",
        ),
        (
            &["--name", "a", "--subject-extra", "O=a,O=b"],
            "--subject-extra: O is given twice",
        ),
        (
            &["--name", "a", "--subject-extra", "O=a\nb"],
            "control character",
        ),
        (
            &["--name", "a", "--subject-extra", "O=a\u{1}b"],
            "control character",
        ),
        (&["--names", "dup.csv"], "column \"o\" appears twice"),
    ];
    for (args, needle) in cases {
        let mut all = vec!["device", "issue", "--ca", "root", "--out", "never"];
        all.extend_from_slice(args);
        let err = jitr(d, &all).failure().to_string();
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!d.join("never").exists(), "{args:?} wrote something");
    }
}

/// Every file under `dir` with its bytes, by path relative to `dir`.
fn snapshot(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut files = std::collections::BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(at) = todo.pop() {
        for entry in std::fs::read_dir(&at).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else {
                let rel = path.strip_prefix(dir).unwrap().display().to_string();
                files.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    files
}

/// One CSR holds one public key: `--csr` with several devices (rotate
/// --names / --all, issue --count / --names) is refused before anything is
/// written, instead of one key in every certificate and every key deleted.
#[test]
fn a_csr_with_several_devices_is_refused_before_anything_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    root(d);
    jitr_args(
        d,
        "device issue --ca root --out dev --count 3 --name-template d-{n}",
    )
    .success();
    jitr_tests::ec_csr(d, "other.key", "other.csr", "/CN=other");
    std::fs::write(d.join("list.txt"), "d-1\nd-2\n").unwrap();
    let before = snapshot(&d.join("dev"));
    let cases: &[&str] = &[
        "device rotate --ca root --out dev --names list.txt --csr other.csr",
        "device rotate --ca root --out dev --all --csr other.csr",
        "device rotate --ca root --out dev --all --force --csr other.csr",
        "device issue --ca root --out never --csr other.csr --count 3 --name-template ci-{n}",
        "device issue --ca root --out never --csr other.csr --names list.txt",
    ];
    for command in cases {
        let err = jitr_args(d, command).failure().to_string();
        assert!(
            err.contains("--csr") && err.contains("--name"),
            "{command}: {err}"
        );
        assert_eq!(snapshot(&d.join("dev")), before, "{command} changed dev");
        assert!(!d.join("never").exists(), "{command} wrote something");
    }
    // One device from a CSR is still fine.
    jitr_args(
        d,
        "device rotate --ca root --out dev --name d-3 --csr other.csr",
    )
    .success();
    assert!(!d.join("dev/d-3/device.key").exists());
    assert!(d.join("dev/d-1/device.key").exists());
}

#[test]
fn a_width_without_a_zero_is_refused_rather_than_read_as_zero_padding() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    jitr(d, &["ca", "create", "root"]).success();
    let out = jitr_args(
        d,
        "device issue --ca root --out dev --count 2 --name-template robot-{n:5}",
    );
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    assert!(
        out.stderr.contains("{n:5}")
            && out.stderr.contains("{n:05}")
            && out.stderr.contains("space"),
        "{}",
        out.stderr
    );
    assert!(!d.join("dev").exists());
    // The documented form still pads with zeros.
    jitr_args(
        d,
        "device issue --ca root --out dev --count 2 --name-template robot-{n:05}",
    )
    .success();
    assert!(d.join("dev/robot-00002").is_dir());
}
