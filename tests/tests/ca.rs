//! `jitr ca create | import | verification-cert`, verified with openssl.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use jitr_tests::{bin, jitr, jitr_args, list_dir, mode, openssl, words, x509_text};

#[test]
fn root_ca_has_the_extensions_aws_iot_and_tls_peers_require() {
    for (key, sig, key_line) in [
        ("ec-p256", "ecdsa-with-SHA256", "NIST CURVE: P-256"),
        ("ec-p384", "ecdsa-with-SHA384", "NIST CURVE: P-384"),
        (
            "rsa-2048",
            "sha256WithRSAEncryption",
            "Public-Key: (2048 bit)",
        ),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let out = jitr(
            d,
            &[
                "--json",
                "ca",
                "create",
                "root",
                "--key",
                key,
                "--subject",
                "CN=Acme Root,O=Acme\\, Inc.,C=DE",
                "--path-len",
                "1",
            ],
        );
        let report = out.json();
        assert_eq!(list_dir(&d.join("root")), ["ca.crt", "ca.key", "chain.pem"]);
        assert_eq!(mode(&d.join("root/ca.key")), 0o600);
        let text = x509_text(d, "root/ca.crt");
        assert!(
            text.contains(&format!("Signature Algorithm: {sig}")),
            "{key}: {text}"
        );
        assert!(text.contains(key_line), "{key}: {text}");
        assert!(
            text.contains("X509v3 Basic Constraints: critical\n                CA:TRUE, pathlen:1"),
            "{text}"
        );
        assert!(
            text.contains("X509v3 Key Usage: critical\n                Certificate Sign, CRL Sign"),
            "{text}"
        );
        assert!(text.contains("X509v3 Subject Key Identifier"), "{text}");
        assert!(text.contains("X509v3 Authority Key Identifier"), "{text}");
        assert!(
            text.contains("Subject: CN = Acme Root, O = \"Acme, Inc.\", C = DE"),
            "{text}"
        );
        // A random positive serial of 16 bytes.
        let serial = openssl(d, &["x509", "-in", "root/ca.crt", "-noout", "-serial"])
            .success()
            .trim()
            .to_string();
        assert_eq!(serial.trim_start_matches("serial=").len(), 32, "{serial}");
        // openssl agrees the key matches and verifies the self-signature.
        openssl(d, &["verify", "-CAfile", "root/ca.crt", "root/ca.crt"]).success();
        let key_pub = openssl(d, &["pkey", "-in", "root/ca.key", "-pubout"])
            .success()
            .to_string();
        let cert_pub = openssl(d, &["x509", "-in", "root/ca.crt", "-noout", "-pubkey"])
            .success()
            .to_string();
        assert_eq!(key_pub, cert_pub);
        // The certificate id is the SHA-256 of the DER, as openssl computes it.
        let fp = openssl(
            d,
            &words("x509 -in root/ca.crt -noout -fingerprint -sha256"),
        )
        .success()
        .to_string();
        let fp = fp
            .trim()
            .rsplit('=')
            .next()
            .unwrap()
            .replace(':', "")
            .to_lowercase();
        assert_eq!(report["certificate_id"], fp.as_str());
    }
}

#[test]
fn intermediate_ca_chains_to_its_root() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    jitr(d, &["ca", "create", "root", "--key", "rsa-2048"]).success();
    jitr(
        d,
        &[
            "ca",
            "create",
            "inter",
            "--issuer",
            "root",
            "--path-len",
            "0",
            "--subject",
            "CN=Issuing CA",
        ],
    )
    .success();
    openssl(d, &["verify", "-CAfile", "root/ca.crt", "inter/ca.crt"]).success();
    let chain = std::fs::read_to_string(d.join("inter/chain.pem")).unwrap();
    let root = std::fs::read_to_string(d.join("root/ca.crt")).unwrap();
    let inter = std::fs::read_to_string(d.join("inter/ca.crt")).unwrap();
    assert_eq!(
        chain,
        format!("{inter}{root}"),
        "chain.pem is this CA followed by its issuers"
    );
    let text = x509_text(d, "inter/ca.crt");
    assert!(text.contains("Issuer: CN = jitr Root CA"), "{text}");
    assert!(
        text.contains("Signature Algorithm: sha256WithRSAEncryption"),
        "{text}"
    );
    assert!(text.contains("CA:TRUE, pathlen:0"), "{text}");
    // pathlen 0 forbids a further CA below it.
    let err = jitr(d, &["ca", "create", "sub", "--issuer", "inter"])
        .failure()
        .to_string();
    assert!(
        err.contains("--issuer") && err.contains("pathLenConstraint 0"),
        "{err}"
    );
    assert!(!d.join("sub").exists());
}

