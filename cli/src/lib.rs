//! The `jitr` command line: argument types in [`args`], one module per
//! command group in [`commands`], offline PKI in [`pki`].

pub mod args;
pub mod cloud;
pub mod commands;
pub mod doctor;
pub mod error;
pub mod files;
pub mod issue;
pub mod lifecycle;
pub mod lint;
pub mod mqtt;
pub mod pki;
pub mod report;

use args::{CaCommand, Cli, Command, DeviceCommand, FleetCommand};
pub use error::CliError;

/// Runs one parsed command line; printing is done here, exit codes by the caller.
pub fn run(cli: Cli) -> Result<(), CliError> {
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
        Command::Fleet(FleetCommand::Status(a)) => commands::fleet::status(&a, g, &out),
        Command::Check(a) => commands::check::check(&a, &out),
        Command::Endpoint => commands::endpoint::endpoint(g, &out),
        Command::Connect(a) => commands::connect::connect(&a, g, &out),
        Command::Provision(a) => commands::provision::provision(&a, g, &out),
        Command::Reconcile(a) => commands::provision::reconcile(&a, g, &out),
        Command::Doctor(a) => commands::doctor::doctor(&a, g, &out),
        Command::Completions(a) => commands::completions::completions(&a),
        Command::Man(a) => commands::completions::man(&a, &out),
    }
}
