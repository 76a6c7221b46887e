//! The local JITR rehearsal on the ministack emulator: IAM enforced
//! (`AUTH=true`), the real template (`infra/sam/template.yaml`, or the one
//! `cdk synth` makes) deployed through its CloudFormation with the function
//! built on this machine, CA `root` registered with `jitr ca register`, and a
//! subscriber on `things/#` of the emulator's MQTT/TLS broker. Devices
//! connect to that broker; AWS IoT's JITR, the rule, the queue, the event
//! source mapping and the function are the emulator's and the template's.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::lambda::workspace;
use crate::ministack::{venv_program, Ministack, ACCOUNT, REGION};
use crate::{run, Guard, Run};

/// The deploy tool the demo uses too.
pub const DEPLOY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/emulator_deploy.py");
/// Certificate ARNs of the emulator's account.
pub fn cert_arn(certificate_id: &str) -> String {
    format!("arn:aws:iot:{REGION}:{ACCOUNT}:cert/{certificate_id}")
}

/// Which of the two templates to deploy.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Template {
    Sam,
    Cdk,
}

/// How the rehearsal is set up.
pub struct Options<'a> {
    /// Template parameters besides CaCertificateId and Architecture
    /// (e.g. `("ThingNamePattern", "^robot-[0-9]+$")`).
    pub parameters: &'a [(&'a str, &'a str)],
    pub template: Template,
    /// The loopback port the deployed functions call AWS at, instead of
    /// the emulator itself: a fault-injecting proxy the test starts there
    /// (see [`crate::throttle_proxy`]) in front of the emulator.
    pub function_endpoint_port: Option<u16>,
    /// Runs once the emulator is up, before the stack is deployed: the
    /// stack's own functions (the device group's policy attachment) call
    /// `function_endpoint_port` while it deploys, so its proxy starts here.
    pub before_deploy: Option<&'a dyn Fn(&Ministack)>,
}

impl Default for Options<'_> {
    fn default() -> Self {
        Options {
            parameters: &[],
            template: Template::Sam,
            function_endpoint_port: None,
            before_deploy: None,
        }
    }
}

/// Everything running, with CA `root` (in `dir`) registered for JITR and
/// the stack `jitr` deployed.
pub struct Rehearsal {
    pub dir: PathBuf,
    // The subscriber goes before the emulator.
    _subscriber: Guard,
    pub ms: Ministack,
    pub ca_id: String,
    /// host:port devices connect to.
    pub endpoint: String,
    /// The CA that verifies the broker's certificate.
    pub server_ca: PathBuf,
    /// The deploy tool's report: status, outputs, resources.
    pub stack: Value,
}

impl Rehearsal {
    pub fn start(dir: &Path, options: Options) -> Rehearsal {
        let mqtt = crate::free_port().to_string();
        let mut settings = vec![
            ("AUTH", "true".to_string()),
            ("IOT_MTLS_PORT", mqtt),
            ("LOG_LEVEL", "INFO".to_string()),
        ];
        if let Some(port) = options.function_endpoint_port {
            // The emulator hands its AWS_ENDPOINT_URL to the functions it runs.
            settings.push(("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}")));
        }
        let settings: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let ms = Ministack::start_with(&settings);
        if let Some(before_deploy) = options.before_deploy {
            before_deploy(&ms);
        }
        crate::jitr(dir, &["ca", "create", "root"]).success();
        let ca_id = ms.jitr(dir, &["--json", "ca", "register", "root"]).json()["certificate_id"]
            .as_str()
            .unwrap()
            .to_string();
        let ca_param = format!("CaCertificateId={ca_id}");
        let arch_param = format!("Architecture={}", lambda_architecture());
        let mut args = vec![
            match options.template {
                Template::Sam => "sam",
                Template::Cdk => "cdk",
            }
            .to_string(),
            "--stack".into(),
            "jitr".into(),
            "--bootstrap".into(),
            function_bootstrap().to_str().unwrap().into(),
            "--param".into(),
            ca_param,
            "--param".into(),
            arch_param,
        ];
        if options.template == Template::Cdk {
            args.push("--cdk-out".into());
            args.push(cdk_out().to_str().unwrap().into());
        }
        for (k, v) in options.parameters {
            args.push("--param".into());
            args.push(format!("{k}={v}"));
        }
        let deployed = run(Command::new(venv_program("ministack", "python"))
            .arg(DEPLOY)
            .args(&args)
            .envs(ms.env()));
        assert!(
            deployed.ok(),
            "deploy failed: {}\n{}\n{}",
            deployed.stderr,
            deployed.stdout,
            ms.log()
        );
        let stack = deployed.json();
        assert_eq!(stack["status"], "CREATE_COMPLETE", "{stack}");

