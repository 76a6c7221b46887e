//! `jitr man DIR`: the manual, generated from the clap definition so it
//! never drifts from the flags: roff pages for man(1), or with the hidden
//! `--markdown` the book's reference pages (`markdown.rs`).

use std::path::PathBuf;

use crate::error::CliError;
use crate::files::{ensure_dir, write_all, NewFile};
use crate::report::Output;

mod markdown;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Directory to write the pages into (created if missing).
    #[arg(value_name = "DIR")]
    pub(crate) dir: PathBuf,
    /// Markdown pages for the book (docs/src/reference/cli) instead of roff.
    #[arg(long, hide = true)]
    pub(crate) markdown: bool,
}

/// `jitr man DIR`; `cli` is the command definition (`jitr`'s, from clap).
pub(crate) fn run(args: &Args, cli: clap::Command, out: &Output) -> Result<(), CliError> {
    if args.markdown {
        markdown::write(&args.dir, cli, out)
    } else {
        roff(args, cli, out)
    }
}

/// Writes jitr.1 and one page per subcommand (jitr-ca-create.1, ...) into
/// the directory, all or none; pages from an earlier run are replaced.
fn roff(args: &Args, cli: clap::Command, out: &Output) -> Result<(), CliError> {
    let pages = pages(cli, &args.dir).map_err(|e| CliError::invalid("man pages", e))?;
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
fn pages(cli: clap::Command, dir: &std::path::Path) -> std::io::Result<Vec<NewFile>> {
    let mut cmd = cli.disable_help_subcommand(true);
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
