//! The command line, as clap types. Flag names are the interface: keep them stable.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::issue::layout::Layout;
use crate::pki::keys::KeyAlg;
use crate::pki::store::{StoreKind, Unlock};

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
    Ca(CaCommand),
    /// Issue device certificates offline.
    #[command(subcommand)]
    #[command(after_help = "Examples:
  jitr device issue --ca my-ca --out devices --name robot-1
  jitr device register devices/robot-1/device.crt --ca my-ca --activate")]
    Device(DeviceCommand),
    /// Lint certificates against what AWS IoT and TLS peers require.
    #[command(after_help = "Examples:
  jitr check my-ca/ca.crt
  jitr check devices/robot-1 --ca my-ca")]
    Check(CheckArgs),
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
    Connect(ConnectArgs),
    /// Provision and activate one auto-registered certificate, as the Lambda does.
    #[command(after_help = "Examples:
  jitr provision 3f1c...e9 --policy JitrDevicePolicy
  JITR_POLICY_NAME=JitrDevicePolicy jitr provision 3f1c...e9 --json")]
    Provision(ProvisionArgs),
    /// Provision every PENDING_ACTIVATION certificate of a CA (events were lost).
    #[command(after_help = "Examples:
  jitr reconcile --ca my-ca --policy JitrDevicePolicy --dry-run
  jitr reconcile --ca my-ca --policy JitrDevicePolicy --rate 5")]
    Reconcile(ReconcileArgs),
    /// Say why a device did not register: its files, its CA and certificate in
    /// AWS IoT, the deployed stack and the endpoint, one PASS/WARN/FAIL line each.
    #[command(after_help = "Examples:
  jitr doctor devices/robot-0001 --ca issuing-ca --stack jitr
  jitr doctor --cert device-and-ca.crt --key device.key --json")]
    Doctor(DoctorArgs),
    /// A CA's device certificates in AWS IoT: what needs rotating or reconciling.
    #[command(subcommand)]
    #[command(after_help = "Examples:
  jitr fleet status --ca my-ca --expiring-within 60
  jitr fleet status --ca 3f1c...e9 --json")]
    Fleet(FleetCommand),
    /// Print a shell completion script on stdout.
    #[command(after_help = "Examples:
  jitr completions bash > ~/.local/share/bash-completion/completions/jitr
  jitr completions zsh > \"${fpath[1]}/_jitr\"
  jitr completions fish > ~/.config/fish/completions/jitr.fish")]
    Completions(CompletionsArgs),
    /// Write man pages, jitr.1 and one per subcommand (jitr-ca-create.1, ...), into DIR.
    #[command(after_help = "Examples:
  jitr man ~/.local/share/man/man1 && man jitr-device-issue
  sudo jitr man /usr/local/share/man/man1")]
    Man(ManArgs),
}

#[derive(Debug, Args)]
pub(crate) struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub(crate) shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub(crate) struct ManArgs {
    /// Directory to write the pages into (created if missing).
    #[arg(value_name = "DIR")]
    pub(crate) dir: PathBuf,
    /// Markdown pages for the book (docs/src/reference/cli) instead of roff.
    #[arg(long, hide = true)]
    pub(crate) markdown: bool,
}

#[derive(Debug, Args)]
pub(crate) struct DoctorArgs {
    /// A device directory from `jitr device issue` (its bundle and key, any layout).
    #[arg(value_name = "DEVICE_DIR", conflicts_with = "cert")]
    pub(crate) device: Option<PathBuf>,
    /// The device's certificate bundle (the certificate followed by its CA chain).
    #[arg(long, value_name = "FILE")]
    pub(crate) cert: Option<PathBuf>,
    /// The device's private key (checked against the certificate).
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub(crate) key: Option<PathBuf>,
    /// The CA that issued the device (default: the bundle's second certificate,
    /// else the registered CA that signed it).
    #[arg(long, value_name = "DIR|ID")]
    pub(crate) ca: Option<String>,
    /// The CloudFormation stack of infra/ (its function is STACK-jitr; default:
    /// found from the topic rule on the registration topic).
    #[arg(long, value_name = "NAME")]
    pub(crate) stack: Option<String>,
    /// The broker, HOST or HOST:PORT (default: the account's iot:Data-ATS endpoint, port 8883).
    #[arg(long, value_name = "HOST[:PORT]", env = "JITR_ENDPOINT")]
    pub(crate) endpoint: Option<String>,
    /// PEM file of the CA(s) that verify the broker (default: Amazon Root CA 1 to 4).
    #[arg(long, value_name = "FILE", env = "JITR_BROKER_CA_FILE")]
    pub(crate) ca_file: Option<PathBuf>,
    /// A certificate PENDING_ACTIVATION longer than this is stranded (FAIL).
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub(crate) stranded_after: u64,
    /// How far back the function's log is read for its health: 90s, 30m, 1h, 2d.
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = crate::doctor::function::since_seconds)]
    pub(crate) since: u64,
}

