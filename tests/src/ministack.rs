//! ministack, the local AWS emulator (KMS, IoT, CloudFormation, SQS, Lambda,
//! IAM), from the project's virtual environment (`.venv/ministack`, made by
//! `scripts/deps.sh`), on a free loopback port; stopped on drop.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{free_port, Guard};

pub const REGION: &str = "eu-west-1";

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
    /// Its state and logs (TMPDIR of the process), removed on drop.
    pub dir: tempfile::TempDir,
    _child: Guard,
}

impl Ministack {
    /// Starts the emulator with its defaults but the IoT MQTT listener off.
    pub fn start() -> Ministack {
        Self::start_with(&[("IOT_MTLS_ENABLED", "0")])
    }

    /// Starts the emulator with extra settings (e.g. `AUTH=true`,
    /// `IOT_MTLS_PORT`), bound to 127.0.0.1 on a free port.
    pub fn start_with(settings: &[(&str, &str)]) -> Ministack {
        let port = free_port();
        let dir = tempfile::tempdir().unwrap();
        let log = std::fs::File::create(dir.path().join("ministack.log")).unwrap();
        let child = Command::new(venv_program("ministack", "ministack"))
            .env("GATEWAY_PORT", port.to_string())
            .env("BIND_HOST", "127.0.0.1")
            .env("MINISTACK_REGION", REGION)
            .env("LOG_LEVEL", "WARNING")
            .env("TMPDIR", dir.path())
            .env("STATE_DIR", dir.path().join("state"))
            .env("S3_DATA_DIR", dir.path().join("s3"))
            .envs(settings.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("ministack starts (make deps installs it)");
        let mut ms = Ministack {
            port,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The emulator starts from the project's venv, answers on loopback only.
    #[test]
    fn starts_on_loopback_and_answers_health() {
        let ms = Ministack::start();
        assert_eq!(http_status(ms.port, "/_ministack/health"), Some(200));
        let out = std::process::Command::new("ss")
            .args(["-Hltn", &format!("sport = :{}", ms.port)])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        // Columns: State Recv-Q Send-Q Local-Address:Port Peer-Address:Port
        let local: Vec<&str> = text
            .lines()
            .filter_map(|l| l.split_whitespace().nth(3))
            .collect();
        assert_eq!(local, [format!("127.0.0.1:{}", ms.port)], "{text}");
    }
}
