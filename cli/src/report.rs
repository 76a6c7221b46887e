//! Printing results: text for people, `--json` for scripts (one JSON
//! document on stdout), errors on stderr either way. Everything for stdout
//! goes through [`stdout`], so a stdout that cannot be written ends the
//! command cleanly (see [`finish`]) instead of panicking as `print!` does.

use std::io::{ErrorKind, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

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
            let json = serde_json::to_string_pretty(value).expect("results serialize");
            stdout(&format!("{json}\n"));
        } else {
            let mut text = text();
            if !text.ends_with('\n') {
                text.push('\n');
            }
            stdout(&text);
        }
    }

    /// Whether progress and narration may go to stderr.
    pub(crate) fn chatty(&self) -> bool {
        !self.json
    }
}

/// The first error writing stdout, until [`finish`] takes it.
static STDOUT_ERROR: Mutex<Option<std::io::Error>> = Mutex::new(None);
/// Set once stdout failed: it is not written again.
static STDOUT_DEAD: AtomicBool = AtomicBool::new(false);

/// Writes `text` on stdout. A failure is kept for [`finish`] (the command
/// goes on: its files are written all the same) and later writes are dropped.
pub(crate) fn stdout(text: &str) {
    if STDOUT_DEAD.load(Ordering::SeqCst) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        STDOUT_DEAD.store(true, Ordering::SeqCst);
        let mut kept = STDOUT_ERROR.lock().unwrap_or_else(|e| e.into_inner());
        kept.get_or_insert(e);
    }
}

/// How stdout fared, once the command is done: `Ok` also when the reader
/// went away (a broken pipe, `jitr ... | head -1`), which is no error of
/// jitr's; any other write error is one.
pub(crate) fn finish() -> Result<(), CliError> {
    stdout("");
    let failed = STDOUT_ERROR
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    match failed {
        Some(e) if e.kind() != ErrorKind::BrokenPipe => {
            Err(CliError::write(Path::new("standard output"), e))
        }
        _ => Ok(()),
    }
}

/// Ends a command line clap did not run: usage errors as clap reports them
/// (stderr, exit 2); help and version on stdout as clap prints them
/// (colored or plain), but a stdout that cannot take them is an error as
/// for any command (exit 1, one sentence), a reader gone is none.
pub(crate) fn clap_exit(e: &clap::Error) -> ExitCode {
    if e.use_stderr() {
        // Nothing more can be said if stderr fails too.
        let _ = e.print();
        return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
    }
    let written = e.print().and_then(|()| std::io::stdout().flush());
    match written {
        Err(failed) if failed.kind() != ErrorKind::BrokenPipe => {
            let err = CliError::write(Path::new("standard output"), failed);
            error(&err, false);
            ExitCode::from(err.exit_code())
        }
        _ => ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(0)),
    }
}

/// The last resort for output that does not go through [`stdout`] (stderr's
/// `eprint!`, a stray `print!`): the panic their failure raises ends jitr
/// with one sentence and exit 1 instead of a crash report and 101; a reader
/// gone (broken pipe) ends it silently with 141, as SIGPIPE would.
pub(crate) fn catch_print_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info.payload_as_str().unwrap_or_default();
        let Some(what) = message.strip_prefix("failed printing to ") else {
            return default(info);
        };
        if what.contains("Broken pipe") {
            std::process::exit(141);
        }
        // stderr may be what failed: then nothing can be said.
        let _ = writeln!(std::io::stderr(), "jitr: error: cannot write {what}");
        std::process::exit(1);
    }));
}

/// Prints an error: one sentence on stderr (and a JSON object on stdout with --json).
pub(crate) fn error(err: &CliError, json: bool) {
    if json && !matches!(err, CliError::ChecksFailed(_) | CliError::NotConnected(_)) {
        stdout(&format!(
            "{}\n",
            serde_json::json!({ "error": err.to_string() })
        ));
    }
    eprintln!("jitr: error: {err}");
}

/// One provisioning outcome as `jitr provision` and `jitr reconcile` print it.
pub(crate) fn provisioned(o: &jitr_core::outcome::Outcome) -> String {
    format!(
        "  {:<14} {}  {}{}\n",
        o.outcome.name(),
        o.certificate_id,
        o.thing.as_deref().unwrap_or("-"),
        o.reason
            .as_ref()
            .map(|r| format!("  ({r})"))
            .unwrap_or_default()
    )
}

/// An enum of a command's outcomes, each reported by one name: in text
/// (`Display`, padding honoured) and as a JSON string. Commands compare the
/// variants, never the names.
macro_rules! outcomes {
    ($(#[$meta:meta])* $vis:vis enum $name:ident {
        $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)?
    }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        $vis enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// The outcome's name, as reported.
            $vis fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.name())
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(self.name())
            }
        }
    };
}
pub(crate) use outcomes;

#[cfg(test)]
mod tests {
    outcomes! {
        /// Two outcomes, one named with a space.
        enum Tried {
            Done => "done",
            AlreadyDone => "already done",
        }
    }

    #[test]
    fn outcomes_are_reported_by_their_names_in_text_and_json() {
        assert_eq!(format!("[{:<14}]", Tried::AlreadyDone), "[already done  ]");
        assert_eq!(Tried::Done.to_string(), "done");
        let json = serde_json::to_string(&[Tried::Done, Tried::AlreadyDone]).unwrap();
        assert_eq!(json, r#"["done","already done"]"#);
        assert_ne!(Tried::Done, Tried::AlreadyDone);
    }
}