#[test]
fn existing_ca_is_kept_without_force_and_replaced_with_it() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    jitr(d, &["ca", "create", "root"]).success();
    let before = std::fs::read(d.join("root/ca.key")).unwrap();
    let err = jitr(d, &["ca", "create", "root"]).failure().to_string();
    assert!(err.contains("ca.key already exists; pass --force"), "{err}");
    assert_eq!(std::fs::read(d.join("root/ca.key")).unwrap(), before);
    jitr(d, &["ca", "create", "root", "--force"]).success();
    assert_ne!(std::fs::read(d.join("root/ca.key")).unwrap(), before);
    assert_eq!(mode(&d.join("root/ca.key")), 0o600);
    assert_eq!(
        list_dir(&d.join("root")),
        ["ca.crt", "ca.key", "chain.pem"],
        "no temp files left"
    );
}

#[test]
fn bad_input_names_the_flag_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    for (args, needle) in [
        (
            vec!["ca", "create", "x", "--subject", "C=Germany"],
            "--subject: C must be a two-letter country code",
        ),
        (
            vec!["ca", "create", "x", "--subject", "CN"],
            "--subject: \"CN\" is not KEY=VALUE",
        ),
        (
            vec!["ca", "create", "x", "--subject", "O=NoCN"],
            "--subject: a CA subject needs a CN",
        ),
        (
            vec!["ca", "create", "x", "--issuer", "nowhere"],
            "--issuer nowhere: is not a directory",
        ),
        (
            vec!["ca", "create", "x", "--key", "dsa"],
            "invalid value 'dsa' for '--key",
        ),
    ] {
        let err = jitr(d, &args).failure().to_string();
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(err.trim().lines().count() <= 8, "short message: {err}");
        assert!(!d.join("x").exists(), "{args:?} wrote something");
    }
}

#[test]
fn imports_openssl_made_cas_with_pkcs1_and_sec1_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    openssl(d, &["genrsa", "-traditional", "-out", "rsa.key", "2048"]).success();
    assert!(std::fs::read_to_string(d.join("rsa.key"))
        .unwrap()
        .starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            "rsa.key",
            "-sha256",
            "-days",
            "30",
            "-subj",
            "/CN=Vendor RSA CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-out",
            "rsa.crt",
        ],
    )
    .success();
    openssl(
        d,
        &words("ecparam -name prime256v1 -genkey -noout -out ec.key"),
    )
    .success();
    assert!(std::fs::read_to_string(d.join("ec.key"))
        .unwrap()
        .starts_with("-----BEGIN EC PRIVATE KEY-----"));
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            "ec.key",
            "-sha256",
            "-days",
            "30",
            "-subj",
            "/CN=Vendor EC CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-out",
            "ec.crt",
        ],
    )
    .success();

    for (name, cert, key) in [
        ("imp-rsa", "rsa.crt", "rsa.key"),
        ("imp-ec", "ec.crt", "ec.key"),
    ] {
        let report = jitr(
            d,
            &["--json", "ca", "import", name, "--cert", cert, "--key", key],
        )
        .json();
        assert_eq!(report["root"], true);
        let stored = std::fs::read_to_string(d.join(name).join("ca.key")).unwrap();
        assert!(
            stored.starts_with("-----BEGIN PRIVATE KEY-----"),
            "stored as PKCS#8"
        );
        assert_eq!(mode(&d.join(name).join("ca.key")), 0o600);
        // Same key as the original, per openssl.
        let a = openssl(d, &["pkey", "-in", key, "-pubout"])
            .success()
            .to_string();
        let b = openssl(d, &["pkey", "-in", &format!("{name}/ca.key"), "-pubout"])
            .success()
            .to_string();
        assert_eq!(a, b);
        // And the imported CA issues devices openssl accepts.
        jitr(
            d,
            &[
                "device",
                "issue",
                "--ca",
                name,
                "--out",
                &format!("{name}-devs"),
                "--name",
                "dev-1",
            ],
        )
        .success();
        openssl(
            d,
            &[
                "verify",
                "-CAfile",
                cert,
                &format!("{name}-devs/dev-1/device.crt"),
            ],
        )
        .success();
    }

    // A key of another CA, a certificate that is no CA, and one that is not
    // there are refused by name.
    openssl(
        d,
        &words("req -x509 -new -key ec.key -subj /CN=leaf -addext basicConstraints=CA:FALSE -out leaf.crt"),
    )
    .success();
    for (cert, expected) in [
        (
            "rsa.crt",
            "ec.key: this key does not match the certificate in rsa.crt",
        ),
        ("leaf.crt", "leaf.crt: \"CN=leaf\" is not a CA certificate"),
        ("missing.crt", "cannot read missing.crt"),
    ] {
        let err = jitr(d, &["ca", "import", "x", "--cert", cert, "--key", "ec.key"])
            .failure()
            .to_string();
        assert!(err.contains(expected), "{cert}: {err}");
    }
    assert!(!d.join("x").exists());
}