#[derive(Debug, Args)]
pub(crate) struct ConnectArgs {
    /// A device directory from `jitr device issue` (its bundle and key, any layout).
    #[arg(value_name = "DEVICE_DIR", required_unless_present_any = ["cert", "key"])]
    pub(crate) device: Option<PathBuf>,
    /// The certificate to present: the device certificate followed by its CA chain.
    #[arg(long, value_name = "FILE")]
    pub(crate) cert: Option<PathBuf>,
    /// The device's private key.
    #[arg(long, value_name = "FILE")]
    pub(crate) key: Option<PathBuf>,
    /// The MQTT broker devices connect to (the data endpoint), HOST or HOST:PORT (default:
    /// the account's iot:Data-ATS endpoint, as `jitr endpoint` prints it; port 8883 unless
    /// it carries one). Not the AWS API endpoint (that is --endpoint-url).
    #[arg(long, value_name = "HOST[:PORT]", env = "JITR_ENDPOINT")]
    pub(crate) endpoint: Option<String>,
    /// PEM file of the CA(s) that verify the broker (default: Amazon Root CA 1 to 4).
    #[arg(long, value_name = "FILE", env = "JITR_BROKER_CA_FILE")]
    pub(crate) ca_file: Option<PathBuf>,
    /// MQTT client id (default: the thing name the deployment gives the
    /// certificate, see --thing-name-source; the device policy wants them equal).
    #[arg(long, value_name = "ID", value_parser = client_id)]
    pub(crate) client_id: Option<String>,
    /// Where the deployment takes thing names from (its ThingNameSource;
    /// default: the --stack function's JITR_THING_NAME_SOURCE, else common-name).
    #[arg(long, value_name = "SOURCE")]
    pub(crate) thing_name_source: Option<ThingNameSource>,
    /// The CloudFormation stack of infra/, to read its ThingNameSource from.
    #[arg(long, value_name = "NAME")]
    pub(crate) stack: Option<String>,
    /// Topic to publish on, no wildcards (default: things/<client id>/hello).
    #[arg(long, value_parser = topic_name)]
    pub(crate) topic: Option<String>,
    /// The message to publish (QoS 1; AWS IoT takes up to 128 KiB).
    #[arg(long, default_value = "hello from jitr connect")]
    pub(crate) message: String,
    /// Publish this file's bytes instead of --message.
    #[arg(long, value_name = "FILE", conflicts_with = "message")]
    pub(crate) message_file: Option<PathBuf>,
    /// Seconds to keep retrying before giving up.
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0, value_parser = positive_seconds)]
    pub(crate) timeout: f64,
}

/// The thing-name sources of the function's JITR_THING_NAME_SOURCE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ThingNameSource {
    CommonName,
    SerialNumber,
    CertificateId,
}

impl From<ThingNameSource> for jitr_core::naming::NameTemplate {
    fn from(s: ThingNameSource) -> Self {
        let alias = match s {
            ThingNameSource::CommonName => "common-name",
            ThingNameSource::SerialNumber => "serial-number",
            ThingNameSource::CertificateId => "certificate-id",
        };
        Self::parse(alias).expect("the aliases are templates")
    }
}