        let server_ca = dir.join("server-ca.pem");
        ms.write_server_ca(&server_ca);
        let mqtt = ms.mqtt_port.unwrap();
        let subscriber = subscribe(dir, mqtt, &server_ca).unwrap_or_else(|| {
            panic!(
                "the subscriber received nothing within 30 s: {}\n{}",
                std::fs::read_to_string(dir.join("subscriber.err")).unwrap_or_default(),
                ms.log()
            )
        });
        Rehearsal {
            dir: dir.to_path_buf(),
            _subscriber: subscriber,
            ca_id,
            endpoint: format!("127.0.0.1:{mqtt}"),
            server_ca,
            stack,
            ms,
        }
    }

    /// The stack deployed with these template parameters, nothing else set.
    pub fn with_parameters(dir: &Path, parameters: &[(&str, &str)]) -> Rehearsal {
        Rehearsal::start(
            dir,
            Options {
                parameters,
                ..Options::default()
            },
        )
    }

    /// The function's outcome lines (its log) about a certificate.
    pub fn outcome_lines(&self, certificate_id: &str) -> Vec<String> {
        self.ms
            .log()
            .lines()
            .filter(|l| l.contains(certificate_id) && l.contains("outcome"))
            .map(str::to_string)
            .collect()
    }

    /// Connects the device in `device_dir` (a 4 s attempt), which must fail,
    /// then waits up to `within` for its certificate `certificate_id` to be REVOKED.
    #[track_caller]
    pub fn assert_refused_then_revoked(
        &self,
        device_dir: &str,
        certificate_id: &str,
        within: Duration,
    ) {
        let out = self.connect(&[device_dir], "4");
        assert_eq!(out.code, Some(1), "{}", out.stdout);
        assert!(
            self.eventually(within, || self.status(certificate_id) == "REVOKED"),
            "{}\n{}",
            self.status(certificate_id),
            self.ms.log()
        );
    }

    /// A stack output (e.g. `EventQueueUrl`).
    pub fn output(&self, key: &str) -> String {
        self.stack["outputs"][key]
            .as_str()
            .unwrap_or_else(|| panic!("no output {key}: {}", self.stack))
            .to_string()
    }

    /// `jitr --json connect ARGS` against the emulator's broker, within `timeout` seconds.
    pub fn connect(&self, args: &[&str], timeout: &str) -> Run {
        run(&mut self.connect_command(args, timeout))
    }

    /// The command `connect` runs, to start many at once.
    pub fn connect_command(&self, args: &[&str], timeout: &str) -> Command {
        let mut cmd = Command::new(crate::bin("jitr"));
        cmd.args(["--json", "connect"])
            .args(args)
            .args(["--endpoint", &self.endpoint, "--timeout", timeout])
            .arg("--ca-file")
            .arg(&self.server_ca)
            .current_dir(&self.dir)
            .stdin(Stdio::null());
        cmd
    }

    /// An AWS IoT call with boto3 (see `Ministack::boto3`).
    pub fn iot(&self, operation: &str, params: Value) -> Value {
        self.ms.boto3("iot", operation, params)
    }

    /// DescribeCertificate's status, or the error code.
    pub fn status(&self, certificate_id: &str) -> String {
        let d = self.iot(
            "describe_certificate",
            json!({ "certificateId": certificate_id }),
        );
        match d["certificateDescription"]["status"].as_str() {
            Some(s) => s.to_string(),
            None => d["Error"]
                .as_str()
                .unwrap_or_else(|| panic!("{d}"))
                .to_string(),
        }
    }

    /// The principals attached to a thing (empty if there is no such thing).
    pub fn thing_principals(&self, thing: &str) -> Vec<String> {
        let d = self.iot("list_thing_principals", json!({ "thingName": thing }));
        crate::principals_in(&d)
    }

    /// The names of the account's things, sorted.
    pub fn thing_names(&self) -> Vec<String> {
        let things = self.iot("list_things", json!({}));
        let mut names: Vec<String> = things["things"]
            .as_array()
            .unwrap_or_else(|| panic!("{things}"))
            .iter()
            .map(|t| t["thingName"].as_str().unwrap().to_string())
            .collect();
        names.sort();
        names
    }

    /// The policies attached to a certificate ARN.
    pub fn policies_of(&self, arn: &str) -> Vec<String> {
        let d = self.iot("list_attached_policies", json!({ "target": arn }));
        crate::policy_names_in(&d)
    }

    /// Every thing of the account with its principals, each principal's
    /// status and attached policies, in one boto3 process:
    /// `{thing: [{"arn", "status", "policies"}]}`.
    pub fn things_report(&self) -> Value {
        self.ms.python(crate::THINGS_REPORT_SCRIPT, &[]).json()
    }

    /// How many registered events the emulator published for a certificate
    /// (its IoT log line on each CONNECT of an unknown or pending certificate).
    pub fn events_published(&self, certificate_id: &str) -> usize {
        let needle = format!("certificate {certificate_id} is PENDING_ACTIVATION under CA");
        self.ms
            .log()
            .lines()
            .filter(|l| l.contains(&needle))
            .count()
    }

    /// Lines the subscriber on `things/#` received ("topic message").
    pub fn received(&self) -> String {
        std::fs::read_to_string(self.dir.join("received.txt")).unwrap_or_default()
    }

    /// Waits up to `timeout` for `cond`, polling every 200 ms; whether it held.
    pub fn eventually(&self, timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if cond() {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Lambda's name for this machine's instruction set: the function the
/// rehearsal deploys is the host build, so the stack says so.
pub fn lambda_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "arm64",
        "x86_64" => "x86_64",
        other => panic!("no Lambda architecture for {other}"),
    }
}