#[test]
fn imports_an_intermediate_with_its_chain() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    jitr(d, &["ca", "create", "root"]).success();
    jitr(d, &["ca", "create", "inter", "--issuer", "root"]).success();
    jitr_args(
        d,
        "ca import copy --cert inter/ca.crt --key inter/ca.key --chain root/ca.crt",
    )
    .success();
    assert_eq!(
        std::fs::read(d.join("copy/chain.pem")).unwrap(),
        std::fs::read(d.join("inter/chain.pem")).unwrap()
    );
    // A chain that does not belong is refused.
    jitr(d, &["ca", "create", "other"]).success();
    let err = jitr_args(
        d,
        "ca import bad --cert inter/ca.crt --key inter/ca.key --chain other/ca.crt",
    )
    .failure()
    .to_string();
    assert!(err.contains("other/ca.crt: the chain is broken"), "{err}");
    assert!(!d.join("bad").exists());
}

#[test]
fn verification_certificate_carries_the_code_and_chains_to_the_ca() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    jitr(d, &["ca", "create", "root", "--key", "ec-p384"]).success();
    let code = "3a9f1c0d5b7e2f8a6c4d0e1b9a7f5c3e2d1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f";
    jitr_args(
        d,
        &format!("ca verification-cert root --code {code} --out verify.crt"),
    )
    .success();
    let subject = openssl(d, &["x509", "-in", "verify.crt", "-noout", "-subject"])
        .success()
        .to_string();
    assert_eq!(subject.trim(), format!("subject=CN = {code}"));
    openssl(d, &["verify", "-CAfile", "root/ca.crt", "verify.crt"]).success();
    let err = jitr(
        d,
        &[
            "ca",
            "verification-cert",
            "root",
            "--code",
            "not a code!",
            "--out",
            "v2.crt",
        ],
    )
    .failure()
    .to_string();
    assert!(
        err.contains("--code: \"not a code!\" is not a registration code"),
        "{err}"
    );
    assert!(!d.join("v2.crt").exists());
}

/// The public key of a PEM key or certificate file, as openssl prints it.
fn public_key(d: &Path, file: &str, is_cert: bool) -> String {
    let args: &[&str] = if is_cert {
        &["x509", "-in", file, "-noout", "-pubkey"]
    } else {
        &["pkey", "-in", file, "-pubout"]
    };
    openssl(d, args).success().to_string()
}