/// An MQTT client id: not empty (AWS IoT has no use for one).
fn client_id(text: &str) -> Result<String, String> {
    if text.is_empty() {
        return Err("the client id is empty".into());
    }
    Ok(text.to_string())
}

/// A topic one can publish to: not empty, no `+` or `#` (those make a
/// filter, for subscribing), no NUL, at most 65535 bytes (MQTT's rules).
pub(crate) fn topic_name(text: &str) -> Result<String, String> {
    let problem = if text.is_empty() {
        "the topic is empty"
    } else if text.contains(['+', '#']) {
        "a topic to publish to has no wildcards (+ and # are for subscribing)"
    } else if text.contains('\0') {
        "the topic contains a NUL character"
    } else if text.len() > 65_535 {
        "the topic is longer than MQTT's 65535 bytes"
    } else {
        return Ok(text.to_string());
    };
    Err(problem.into())
}

fn positive_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if s > 0.0 && s <= 86_400.0 => Ok(s),
        _ => Err(format!(
            "expected seconds between 0 and 86400, got \"{text}\""
        )),
    }
}

/// The Lambda's settings, from JITR_* environment variables; flags override.
#[derive(Debug, Args)]
pub(crate) struct ProvisioningSettings {
    /// The device policy to attach (default: JITR_POLICY_NAME).
    #[arg(long, value_name = "NAME")]
    pub(crate) policy: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ProvisionArgs {
    /// The certificate id (64 hex digits).
    pub(crate) certificate_id: String,
    #[command(flatten)]
    pub(crate) settings: ProvisioningSettings,
}

#[derive(Debug, Args)]
pub(crate) struct ReconcileArgs {
    /// The CA: a CA directory or its certificate id.
    #[arg(long, value_name = "DIR|ID")]
    pub(crate) ca: String,
    /// Show what would be done; change nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Certificates provisioned per second (UpdateCertificate allows 10/s per account).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=10))]
    pub(crate) rate: u32,
    #[command(flatten)]
    pub(crate) settings: ProvisioningSettings,
}

#[derive(Debug, Subcommand)]
pub(crate) enum CaCommand {
    /// Create a root CA, or with --issuer an intermediate CA.
    #[command(after_help = "Examples:
  jitr ca create root --subject \"CN=Acme Root CA,O=Acme,C=DE\" --encrypt
  jitr ca create int --issuer root --key ec-p384 --path-len 0")]
    Create(CaCreateArgs),
    /// Adopt an existing CA certificate and key (a vendor's).
    #[command(after_help = "Examples:
  jitr ca import vendor-ca --cert vendor.crt --key vendor.key
  jitr ca import int --cert int.crt --key int.key --chain root.crt --encrypt")]
    Import(CaImportArgs),
    /// Make the proof-of-possession certificate for a registration code.
    #[command(after_help = "Examples:
  jitr ca verification-cert my-ca --code \"$(aws iot get-registration-code --query registrationCode --output text)\" --out verify.crt")]
    VerificationCert(VerificationCertArgs),
    /// Register the CA with AWS IoT: ACTIVE, auto-registration enabled (JITR).
    #[command(after_help = "Examples:
  jitr ca register my-ca --region eu-west-1
  jitr ca register my-ca --mode sni-only --inactive")]
    Register(CaRegisterArgs),
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
    AutoRegistration(AutoRegistrationArgs),
    /// Write a CRL signed by the CA, listing the certificates `jitr device revoke` revoked.
    #[command(after_help = "Examples:
  jitr ca crl my-ca
  jitr ca crl my-ca --out /srv/pki/my-ca.crl.pem --days 7 --force")]
    Crl(CaCrlArgs),
    /// Deactivate and delete a registered CA (device certificates are unaffected).
    #[command(after_help = "Examples:
  jitr ca deregister my-ca")]
    Deregister(CaTarget),
}

/// How AWS IoT is told the CA is ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum RegisterMode {
    /// Proof of possession: a verification certificate with the registration code as CN.
    Default,
    /// No proof of possession; devices must send SNI (the CA may be in several accounts).
    SniOnly,
}

