//! The `jitr` command line: argument types in [`args`], one module per
//! command group in [`commands`], offline PKI in [`pki`].

pub mod args;
pub mod commands;
pub mod error;
pub mod files;
pub mod issue;
pub mod lint;
pub mod pki;
pub mod report;

use args::{CaCommand, Cli, Command, DeviceCommand};
pub use error::CliError;

/// Runs one parsed command line; printing is done here, exit codes by the caller.
pub fn run(cli: Cli) -> Result<(), CliError> {
    let out = report::Output {
        json: cli.global.json,
    };
    match cli.command {
        Command::Ca(CaCommand::Create(a)) => commands::ca::create(&a, &out),
        Command::Ca(CaCommand::Import(a)) => commands::ca::import(&a, &out),
        Command::Ca(CaCommand::VerificationCert(a)) => commands::ca::verification_cert(&a, &out),
        Command::Device(DeviceCommand::Issue(a)) => commands::device::issue(&a, &out),
        Command::Check(a) => commands::check::check(&a, &out),
    }
}
