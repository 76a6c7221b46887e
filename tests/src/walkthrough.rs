//! The book's walkthrough, as the sandbox test runs it: the one shell block
//! of docs/src/guide/try-without-aws.md after the marker line
//! [`MARKER`]. Its lines are the README's user path as written, so running
//! them against `make sandbox` tests what a new user follows.

use std::path::PathBuf;

/// The HTML comment (invisible in the rendered book) that marks the block.
pub const MARKER: &str = "<!-- walkthrough: tests/tests/sandbox.rs runs this block as written -->";

/// The page that holds the walkthrough.
pub fn page() -> PathBuf {
    crate::lambda::workspace().join("docs/src/guide/try-without-aws.md")
}

/// The walkthrough's command lines, in order, from the page in the workspace.
pub fn walkthrough() -> Vec<String> {
    let path = page();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    command_lines(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The command lines of the fenced block that follows [`MARKER`] in `page`:
/// a line ending in `\` joined with the next, blank lines and `#` comment
/// lines left out. Errors say what is missing: the marker (or a second one),
/// the fence after it, or its end.
pub fn command_lines(page: &str) -> Result<Vec<String>, String> {
    let mut lines = page.lines();
    if page.lines().filter(|l| l.trim() == MARKER).count() != 1 {
        return Err(format!("expected exactly one line `{MARKER}`"));
    }
    lines.by_ref().find(|l| l.trim() == MARKER);
    match lines.by_ref().find(|l| !l.trim().is_empty()) {
        Some(fence) if is_shell_fence(fence) => {}
        other => {
            return Err(format!(
                "the line after the marker should open a ```sh block, not {other:?}"
            ))
        }
    }
    let mut commands = Vec::new();
    let mut logical = String::new();
    for line in lines {
        if line.trim_start().starts_with("```") {
            if !logical.is_empty() {
                return Err(format!("the block ends inside a continued line: {logical}"));
            }
            return Ok(commands);
        }
        match line.strip_suffix('\\') {
            Some(head) => logical.push_str(head),
            None => {
                logical.push_str(line);
                let command = logical.trim();
                if !command.is_empty() && !command.starts_with('#') {
                    commands.push(command.to_string());
                }
                logical.clear();
            }
        }
    }
    Err("the walkthrough's block is not closed".to_string())
}

fn is_shell_fence(line: &str) -> bool {
    line.trim()
        .strip_prefix("```")
        .is_some_and(|info| matches!(info.trim(), "sh" | "bash" | "shell"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marked_block_is_read_line_by_line() {
        let page = format!(
            "intro\n```sh\njitr not-this\n```\n{MARKER}\n\n```sh\n# a comment\njitr a \\\n  --b c\n\njitr d\n```\n```sh\njitr after\n```\n"
        );
        assert_eq!(
            command_lines(&page).unwrap(),
            vec!["jitr a   --b c".to_string(), "jitr d".to_string()]
        );
    }

    #[test]
    fn a_missing_or_doubled_marker_or_an_unclosed_block_is_an_error() {
        assert!(command_lines("```sh\njitr a\n```\n")
            .unwrap_err()
            .contains("exactly one"));
        let twice = format!("{MARKER}\n```sh\njitr a\n```\n{MARKER}\n```sh\n```\n");
        assert!(command_lines(&twice).unwrap_err().contains("exactly one"));
        let prose = format!("{MARKER}\ntext\n```sh\njitr a\n```\n");
        assert!(command_lines(&prose).unwrap_err().contains("```sh"));
        let open = format!("{MARKER}\n```sh\njitr a\n");
        assert!(command_lines(&open).unwrap_err().contains("not closed"));
    }
}
