//! `jitr device`: a device certificate's life, one file per subcommand:
//! `issue` (offline), `register` (without JITR), `rotate`, `revoke`,
//! `allow`/`disallow` (a stack's allow-list).

use clap::Subcommand;
use jitr_core::aws::AwsOptions;

use crate::error::CliError;
use crate::report::Output;

mod allow;
mod issue;
mod register;
mod revoke;
mod rotate;

#[derive(Debug, Subcommand)]
pub(crate) enum DeviceCommand {
    /// Issue device certificates: one, a numbered run, a list, or from a CSR.
    #[command(after_help = "Examples:
  jitr device issue --ca my-ca --out devices --count 1000 --name-template 'robot-{n:05}'
  jitr device issue --ca my-ca --out devices --csr robot-7.csr --name robot-7")]
    Issue(Box<issue::Args>),
    /// Register device certificates with AWS IoT directly (the path without JITR).
    #[command(after_help = "Examples:
  jitr device register devices/*/device.crt --ca my-ca --activate
  jitr device register robot-1.crt --without-ca")]
    Register(register::Args),
    /// Give devices a successor certificate (same subject, new key or a CSR's);
    /// the predecessor moves to NAME/previous/.
    #[command(after_help = "Examples:
  jitr device rotate --ca my-ca --out devices --name robot-1
  jitr device rotate --ca my-ca --out devices --all --days 365
  jitr device rotate --ca my-ca --out devices --name robot-7 --csr robot-7.csr")]
    Rotate(Box<rotate::Args>),
    /// Revoke device certificates in AWS IoT: REVOKED, policies and things
    /// detached; recorded for `jitr ca crl`.
    #[command(after_help = "Examples:
  jitr device revoke robot-1 --ca my-ca --out devices
  jitr device revoke devices/robot-2/device.crt 3f1c...e9 --ca my-ca --delete-thing
  jitr device revoke devices/robot-1/previous/device.crt --ca my-ca

A NAME means the device's current certificate (OUTDIR/NAME/device.crt); revoke a rotated
predecessor by its file in OUTDIR/NAME/previous/ (as in the last example) or its id.")]
    Revoke(revoke::Args),
    /// Put certificates on a stack's allow-list (Admission=allow-list admits only those).
    #[command(after_help = "Examples:
  jitr device allow devices --stack jitr
  jitr device allow devices/manifest.csv robot-9.crt --stack jitr")]
    Allow(allow::Args),
    /// Take certificates off a stack's allow-list.
    #[command(after_help = "Examples:
  jitr device disallow devices/robot-1/device.crt --stack jitr")]
    Disallow(allow::Args),
}

/// Runs one `jitr device` subcommand.
pub(crate) fn run(command: DeviceCommand, aws: &AwsOptions, out: &Output) -> Result<(), CliError> {
    match command {
        DeviceCommand::Issue(a) => issue::run(&a, aws, out),
        DeviceCommand::Register(a) => register::run(&a, aws, out),
        DeviceCommand::Rotate(a) => rotate::run(&a, aws, out),
        DeviceCommand::Revoke(a) => revoke::run(&a, aws, out),
        DeviceCommand::Allow(a) => allow::allow(&a, aws, out),
        DeviceCommand::Disallow(a) => allow::disallow(&a, aws, out),
    }
}
