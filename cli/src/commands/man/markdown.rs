//! What the book (docs/) needs from the command definition, so it never
//! drifts from the flags: `jitr man --markdown DIR` writes one Markdown page
//! per command (docs/src/reference/cli/). (The hidden `jitr parse-args --
//! ARGS...`, which the drift test feeds every `jitr ...` line of the docs,
//! is in `crate::args`.)

use std::path::{Path, PathBuf};

use crate::error::CliError;
use crate::files::{ensure_dir, write_all, NewFile};
use crate::report::Output;

/// The width help text is wrapped at in the pages, whatever the terminal.
const WIDTH: usize = 100;

/// Writes `jitr.md` and `jitr-<sub>-<sub>.md` for every visible command into
/// the directory; pages of commands that no longer exist are removed.
/// `cli` is the command definition (`jitr`'s, from clap).
pub(super) fn write(dir: &Path, cli: clap::Command, out: &Output) -> Result<(), CliError> {
    let pages = pages(cli, dir);
    ensure_dir(dir, 0o755)?;
    write_all(&pages, true)?;
    let paths: Vec<&PathBuf> = pages.iter().map(|p| &p.path).collect();
    remove_stale(dir, &paths)?;
    let report = serde_json::json!({ "dir": dir, "pages": paths });
    out.result(&report, || {
        format!(
            "wrote {} Markdown pages into {}\n",
            paths.len(),
            dir.display()
        )
    });
    Ok(())
}

fn pages(cli: clap::Command, dir: &Path) -> Vec<NewFile> {
    let mut cmd = cli.disable_help_subcommand(true).term_width(WIDTH);
    cmd.build();
    let mut pages = Vec::new();
    collect(&cmd, &mut vec!["jitr".to_string()], dir, &mut pages);
    pages
}

fn collect(cmd: &clap::Command, path: &mut Vec<String>, dir: &Path, pages: &mut Vec<NewFile>) {
    pages.push(NewFile::public(
        dir.join(format!("{}.md", path.join("-"))),
        page(cmd, &path.join(" ")),
    ));
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        path.push(sub.get_name().to_string());
        collect(sub, path, dir, pages);
        path.pop();
    }
}

/// One page: clap's long help (without the examples) as text,
/// the examples as a shell block, and links to the subcommands' pages.
fn page(cmd: &clap::Command, title: &str) -> String {
    let mut md = format!(
        "# {title}\n\n<!-- Generated from the command definition by `jitr man --markdown`: \
         do not edit; `make docs` rewrites it. -->\n\n"
    );
    let help = cmd
        .clone()
        .after_help(None::<&str>)
        .after_long_help(None::<&str>)
        .render_long_help()
        .to_string();
    let help: Vec<&str> = help.trim_end().lines().map(str::trim_end).collect();
    md.push_str(&format!("```text\n{}\n```\n", help.join("\n")));
    if let Some(after) = cmd.get_after_help() {
        md.push_str(&examples(&after.to_string()));
    }
    let subs: Vec<&clap::Command> = cmd.get_subcommands().filter(|s| !s.is_hide_set()).collect();
    if !subs.is_empty() {
        md.push_str("\n## Subcommands\n\n");
        let file = title.replace(' ', "-");
        for sub in subs {
            let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
            md.push_str(&format!(
                "- [{title} {name}]({file}-{name}.md): {about}\n",
                name = sub.get_name()
            ));
        }
    }
    md
}

/// The after-help text: indented `jitr ...` lines as one shell block (the
/// drift test parses them), anything else as prose.
fn examples(after: &str) -> String {
    let mut md = String::new();
    let mut in_block = false;
    for line in after.lines() {
        let trimmed = line.trim();
        if trimmed == "Examples:" {
            md.push_str("\n## Examples\n\n");
            continue;
        }
        let command = line.starts_with(' ') && !trimmed.is_empty();
        if command != in_block {
            md.push_str(if command { "```sh\n" } else { "```\n" });
            in_block = command;
        }
        if command {
            md.push_str(&format!("{trimmed}\n"));
        } else if !trimmed.is_empty() {
            md.push_str(&format!("\n{trimmed}\n"));
        }
    }
    if in_block {
        md.push_str("```\n");
    }
    md
}

/// Removes `jitr*.md` pages in `dir` that this run did not write.
fn remove_stale(dir: &Path, written: &[&PathBuf]) -> Result<(), CliError> {
    let entries = std::fs::read_dir(dir).map_err(|e| CliError::read(dir, e))?;
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("jitr") && name.ends_with(".md") && !written.contains(&&path) {
            std::fs::remove_file(&path).map_err(|e| CliError::write(&path, e))?;
        }
    }
    Ok(())
}
