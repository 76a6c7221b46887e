//! The command line's top level, as clap types: the `jitr` command, its
//! global flags and its subcommands. Each subcommand's arguments are in its
//! file under `commands/` (with its conversion to what the domain takes and
//! its `run`); flag groups several of them share are in [`crate::flags`].
//! Flag names are the interface: keep them stable.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::commands;

/// The version `--version` prints: the crate version and the git commit it was built from.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("JITR_GIT_COMMIT"),
    ")"
);

/// jitr: AWS IoT Just-in-Time Registration done right.
#[derive(Debug, Parser)]
#[command(
    name = "jitr",
    version = VERSION,
    about,
    long_about = None,
    propagate_version = true,
    after_help = "Examples:
  jitr ca create my-ca --subject \"CN=Acme Devices CA,O=Acme\"
  jitr ca register my-ca --region eu-west-1
  jitr device issue --ca my-ca --out devices --count 100 --name-template 'robot-{n:04}'
  jitr connect devices/robot-0001 --region eu-west-1

Shell completions: jitr completions bash|zsh|fish|powershell; man pages: jitr man DIR"
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub(crate) struct Global {
    /// Print machine-readable JSON on stdout instead of text.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// AWS profile from ~/.aws/config (default: AWS_PROFILE or "default").
    #[arg(long, global = true, value_name = "NAME")]
    pub(crate) profile: Option<String>,
    /// AWS region (default: AWS_REGION or the profile's region).
    #[arg(long, global = true)]
    pub(crate) region: Option<String>,
    /// AWS API endpoint override: every AWS service jitr calls (IoT control plane, KMS,
    /// CloudFormation, Lambda, SQS, IAM, CloudWatch Logs, STS) goes to this URL, e.g. an
    /// emulator's (default: AWS_ENDPOINT_URL). Not the MQTT endpoint devices connect to
    /// (that is --endpoint).
    #[arg(long, global = true, value_name = "URL")]
    pub(crate) endpoint_url: Option<String>,
}

