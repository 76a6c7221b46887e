//! `jitr completions` and `jitr man`: the shell and manual integration, both
//! generated from the clap definition so they never drift from the flags.

use std::path::PathBuf;

use clap::CommandFactory;

use crate::args::{Cli, CompletionsArgs, ManArgs};
use crate::error::CliError;
use crate::files::{ensure_dir, write_all, NewFile};
use crate::report::Output;

/// Prints the completion script for one shell on stdout.
pub(crate) fn completions(args: &CompletionsArgs) -> Result<(), CliError> {
    let mut cmd = without_hidden_args(Cli::command());
    // Into memory first: clap_complete panics when its writer fails.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "jitr", &mut script);
    crate::report::stdout(&String::from_utf8_lossy(&script));
    Ok(())
}

/// `cmd` and its subcommands without their hidden arguments: clap_complete
/// offers hidden flags (it leaves out only hidden subcommands and values),
/// and a hidden flag (`jitr man --markdown`, for the book) is not for the
/// user to type. clap cannot remove an argument, so the tree is rebuilt from
/// the built command (its help and version flags and help subcommand
/// already in it): names, help texts, visible arguments and subcommands,
/// which is all a completion script reads.
fn without_hidden_args(mut cmd: clap::Command) -> clap::Command {
    cmd.build();
    // Names are &'static in clap's builder; the one tree of this short-lived
    // process lends them.
    rebuilt(Box::leak(Box::new(cmd)))
}

fn rebuilt(cmd: &'static clap::Command) -> clap::Command {
    let mut out = clap::Command::new(cmd.get_name())
        .visible_aliases(cmd.get_visible_aliases().collect::<Vec<_>>())
        .hide(cmd.is_hide_set())
        .disable_help_flag(true)
        .disable_version_flag(true)
        .disable_help_subcommand(true);
    if let Some(about) = cmd.get_about() {
        out = out.about(about.clone());
    }
    if let Some(about) = cmd.get_long_about() {
        out = out.long_about(about.clone());
    }
    if let Some(version) = cmd.get_version() {
        out = out.version(version);
    }
    for arg in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
        out = out.arg(arg.clone().global(false));
    }
    for sub in cmd.get_subcommands() {
        out = out.subcommand(rebuilt(sub));
    }
    out
}

/// Writes jitr.1 and one page per subcommand (jitr-ca-create.1, ...) into
/// the directory, all or none; pages from an earlier run are replaced.
pub(crate) fn man(args: &ManArgs, out: &Output) -> Result<(), CliError> {
    let pages = pages(&args.dir).map_err(|e| CliError::invalid("man pages", e))?;
    ensure_dir(&args.dir, 0o755)?;
    write_all(&pages, true)?;
    let paths: Vec<&PathBuf> = pages.iter().map(|p| &p.path).collect();
    let report = serde_json::json!({ "dir": args.dir, "pages": paths });
    out.result(&report, || {
        format!(
            "wrote {} man pages into {}\n",
            paths.len(),
            args.dir.display()
        )
    });
    Ok(())
}

/// Every page, rendered in memory: the tree of subcommands, named
/// `jitr-<sub>-<sub>.1` as man(1) expects for `man jitr-ca-create`.
fn pages(dir: &std::path::Path) -> std::io::Result<Vec<NewFile>> {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut pages = Vec::new();
    collect(cmd, dir, &mut pages)?;
    Ok(pages)
}

fn collect(
    cmd: clap::Command,
    dir: &std::path::Path,
    pages: &mut Vec<NewFile>,
) -> std::io::Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned() {
        collect(sub, dir, pages)?;
    }
    let man = clap_mangen::Man::new(cmd);
    let mut roff = Vec::new();
    man.render(&mut roff)?;
    pages.push(NewFile::public(dir.join(man.get_filename()), roff));
    Ok(())
}
