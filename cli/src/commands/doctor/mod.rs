//! `jitr doctor`: why a device did not register. Reads the device's files
//! (`device.rs`), the issuing CA (`issuer.rs`) and the device's certificate
//! (`certificate.rs`) in AWS IoT, the deployed stack (`deployment.rs`) and
//! the data endpoint (`endpoint.rs`, a TLS probe), and prints one line per
//! check; the checks themselves are pure, in `crate::doctor`.

use std::path::{Path, PathBuf};

use jitr_core::aws::AwsOptions;
use serde::Serialize;

use crate::cloud::Cloud;
use crate::doctor::device::DeviceFiles;
use crate::doctor::fixes::Known;
use crate::doctor::{Check, Status};
use crate::error::CliError;
use crate::pki::ca_files::CERT_FILE;
use crate::report::Output;

mod certificate;
mod deployment;
mod device;
mod endpoint;
mod issuer;

use self::certificate::{certificate_lines, Around};
use self::deployment::Deployed;
use self::device::{read_device, Device, Named};
use self::endpoint::endpoint_line;
use self::issuer::{ca_lines, issuing_ca};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
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

impl Args {
    /// The device and broker as the command line names them (what fixes repeat).
    fn named(&self) -> Named<'_> {
        Named {
            device: self.device.as_deref(),
            cert: self.cert.as_deref(),
            key: self.key.as_deref(),
            endpoint: self.endpoint.as_deref(),
            ca_file: self.ca_file.as_deref(),
        }
    }
}

#[derive(Serialize)]
struct Report {
    checks: Vec<Check>,
    ok: bool,
}

/// The values fixes carry: where the calls went, as given.
fn known(aws: &AwsOptions, cloud: &Cloud) -> Known {
    Known {
        region: cloud.region.clone(),
        profile: aws.profile.clone(),
        endpoint_url: cloud.config().endpoint_url().map(str::to_string),
    }
}

/// Every check that needs AWS, in report order after the device's.
fn cloud_checks(
    a: &Args,
    named: &Named,
    dev: Option<&Device>,
    cloud: &Cloud,
    known: &Known,
    now: i64,
) -> Result<(Vec<Check>, Deployed), CliError> {
    let mut checks = Vec::new();
    // STS may be denied to the caller: then the account is not compared.
    let account = cloud.account().ok();
    let (issuer, mismatch) = issuing_ca(a.ca.as_deref(), dev, cloud)?;
    checks.extend(mismatch);
    match &issuer {
        Some(issuer) => checks.extend(ca_lines(
            issuer,
            dev,
            cloud,
            account.as_deref(),
            known,
            now,
        )?),
        None if dev.is_some() => checks.push(Check::fail(
            "ca registered",
            "no registered CA issued the device certificate",
            "register the CA that signed the device: jitr ca register CA_DIR",
        )),
        None => {}
    }
    let leaf = dev.and_then(|d| d.chain.first());
    let deployed = deployment::gather(
        cloud,
        &deployment::Asked {
            stack: a.stack.as_deref(),
            ca_id: issuer.as_ref().map(|i| i.id.as_str()),
            ca_target: issuer.as_ref().map(|i| i.target.as_str()),
            leaf,
            known,
            since: a.since as i64,
        },
    )?;
    if let Some(leaf) = leaf {
        let around = Around {
            cloud,
            known,
            dev,
            issuer: issuer.as_ref(),
            deployed: &deployed,
            named,
            stranded_after: a.stranded_after as i64,
        };
        checks.extend(certificate_lines(leaf, &around, now)?);
    }
    Ok((checks, deployed))
}

/// `jitr doctor`.
pub(crate) fn run(a: &Args, aws: &AwsOptions, out: &Output) -> Result<(), CliError> {
    let now = jitr_core::clock::unix_seconds();
    let named = a.named();
    let dev = read_device(&named)?;
    let mut checks = Vec::new();
    let mut aws_lines = Vec::new();
    let mut pattern = None;
    match Cloud::connect(aws) {
        Ok(cloud) => {
            let known = known(aws, &cloud);
            let (lines, deployed) = cloud_checks(a, &named, dev.as_ref(), &cloud, &known, now)?;
            aws_lines = lines;
            aws_lines.extend(deployed.checks);
            aws_lines.push(endpoint_line(&named, dev.as_ref(), &cloud)?);
            // Every command a check names goes where doctor's calls went.
            for c in &mut aws_lines {
                c.fix = c.fix.as_deref().map(|f| known.complete(f));
            }
            pattern = deployed
                .config
                .and_then(|c| c.ok())
                .map(|c| c.thing_name_pattern);
        }
        Err(e) => checks.push(Check::fail(
            "aws access",
            e.to_string(),
            "set AWS_PROFILE/--profile and --region (aws sts get-caller-identity must work)",
        )),
    }
    if let Some(d) = &dev {
        let files = DeviceFiles {
            bundle: &d.bundle,
            chain: &d.chain,
            ders: &d.ders,
            key_matches: d.key.as_ref().map(|(_, m)| *m),
            ca_dir: a
                .ca
                .as_deref()
                .filter(|t| Path::new(t).join(CERT_FILE).is_file()),
        };
        checks.extend(crate::doctor::device::checks(&files, now, pattern.as_ref()));
    }
    checks.extend(aws_lines);
    let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
    let report = Report {
        ok: failed == 0,
        checks,
    };
    out.result(&report, || {
        let mut text: Vec<String> = report.checks.iter().map(Check::line).collect();
        let warned = report
            .checks
            .iter()
            .filter(|c| c.status == Status::Warn)
            .count();
        text.push(format!(
            "{} check(s): {failed} failed, {warned} warning(s)",
            report.checks.len()
        ));
        text.join("\n")
    });
    if failed > 0 {
        return Err(CliError::ChecksFailed(failed));
    }
    Ok(())
}
