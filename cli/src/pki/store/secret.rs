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

fn from_file(path: &Path, flag: &str) -> Result<Secret, CliError> {
    let bytes = Zeroizing::new(std::fs::read(path).map_err(|e| CliError::read(path, e))?);
    let text = std::str::from_utf8(&bytes).map_err(|_| {
        CliError::invalid(format!("{flag} {}", path.display()), "is not UTF-8 text")
    })?;
    // One line; a trailing newline (echo, editors) is not part of the secret.
    let secret = text.strip_suffix('\n').unwrap_or(text);
    let secret = secret.strip_suffix('\r').unwrap_or(secret);
    if secret.is_empty() {
        return Err(CliError::invalid(
            format!("{flag} {}", path.display()),
            "is empty (expected the secret on its first line)",
        ));
    }
    Ok(Zeroizing::new(secret.to_string()))
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
    fn file_secrets_lose_one_trailing_newline_only() {
        let dir = tempfile::tempdir().unwrap();
        for (content, expected) in [
            ("pw\n", Some("pw")),
            ("pw\r\n", Some("pw")),
            ("pw", Some("pw")),
            (" pw \n\n", Some(" pw \n")),
            ("\n", None),
            ("", None),
        ] {
            let path = dir.path().join("pw");
            std::fs::write(&path, content).unwrap();
            let got = from_file(&path, "--password-file");
            match expected {
                Some(e) => assert_eq!(got.unwrap().as_str(), e, "{content:?}"),
                None => assert!(
                    got.unwrap_err().to_string().contains("empty"),
                    "{content:?}"
                ),
            }
        }
    }
}
