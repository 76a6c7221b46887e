//! What the book (docs/) needs from the command definition, so it never
//! drifts from the flags: `jitr man --markdown DIR` writes one Markdown page
//! per command (docs/src/reference/cli/), and the hidden `jitr parse-args --
//! ARGS...` parses a command line without running it (the drift test feeds
//! it every `jitr ...` line of the docs).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use crate::args::{Cli, Command, ManArgs};
use crate::error::CliError;
use crate::files::{ensure_dir, write_all, NewFile};
use crate::report::Output;

/// The width help text is wrapped at in the pages, whatever the terminal.
const WIDTH: usize = 100;

/// Writes `jitr.md` and `jitr-<sub>-<sub>.md` for every visible command into
/// the directory; pages of commands that no longer exist are removed.
pub(crate) fn markdown(args: &ManArgs, out: &Output) -> Result<(), CliError> {
    let pages = pages(&args.dir);
    ensure_dir(&args.dir, 0o755)?;
    write_all(&pages, true)?;
    let paths: Vec<&PathBuf> = pages.iter().map(|p| &p.path).collect();
    remove_stale(&args.dir, &paths)?;
    let report = serde_json::json!({ "dir": args.dir, "pages": paths });
    out.result(&report, || {
        format!(
            "wrote {} Markdown pages into {}\n",
            paths.len(),
            args.dir.display()
        )
    });
    Ok(())
}

/// `jitr parse-args -- ARGS...` (read before clap, see `crate::main`): parses
/// ARGS as `jitr ARGS...` would and runs nothing: exit 0 when clap
/// accepts it (`--help` included), else a line `parse-args: <clap's ErrorKind>`
/// (what the drift test tells a mention from a mistake by), clap's error and exit 2.
pub(crate) fn parse_args(args: &[OsString]) -> ExitCode {
    let args = match args.split_first() {
        Some((first, rest)) if first == "--" => rest,
        _ => args,
    };
    let argv = std::iter::once(OsString::from("jitr")).chain(args.iter().cloned());
    match Cli::try_parse_from(argv) {
        Ok(cli) => match settings_problem(&cli.command, |name| std::env::var(name).ok()) {
            None => ExitCode::SUCCESS,
            Some(problem) => {
                eprintln!("parse-args: Settings");
                eprintln!("jitr: error: {problem}");
                ExitCode::from(2)
            }
        },
        Err(e) if !e.use_stderr() => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("parse-args: {:?}", e.kind());
            let _ = e.print();
            ExitCode::from(2)
        }
    }
}

/// What `jitr provision` and `jitr reconcile` would refuse before any I/O:
/// the function's settings (JITR_* through `get`, `--policy` on top) that
/// jitr-core's `Config` rejects, named as those commands name them. Other
/// commands check their flags against files or AWS, which parse-args does
/// not reach.
fn settings_problem(command: &Command, get: impl Fn(&str) -> Option<String>) -> Option<String> {
    let settings = match command {
        Command::Provision(a) => &a.settings,
        Command::Reconcile(a) => &a.settings,
        _ => return None,
    };
    let policy = settings.policy.clone();
    let config = jitr_core::config::Config::from_lookup(|name| match (name, &policy) {
        ("JITR_POLICY_NAME", Some(p)) => Some(p.clone()),
        _ => get(name),
    });
    config.err().map(|e| {
        let variable = if e.variable == "JITR_POLICY_NAME" {
            "--policy / JITR_POLICY_NAME"
        } else {
            e.variable
        };
        format!("{variable}: {}", e.problem)
    })
}

fn pages(dir: &Path) -> Vec<NewFile> {
    let mut cmd = Cli::command()
        .disable_help_subcommand(true)
        .term_width(WIDTH);
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

#[cfg(test)]
mod settings_tests {
    use super::*;

    fn problem(line: &str, env: &[(&str, &str)]) -> Option<String> {
        let cli = Cli::try_parse_from(line.split_whitespace()).unwrap();
        settings_problem(&cli.command, |name| {
            env.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn reconcile_and_provision_without_a_policy_are_refused_as_they_would_be_run() {
        let no_policy = problem("jitr reconcile --ca issuing --dry-run", &[]).unwrap();
        assert!(
            no_policy.starts_with("--policy / JITR_POLICY_NAME: is required"),
            "{no_policy}"
        );
        assert_eq!(problem("jitr reconcile --ca i --policy P", &[]), None);
        assert_eq!(
            problem("jitr provision abc", &[("JITR_POLICY_NAME", "P")]),
            None
        );
        let bad = problem("jitr provision abc --policy P", &[("JITR_API_RATES", "x")]).unwrap();
        assert!(bad.starts_with("JITR_API_RATES"), "{bad}");
        assert_eq!(problem("jitr ca list", &[]), None);
    }
}
