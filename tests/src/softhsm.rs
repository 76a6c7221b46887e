//! SoftHSM2 as the PKCS#11 token: one token store per test in a temp
//! directory, selected through `SOFTHSM2_CONF`, initialised with
//! `softhsm2-util` (an independent client), inspected with `pkcs11-tool`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{bin, run, Run};

/// The user PIN of test tokens.
pub const PIN: &str = "246810";
const SO_PIN: &str = "13579135";

/// A SoftHSM2 token store with one initialised token; removed on drop.
pub struct SoftHsm {
    _dir: tempfile::TempDir,
    pub conf: PathBuf,
    pub module: PathBuf,
    pub token: String,
    /// A file holding [`PIN`] (for `--pin-file`).
    pub pin_file: PathBuf,
}

/// Where Debian and others install the SoftHSM2 module.
pub fn module() -> PathBuf {
    [
        "/usr/lib/softhsm/libsofthsm2.so",
        "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
        "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
        "/usr/local/lib/softhsm/libsofthsm2.so",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
    .expect("SoftHSM2 is installed (Debian package softhsm2; make test installs it)")
}

impl SoftHsm {
    /// A fresh token labelled `token`.
    pub fn start(token: &str) -> SoftHsm {
        let dir = tempfile::tempdir().unwrap();
        let tokens = dir.path().join("tokens");
        std::fs::create_dir(&tokens).unwrap();
        let conf = dir.path().join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .unwrap();
        let pin_file = dir.path().join("pin");
        std::fs::write(&pin_file, format!("{PIN}\n")).unwrap();
        let hsm = SoftHsm {
            _dir: dir,
            conf,
            module: module(),
            token: token.to_string(),
            pin_file,
        };
        run(Command::new("softhsm2-util")
            .args(["--init-token", "--free", "--label", token])
            .args(["--so-pin", SO_PIN, "--pin", PIN])
            .env("SOFTHSM2_CONF", &hsm.conf))
        .success();
        hsm
    }

    /// Runs `jitr ARGS` in `cwd` with this token store and `env`.
    pub fn jitr(&self, cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
        run(Command::new(bin("jitr"))
            .args(args)
            .current_dir(cwd)
            .env("SOFTHSM2_CONF", &self.conf)
            .env_remove("JITR_PKCS11_PIN")
            .env_remove("JITR_CA_PASSWORD")
            .envs(env.iter().copied()))
    }

    /// The `--key-store pkcs11` flags that select this token.
    pub fn store_args(&self) -> Vec<String> {
        vec![
            "--key-store".into(),
            "pkcs11".into(),
            "--pkcs11-module".into(),
            self.module.display().to_string(),
            "--pkcs11-token".into(),
            self.token.clone(),
        ]
    }

    /// `pkcs11-tool ARGS` against this token, logged in.
    pub fn tool(&self, args: &[&str]) -> Run {
        run(Command::new("pkcs11-tool")
            .arg("--module")
            .arg(&self.module)
            .args(["--token-label", &self.token, "--login", "--pin", PIN])
            .args(args)
            .env("SOFTHSM2_CONF", &self.conf))
    }

    /// Writes a key object from a DER file (`privkey` PKCS#8 or `pubkey`
    /// SubjectPublicKeyInfo) under `label` and CKA_ID `id` (hex), as the
    /// README's migration path does with the token's own tooling.
    pub fn write_object(&self, cwd: &Path, der: &str, kind: &str, label: &str, id: &str) {
        let der = cwd.join(der).display().to_string();
        self.tool(&[
            "--write-object",
            &der,
            "--type",
            kind,
            "--label",
            label,
            "--id",
            id,
        ])
        .success();
    }

    /// How many objects of `kind` (`privkey`, `pubkey`) are labelled `label`.
    pub fn count(&self, kind: &str, label: &str) -> usize {
        let listed = self
            .tool(&["--list-objects", "--type", kind])
            .success()
            .to_string();
        listed
            .lines()
            .filter(|l| l.trim() == format!("label:      {label}"))
            .count()
    }
}