#[derive(Debug, Args)]
pub(crate) struct CaRegisterArgs {
    /// The CA directory (ca.crt, and ca.key for the verification certificate).
    pub(crate) dir: PathBuf,
    #[arg(long, value_enum, default_value_t = RegisterMode::Default)]
    pub(crate) mode: RegisterMode,
    /// Leave auto-registration (JITR) off.
    #[arg(long)]
    pub(crate) no_auto_registration: bool,
    /// Register the CA INACTIVE.
    #[arg(long)]
    pub(crate) inactive: bool,
    #[command(flatten)]
    pub(crate) unlock: UnlockArgs,
}

/// A registered CA: a CA directory, or a certificate id (64 hex digits).
#[derive(Debug, Args)]
pub(crate) struct CaTarget {
    /// CA directory or certificate id.
    #[arg(value_name = "DIR|ID")]
    pub(crate) target: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OnOff {
    Enable,
    Disable,
}

#[derive(Debug, Args)]
pub(crate) struct AutoRegistrationArgs {
    #[arg(value_enum)]
    pub(crate) state: OnOff,
    #[command(flatten)]
    pub(crate) ca: CaTarget,
}

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
    pub(crate) fn unlock(&self, global: &Global) -> Unlock {
        Unlock {
            password_file: self.password_file.clone(),
            pin_file: self.pin_file.clone(),
            aws: global.aws(),
            issuer: false,
        }
    }
}

