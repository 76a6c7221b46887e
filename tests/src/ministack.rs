//! ministack, the local AWS emulator (KMS, IoT, CloudFormation, SQS, Lambda,
//! IAM), from the project's virtual environment (`.venv/ministack`, made by
//! `scripts/deps.sh`), on free loopback ports; stopped on drop. Started
//! through `scripts/ministack_loopback.py`, which keeps every listener it
//! opens (the IoT MQTT/TLS one included) on 127.0.0.1.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{free_port, run, Guard, Run};

pub const REGION: &str = "eu-west-1";
/// The account ministack serves the root credentials (`test`) in.
pub const ACCOUNT: &str = "000000000000";
/// The launcher every ministack of the tests and the demo starts through.
pub const LAUNCHER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../scripts/ministack_loopback.py"
);

/// Where the emulators record what AWS's API models say of every request
/// they get (`scripts/model_check_server.py`): `JITR_MODEL_CHECK_DIR`, else
/// `<target>/model-check`, shared by every test of a run.
pub fn model_check_dir() -> PathBuf {
    std::env::var_os("JITR_MODEL_CHECK_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            crate::target_dir()
                .parent()
                .expect("<target>/<profile>")
                .join("model-check")
        })
}

/// A program installed in one of the project's virtual environments
/// (`.venv/NAME/bin/PROGRAM`), with a message saying how to get it.
pub fn venv_program(venv: &str, program: &str) -> PathBuf {
    let path = crate::lambda::workspace()
        .join(".venv")
        .join(venv)
        .join("bin")
        .join(program);
    assert!(
        path.exists(),
        "{} is missing: run `make deps` (scripts/deps.sh makes the project's virtual environments)",
        path.display()
    );
    path
}

/// A running ministack; stopped on drop.
pub struct Ministack {
    pub port: u16,
    pub url: String,
    /// The IoT MQTT/TLS listener (devices connect here), when started with it.
    pub mqtt_port: Option<u16>,
    /// Its state and logs (TMPDIR of the process), removed on drop.
    pub dir: tempfile::TempDir,
    _child: Guard,
}

impl Ministack {
    /// Starts the emulator with its defaults but the IoT MQTT listener off.
    pub fn start() -> Ministack {
        Self::start_with(&[("IOT_MTLS_ENABLED", "0")])
    }

    /// The JITR rehearsal's emulator: IAM enforced (`AUTH=true`: roles,
    /// policies and IoT device policies are evaluated) and the IoT MQTT/TLS
    /// listener on a free loopback port.
    pub fn start_iot() -> Ministack {
        let mqtt = free_port().to_string();
        Self::start_with(&[("AUTH", "true"), ("IOT_MTLS_PORT", &mqtt)])
    }

    /// Starts the emulator with extra settings (e.g. `AUTH=true`,
    /// `IOT_MTLS_PORT`), bound to 127.0.0.1 on a free port.
    pub fn start_with(settings: &[(&str, &str)]) -> Ministack {
        let port = free_port();
        let dir = tempfile::tempdir().unwrap();
        let log = std::fs::File::create(dir.path().join("ministack.log")).unwrap();
        let mut cmd = Command::new(venv_program("ministack", "python"));
        cmd.arg(LAUNCHER);
        let mqtt_port = settings
            .iter()
            .find(|(k, _)| *k == "IOT_MTLS_PORT")
            .map(|(_, v)| v.parse().expect("IOT_MTLS_PORT is a port"));
        let child = cmd
            .env("GATEWAY_PORT", port.to_string())
            // Functions it runs call back here (it hands its own
            // AWS_ENDPOINT_URL to them); clients of the host are unaffected.
            .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}"))
            .env("BIND_HOST", "127.0.0.1")
            .env("MINISTACK_REGION", REGION)
            .env("LOG_LEVEL", "WARNING")
            .env("TMPDIR", dir.path())
            .env("STATE_DIR", dir.path().join("state"))
            .env("JITR_MODEL_CHECK_DIR", model_check_dir())
            .env("S3_DATA_DIR", dir.path().join("s3"))
            .envs(settings.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("ministack starts (make deps installs it)");
        let mut ms = Ministack {
            port,
            mqtt_port,
            url: format!("http://127.0.0.1:{port}"),
            dir,
            _child: Guard(child),
        };
        ms.wait_healthy();
        ms
    }

    /// Waits for `/_ministack/health` to answer 200.
    fn wait_healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if http_status(self.port, "/_ministack/health") == Some(200) {
                return;
            }
            if let Ok(Some(status)) = self._child.0.try_wait() {
                panic!("ministack exited with {status}: {}", self.log());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("ministack was not healthy within 60 s: {}", self.log());
    }

