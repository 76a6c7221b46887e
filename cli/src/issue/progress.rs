//! The progress bar of runs over many items (issuing, rotating, revoking,
//! describing, reconciling): on stderr, only when stderr is a terminal and
//! the command prints text (never with --json), and only for two items or
//! more. Cleared when done, so the terminal keeps only the result.

use std::io::IsTerminal;

/// A bar over `len` items labelled `verb`; hidden unless `enabled` and stderr is a terminal.
pub(crate) fn bar(enabled: bool, len: usize, verb: &str) -> indicatif::ProgressBar {
    if !enabled || len < 2 || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{{spinner}} {verb} [{{bar:40}}] {{pos}}/{{len}} {{per_sec}} eta {{eta}}"
        ))
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_bar_when_disabled_or_for_one_item() {
        assert!(bar(false, 100, "revoking").is_hidden());
        assert!(bar(true, 1, "revoking").is_hidden());
    }
}
