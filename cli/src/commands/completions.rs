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
    let mut cmd = Cli::command();
    // Into memory first: clap_complete panics when its writer fails.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "jitr", &mut script);
    crate::report::stdout(&String::from_utf8_lossy(&script));
    Ok(())
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