/// The function the tests deploy: the host's `jitr-lambda` (`make test`
/// builds it), without debug info (a 45 MB zip instead of 330 MB), once per
/// test binary. The demo deploys a `cargo lambda build --release` instead.
pub fn function_bootstrap() -> &'static PathBuf {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        // The benchmarks deploy the release build (scripts/bench_burst.sh).
        if let Some(exe) = std::env::var_os("JITR_FUNCTION_BOOTSTRAP") {
            return PathBuf::from(exe);
        }
        let dir = crate::target_dir().join("rehearsal");
        std::fs::create_dir_all(&dir).unwrap();
        // Made under a private name, renamed into place: test binaries
        // running at once each get a whole file.
        let tmp = dir.join(format!(".bootstrap-{}", std::process::id()));
        let stripped = Command::new("strip")
            .arg("--strip-debug")
            .arg("-o")
            .arg(&tmp)
            .arg(crate::bin("jitr-lambda"))
            .status();
        if !matches!(stripped, Ok(s) if s.success()) {
            std::fs::copy(crate::bin("jitr-lambda"), &tmp).unwrap();
        }
        let out = dir.join("bootstrap");
        std::fs::rename(&tmp, &out).unwrap();
        out
    })
}

/// `cdk synth` of infra/cdk without building the function (offline), once
/// per test binary: the output directory (under target/, replaced each run).
pub fn cdk_out() -> &'static PathBuf {
    static OUT: OnceLock<PathBuf> = OnceLock::new();
    OUT.get_or_init(|| {
        let modules = workspace().join("infra/cdk/node_modules/aws-cdk-lib");
        assert!(
            modules.exists(),
            "{} is missing: `npm ci` in infra/cdk did not run or failed (is the npm registry \
             reachable? `make deps` prints why); only the CDK tests need it",
            modules.display()
        );
        let out = crate::target_dir().join("cdk.out");
        let _ = std::fs::remove_dir_all(&out);
        run(Command::new("npx")
            .args([
                "cdk",
                "synth",
                "--quiet",
                "--no-notices",
                "-c",
                "bundle=false",
                "-o",
            ])
            .arg(&out)
            .current_dir(workspace().join("infra/cdk"))
            .env("CDK_DISABLE_CLI_TELEMETRY", "true"))
        .success();
        out
    })
}

/// `mosquitto_sub` on `things/#` of the emulator's broker (no client
/// certificate: the emulator serves such a session without a device policy),
/// writing `received.txt`; returns once it demonstrably receives. The
/// emulator builds its TLS context on the first connection, and that first
/// connection stalls until the client gives up (a minute for mosquitto's
/// clients), so probes are bounded and a subscriber that receives none is replaced.
fn subscribe(dir: &Path, port: u16, ca: &Path) -> Option<Guard> {
    let port = port.to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let sub = Command::new("mosquitto_sub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-t",
                "things/#",
                "-v",
                "-q",
                "1",
            ])
            .arg("--cafile")
            .arg(ca)
            .stdout(std::fs::File::create(dir.join("received.txt")).unwrap())
            .stderr(std::fs::File::create(dir.join("subscriber.err")).unwrap())
            .spawn()
            .expect("mosquitto_sub is installed (make test installs it)");
        let guard = Guard(sub);
        let tried = Instant::now();
        while tried.elapsed() < Duration::from_secs(3) {
            let mut probe = Command::new("mosquitto_pub")
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &port,
                    "-t",
                    "things/probe",
                    "-m",
                    "probe",
                    "-q",
                    "1",
                ])
                .arg("--cafile")
                .arg(ca)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("mosquitto_pub is installed");
            let sent = Instant::now();
            while probe.try_wait().unwrap().is_none() && sent.elapsed() < Duration::from_secs(2) {
                std::thread::sleep(Duration::from_millis(50));
            }
            drop(Guard(probe));
            std::thread::sleep(Duration::from_millis(200));
            if std::fs::read_to_string(dir.join("received.txt"))
                .unwrap_or_default()
                .contains("things/probe")
            {
                return Some(guard);
            }
        }
    }
    None
}
