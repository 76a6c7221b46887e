//! Test support: run the real `jitr` binary, openssl as an independent
//! verifier, and servers (mosquitto, moto, ministack, the Lambda runtime API) on free loopback ports,
//! stopped when their guard is dropped.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub mod burst;
pub mod kms;
pub mod lambda;
pub mod ministack;
pub mod mosquitto;
pub mod moto;
pub mod rehearsal;
pub mod runtime_api;
pub mod sdk;
pub mod softhsm;
pub mod throttle_proxy;
pub mod walkthrough;

/// The workspace's target directory, next to this test binary.
pub fn target_dir() -> PathBuf {
    // target/<profile>/deps/<test-binary>
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .to_path_buf()
}

/// Path of a workspace binary built for this profile (`make test` builds them first).
pub fn bin(name: &str) -> PathBuf {
    let path = target_dir().join(name);
    assert!(path.exists(), "{} is missing: build the workspace binaries first (`cargo build --workspace --bins`; `make test` does)", path.display());
    path
}

/// A boto3 script printing every thing of the account with its principals,
/// each principal's status and the policies it holds: its own and those of
/// its thing's groups (where the stacks attach the device policy), in one
/// process: `{thing: [{"arn", "status", "policies"}]}` (moto and ministack alike).
pub const THINGS_REPORT_SCRIPT: &str = r#"
import boto3, json
c = boto3.client("iot")
out = {}
for page in c.get_paginator("list_things").paginate():
    for t in page["things"]:
        rows = []
        groups = c.list_thing_groups_for_thing(thingName=t["thingName"])["thingGroups"]
        through_groups = [p["policyName"] for g in groups for p in c.list_attached_policies(target=g["groupArn"])["policies"]]
        for arn in c.list_thing_principals(thingName=t["thingName"])["principals"]:
            status = c.describe_certificate(certificateId=arn.split("/")[-1])["certificateDescription"]["status"]
            own = [p["policyName"] for p in c.list_attached_policies(target=arn)["policies"]]
            policies = list(dict.fromkeys(own + through_groups))
            rows.append({"arn": arn, "status": status, "policies": policies})
        out[t["thingName"]] = rows
print(json.dumps(out))
"#;