#[test]
fn concurrent_ca_creates_leave_one_ca_whose_key_matches() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    for round in 0..5 {
        let dir = format!("ca{round}");
        for force in [false, true] {
            // Six runs at once into the same directory (the second time, with
            // --force, over the CA the first time left).
            let mut args = vec!["ca", "create", dir.as_str(), "--key", "ec-p256"];
            if force {
                args.push("--force");
            }
            let children: Vec<_> = (0..6)
                .map(|_| {
                    Command::new(bin("jitr"))
                        .args(&args)
                        .current_dir(d)
                        .stdout(Stdio::null())
                        .stderr(Stdio::piped())
                        .spawn()
                        .unwrap()
                })
                .collect();
            let outcomes: Vec<_> = children
                .into_iter()
                .map(|c| c.wait_with_output().unwrap())
                .collect();
            let winners = outcomes.iter().filter(|o| o.status.success()).count();
            if force {
                assert_eq!(winners, 6, "--force runs all succeed, one after the other");
            } else {
                assert_eq!(winners, 1, "round {round}: exactly one create succeeds");
                for o in outcomes.iter().filter(|o| !o.status.success()) {
                    let err = String::from_utf8_lossy(&o.stderr);
                    assert!(err.contains("already exists; pass --force"), "{err}");
                }
            }
            let key = format!("{dir}/ca.key");
            let crt = format!("{dir}/ca.crt");
            assert_eq!(
                public_key(d, &key, false),
                public_key(d, &crt, true),
                "round {round}, force {force}: ca.key matches ca.crt"
            );
            assert_eq!(mode(&d.join(&key)), 0o600);
            assert_eq!(list_dir(&d.join(&dir)), ["ca.crt", "ca.key", "chain.pem"]);
        }
    }
}

#[test]
fn temp_copies_of_a_key_left_by_a_killed_run_are_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    jitr(d, &["ca", "create", "root"]).success();
    // What a run SIGKILLed between writing and renaming leaves.
    let key = std::fs::read(d.join("root/ca.key")).unwrap();
    std::fs::write(d.join("root/.jitr-tmp-Ab12Cd"), &key).unwrap();
    // The next run that writes the directory removes them.
    jitr(d, &["ca", "create", "root", "--force"]).success();
    assert_eq!(list_dir(&d.join("root")), ["ca.crt", "ca.key", "chain.pem"]);
}

/// Asserts `dir` holds one whole CA: `ca.key` matches `ca.crt` (openssl),
/// the key is 0600 and `chain.pem` starts with `ca.crt`.
fn assert_whole_ca(d: &Path, dir: &str, when: &str) {
    let (key, crt) = (format!("{dir}/ca.key"), format!("{dir}/ca.crt"));
    assert_eq!(
        public_key(d, &key, false),
        public_key(d, &crt, true),
        "{when}: ca.key matches ca.crt"
    );
    assert_eq!(mode(&d.join(&key)), 0o600, "{when}");
    let cert = std::fs::read_to_string(d.join(&crt)).unwrap();
    let chain = std::fs::read_to_string(d.join(dir).join("chain.pem")).unwrap();
    assert!(
        chain.starts_with(&cert),
        "{when}: chain.pem starts with ca.crt"
    );
}

/// Runs `jitr ARGS` in `d` under strace, SIGKILLed on entry to the `n`th
/// call of `syscall` (if the run makes that many).
/// Returns whether it was killed (else it must have succeeded).
fn jitr_killed_at(d: &Path, syscall: &str, n: u32, args: &[&str]) -> bool {
    let status = Command::new("strace")
        .args(["-f", "-qq", "-o", "/dev/null", "-e"])
        .arg(format!("trace={syscall}"))
        .arg("-e")
        .arg(format!("inject={syscall}:signal=KILL:when={n}"))
        .arg(bin("jitr"))
        .args(args)
        .current_dir(d)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("strace is installed");
    assert!(
        status.success() || status.signal() == Some(SIGKILL),
        "{syscall} #{n}: {status}"
    );
    !status.success()
}

const SIGKILL: i32 = 9;

