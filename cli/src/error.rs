//! The CLI's errors: each names the file or flag at fault and what was expected.

use std::path::{Path, PathBuf};

/// Everything a `jitr` command can fail with.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} already exists; pass --force to replace it", path.display())]
    Exists { path: PathBuf },
    /// Bad input: `what` is the file or flag, `problem` what was wrong with it.
    #[error("{what}: {problem}")]
    Invalid { what: String, problem: String },
    /// A key could not be generated (the algorithm's implementation failed).
    #[error("key generation failed: {0}")]
    KeyGeneration(String),
    /// The CA key (or the new key) could not sign `what`; `reason` says why,
    /// in the key store's terms.
    #[error("signing {what} failed: {reason}")]
    Signing { what: String, reason: String },
    /// The process could not start what a command runs on (threads, the async runtime).
    #[error("cannot start {what}: {source}")]
    Startup {
        what: &'static str,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// `jitr check` found rule failures (already reported line by line).
    #[error("{0} check(s) failed")]
    ChecksFailed(usize),
    #[error("interrupted")]
    Interrupted,
    /// An AWS call failed; `action` says which, in the user's terms.
    #[error("{action}: {source}")]
    Aws {
        action: String,
        source: jitr_core::aws::AwsError,
    },
    /// `jitr connect` gave up (its attempts already reported).
    #[error("{0}")]
    NotConnected(String),
    /// AWS accepted a change but does not show it done (read back afterwards).
    #[error("{0}")]
    Unconfirmed(String),
    /// Some items of a batch failed (already reported one by one).
    #[error("{0}")]
    Partial(String),
}

impl CliError {
    pub(crate) fn read(path: &Path, source: std::io::Error) -> Self {
        CliError::Read {
            path: path.to_path_buf(),
            source,
        }
    }
    pub(crate) fn write(path: &Path, source: std::io::Error) -> Self {
        CliError::Write {
            path: path.to_path_buf(),
            source,
        }
    }
    pub(crate) fn invalid(what: impl std::fmt::Display, problem: impl std::fmt::Display) -> Self {
        CliError::Invalid {
            what: what.to_string(),
            problem: problem.to_string(),
        }
    }
    pub(crate) fn startup(
        what: &'static str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        CliError::Startup {
            what,
            source: source.into(),
        }
    }
    pub(crate) fn signing(what: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        CliError::Signing {
            what: what.into(),
            reason: reason.to_string(),
        }
    }
    pub(crate) fn aws(action: impl Into<String>, source: jitr_core::aws::AwsError) -> Self {
        CliError::Aws {
            action: action.into(),
            source,
        }
    }
    /// The process exit code for this error.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            CliError::Interrupted => 130,
            _ => 1,
        }
    }
}
