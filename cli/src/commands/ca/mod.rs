//! `jitr ca`: a CA's life, one file per subcommand. Offline: `create`,
//! `import`, `verification-cert`, `crl`; in AWS IoT (each safe to run
//! twice): `register`, `list`, `show`, `activate`/`deactivate`,
//! `auto-registration`, `deregister`.

use clap::Subcommand;
use jitr_core::aws::AwsOptions;

use crate::error::CliError;
use crate::flags::CaTarget;
use crate::report::Output;

mod activate;
mod auto_registration;
mod create;
mod crl;
mod deregister;
mod import;
mod list;
mod register;
mod show;
mod verification_cert;

#[derive(Debug, Subcommand)]
pub(crate) enum CaCommand {
    /// Create a root CA, or with --issuer an intermediate CA.
    #[command(after_help = "Examples:
  jitr ca create root --subject \"CN=Acme Root CA,O=Acme,C=DE\" --encrypt
  jitr ca create int --issuer root --key ec-p384 --path-len 0")]
    Create(create::Args),
    /// Adopt an existing CA certificate and key (a vendor's).
    #[command(after_help = "Examples:
  jitr ca import vendor-ca --cert vendor.crt --key vendor.key
  jitr ca import int --cert int.crt --key int.key --chain root.crt --encrypt")]
    Import(import::Args),
    /// Make the proof-of-possession certificate for a registration code.
    #[command(after_help = "Examples:
  jitr ca verification-cert my-ca --code \"$(aws iot get-registration-code --query registrationCode --output text)\" --out verify.crt")]
    VerificationCert(verification_cert::Args),
    /// Register the CA with AWS IoT: ACTIVE, auto-registration enabled (JITR).
    #[command(after_help = "Examples:
  jitr ca register my-ca --region eu-west-1
  jitr ca register my-ca --mode sni-only --inactive")]
    Register(register::Args),
    /// List the CA certificates registered in the account.
    #[command(after_help = "Examples:
  jitr ca list --region eu-west-1
  jitr ca list --json")]
    List,
    /// Show a registered CA (by directory or certificate id).
    #[command(after_help = "Examples:
  jitr ca show my-ca
  jitr ca show 3f1c...e9 --json")]
    Show(CaTarget),
    /// Set a registered CA ACTIVE.
    #[command(after_help = "Examples:
  jitr ca activate my-ca")]
    Activate(CaTarget),
    /// Set a registered CA INACTIVE (devices already registered keep working).
    #[command(after_help = "Examples:
  jitr ca deactivate my-ca")]
    Deactivate(CaTarget),
    /// Turn JITR auto-registration on or off for a registered CA.
    #[command(after_help = "Examples:
  jitr ca auto-registration enable my-ca
  jitr ca auto-registration disable 3f1c...e9")]
    AutoRegistration(auto_registration::Args),
    /// Write a CRL signed by the CA, listing the certificates `jitr device revoke` revoked.
    #[command(after_help = "Examples:
  jitr ca crl my-ca
  jitr ca crl my-ca --out /srv/pki/my-ca.crl.pem --days 7 --force")]
    Crl(crl::Args),
    /// Deactivate and delete a registered CA (device certificates are unaffected).
    #[command(after_help = "Examples:
  jitr ca deregister my-ca")]
    Deregister(CaTarget),
}

/// Runs one `jitr ca` subcommand.
pub(crate) fn run(command: CaCommand, aws: &AwsOptions, out: &Output) -> Result<(), CliError> {
    match command {
        CaCommand::Create(a) => create::run(&a, aws, out),
        CaCommand::Import(a) => import::run(&a, aws, out),
        CaCommand::VerificationCert(a) => verification_cert::run(&a, aws, out),
        CaCommand::Register(a) => register::run(&a, aws, out),
        CaCommand::List => list::run(aws, out),
        CaCommand::Show(t) => show::run(&t, aws, out),
        CaCommand::Activate(t) => activate::run(&t, true, aws, out),
        CaCommand::Deactivate(t) => activate::run(&t, false, aws, out),
        CaCommand::AutoRegistration(a) => auto_registration::run(&a, aws, out),
        CaCommand::Crl(a) => crl::run(&a, aws, out),
        CaCommand::Deregister(t) => deregister::run(&t, aws, out),
    }
}