#[test]
fn a_forced_create_killed_at_any_moment_leaves_the_whole_old_or_new_ca() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let args = ["ca", "create", "root", "--key", "ec-p256", "--force"];
    let started = Instant::now();
    jitr(d, &args).success();
    let one_run = started.elapsed();
    // At each call that changes the file system, in turn (deterministic).
    let mut kills = 0;
    for syscall in [
        "rename",
        "renameat",
        "renameat2",
        "link",
        "linkat",
        "unlink",
        "unlinkat",
        "mkdir",
        "mkdirat",
        "fsync",
        "rmdir",
    ] {
        for n in 1..=4 {
            kills += u32::from(jitr_killed_at(d, syscall, n, &args));
            assert_whole_ca(d, "root", &format!("killed at {syscall} #{n}"));
        }
    }
    // `ca import --force` writes the directory the same way.
    jitr(d, &["ca", "create", "other", "--key", "rsa-2048"]).success();
    let import = [
        "ca",
        "import",
        "root",
        "--cert",
        "other/ca.crt",
        "--key",
        "other/ca.key",
        "--force",
    ];
    for syscall in ["rename", "renameat2", "fsync", "unlinkat"] {
        for n in 1..=3 {
            kills += u32::from(jitr_killed_at(d, syscall, n, &import));
            assert_whole_ca(d, "root", &format!("import killed at {syscall} #{n}"));
        }
    }
    assert!(kills >= 15, "strace killed only {kills} runs");
    // And at random moments.
    let mut seed = started.elapsed().subsec_nanos() as u64 | 1;
    for i in 0..40 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = one_run.mul_f64((seed % 1000) as f64 / 1000.0 * 1.5);
        let mut child = Command::new(bin("jitr"))
            .args(args)
            .current_dir(d)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let _ = child.kill();
        let _ = child.wait();
        assert_whole_ca(d, "root", &format!("kill {i} after {delay:?}"));
    }
    // The next run cleans what the killed ones left.
    jitr(d, &args).success();
    assert_whole_ca(d, "root", "after a clean run");
    assert_eq!(
        list_dir(d),
        ["other", "root"],
        "no staging directories left"
    );
    assert_eq!(list_dir(&d.join("root")), ["ca.crt", "ca.key", "chain.pem"]);
}

#[test]
fn a_ca_loaded_to_sign_sweeps_what_a_killed_run_left_unless_a_live_run_holds_it() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    jitr(d, &["ca", "create", "root"]).success();
    // What runs killed mid-write leave: a temp copy of the key, and a
    // staging directory with a new key beside the CA directory.
    let key = std::fs::read(d.join("root/ca.key")).unwrap();
    let plant = || {
        std::fs::write(d.join("root/.jitr-tmp-Ab12Cd"), &key).unwrap();
        std::fs::create_dir_all(d.join(".root.jitr-ca-Xy12Zw")).unwrap();
        std::fs::write(d.join(".root.jitr-ca-Xy12Zw/ca.key"), &key).unwrap();
    };
    plant();
    // Another live run is reading the CA: signing neither waits nor sweeps.
    let held = std::fs::File::open(d.join("root")).unwrap();
    held.lock_shared().unwrap();
    let issue = |name: &str| {
        jitr_args(
            d,
            &format!("device issue --ca root --out out --name {name}"),
        )
        .success();
    };
    issue("d1");
    assert!(d.join("root/.jitr-tmp-Ab12Cd").exists());
    assert!(d.join(".root.jitr-ca-Xy12Zw").exists());
    drop(held);
    issue("d2");
    assert_eq!(list_dir(&d.join("root")), ["ca.crt", "ca.key", "chain.pem"]);
    assert_eq!(list_dir(d), ["out", "root"]);
    // Loading it as an issuer sweeps too.
    plant();
    jitr(d, &["ca", "create", "sub", "--issuer", "root"]).success();
    assert_eq!(list_dir(&d.join("root")), ["ca.crt", "ca.key", "chain.pem"]);
    assert_eq!(list_dir(d), ["out", "root", "sub"]);
}

