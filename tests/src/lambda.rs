//! The built function under cargo-lambda's runtime emulator
//! (`cargo lambda watch`), invoked with `cargo lambda invoke --data-file`.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::{free_port, run, wait_for_port, Run};

/// The workspace root (tests/ is one of its members).
pub fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
}

/// A running `cargo lambda watch`; its whole process group is stopped on drop.
pub struct Watch {
    pub port: u16,
    child: Child,
}

impl Watch {
    /// Starts the emulator with the function's environment `env` (the
    /// process environment plus `JITR_*` settings).
    pub fn start(env: &[(&str, String)], log: &Path) -> Watch {
        let port = free_port();
        let settings: Vec<String> = env
            .iter()
            .filter(|(k, _)| k.starts_with("JITR_"))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let mut cmd = Command::new("cargo");
        cmd.args([
            "lambda",
            "watch",
            "--ignore-changes",
            "-q",
            "-A",
            "127.0.0.1",
            "-P",
            &port.to_string(),
        ])
        .current_dir(workspace().join("lambda"))
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(std::fs::File::create(log).unwrap())
        .stderr(std::fs::File::create(log.with_extension("err")).unwrap())
        .stdin(Stdio::null())
        .process_group(0);
        for s in &settings {
            cmd.args(["--env-var", s]);
        }
        let mut child = cmd
            .spawn()
            .expect("cargo lambda is installed (make test installs it)");
        wait_for_port(port, &mut child, "cargo lambda watch");
        Watch { port, child }
    }

    /// Invokes the function with the JSON in `data_file`.
    pub fn invoke(&self, data_file: &Path) -> Run {
        run(Command::new("cargo").args([
            "lambda",
            "invoke",
            "-A",
            "127.0.0.1",
            "-P",
            &self.port.to_string(),
            "--data-file",
            data_file.to_str().unwrap(),
            "jitr-lambda",
        ]))
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let _ = self.child.wait();
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
    }
}
