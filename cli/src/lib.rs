//! The `jitr` command line: argument types in `args`, one module per
//! command group in `commands`, offline PKI in [`pki`]. Crate-private but
//! for [`main`] and the parsers the fuzz targets drive.

pub(crate) mod args;
pub(crate) mod cloud;
pub(crate) mod commands;
pub(crate) mod doctor;
pub(crate) mod error;
pub(crate) mod files;
pub mod issue;
pub(crate) mod lifecycle;
pub(crate) mod lint;
pub(crate) mod mqtt;
pub mod pki;
pub(crate) mod report;

use std::process::ExitCode;

use args::{CaCommand, Cli, Command, DeviceCommand, FleetCommand};
use clap::Parser;
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
        return commands::book::parse_args(&argv[2..]);
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

/// Runs one parsed command line; printing is done here, exit codes by the caller.
fn run(cli: Cli) -> Result<(), CliError> {
    let out = report::Output {
        json: cli.global.json,
    };
    let g = &cli.global;
    match cli.command {
        Command::Ca(CaCommand::Create(a)) => commands::ca::create(&a, g, &out),
        Command::Ca(CaCommand::Import(a)) => commands::ca::import(&a, g, &out),
        Command::Ca(CaCommand::VerificationCert(a)) => commands::ca::verification_cert(&a, g, &out),
        Command::Ca(CaCommand::Register(a)) => commands::ca_aws::register(&a, g, &out),
        Command::Ca(CaCommand::List) => commands::ca_aws::list(g, &out),
        Command::Ca(CaCommand::Show(t)) => commands::ca_aws::show(&t, g, &out),
        Command::Ca(CaCommand::Activate(t)) => commands::ca_aws::set_status(&t, true, g, &out),
        Command::Ca(CaCommand::Deactivate(t)) => commands::ca_aws::set_status(&t, false, g, &out),
        Command::Ca(CaCommand::AutoRegistration(a)) => {
            commands::ca_aws::auto_registration(&a, g, &out)
        }
        Command::Ca(CaCommand::Crl(a)) => commands::crl::crl(&a, g, &out),
        Command::Ca(CaCommand::Deregister(t)) => commands::ca_aws::deregister(&t, g, &out),
        Command::Device(DeviceCommand::Issue(a)) => commands::device::issue(&a, g, &out),
        Command::Device(DeviceCommand::Register(a)) => {
            commands::device_register::register(&a, g, &out)
        }
        Command::Device(DeviceCommand::Rotate(a)) => commands::rotate::rotate(&a, g, &out),
        Command::Device(DeviceCommand::Revoke(a)) => commands::revoke::revoke(&a, g, &out),
        Command::Device(DeviceCommand::Allow(a)) => commands::allow::allow(&a, g, &out),
        Command::Device(DeviceCommand::Disallow(a)) => commands::allow::disallow(&a, g, &out),
        Command::Fleet(FleetCommand::Status(a)) => commands::fleet::status(&a, g, &out),
        Command::Check(a) => commands::check::check(&a, &out),
        Command::Endpoint => commands::endpoint::endpoint(g, &out),
        Command::Connect(a) => commands::connect::connect(&a, g, &out),
        Command::Provision(a) => commands::provision::provision(&a, g, &out),
        Command::Reconcile(a) => commands::provision::reconcile(&a, g, &out),
        Command::Doctor(a) => commands::doctor::doctor(&a, g, &out),
        Command::Completions(a) => commands::completions::completions(&a),
        Command::Man(a) if a.markdown => commands::book::markdown(&a, &out),
        Command::Man(a) => commands::completions::man(&a, &out),
    }
}