#[test]
fn a_ca_is_read_whole_while_a_writer_replaces_it() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    jitr(d, &["ca", "create", "root"]).success();
    jitr(d, &["ca", "create", "other"]).success();
    // A writer holds the directory and has replaced the key, not yet the
    // certificate (what a reader between two renames would see).
    let held = std::fs::File::open(d.join("root")).unwrap();
    held.lock().unwrap();
    std::fs::copy(d.join("other/ca.key"), d.join("root/ca.key")).unwrap();
    let (child, waited) = jitr_tests::spawn_until_waiting_on(
        Command::new(bin("jitr"))
            .args(words("device issue --ca root --out out --name d1"))
            .current_dir(d),
        &d.join("root"),
    );
    if let Err(status) = waited {
        let out = child.wait_with_output().unwrap();
        panic!(
            "device issue read the CA mid-write ({status}): {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for f in ["ca.crt", "chain.pem"] {
        std::fs::copy(d.join("other").join(f), d.join("root").join(f)).unwrap();
    }
    drop(held);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    openssl(
        d,
        &["verify", "-CAfile", "other/ca.crt", "out/d1/device.crt"],
    )
    .success();
}

/// The CRL number `openssl crl -text` reads from a CRL file.
fn crl_number(d: &Path, crl: &str) -> u64 {
    let text = openssl(d, &["crl", "-in", crl, "-noout", "-text"])
        .success()
        .to_string();
    let mut lines = text.lines();
    lines
        .find(|l| l.contains("X509v3 CRL Number"))
        .and_then(|_| lines.next())
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("{crl}: no CRL number in\n{text}"))
}

#[test]
fn no_output_ever_replaces_a_file_a_ca_directory_owns() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    jitr(d, &["ca", "create", "root"]).success();
    jitr(d, &["ca", "create", "other"]).success();
    std::os::unix::fs::symlink("root", d.join("link")).unwrap();
    let snapshot = |dir: &str| -> Vec<(String, Vec<u8>)> {
        list_dir(&d.join(dir))
            .into_iter()
            .map(|n| {
                let bytes = std::fs::read(d.join(dir).join(&n)).unwrap();
                (n, bytes)
            })
            .collect()
    };
    let (root, other) = (snapshot("root"), snapshot("other"));
    let code = "3a9f1c0d5b7e2f8a6c4d0e1b9a7f5c3e2d1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f";
    for target in [
        "root/ca.key",
        "root/ca.crt",
        "root/chain.pem",
        "root/key.json",
        "root/revoked.json",
        "root/aws.json",
        "root/crl-number",
        "other/ca.key",
        "link/ca.key",
        "root/../root/./ca.key",
    ] {
        for force in [false, true] {
            let mut crl = vec!["ca", "crl", "root", "--out", target];
            let mut verify = vec![
                "ca",
                "verification-cert",
                "root",
                "--code",
                code,
                "--out",
                target,
            ];
            if force {
                crl.push("--force");
                verify.push("--force");
            }
            for args in [crl, verify] {
                let err = jitr(d, &args).failure().to_string();
                assert!(
                    err.contains(&format!("{target}: is the"))
                        && err.contains("not even with --force"),
                    "{args:?}: {err}"
                );
                assert_eq!(err.trim().lines().count(), 1, "one sentence: {err}");
            }
        }
    }
    assert_eq!(snapshot("root"), root, "root is as it was");
    assert_eq!(snapshot("other"), other, "other is as it was");
    assert_eq!(mode(&d.join("root/ca.key")), 0o600);
    // Other names in a CA directory, and the same names elsewhere, are outputs like any.
    jitr_args(
        d,
        &format!("ca verification-cert root --code {code} --out root/verify.crt"),
    )
    .success();
    std::fs::create_dir(d.join("plain")).unwrap();
    jitr_args(d, "ca crl root --out plain/ca.key").success();
    // The CA still signs with its own key.
    jitr_args(d, "ca crl root").success();
    openssl(d, &words("crl -in root/crl.pem -CAfile root/ca.crt -noout")).success();
}

