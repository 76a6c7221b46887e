//! The `jitr` command line: its top level in `args`, one file per command
//! in `commands` (a directory per group), flag groups several commands share
//! in `flags`; below them the domain: offline PKI in [`pki`], device
//! issuance in [`issue`], AWS calls in `cloud`, a certificate's life in
//! `lifecycle`, doctor's checks in `doctor`. Crate-private but for [`main`]
//! and the parsers the fuzz targets drive.

pub(crate) mod args;
pub(crate) mod cloud;
pub(crate) mod commands;
pub(crate) mod doctor;
pub(crate) mod error;
pub(crate) mod files;
pub(crate) mod flags;
pub mod issue;
pub(crate) mod lifecycle;
pub(crate) mod lint;
pub(crate) mod mqtt;
pub mod pki;
pub(crate) mod report;

use std::process::ExitCode;

use args::{Cli, Command};
use clap::{CommandFactory, Parser};
pub use error::CliError;

/// The `jitr` binary: parses argv, runs the command, reports an error and
/// turns it into the exit code. A stdout that cannot be written is an error
/// only when the command itself succeeded, and never when its reader went
/// away (`report::finish`).
pub fn main() -> ExitCode {
    report::catch_print_panics();
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if argv.get(1).is_some_and(|a| a == "parse-args") {
        // Not a clap subcommand, so completions and help never offer it.
        return args::parse_args(&argv[2..]);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return report::clap_exit(&e),
    };
    let json = cli.global.json;
    match run(cli).and_then(|()| report::finish()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            report::error(&err, json);
            ExitCode::from(err.exit_code())
        }
    }
}

/// Runs one parsed command line; printing is done here, exit codes by the
/// caller. The global flags become what the commands take: the AWS options
/// and where the result goes.
fn run(cli: Cli) -> Result<(), CliError> {
    let out = report::Output {
        json: cli.global.json,
    };
    let aws = cli.global.aws();
    match cli.command {
        Command::Ca(c) => commands::ca::run(c, &aws, &out),
        Command::Device(c) => commands::device::run(c, &aws, &out),
        Command::Fleet(c) => commands::fleet::run(c, &aws, &out),
        Command::Check(a) => commands::check::run(&a, &out),
        Command::Endpoint => commands::endpoint::run(&aws, &out),
        Command::Connect(a) => commands::connect::run(&a, &aws, &out),
        Command::Provision(a) => commands::provision::run(&a, &aws, &out),
        Command::Reconcile(a) => commands::reconcile::run(&a, &aws, &out),
        Command::Doctor(a) => commands::doctor::run(&a, &aws, &out),
        Command::Completions(a) => commands::completions::run(&a, Cli::command()),
        Command::Man(a) => commands::man::run(&a, Cli::command(), &out),
    }
}
