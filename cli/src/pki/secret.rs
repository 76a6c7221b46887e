//! Where passphrases and PINs come from: a file, an environment variable, or
//! a prompt on a terminal. Never from an argument, never echoed or logged.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::error::CliError;

/// A passphrase or PIN, wiped from memory when dropped.
pub(crate) type Secret = Zeroizing<String>;

/// Environment variable with the passphrase of encrypted CA key files.
pub(crate) const PASSWORD_ENV: &str = "JITR_CA_PASSWORD";
/// Environment variable with the PIN of a PKCS#11 token.
pub(crate) const PIN_ENV: &str = "JITR_PKCS11_PIN";

/// One kind of secret and its sources, as the user gave them.
#[derive(Debug, Clone)]
pub(crate) struct SecretSource {
    /// What the secret unlocks, for prompts and errors ("passphrase of the CA key").
    pub(crate) what: &'static str,
    /// The file flag and its value (`--password-file`).
    pub(crate) file_flag: &'static str,
    pub(crate) file: Option<PathBuf>,
    pub(crate) env: &'static str,
}

impl SecretSource {
    pub(crate) fn password(file: Option<PathBuf>) -> Self {
        SecretSource {
            what: "passphrase of the CA key",
            file_flag: "--password-file",
            file,
            env: PASSWORD_ENV,
        }
    }

    pub(crate) fn pin(file: Option<PathBuf>) -> Self {
        SecretSource {
            what: "PIN of the PKCS#11 token",
            file_flag: "--pin-file",
            file,
            env: PIN_ENV,
        }
    }

    /// Reads the secret: the file first, then the environment, then a prompt
    /// (asked twice when `confirm`, as when a new key is encrypted).
    pub(crate) fn read(&self, store: &str, confirm: bool) -> Result<Secret, CliError> {
        if let Some(path) = &self.file {
            return from_file(path, self.file_flag);
        }
        if let Ok(value) = std::env::var(self.env) {
            if value.is_empty() {
                return Err(CliError::invalid(
                    format!("key store {store}"),
                    format!("{} is set but empty", self.env),
                ));
            }
            return Ok(Zeroizing::new(value));
        }
        if !std::io::stdin().is_terminal() {
            return Err(CliError::invalid(
                format!("key store {store}"),
                format!(
                    "the {} is needed and stdin is not a terminal to ask for it (give {} FILE or set {})",
                    self.what, self.file_flag, self.env
                ),
            ));
        }
        prompt(self.what, store, confirm)
    }
}

/// Largest secret file read: a passphrase is one short line.
pub(crate) const MAX_SECRET_FILE: u64 = 64 * 1024;
/// Longest first line `openssl -passin file:` reads whole (its buffer is
/// 1024 bytes with the NUL): a longer one it silently cuts.
pub(crate) const MAX_SECRET_LINE: usize = 1023;

/// The secret in a file: its first line up to the newline, exactly as
/// `openssl -passin file:` reads it (a CR before the newline is kept).
/// Regular files only, at most [`MAX_SECRET_FILE`] bytes.
fn from_file(path: &Path, flag: &str) -> Result<Secret, CliError> {
    let what = || format!("{flag} {}", path.display());
    let bytes = Zeroizing::new(
        crate::files::read_limited(path, MAX_SECRET_FILE).map_err(|e| match e {
            CliError::Invalid { problem, .. } if problem.starts_with("is larger") => CliError::invalid(
                what(),
                format!(
                    "is larger than {} KiB ({MAX_SECRET_FILE} bytes; a secret file holds one short line)",
                    MAX_SECRET_FILE / 1024
                ),
            ),
            CliError::Invalid { problem, .. } => CliError::invalid(what(), problem),
            other => other,
        })?,
    );
    first_line(&bytes).map_err(|problem| CliError::invalid(what(), problem))
}

/// The secret of a file's contents, or what is wrong with them.
fn first_line(bytes: &[u8]) -> Result<Secret, String> {
    let line = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    if line.contains(&0) {
        return Err("has a NUL byte in its first line (openssl -passin file: would cut the passphrase there)".into());
    }
    if line.len() > MAX_SECRET_LINE {
        return Err(format!(
            "has a first line of {} bytes (at most {MAX_SECRET_LINE}: openssl -passin file: reads no more of it)",
            line.len()
        ));
    }
    let text = std::str::from_utf8(line).map_err(|_| "is not UTF-8 text".to_string())?;
    if text.is_empty() {
        return Err("has an empty first line (expected the secret on its first line)".into());
    }
    Ok(Zeroizing::new(text.to_string()))
}

fn prompt(what: &str, store: &str, confirm: bool) -> Result<Secret, CliError> {
    let ask = |label: &str| {
        rpassword::prompt_password(label)
            .map(Zeroizing::new)
            .map_err(|e| {
                CliError::invalid(
                    format!("key store {store}"),
                    format!("cannot read the {what} from the terminal: {e}"),
                )
            })
    };
    let first = ask(&format!("{what}: "))?;
    if first.is_empty() {
        return Err(CliError::invalid(
            format!("key store {store}"),
            format!("the {what} is empty"),
        ));
    }
    if confirm {
        let again = ask(&format!("{what} (again): "))?;
        if *again != *first {
            return Err(CliError::invalid(
                format!("key store {store}"),
                format!("the two entries of the {what} differ"),
            ));
        }
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_secrets_are_the_first_line_as_openssl_reads_it() {
        // (file contents, the secret or a fragment of the error); openssl
        // 3.0 `pkey -passin file:` was checked to read these the same way.
        for (content, expected) in [
            (&b"pw\n"[..], Ok("pw")),
            (b"pw", Ok("pw")),
            (b"pw\r\n", Ok("pw\r")),
            (b"first\nsecond\n", Ok("first")),
            (b" pw \n\n", Ok(" pw ")),
            (b"\n", Err("empty first line")),
            (b"\npw\n", Err("empty first line")),
            (b"", Err("empty first line")),
            (b"a\0b\n", Err("NUL")),
            (b"\xff\xfe\n", Err("not UTF-8")),
        ] {
            match (first_line(content), expected) {
                (Ok(got), Ok(want)) => assert_eq!(got.as_str(), want, "{content:?}"),
                (Err(got), Err(want)) => assert!(got.contains(want), "{content:?}: {got}"),
                (got, want) => panic!("{content:?}: {:?} vs {want:?}", got.map(|s| s.len())),
            }
        }
        let line = "x".repeat(MAX_SECRET_LINE);
        assert_eq!(first_line(line.as_bytes()).unwrap().len(), MAX_SECRET_LINE);
        let err = first_line(format!("{line}x\n").as_bytes()).unwrap_err();
        assert!(err.contains("1024 bytes") && err.contains("1023"), "{err}");
    }

    #[test]
    fn only_small_regular_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'a'; MAX_SECRET_FILE as usize + 1]).unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        for (path, expected) in [
            (big.as_path(), "larger than 64 KiB (65536 bytes"),
            (fifo.as_path(), "not a regular file"),
            (Path::new("/dev/urandom"), "not a regular file"),
            (dir.path(), "not a regular file"),
        ] {
            let err = from_file(path, "--password-file").unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("--password-file {}: ", path.display()))
                    && err.contains(expected),
                "{err}"
            );
        }
    }
}
