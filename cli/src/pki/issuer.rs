//! The `--issuer` of a new intermediate CA: loaded with its own secrets
//! (`--issuer-*-file`, else those of `--password-file` and `--pin-file` it
//! needs), valid now and allowed to sign another CA; and the secret files
//! neither the new CA's key nor its issuer would read, refused.

use std::path::{Path, PathBuf};

use crate::error::CliError;
use crate::pki::ca_dir::CaDir;
use crate::pki::ca_files::KEY_FILE;
use crate::pki::store::{Needs, NewKeySpec, Unlock};

/// The issuer's own secret files (`--issuer-password-file`, `--issuer-pin-file`).
#[derive(Debug, Clone, Default)]
pub(crate) struct IssuerSecrets {
    pub(crate) password_file: Option<PathBuf>,
    pub(crate) pin_file: Option<PathBuf>,
}

/// The `--issuer` CA in `dir`, loaded with its own secrets (`own`, else
/// those of `unlock` it `needs`), valid now and allowed to sign another CA.
pub(crate) fn load(
    dir: &Path,
    own: &IssuerSecrets,
    unlock: &Unlock,
    needs: Needs,
) -> Result<CaDir, CliError> {
    let fallback = |given: &Option<PathBuf>, needed: bool| given.clone().filter(|_| needed);
    let issuer_unlock = Unlock {
        password_file: own
            .password_file
            .clone()
            .or(fallback(&unlock.password_file, needs.password)),
        pin_file: own
            .pin_file
            .clone()
            .or(fallback(&unlock.pin_file, needs.pin)),
        aws: unlock.aws.clone(),
        issuer: true,
    };
    let given = issuer_unlock.password_file.as_deref();
    let flag = if own.password_file.is_some() {
        "--issuer-password-file"
    } else {
        "--password-file"
    };
    if needs.password {
        ask_note(dir, given);
    }
    let parent = CaDir::load(dir, "--issuer", &issuer_unlock)
        .map_err(|e| issuer_error(e, dir, needs.password, given.map(|p| (flag, p))))?;
    parent.check_valid_now("--issuer")?;
    if parent.facts.basic_constraints.and_then(|bc| bc.path_len) == Some(0) {
        return Err(CliError::invalid(
            format!("--issuer {}", parent.dir.display()),
            "the issuer has pathLenConstraint 0 and may not sign another CA",
        ));
    }
    Ok(parent)
}

/// Before a prompt for the issuer's passphrase on a terminal: whose key it unlocks.
fn ask_note(issuer: &Path, file: Option<&Path>) {
    use std::io::IsTerminal;
    let from_env = std::env::var_os(crate::pki::secret::PASSWORD_ENV).is_some();
    if file.is_none() && !from_env && std::io::stdin().is_terminal() {
        eprintln!(
            "jitr: the --issuer's key {} is encrypted: type its passphrase (or give it with --issuer-password-file FILE)",
            issuer.join(KEY_FILE).display()
        );
    }
}

/// An issuer that could not be loaded, named with its key and (when its
/// key is encrypted) where the passphrase came from or can be given.
fn issuer_error(
    e: CliError,
    issuer: &Path,
    encrypted: bool,
    file: Option<(&str, &Path)>,
) -> CliError {
    if !encrypted {
        return e;
    }
    let key = issuer.join(KEY_FILE);
    let source = match file {
        Some((flag, path)) => format!("the passphrase was read from {flag} {}", path.display()),
        None => {
            "give its passphrase with --issuer-password-file FILE (or JITR_CA_PASSWORD)".to_string()
        }
    };
    CliError::invalid(
        format!(
            "--issuer {} (its encrypted key {})",
            issuer.display(),
            key.display()
        ),
        format!("{e}; {source}"),
    )
}