/// The principals in a ListThingPrincipals answer (none for an error: no such thing).
pub(crate) fn principals_in(answer: &serde_json::Value) -> Vec<String> {
    answer["principals"]
        .as_array()
        .map(|a| a.iter().map(|p| p.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

/// The policy names in a ListAttachedPolicies answer, which must not be an error.
pub(crate) fn policy_names_in(answer: &serde_json::Value) -> Vec<String> {
    answer["policies"]
        .as_array()
        .unwrap_or_else(|| panic!("{answer}"))
        .iter()
        .map(|p| p["policyName"].as_str().unwrap().to_string())
        .collect()
}

/// The outcome of a command, with its output as text.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(out: Output) -> Self {
        Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }
    /// Asserts success and returns stdout.
    #[track_caller]
    pub fn success(&self) -> &str {
        assert!(
            self.ok(),
            "expected success, got {:?}\nstdout:\n{}\nstderr:\n{}",
            self.code,
            self.stdout,
            self.stderr
        );
        &self.stdout
    }
    /// Asserts failure (non-zero exit) and returns stderr.
    #[track_caller]
    pub fn failure(&self) -> &str {
        assert!(
            !self.ok() && self.code.is_some(),
            "expected a non-zero exit, got {:?}\nstdout:\n{}\nstderr:\n{}",
            self.code,
            self.stdout,
            self.stderr
        );
        &self.stderr
    }
    /// Parses stdout as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

/// Runs `jitr ARGS` in `cwd`.
pub fn jitr(cwd: &Path, args: &[&str]) -> Run {
    run(Command::new(bin("jitr")).args(args).current_dir(cwd))
}

/// The arguments of a command line written as one string, split on
/// whitespace: `words("device issue --ca root --out f --count 200")`. An
/// argument with spaces needs the array form (`&["--subject", "CN=A B"]`).
pub fn words(command: &str) -> Vec<&str> {
    command.split_whitespace().collect()
}

/// Runs `jitr` with its arguments as one command line (see [`words`]).
pub fn jitr_args(cwd: &Path, command: &str) -> Run {
    jitr(cwd, &words(command))
}

/// Runs `openssl ARGS` in `cwd`.
pub fn openssl(cwd: &Path, args: &[&str]) -> Run {
    run(Command::new("openssl").args(args).current_dir(cwd))
}

/// `openssl req` arguments for a new unencrypted P-256 key.
pub const NEW_P256_KEY: [&str; 5] = [
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
];

/// Makes a P-256 key `key` and a CSR `csr` for `subject` (e.g. "/CN=x") with openssl in `cwd`.
pub fn ec_csr(cwd: &Path, key: &str, csr: &str, subject: &str) {
    let args = [
        &["req", "-new"][..],
        &NEW_P256_KEY,
        &["-keyout", key, "-out", csr, "-subj", subject],
    ]
    .concat();
    openssl(cwd, &args).success();
}

/// The certificate id (SHA-256 of the DER) of the first certificate in `cwd/file`.
pub fn certificate_id(cwd: &Path, file: &str) -> String {
    let pem = std::fs::read(cwd.join(file)).unwrap();
    jitr_core::CertFacts::from_pem(&pem).unwrap().certificate_id
}

/// Issues device `name` with `jitr device issue --ca CA --out OUT --name NAME`,
/// which must succeed: its certificate id.
pub fn issue_device(cwd: &Path, ca: &str, out: &str, name: &str) -> String {
    jitr(
        cwd,
        &["device", "issue", "--ca", ca, "--out", out, "--name", name],
    )
    .success();
    certificate_id(cwd, &format!("{out}/{name}/device.crt"))
}

/// Issues device `name` like [`issue_device`], with the extra subject
/// attributes `extra` (`--subject-extra`, e.g. "O=Acme,serialNumber=SN-1"):
/// its certificate id.
pub fn issue_device_with(cwd: &Path, ca: &str, out: &str, name: &str, extra: &str) -> String {
    jitr(
        cwd,
        &[
            "device",
            "issue",
            "--ca",
            ca,
            "--out",
            out,
            "--name",
            name,
            "--subject-extra",
            extra,
        ],
    )
    .success();
    certificate_id(cwd, &format!("{out}/{name}/device.crt"))
}

/// Signs `csr` with the CA directory `ca` the classic openssl way (no extensions), into `out`.
pub fn openssl_sign(cwd: &Path, csr: &str, ca: &str, out: &str) {
    let (cert, key) = (format!("{ca}/ca.crt"), format!("{ca}/ca.key"));
    openssl(
        cwd,
        &[
            "x509",
            "-req",
            "-in",
            csr,
            "-CA",
            &cert,
            "-CAkey",
            &key,
            "-CAcreateserial",
            "-out",
            out,
            "-days",
            "10",
        ],
    )
    .success();
}

/// Runs a prepared command to completion.
pub fn run(cmd: &mut Command) -> Run {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    Run::from(out)
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// host:port on 127.0.0.1 where nothing listened a moment ago.
pub fn closed_endpoint() -> String {
    format!("127.0.0.1:{}", free_port())
}

/// Waits until something accepts TCP connections on 127.0.0.1:`port`.
pub fn wait_for_port(port: u16, child: &mut Child, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited with {status} before listening on port {port}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} did not listen on port {port} within 30 s");
}

/// A child process killed when dropped.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The mode bits of a file.
pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// The text `openssl x509 -text` prints for a certificate file.
pub fn x509_text(cwd: &Path, cert: &str) -> String {
    openssl(cwd, &["x509", "-in", cert, "-noout", "-text"])
        .success()
        .to_string()
}

/// openssl verifies the CRL `CA/crl.pem` (as `jitr ca crl` writes it) under `CA/ca.crt`.
#[track_caller]
pub fn assert_crl_verifies(cwd: &Path, ca: &str) {
    let (crl, cafile) = (format!("{ca}/crl.pem"), format!("{ca}/ca.crt"));
    let verified = openssl(cwd, &["crl", "-in", &crl, "-CAfile", &cafile, "-noout"]);
    assert!(
        verified.ok() && verified.stderr.contains("verify OK"),
        "{verified:?}"
    );
}

/// Entries of a directory, sorted.
pub fn list_dir(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    names
}

/// Makes a CA directory `dir` (P-256, CA:TRUE) whose certificate is valid
/// from `start` to `end` (openssl's `YYYYMMDDHHMMSSZ`), e.g. long expired,
/// with `openssl ca`, and adopts it with `jitr ca import`.
pub fn openssl_ca_dated(cwd: &Path, dir: &str, start: &str, end: &str) {
    let work = cwd.join(format!(".{dir}-openssl"));
    std::fs::create_dir_all(&work).unwrap();
    let subject = format!("/CN={dir} CA");
    let args = [
        &["req", "-new"][..],
        &NEW_P256_KEY,
        &["-keyout", "ca.key", "-out", "ca.csr", "-subj", &subject],
        &["-addext", "basicConstraints=critical,CA:TRUE"],
        &["-addext", "keyUsage=critical,keyCertSign,cRLSign"],
    ]
    .concat();
    openssl(&work, &args).success();
    openssl_ca_sign(
        &work,
        &["-selfsign", "-keyfile", "ca.key"],
        "ca.csr",
        "ca.crt",
        (start, end),
    );
    let (cert, key) = (work.join("ca.crt"), work.join("ca.key"));
    jitr(
        cwd,
        &[
            "ca",
            "import",
            dir,
            "--cert",
            cert.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ],
    )
    .success();
}

/// Signs `csr` into `out` with `openssl ca` in the working directory `work`
/// (its database and config made there on first use), valid from
/// `dates.0` to `dates.1` (openssl's `YYYYMMDDHHMMSSZ`); `signer` names the
/// CA (`-selfsign -keyfile K`, or `-cert C -keyfile K`).
pub fn openssl_ca_sign(work: &Path, signer: &[&str], csr: &str, out: &str, dates: (&str, &str)) {
    if !work.join("ca.cnf").exists() {
        std::fs::create_dir_all(work.join("db")).unwrap();
        std::fs::write(work.join("db/index.txt"), "").unwrap();
        std::fs::write(work.join("db/serial"), "01\n").unwrap();
        std::fs::write(
            work.join("ca.cnf"),
            "[ca]\ndefault_ca = d\n[d]\ndatabase = db/index.txt\nnew_certs_dir = db\nserial = db/serial\n\
             default_md = sha256\npolicy = p\nunique_subject = no\ncopy_extensions = copy\n[p]\ncommonName = supplied\n",
        )
        .unwrap();
    }
    let args = [
        &["ca", "-batch", "-config", "ca.cnf"][..],
        signer,
        &["-in", csr, "-out", out, "-notext"],
        &["-startdate", dates.0, "-enddate", dates.1],
    ]
    .concat();
    openssl(work, &args).success();
}

/// Whether some process waits in /proc/locks for an flock on inode `ino`.
pub fn flock_waiter_on(ino: u64) -> bool {
    let locks = std::fs::read_to_string("/proc/locks").unwrap();
    locks.lines().any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        fields.get(1) == Some(&"->")
            && fields.contains(&"FLOCK")
            && fields
                .iter()
                .any(|f| f.matches(':').count() == 2 && f.ends_with(&format!(":{ino}")))
    })
}

/// Waits until `child` waits for an flock on inode `ino` (seen in
/// /proc/locks, not guessed from a clock); `Err` with its exit status if it
/// finished instead, never having waited.
pub fn until_waiting_for_flock(
    child: &mut Child,
    ino: u64,
) -> Result<(), std::process::ExitStatus> {
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Err(status);
        }
        if flock_waiter_on(ino) {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Starts `cmd` (stdout discarded, stderr piped) and waits until it waits
/// for an flock on the directory `locked`, which the test holds: the child,
/// and `Err` with its exit status if it finished instead, never having waited.
pub fn spawn_until_waiting_on(
    cmd: &mut Command,
    locked: &Path,
) -> (Child, Result<(), std::process::ExitStatus>) {
    use std::os::unix::fs::MetadataExt;
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let ino = std::fs::metadata(locked).unwrap().ino();
    let waited = until_waiting_for_flock(&mut child, ino);
    (child, waited)
}