#[test]
fn crl_and_verification_cert_refuse_an_existing_file_without_force() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    jitr(d, &["ca", "create", "root"]).success();
    let code = "3a9f1c0d5b7e2f8a6c4d0e1b9a7f5c3e2d1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f";
    let verify = format!("ca verification-cert root --code {code} --out v.crt");
    for (first, path) in [
        ("ca crl root".to_string(), "root/crl.pem"),
        ("ca crl root --out c.pem".to_string(), "c.pem"),
        (verify, "v.crt"),
    ] {
        jitr_args(d, &first).success();
        let before = std::fs::read(d.join(path)).unwrap();
        let err = jitr_args(d, &first).failure().to_string();
        assert!(
            err.contains(&format!("{path} already exists; pass --force")),
            "{first}: {err}"
        );
        assert_eq!(std::fs::read(d.join(path)).unwrap(), before, "{first}");
        jitr_args(d, &format!("{first} --force")).success();
        assert_ne!(std::fs::read(d.join(path)).unwrap(), before, "{first}");
        assert_eq!(mode(&d.join(path)), 0o644);
    }
    let left: Vec<String> = list_dir(d)
        .into_iter()
        .chain(list_dir(&d.join("root")))
        .filter(|n| n.starts_with(".jitr-tmp"))
        .collect();
    assert!(left.is_empty(), "no temp files left: {left:?}");
}

#[test]
fn crl_numbers_strictly_increase_back_to_back_and_concurrently() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    jitr(d, &["ca", "create", "root"]).success();
    let mut numbers = Vec::new();
    for i in 0..5 {
        let out = format!("seq{i}.pem");
        let report = jitr_args(d, &format!("--json ca crl root --out {out}")).json();
        let n = crl_number(d, &out);
        assert_eq!(
            report["crl_number"],
            n.to_string(),
            "the report says {report}"
        );
        numbers.push(n);
    }
    assert!(
        numbers.windows(2).all(|w| w[0] < w[1]),
        "back to back: {numbers:?}"
    );
    let children: Vec<_> = (0..6)
        .map(|i| {
            Command::new(bin("jitr"))
                .args(["ca", "crl", "root", "--out", &format!("par{i}.pem")])
                .current_dir(d)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut concurrent: Vec<u64> = Vec::new();
    for (i, child) in children.into_iter().enumerate() {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        concurrent.push(crl_number(d, &format!("par{i}.pem")));
    }
    concurrent.sort();
    assert!(
        concurrent.windows(2).all(|w| w[0] < w[1]),
        "concurrent runs share no number: {concurrent:?}"
    );
    assert!(
        concurrent[0] > numbers[4],
        "{numbers:?} then {concurrent:?}"
    );
    jitr_args(d, "ca crl root --out last.pem").success();
    assert!(crl_number(d, "last.pem") > concurrent[5]);
}

#[test]
fn a_revoked_json_entry_with_a_bad_serial_is_named_and_no_crl_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    jitr(d, &["ca", "create", "root"]).success();
    let entry = |serial: &str| {
        serde_json::json!({
            "certificate_id": format!("id-{serial}"),
            "serial": serial,
            "name": "d",
            "revoked_at": "2026-11-23T05:00:00Z",
        })
    };
    // Zero is no serial (RFC 5280: positive), nor is one past 20 octets.
    let long = format!("01{}", "00".repeat(20));
    for bad in ["", "zz", "0x01", "abc", " 01", "00", "0000", long.as_str()] {
        let list = serde_json::json!({ "revoked": [entry("01ab"), entry(bad)] });
        std::fs::write(d.join("root/revoked.json"), list.to_string()).unwrap();
        let err = jitr_args(d, "ca crl root").failure().to_string();
        assert!(
            err.contains("root/revoked.json: entry 2")
                && err.contains(&format!("id-{bad}"))
                && err.contains(&format!("serial \"{bad}\"")),
            "{bad:?}: {err}"
        );
        assert!(
            !d.join("root/crl.pem").exists(),
            "{bad:?}: a CRL was written"
        );
    }
    let list = serde_json::json!({ "revoked": [entry("01ab"), entry("00ff")] });
    std::fs::write(d.join("root/revoked.json"), list.to_string()).unwrap();
    jitr_args(d, "ca crl root").success();
    let text = openssl(d, &words("crl -in root/crl.pem -noout -text"))
        .success()
        .to_string();
    assert!(text.contains("Serial Number: 01AB"), "{text}");
    assert!(text.contains("Serial Number: FF"), "{text}");
}