    /// Writes the CA that signs the MQTT listener's certificate to `path`
    /// (devices verify the broker with it, as they would Amazon's roots).
    pub fn write_server_ca(&self, path: &Path) {
        let pem =
            http_get(self.port, "/_ministack/iot/ca.pem").expect("ministack serves its IoT CA");
        assert!(pem.contains("BEGIN CERTIFICATE"), "{pem}");
        std::fs::write(path, pem).unwrap();
    }

    /// The process id (to inspect its sockets).
    pub fn pid(&self) -> u32 {
        self._child.0.id()
    }

    /// Runs `jitr ARGS` in `cwd` against this emulator.
    pub fn jitr(&self, cwd: &Path, args: &[&str]) -> Run {
        run(Command::new(crate::bin("jitr"))
            .args(args)
            .current_dir(cwd)
            .envs(self.env()))
    }

    /// Runs a Python script with the emulator's venv (boto3) against it.
    pub fn python(&self, script: &str, args: &[&str]) -> Run {
        run(Command::new(venv_program("ministack", "python"))
            .arg("-c")
            .arg(script)
            .args(args)
            .envs(self.env()))
    }

    /// Calls `service`'s operation with boto3 (snake_case name, JSON params)
    /// and returns its answer, or the error as `{"Error": CODE, "Message"}`.
    pub fn boto3(
        &self,
        service: &str,
        operation: &str,
        params: serde_json::Value,
    ) -> serde_json::Value {
        const SCRIPT: &str = r#"
import boto3, json, sys
c = boto3.client(sys.argv[1])
try:
    out = getattr(c, sys.argv[2])(**json.loads(sys.argv[3]))
    out.pop("ResponseMetadata", None)
except c.exceptions.ClientError as e:
    out = {"Error": e.response["Error"]["Code"], "Message": e.response["Error"].get("Message", "")}
print(json.dumps(out, default=str))
"#;
        self.python(SCRIPT, &[service, operation, &params.to_string()])
            .json()
    }

    /// Creates the function's claims table `name` as the templates create
    /// it (on-demand, keyed by certificateId).
    pub fn create_claims_table(&self, name: &str) {
        let made = self.boto3(
            "dynamodb",
            "create_table",
            serde_json::json!({
                "TableName": name,
                "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [{ "AttributeName": "certificateId", "AttributeType": "S" }],
                "KeySchema": [{ "AttributeName": "certificateId", "KeyType": "HASH" }],
            }),
        );
        assert!(made.get("Error").is_none(), "{made}");
    }

    /// What the emulator logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("ministack.log")).unwrap_or_default()
    }

    /// Environment for any AWS client aimed at this emulator.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.url.clone()),
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", "test".into()),
            ("AWS_REGION", REGION.into()),
            ("AWS_DEFAULT_REGION", REGION.into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
            ("AWS_CONFIG_FILE", "/dev/null".into()),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".into()),
        ]
    }
}

/// The body of `GET path` on 127.0.0.1:`port`, if it answered 200.
fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_string())
}

/// The status code of `GET path` on 127.0.0.1:`port`, if it answered.
fn http_status(port: u16, path: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// The local addresses (`host:port`) process `pid` listens on (TCP).
pub fn listening_addresses(pid: u32) -> Vec<String> {
    let out = Command::new("ss")
        .args(["-Hltnp"])
        .output()
        .expect("ss (iproute2) is installed");
    let needle = format!("pid={pid},");
    let mut addrs: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(&needle))
        // Columns: State Recv-Q Send-Q Local-Address:Port Peer-Address:Port Process
        .filter_map(|l| l.split_whitespace().nth(3).map(str::to_string))
        .collect();
    addrs.sort();
    addrs
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The emulator starts from the project's venv, answers on loopback only.
    #[test]
    fn starts_on_loopback_and_answers_health() {
        let ms = Ministack::start();
        assert_eq!(http_status(ms.port, "/_ministack/health"), Some(200));
        assert_eq!(
            listening_addresses(ms.pid()),
            [format!("127.0.0.1:{}", ms.port)]
        );
    }

    /// Every listener of the rehearsal's emulator, the IoT MQTT/TLS one
    /// included (ministack 1.5.33 alone binds that one on 0.0.0.0), is on 127.0.0.1.
    #[test]
    fn the_mqtt_listener_is_on_loopback_only() {
        let ms = Ministack::start_iot();
        wait_listening(ms.pid(), 2);
        let mqtt = ms.mqtt_port.unwrap();
        let mut expected = vec![
            format!("127.0.0.1:{}", ms.port),
            format!("127.0.0.1:{mqtt}"),
        ];
        expected.sort();
        assert_eq!(listening_addresses(ms.pid()), expected);
    }

    /// Waits until process `pid` listens on `n` sockets (the MQTT listener
    /// is bound by the app's start-up, just after the health check answers).
    fn wait_listening(pid: u32, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while listening_addresses(pid).len() < n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