impl Global {
    /// The AWS options these flags select.
    pub(crate) fn aws(&self) -> jitr_core::aws::AwsOptions {
        jitr_core::aws::AwsOptions {
            profile: self.profile.clone(),
            region: self.region.clone(),
            endpoint_url: self.endpoint_url.clone(),
        }
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create, import and use certificate authorities.
    #[command(subcommand)]
    #[command(after_help = "Examples:
  jitr ca create my-ca --subject \"CN=Acme Devices CA,O=Acme\"
  jitr ca register my-ca --region eu-west-1")]
    Ca(commands::ca::CaCommand),
    /// Issue device certificates offline.
    #[command(subcommand)]
    #[command(after_help = "Examples:
  jitr device issue --ca my-ca --out devices --name robot-1
  jitr device register devices/robot-1/device.crt --ca my-ca --activate")]
    Device(commands::device::DeviceCommand),
    /// Lint certificates against what AWS IoT and TLS peers require.
    #[command(after_help = "Examples:
  jitr check my-ca/ca.crt
  jitr check devices/robot-1 --ca my-ca")]
    Check(commands::check::Args),
    /// Print the account's AWS IoT data endpoint (iot:Data-ATS).
    #[command(after_help = "Examples:
  jitr endpoint --region eu-west-1
  jitr endpoint --json --profile prod")]
    Endpoint,
    /// Connect as a device (MQTT over TLS with its certificate) and publish one message,
    /// retrying while the certificate is still being provisioned.
    #[command(after_help = "Examples:
  jitr connect devices/robot-0001 --region eu-west-1
  jitr connect --cert device-and-ca.crt --key device.key --endpoint 127.0.0.1:8883 --ca-file broker-ca.crt")]
    Connect(commands::connect::Args),
    /// Provision and activate one auto-registered certificate, as the Lambda does.
    #[command(after_help = "Examples:
  jitr provision 3f1c...e9 --policy JitrDevicePolicy
  JITR_POLICY_NAME=JitrDevicePolicy jitr provision 3f1c...e9 --json")]
    Provision(commands::provision::Args),
    /// Provision every PENDING_ACTIVATION certificate of a CA (events were lost).
    #[command(after_help = "Examples:
  jitr reconcile --ca my-ca --policy JitrDevicePolicy --dry-run
  jitr reconcile --ca my-ca --policy JitrDevicePolicy --rate 5")]
    Reconcile(commands::reconcile::Args),
    /// Say why a device did not register: its files, its CA and certificate in
    /// AWS IoT, the deployed stack and the endpoint, one PASS/WARN/FAIL line each.
    #[command(after_help = "Examples:
  jitr doctor devices/robot-0001 --ca issuing-ca --stack jitr
  jitr doctor --cert device-and-ca.crt --key device.key --json")]
    Doctor(commands::doctor::Args),
    /// A CA's device certificates in AWS IoT: what needs rotating or reconciling.
    #[command(subcommand)]
    #[command(after_help = "Examples:
  jitr fleet status --ca my-ca --expiring-within 60
  jitr fleet status --ca 3f1c...e9 --json")]
    Fleet(commands::fleet::FleetCommand),
    /// Print a shell completion script on stdout.
    #[command(after_help = "Examples:
  jitr completions bash > ~/.local/share/bash-completion/completions/jitr
  jitr completions zsh > \"${fpath[1]}/_jitr\"
  jitr completions fish > ~/.config/fish/completions/jitr.fish")]
    Completions(commands::completions::Args),
    /// Write man pages, jitr.1 and one per subcommand (jitr-ca-create.1, ...), into DIR.
    #[command(after_help = "Examples:
  jitr man ~/.local/share/man/man1 && man jitr-device-issue
  sudo jitr man /usr/local/share/man/man1")]
    Man(commands::man::Args),
}

/// `jitr parse-args -- ARGS...` (read before clap, see `crate::main`): parses
/// ARGS as `jitr ARGS...` would and runs nothing: exit 0 when clap
/// accepts it (`--help` included), else a line `parse-args: <clap's ErrorKind>`
/// (what the drift test tells a mention from a mistake by), clap's error and exit 2.
/// Not a clap subcommand, so completions and help never offer it.
pub(crate) fn parse_args(args: &[OsString]) -> ExitCode {
    let args = match args.split_first() {
        Some((first, rest)) if first == "--" => rest,
        _ => args,
    };
    let argv = std::iter::once(OsString::from("jitr")).chain(args.iter().cloned());
    match Cli::try_parse_from(argv) {
        Ok(cli) => match settings_problem(&cli.command, |name| std::env::var(name).ok()) {
            None => ExitCode::SUCCESS,
            Some(problem) => {
                eprintln!("parse-args: Settings");
                eprintln!("jitr: error: {problem}");
                ExitCode::from(2)
            }
        },
        Err(e) if !e.use_stderr() => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("parse-args: {:?}", e.kind());
            let _ = e.print();
            ExitCode::from(2)
        }
    }
}

/// What `jitr provision` and `jitr reconcile` would refuse before any I/O:
/// the function's settings (JITR_* through `get`, `--policy` on top) that
/// jitr-core's `Config` rejects, named as those commands name them (the same
/// conversion, [`crate::flags::ProvisioningSettings::config`]). Other
/// commands check their flags against files or AWS, which parse-args does
/// not reach.
fn settings_problem(command: &Command, get: impl Fn(&str) -> Option<String>) -> Option<String> {
    let settings = match command {
        Command::Provision(a) => &a.settings,
        Command::Reconcile(a) => &a.settings,
        _ => return None,
    };
    settings.config(get).err().map(|e| e.to_string())
}

#[cfg(test)]
mod settings_tests {
    use super::*;

    fn problem(line: &str, env: &[(&str, &str)]) -> Option<String> {
        let cli = Cli::try_parse_from(line.split_whitespace()).unwrap();
        settings_problem(&cli.command, |name| {
            env.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn reconcile_and_provision_without_a_policy_are_refused_as_they_would_be_run() {
        let no_policy = problem("jitr reconcile --ca issuing --dry-run", &[]).unwrap();
        assert!(
            no_policy.starts_with("--policy / JITR_POLICY_NAME: is required"),
            "{no_policy}"
        );
        assert_eq!(problem("jitr reconcile --ca i --policy P", &[]), None);
        assert_eq!(
            problem("jitr provision abc", &[("JITR_POLICY_NAME", "P")]),
            None
        );
        let bad = problem("jitr provision abc --policy P", &[("JITR_API_RATES", "x")]).unwrap();
        assert!(bad.starts_with("JITR_API_RATES"), "{bad}");
        assert_eq!(problem("jitr ca list", &[]), None);
    }
}