#[test]
fn sni_only_registration_refuses_secret_files_it_would_not_read() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    jitr(d, &["ca", "create", "myca"]).success();
    std::fs::write(d.join("pw"), "secret\n").unwrap();
    // An unreachable endpoint: reaching AWS would fail with "cannot reach".
    for (flag, what) in [("--password-file", "passphrase"), ("--pin-file", "PIN")] {
        let cmd = format!(
            "ca register myca --mode sni-only {flag} pw --region us-east-1 --endpoint-url http://127.0.0.1:1"
        );
        let err = jitr_args(d, &cmd).failure().to_string();
        assert!(
            err.contains(&format!("{flag} pw: "))
                && err.contains(&format!("reads no {what}"))
                && err.contains("--mode sni-only")
                && err.contains("would be ignored"),
            "{cmd}: {err}"
        );
        assert!(!err.contains("reach"), "{cmd}: AWS was called: {err}");
    }
}

#[test]
fn an_issuer_whose_key_needs_a_passphrase_is_named_with_the_flag_that_gives_it() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(d.join("pw"), "right horse\n").unwrap();
    std::fs::write(d.join("wrong"), "wrong horse\n").unwrap();
    jitr_args(d, "ca create root --encrypt --password-file pw").success();
    // No passphrase, and no terminal to ask on.
    let out = run_without_stdin(d, "ca create issuing --issuer root");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("root/ca.key") && err.contains("--issuer-password-file"),
        "{err}"
    );
    // A wrong one: which key, and which flag it came from.
    let out = run_without_stdin(
        d,
        "ca create issuing --issuer root --issuer-password-file wrong",
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("root/ca.key")
            && err.contains("passphrase is wrong")
            && err.contains("--issuer-password-file wrong"),
        "{err}"
    );
    assert!(!d.join("issuing").exists());
}

fn run_without_stdin(d: &Path, command: &str) -> std::process::Output {
    Command::new(bin("jitr"))
        .args(words(command))
        .current_dir(d)
        .env_remove("JITR_CA_PASSWORD")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn ca_list_shows_each_cas_auto_registration() {
    let ms = jitr_tests::ministack::Ministack::start();
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    jitr(d, &["ca", "create", "on"]).success();
    jitr(d, &["ca", "create", "off"]).success();
    ms.jitr(d, &["ca", "register", "on"]).success();
    ms.jitr(d, &["ca", "register", "off"]).success();
    ms.jitr(d, &["ca", "auto-registration", "disable", "off"])
        .success();
    let id = |dir: &str| jitr_tests::certificate_id(d, &format!("{dir}/ca.crt"));
    let listed = ms.jitr(d, &["--json", "ca", "list"]).json();
    let auto = |ca: &str| {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["certificate_id"] == id(ca).as_str())
            .map(|c| c["auto_registration"].clone())
            .unwrap_or_else(|| panic!("{listed}"))
    };
    assert_eq!(auto("on"), "ENABLE", "{listed}");
    assert_eq!(auto("off"), "DISABLE", "{listed}");
    let text = ms.jitr(d, &["ca", "list"]).success().to_string();
    assert!(text.contains("AUTO-REGISTRATION"), "{text}");
    let line = |ca: &str| {
        text.lines()
            .find(|l| l.contains(&id(ca)))
            .unwrap_or_else(|| panic!("{text}"))
            .to_string()
    };
    assert!(line("on").contains("ENABLE"), "{text}");
    assert!(line("off").contains("DISABLE"), "{text}");
}

#[test]
fn on_a_terminal_the_issuers_passphrase_prompt_names_its_key() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(d.join("pw"), "right horse\n").unwrap();
    jitr_args(d, "ca create root --encrypt --password-file pw").success();
    // `script` runs jitr on a pty and types what it reads from its stdin.
    let line = format!(
        "'{}' ca create issuing --issuer root",
        bin("jitr").display()
    );
    let mut child = Command::new("script")
        .args(["-qfec", &line, "/dev/null"])
        .current_dir(d)
        .env_remove("JITR_CA_PASSWORD")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(1));
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"right horse\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains("--issuer's key root/ca.key is encrypted")
            && shown.contains("--issuer-password-file"),
        "{shown}"
    );
    assert!(out.status.success(), "{shown}");
    assert!(d.join("issuing/ca.crt").is_file(), "{shown}");
}
