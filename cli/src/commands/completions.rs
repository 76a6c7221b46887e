//! `jitr completions`: the shell integration, generated from the clap
//! definition so it never drifts from the flags.

use crate::error::CliError;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub(crate) shell: clap_complete::Shell,
}

/// Prints the completion script for one shell on stdout.
/// `cli` is the command definition (`jitr`'s, from clap).
pub(crate) fn run(args: &Args, cli: clap::Command) -> Result<(), CliError> {
    let mut cmd = without_hidden_args(cli);
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