/// Where a new CA key is kept.
#[derive(Debug, Args)]
pub(crate) struct KeyStoreArgs {
    /// Key store: file (ca.key in DIR), pkcs11 (an HSM token) or kms (AWS KMS); the
    /// last two keep only a reference, key.json, in DIR.
    #[arg(long, value_enum, default_value_t = StoreKind::File)]
    pub(crate) key_store: StoreKind,
    /// Encrypt ca.key with a passphrase (file store): PKCS#8, scrypt + AES-256-CBC.
    /// --password-file without it is refused (unless the --issuer's key reads it).
    #[arg(long)]
    pub(crate) encrypt: bool,
    /// The token's PKCS#11 module, e.g. /usr/lib/softhsm/libsofthsm2.so.
    #[arg(long, value_name = "PATH")]
    pub(crate) pkcs11_module: Option<PathBuf>,
    /// The token's label.
    #[arg(long, value_name = "LABEL")]
    pub(crate) pkcs11_token: Option<String>,
    /// The key's label on the token: an existing key is adopted, else one is generated
    /// (default: the CA's CN; a new key only).
    #[arg(long, value_name = "LABEL")]
    pub(crate) pkcs11_key_label: Option<String>,
    /// Adopt this KMS key (key id, ARN or alias/NAME; spec must match --key, usage
    /// SIGN_VERIFY); default: create one with the alias alias/jitr/<CA CN>.
    #[arg(long, value_name = "ID|ARN|ALIAS")]
    pub(crate) kms_key_id: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct CaCreateArgs {
    /// Directory to write ca.crt, chain.pem and ca.key (or key.json) into.
    pub(crate) dir: PathBuf,
    /// Key type.
    #[arg(long, value_enum, default_value_t = KeyAlg::EcP256)]
    pub(crate) key: KeyAlg,
    #[command(flatten)]
    pub(crate) store: KeyStoreArgs,
    #[command(flatten)]
    pub(crate) unlock: UnlockArgs,
    /// Passphrase file of the --issuer's encrypted key (default: --password-file's sources).
    #[arg(long, value_name = "FILE", requires = "issuer")]
    pub(crate) issuer_password_file: Option<PathBuf>,
    /// PIN file of the --issuer's token (default: --pin-file's sources).
    #[arg(long, value_name = "FILE", requires = "issuer")]
    pub(crate) issuer_pin_file: Option<PathBuf>,
    /// Subject, e.g. "CN=Acme Root CA,O=Acme,C=DE" (escape commas in values as \,).
    #[arg(long)]
    pub(crate) subject: Option<String>,
    /// Validity in days.
    #[arg(long, default_value_t = 3650, value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub(crate) days: u32,
    /// Sign with this CA directory (creates an intermediate CA).
    #[arg(long, value_name = "ROOT_DIR")]
    pub(crate) issuer: Option<PathBuf>,
    /// basicConstraints pathLenConstraint.
    #[arg(long, value_name = "N")]
    pub(crate) path_len: Option<u8>,
    /// Replace an existing CA in DIR.
    #[arg(long)]
    pub(crate) force: bool,
}

#[derive(Debug, Args)]
pub(crate) struct CaImportArgs {
    /// Directory to write ca.crt, ca.key and chain.pem into.
    pub(crate) dir: PathBuf,
    /// The CA certificate (PEM or DER); further PEM blocks are taken as its issuers.
    #[arg(long, value_name = "FILE")]
    pub(crate) cert: PathBuf,
    /// The CA private key: PKCS#8 (plain or ENCRYPTED), PKCS#1 (RSA PRIVATE KEY) or
    /// SEC1 (EC PRIVATE KEY) PEM. An encrypted key is kept encrypted as given.
    #[arg(long, value_name = "FILE")]
    pub(crate) key: PathBuf,
    /// Store ca.key encrypted with a passphrase (re-encrypts an encrypted key).
    #[arg(long)]
    pub(crate) encrypt: bool,
    #[command(flatten)]
    pub(crate) unlock: UnlockArgs,
    /// The issuers of an intermediate CA, up to the root (PEM).
    #[arg(long, value_name = "FILE")]
    pub(crate) chain: Option<PathBuf>,
    /// Replace an existing CA in DIR.
    #[arg(long)]
    pub(crate) force: bool,
}

#[derive(Debug, Args)]
pub(crate) struct VerificationCertArgs {
    /// The CA directory.
    pub(crate) dir: PathBuf,
    /// The account's registration code (aws iot get-registration-code).
    #[arg(long)]
    pub(crate) code: String,
    /// Where to write the verification certificate (PEM).
    #[arg(long, value_name = "FILE")]
    pub(crate) out: PathBuf,
    #[command(flatten)]
    pub(crate) unlock: UnlockArgs,
    /// Replace an existing FILE (never one of a CA directory's own files).
    #[arg(long)]
    pub(crate) force: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum DeviceCommand {
    /// Issue device certificates: one, a numbered run, a list, or from a CSR.
    #[command(after_help = "Examples:
  jitr device issue --ca my-ca --out devices --count 1000 --name-template 'robot-{n:05}'
  jitr device issue --ca my-ca --out devices --csr robot-7.csr --name robot-7")]
    Issue(Box<DeviceIssueArgs>),
    /// Register device certificates with AWS IoT directly (the path without JITR).
    #[command(after_help = "Examples:
  jitr device register devices/*/device.crt --ca my-ca --activate
  jitr device register robot-1.crt --without-ca")]
    Register(DeviceRegisterArgs),
    /// Give devices a successor certificate (same subject, new key or a CSR's);
    /// the predecessor moves to NAME/previous/.
    #[command(after_help = "Examples:
  jitr device rotate --ca my-ca --out devices --name robot-1
  jitr device rotate --ca my-ca --out devices --all --days 365
  jitr device rotate --ca my-ca --out devices --name robot-7 --csr robot-7.csr")]
    Rotate(Box<DeviceRotateArgs>),
    /// Revoke device certificates in AWS IoT: REVOKED, policies and things
    /// detached; recorded for `jitr ca crl`.
    #[command(after_help = "Examples:
  jitr device revoke robot-1 --ca my-ca --out devices
  jitr device revoke devices/robot-2/device.crt 3f1c...e9 --ca my-ca --delete-thing
  jitr device revoke devices/robot-1/previous/device.crt --ca my-ca

A NAME means the device's current certificate (OUTDIR/NAME/device.crt); revoke a rotated
predecessor by its file in OUTDIR/NAME/previous/ (as in the last example) or its id.")]
    Revoke(DeviceRevokeArgs),
    /// Put certificates on a stack's allow-list (Admission=allow-list admits only those).
    #[command(after_help = "Examples:
  jitr device allow devices --stack jitr
  jitr device allow devices/manifest.csv robot-9.crt --stack jitr")]
    Allow(crate::commands::allow::AllowArgs),
    /// Take certificates off a stack's allow-list.
    #[command(after_help = "Examples:
  jitr device disallow devices/robot-1/device.crt --stack jitr")]
    Disallow(crate::commands::allow::AllowArgs),
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("which").required(true).args(["name", "names", "all"]))]
pub struct DeviceRotateArgs {
    /// The CA directory that signs the successors (and issued the devices).
    #[arg(long, value_name = "DIR")]
    pub ca: PathBuf,
    /// The output directory of `jitr device issue` that holds the devices.
    #[arg(long, value_name = "OUTDIR")]
    pub out: PathBuf,
    /// One device.
    #[arg(long)]
    pub name: Option<String>,
    /// Devices, one name per line (or CSV with a `name` column).
    #[arg(long, value_name = "FILE")]
    pub names: Option<PathBuf>,
    /// Every device in OUTDIR issued by the CA.
    #[arg(long)]
    pub all: bool,
    /// Sign this device-generated CSR as the successor (with --name); no key is written.
    // `requires` alone accepts any member of the group "which" (clap #4707).
    #[arg(long, value_name = "FILE", requires = "name", conflicts_with_all = ["names", "all"])]
    pub csr: Option<PathBuf>,
    /// Key type of the new keys (default: the predecessor's).
    #[arg(long, value_enum, conflicts_with = "csr")]
    pub key: Option<KeyAlg>,
    /// Validity in days (never beyond the CA's own expiry).
    #[arg(long, default_value_t = 3650, value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub days: u32,
    #[command(flatten)]
    pub unlock: UnlockArgs,
    /// Rotate a device that still holds a predecessor in previous/ (that one is dropped).
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct DeviceRevokeArgs {
    /// Device names (in --out), certificate ids (64 hex digits) or certificate files.
    /// A NAME means the device's current certificate; a rotated predecessor is revoked
    /// by its file, OUTDIR/NAME/previous/device.crt, or its certificate id.
    #[arg(required = true, value_name = "NAME|CERT_ID|CERT_FILE")]
    pub items: Vec<String>,
    /// The CA directory that issued them: certificates of other CAs are refused,
    /// and the revocations are recorded in DIR/revoked.json for `jitr ca crl`.
    #[arg(long, value_name = "DIR")]
    pub ca: PathBuf,
    /// The output directory the devices are in (NAME items; the manifest records the revocation).
    #[arg(long, value_name = "OUTDIR")]
    pub out: Option<PathBuf>,
    /// Delete each certificate's thing once it has no principal left.
    #[arg(long)]
    pub delete_thing: bool,
    /// Certificates revoked per second (UpdateCertificate allows 10/s per account).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=10))]
    pub rate: u32,
    /// Also take the revoked certificates off this stack's allow-list.
    #[arg(long, value_name = "NAME")]
    pub stack: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum FleetCommand {
    /// Per CA: certificates by status, things without certificates, certificates
    /// expiring soon, pending ones stranded, each with the command that fixes it.
    #[command(after_help = "Examples:
  jitr fleet status --ca my-ca
  jitr fleet status --ca my-ca --expiring-within 90 --pending-older-than 30 --json")]
    Status(FleetStatusArgs),
}

#[derive(Debug, Args)]
pub struct FleetStatusArgs {
    /// The CA: a CA directory or its certificate id.
    #[arg(long, value_name = "DIR|ID")]
    pub ca: String,
    /// Report ACTIVE certificates that expire within this many days.
    #[arg(long, value_name = "DAYS", default_value_t = 30)]
    pub expiring_within: u32,
    /// Report PENDING_ACTIVATION certificates older than this (events lost).
    #[arg(long, value_name = "MINUTES", default_value_t = 10)]
    pub pending_older_than: u32,
    /// DescribeCertificate calls per second (AWS allows 10/s per account).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=10))]
    pub rate: u32,
}

#[derive(Debug, Args)]
pub struct CaCrlArgs {
    /// The CA directory (its key signs the CRL; its revoked.json lists the serials).
    pub dir: PathBuf,
    /// Where to write the CRL (PEM; default: DIR/crl.pem).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Days until nextUpdate: relying parties fetch a new CRL by then.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub days: u32,
    #[command(flatten)]
    pub unlock: UnlockArgs,
    /// Replace an existing FILE (never one of a CA directory's own files).
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("ca_source").args(["ca", "without_ca"]))]
pub(crate) struct DeviceRegisterArgs {
    /// Device certificate files (device.crt or a bundle; the first certificate is registered).
    #[arg(required = true, value_name = "CERT")]
    pub(crate) certs: Vec<PathBuf>,
    /// The CA directory that issued them (its certificate is sent along).
    #[arg(long, value_name = "DIR")]
    pub(crate) ca: Option<PathBuf>,
    /// Register without a CA (multi-account registration).
    #[arg(long)]
    pub(crate) without_ca: bool,
    /// Register them ACTIVE (default: INACTIVE).
    #[arg(long)]
    pub(crate) activate: bool,
    /// Requests per second (default: 10, the RegisterCertificate limit).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub(crate) rate: u32,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("source").required(true).args(["name", "count", "names"]))]
pub(crate) struct DeviceIssueArgs {
    /// The CA directory that signs.
    #[arg(long, value_name = "DIR")]
    pub(crate) ca: PathBuf,
    /// Output directory: one subdirectory per device, plus manifest.csv.
    #[arg(long, value_name = "OUTDIR")]
    pub(crate) out: PathBuf,
    /// One device (the subject CN and future thing name).
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// A numbered run of N devices named by --name-template.
    #[arg(long, value_name = "N", requires = "name_template", value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub(crate) count: Option<u64>,
    /// Name template for --count: one {n}, or {n:0W} for numbers zero-padded to W
    /// digits, e.g. 'robot-{n:05}'.
    #[arg(long, value_name = "TEMPLATE")]
    pub(crate) name_template: Option<String>,
    /// First number for --count.
    #[arg(long, default_value_t = 1)]
    pub(crate) start: u64,
    /// Names, one per line, or CSV with a `name` column and optional subject columns.
    #[arg(long, value_name = "FILE", conflicts_with = "csr")]
    pub(crate) names: Option<PathBuf>,
    /// Sign a device-generated CSR (with --name); the key never leaves the device.
    // `requires` alone accepts any member of the group "source" (clap #4707).
    #[arg(long, value_name = "FILE", requires = "name", conflicts_with_all = ["count", "names"])]
    pub(crate) csr: Option<PathBuf>,
    /// Key type of generated device keys.
    #[arg(long, value_enum, default_value_t = KeyAlg::EcP256)]
    pub(crate) key: KeyAlg,
    /// Validity in days (never beyond the CA's own expiry).
    #[arg(long, default_value_t = 3650, value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub(crate) days: u32,
    /// Subject attributes added to every device, e.g. "O=Acme,OU=Line 3".
    #[arg(long, value_name = "SUBJECT")]
    pub(crate) subject_extra: Option<String>,
    /// File names written per device.
    #[arg(long, value_enum, default_value_t = Layout::Default)]
    pub(crate) layout: Layout,
    /// Worker threads (default: all cores; with a kms CA, enough to reach --sign-rate).
    #[arg(long, value_name = "N")]
    pub(crate) jobs: Option<usize>,
    /// CA signatures per second at most (default: the store's limit, 300/s for
    /// ECC and 500/s for RSA keys in KMS; none for file and pkcs11).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub(crate) sign_rate: Option<u32>,
    #[command(flatten)]
    pub(crate) unlock: UnlockArgs,
    /// Re-issue devices that already exist.
    #[arg(long)]
    pub(crate) force: bool,
}

#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// Certificate files (PEM or DER), or device directories (their bundle); a bundle
    /// is checked as leaf + chain.
    #[arg(required = true, value_name = "FILE|DEVICE_DIR")]
    pub(crate) files: Vec<PathBuf>,
    /// Also check that each certificate chains to this CA directory.
    #[arg(long, value_name = "DIR")]
    pub(crate) ca: Option<PathBuf>,
}