/// Refuses `--password-file` or `--pin-file` that neither the new key nor
/// the issuer (`issuer_reads`) would read: a secret the user gave is never
/// ignored (`--password-file` without `--encrypt` would leave ca.key plain).
/// `issuer_needs` is what the issuer needs at all: when it reads its secret
/// from `--issuer-*-file` instead, the message says so.
pub(crate) fn refuse_unread_secrets(
    spec: &NewKeySpec,
    unlock: &Unlock,
    issuer_reads: Needs,
    issuer_needs: Needs,
) -> Result<(), CliError> {
    let password = matches!(spec, NewKeySpec::File { encrypt: true }) || issuer_reads.password;
    let pin = matches!(spec, NewKeySpec::Pkcs11 { .. }) || issuer_reads.pin;
    if unlock.password_file.is_some() && !password {
        let issuer = if issuer_needs.password {
            "the issuer's passphrase comes from --issuer-password-file"
        } else {
            "no issuer's key needs a passphrase"
        };
        let why = match spec {
            NewKeySpec::File { .. } => format!(
                "the new ca.key is written unencrypted without --encrypt, and {issuer}; add --encrypt to encrypt it with this passphrase"
            ),
            _ => format!(
                "the new key is not kept in a file, and {issuer}, so it would be ignored (leave the flag out)"
            ),
        };
        return Err(CliError::invalid("--password-file", why));
    }
    if unlock.pin_file.is_some() && !pin {
        let why = if issuer_needs.pin {
            "the new key is not on a PKCS#11 token, and the issuer's PIN comes from --issuer-pin-file, so this PIN would be ignored (leave the flag out)"
        } else {
            "neither the new key nor its issuer's is on a PKCS#11 token, so the PIN would be ignored (leave the flag out)"
        };
        return Err(CliError::invalid("--pin-file", why));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_files_nothing_reads_are_refused() {
        let with = |password: bool, pin: bool| Unlock {
            password_file: password.then(|| "pw".into()),
            pin_file: pin.then(|| "pin".into()),
            ..Unlock::default()
        };
        let plain = NewKeySpec::File { encrypt: false };
        let sealed = NewKeySpec::File { encrypt: true };
        let token = NewKeySpec::Pkcs11 {
            module: "m.so".into(),
            token: "t".into(),
            label: "l".into(),
            adopt: false,
        };
        let none = Needs::default();
        let issuer_password = Needs {
            password: true,
            pin: false,
        };
        // (new key, secrets given, what the issuer reads, refused flag)
        let cases = [
            (&plain, with(true, false), none, Some("--password-file")),
            (&plain, with(true, false), issuer_password, None),
            (&sealed, with(true, false), none, None),
            (&sealed, with(false, true), none, Some("--pin-file")),
            (&token, with(false, true), none, None),
            (&token, with(true, true), none, Some("--password-file")),
            (&plain, with(false, false), none, None),
        ];
        for (spec, unlock, issuer, refused) in cases {
            let got = refuse_unread_secrets(spec, &unlock, issuer, issuer);
            match refused {
                None => assert!(got.is_ok(), "{spec:?} {unlock:?}: {got:?}"),
                Some(flag) => {
                    let err = got.unwrap_err().to_string();
                    assert!(err.starts_with(&format!("{flag}: ")), "{err}");
                }
            }
        }
    }

    #[test]
    fn a_passphrase_for_a_plain_key_under_an_issuer_with_its_own_file_says_so() {
        let unlock = Unlock {
            password_file: Some("pw".into()),
            ..Unlock::default()
        };
        // The issuer needs a passphrase, but --issuer-password-file gives it.
        let issuer_needs = Needs {
            password: true,
            pin: false,
        };
        let plain = NewKeySpec::File { encrypt: false };
        let err = refuse_unread_secrets(&plain, &unlock, Needs::default(), issuer_needs)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("--password-file: ")
                && err.contains("--issuer-password-file")
                && !err.contains("no issuer's key needs a passphrase"),
            "{err}"
        );
        let err = refuse_unread_secrets(&plain, &unlock, Needs::default(), Needs::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("no issuer's key needs a passphrase"), "{err}");
    }
}
