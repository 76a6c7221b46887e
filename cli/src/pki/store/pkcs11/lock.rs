//! Making a key on a token is "is the label free? then generate": two runs
//! at once would both find it free. An exclusive `flock` per module and
//! token, on a file in the temp directory, makes that one step for runs on
//! this host.

use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::error::TokenError;

/// Held while a key is made; released when dropped.
pub(super) struct Creation {
    _file: Option<File>,
}

/// How long a run waits for another's key creation on the same token.
pub(super) const WAIT: Duration = Duration::from_secs(120);

impl Creation {
    /// Waits up to `limit` for the lock of `module` and `token`; `Err` names
    /// the lock file still held then. Where no lock file can be had (a
    /// read-only temp directory) creation goes on unlocked: the check after
    /// generating still keeps two runs from sharing a label.
    pub(super) fn within(
        module: &Path,
        token: &str,
        limit: Duration,
    ) -> Result<Creation, TokenError> {
        let path = lock_path(module, token);
        let open = |write: bool| {
            OpenOptions::new()
                .read(true)
                .write(write)
                .create(write)
                .mode(0o644)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&path)
        };
        let Ok(file) = open(true).or_else(|_| open(false)) else {
            return Ok(Creation { _file: None });
        };
        let deadline = Instant::now() + limit;
        loop {
            // The same `flock` as the directory locks (`files::DirLock`).
            match file.try_lock() {
                Ok(()) => return Ok(Creation { _file: Some(file) }),
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Error(_)) => return Ok(Creation { _file: None }),
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(TokenError::Busy {
                    token: token.to_string(),
                    lock: path.display().to_string(),
                    waited: format!("{} s", limit.as_secs_f64()),
                });
            }
            std::thread::sleep(POLL.min(deadline - now));
        }
    }
}

/// How often a waiting run tries the lock again.
const POLL: Duration = Duration::from_millis(50);

/// `jitr-pkcs11-<hash of module path and token label>.lock` in the temp directory.
fn lock_path(module: &Path, token: &str) -> PathBuf {
    let module = std::fs::canonicalize(module).unwrap_or_else(|_| module.to_path_buf());
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    ctx.update(module.as_os_str().as_encoded_bytes());
    ctx.update(&[0]);
    ctx.update(token.as_bytes());
    let hash = hex::encode(&ctx.finish().as_ref()[..8]);
    std::env::temp_dir().join(format!("jitr-pkcs11-{hash}.lock"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_lock_per_module_and_token() {
        let a = lock_path(Path::new("/m.so"), "t");
        assert_eq!(a, lock_path(Path::new("/m.so"), "t"));
        assert_ne!(a, lock_path(Path::new("/m.so"), "u"));
        assert_ne!(a, lock_path(Path::new("/n.so"), "t"));
        // Held locks exclude each other across open files, as across processes.
        let module = Path::new("/nonexistent/jitr-lock-test.so");
        let held = Creation::within(module, "lock-test", WAIT).unwrap();
        assert!(held._file.is_some());
        let other = File::open(lock_path(module, "lock-test")).unwrap();
        assert!(
            matches!(other.try_lock(), Err(TryLockError::WouldBlock)),
            "taken while held"
        );
        drop(held);
        assert!(other.try_lock().is_ok(), "free once dropped");
    }

    #[test]
    fn a_lock_held_too_long_is_an_error_naming_the_lock_file() {
        let module = Path::new("/nonexistent/jitr-lock-wait-test.so");
        let held = Creation::within(module, "wait-test", Duration::from_secs(5)).unwrap();
        let started = std::time::Instant::now();
        let Err(err) = Creation::within(module, "wait-test", Duration::from_millis(300)) else {
            panic!("acquired while held");
        };
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(300) && waited < Duration::from_secs(3),
            "{waited:?}"
        );
        let err = err.to_string();
        let path = lock_path(module, "wait-test");
        assert!(
            err.contains(&path.display().to_string()) && err.contains("0.3 s"),
            "{err}"
        );
        drop(held);
        assert!(Creation::within(module, "wait-test", Duration::from_millis(300)).is_ok());
    }
}
