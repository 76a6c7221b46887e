//! Printing results: text for people, `--json` for scripts (one JSON
//! document on stdout), errors on stderr either way.

use serde::Serialize;

use crate::error::CliError;

/// Where a command's result goes.
pub(crate) struct Output {
    pub(crate) json: bool,
}

impl Output {
    /// Prints the result: `value` as JSON with --json, else `text()`.
    pub(crate) fn result<T: Serialize>(&self, value: &T, text: impl FnOnce() -> String) {
        if self.json {
            println!(
                "{}",
                serde_json::to_string_pretty(value).expect("results serialize")
            );
        } else {
            let text = text();
            print!("{text}");
            if !text.ends_with('\n') {
                println!();
            }
        }
    }

    /// Whether progress and narration may go to stderr.
    pub(crate) fn chatty(&self) -> bool {
        !self.json
    }
}

/// Prints an error: one sentence on stderr (and a JSON object on stdout with --json).
pub(crate) fn error(err: &CliError, json: bool) {
    if json && !matches!(err, CliError::ChecksFailed(_) | CliError::NotConnected(_)) {
        println!("{}", serde_json::json!({ "error": err.to_string() }));
    }
    eprintln!("jitr: error: {err}");
}
