//! Flag groups several commands flatten into their arguments, each with its
//! one conversion to what the domain takes. Below the commands and beside
//! [`crate::args`] (the top level), so a command's file never imports the
//! command line that names it.

use std::path::PathBuf;

use clap::Args;
use jitr_core::aws::AwsOptions;
use jitr_core::config::Config;

use crate::error::CliError;
use crate::pki::store::Unlock;

/// Where the secrets of a CA's key store come from (never from an argument).
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct UnlockArgs {
    /// Regular file whose first line, as `openssl -passin file:` reads it, is the
    /// passphrase of an encrypted CA key (default: JITR_CA_PASSWORD, else a prompt
    /// on a terminal). Refused where no key would read it.
    #[arg(long, value_name = "FILE")]
    pub(crate) password_file: Option<PathBuf>,
    /// File whose first line is the PKCS#11 user PIN
    /// (default: JITR_PKCS11_PIN, else a prompt on a terminal).
    #[arg(long, value_name = "FILE")]
    pub(crate) pin_file: Option<PathBuf>,
}

impl UnlockArgs {
    /// The secret sources, and the AWS options KMS is reached with.
    pub(crate) fn unlock(&self, aws: &AwsOptions) -> Unlock {
        Unlock {
            password_file: self.password_file.clone(),
            pin_file: self.pin_file.clone(),
            aws: aws.clone(),
            issuer: false,
        }
    }
}

/// A registered CA: a CA directory, or a certificate id (64 hex digits).
#[derive(Debug, Args)]
pub(crate) struct CaTarget {
    /// CA directory or certificate id.
    #[arg(value_name = "DIR|ID")]
    pub(crate) target: String,
}

/// The Lambda's settings, from JITR_* environment variables; flags override.
#[derive(Debug, Args)]
pub(crate) struct ProvisioningSettings {
    /// The device policy to attach (default: JITR_POLICY_NAME).
    #[arg(long, value_name = "NAME")]
    pub(crate) policy: Option<String>,
}

impl ProvisioningSettings {
    /// The Lambda's configuration: the JITR_* variables `get` reads, with
    /// `--policy` on top, refused as the function would refuse it. With
    /// JITR_DEVICE_GROUP (the stack's DeviceGroupName) things join that
    /// group, as the function does; without it the certificate gets the policy.
    pub(crate) fn config(&self, get: impl Fn(&str) -> Option<String>) -> Result<Config, CliError> {
        let policy = self.policy.clone();
        Config::from_lookup(|name| match (name, &policy) {
            ("JITR_POLICY_NAME", Some(p)) => Some(p.clone()),
            _ => get(name),
        })
        .map_err(|e| {
            CliError::invalid(
                if e.variable == "JITR_POLICY_NAME" {
                    "--policy / JITR_POLICY_NAME"
                } else {
                    e.variable
                },
                e.problem,
            )
        })
    }
}
