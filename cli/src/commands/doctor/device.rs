//! `jitr doctor`'s device: as named on the command line and read from
//! disk, and what its fixes and its revocation record are found by.

use std::path::{Path, PathBuf};

use jitr_core::CertFacts;

use crate::doctor::certificate::Recorded;
use crate::doctor::device::issued;
use crate::doctor::fixes::shell_word;
use crate::doctor::Check;
use crate::error::CliError;
use crate::files::read;
use crate::issue::layout::Layout;
use crate::pki::ca_files::CERT_FILE;
use crate::pki::keys;
use crate::pki::revoked;

/// The device as the command line names it (DEVICE_DIR, or `--cert` and
/// `--key`) and where the broker is, as given: what fixes repeat.
pub(super) struct Named<'a> {
    pub device: Option<&'a Path>,
    pub cert: Option<&'a Path>,
    pub key: Option<&'a Path>,
    pub endpoint: Option<&'a str>,
    pub ca_file: Option<&'a Path>,
}

impl Named<'_> {
    /// `jitr connect` for this device, with its endpoint and broker CA when given.
    pub(super) fn connect(&self) -> String {
        connect_command(
            self.device,
            self.cert,
            self.key,
            self.endpoint,
            self.ca_file,
        )
    }
}

/// The device as read from disk.
pub(super) struct Device {
    pub bundle: String,
    pub chain: Vec<CertFacts>,
    pub ders: Vec<Vec<u8>>,
    pub key: Option<(rcgen::KeyPair, bool)>,
}

/// The bundle and key paths from DEVICE_DIR or --cert/--key.
fn device_paths(named: &Named) -> Result<Option<(PathBuf, Option<PathBuf>)>, CliError> {
    if let Some(cert) = named.cert {
        return Ok(Some((cert.to_path_buf(), named.key.map(Path::to_path_buf))));
    }
    let Some(dir) = named.device else {
        return Ok(None);
    };
    Layout::all()
        .into_iter()
        .map(|l| l.files())
        .map(|f| (dir.join(f.bundle), dir.join(f.key)))
        .find(|(bundle, _)| bundle.is_file())
        .map(|(bundle, key)| Some((bundle, key.is_file().then_some(key))))
        .ok_or_else(|| {
            CliError::invalid(
                dir.display(),
                "no device certificate bundle (expected device-and-ca.crt or certificate.pem.crt)",
            )
        })
}

/// The device DEVICE_DIR or `--cert`/`--key` name, read and checked
/// against its key; `None` when none is named.
pub(super) fn read_device(named: &Named) -> Result<Option<Device>, CliError> {
    let Some((bundle, key)) = device_paths(named)? else {
        return Ok(None);
    };
    let what = bundle.display().to_string();
    let ders =
        jitr_core::pem::certificates(&read(&bundle)?).map_err(|e| CliError::invalid(&what, e))?;
    let chain = ders
        .iter()
        .map(|d| CertFacts::from_der(d).map_err(|e| CliError::invalid(&what, e)))
        .collect::<Result<Vec<_>, _>>()?;
    let key = match key {
        Some(path) => {
            let (pair, _) = keys::load_private_key(&read(&path)?, &path.display().to_string())?;
            let matches = chain
                .first()
                .is_some_and(|c| keys::matches_certificate(&pair, &c.public_key));
            Some((pair, matches))
        }
        None => None,
    };
    Ok(Some(Device {
        bundle: what,
        chain,
        ders,
        key,
    }))
}

/// The first certificate of a PEM text, DER.
pub(super) fn first_der(pem: &str) -> Option<Vec<u8>> {
    jitr_core::pem::certificates(pem.as_bytes())
        .ok()
        .and_then(|c| c.into_iter().next())
}

/// The devices' directory OUTDIR: the parent of DEVICE_DIR, or of
/// `--cert`'s directory (`OUTDIR/NAME/device.crt`, and a rotated-out
/// `OUTDIR/NAME/previous/device.crt`).
fn devices_dir<'a>(device: Option<&'a Path>, cert: Option<&'a Path>) -> Option<&'a Path> {
    if let Some(d) = device {
        return d.parent();
    }
    let dir = cert?.parent()?;
    let dir = match dir.file_name() {
        Some(n) if n == "previous" => dir.parent()?,
        _ => dir,
    };
    dir.parent()
}

/// `jitr connect` for the device doctor looked at, with its endpoint and
/// broker CA when given.
fn connect_command(
    device: Option<&Path>,
    cert: Option<&Path>,
    key: Option<&Path>,
    endpoint: Option<&str>,
    ca_file: Option<&Path>,
) -> String {
    let word = |p: &Path| shell_word(&p.display().to_string());
    let mut out = "jitr connect".to_string();
    match (device, cert) {
        (Some(d), _) => out.push_str(&format!(" {}", word(d))),
        (None, Some(c)) => {
            let key = key.map_or("KEY_FILE".to_string(), word);
            out.push_str(&format!(" --cert {} --key {key}", word(c)));
        }
        (None, None) => out.push_str(" DEVICE_DIR"),
    }
    if let Some(e) = endpoint {
        out.push_str(&format!(" --endpoint {}", shell_word(e)));
    }
    if let Some(f) = ca_file {
        out.push_str(&format!(" --ca-file {}", word(f)));
    }
    out
}

/// `jitr device revoke`'s record of the certificate, searched where it
/// writes one: the CA directory's `revoked.json` (--ca DIR, else every CA
/// directory beside OUTDIR or in the current directory whose `ca.crt`
/// issued `leaf`), then OUTDIR's. A list that cannot be read is a WARN
/// naming the file and the field, and the search goes on.
pub(super) fn recorded_revocation(
    named: &Named,
    ca_dir: Option<&PathBuf>,
    leaf: Option<&[u8]>,
    id: &str,
) -> (Option<Recorded>, Vec<Check>) {
    let out_dir = devices_dir(named.device, named.cert);
    let mut dirs: Vec<PathBuf> = ca_dir.cloned().into_iter().collect();
    let bases = [out_dir.and_then(Path::parent), Some(Path::new("."))];
    for base in bases.into_iter().flatten() {
        let base = if base.as_os_str().is_empty() {
            Path::new(".")
        } else {
            base
        };
        let Ok(entries) = std::fs::read_dir(base) else {
            continue;
        };
        let mut found: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        found.sort();
        for dir in found {
            let signed = leaf.is_some_and(|leaf| {
                std::fs::read_to_string(dir.join(CERT_FILE))
                    .ok()
                    .and_then(|pem| first_der(&pem))
                    .is_some_and(|ca| issued(leaf, &ca))
            });
            if signed && !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
    }
    dirs.extend(out_dir.map(Path::to_path_buf));
    let mut warnings = Vec::new();
    for dir in dirs {
        let file = dir.join(revoked::FILE);
        match revoked::read(&file) {
            Ok(list) => {
                if let Some(r) = list.into_iter().find(|r| r.certificate_id == id) {
                    let found = Recorded {
                        revoked_at: r.revoked_at,
                        file: file.display().to_string(),
                    };
                    return (Some(found), warnings);
                }
            }
            Err(e) => warnings.push(Check::warn(
                "revocation list",
                format!("{e}: its revocations were not read"),
                format!(
                    "correct {} (as `jitr device revoke` writes it) or move it away",
                    file.display()
                ),
            )),
        }
    }
    (None, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connect_fix_names_the_device_doctor_looked_at() {
        let p = |s: &'static str| Some(Path::new(s));
        assert_eq!(
            connect_command(
                p("devices/robot 2"),
                None,
                None,
                Some("127.0.0.1:8883"),
                p("b.crt")
            ),
            "jitr connect 'devices/robot 2' --endpoint 127.0.0.1:8883 --ca-file b.crt"
        );
        assert_eq!(
            connect_command(None, p("d.crt"), p("d.key"), None, None),
            "jitr connect --cert d.crt --key d.key"
        );
    }

    #[test]
    fn the_devices_directory_is_found_from_the_device_or_its_certificate() {
        let p = |s: &'static str| Some(Path::new(s));
        let cases = [
            (p("out/robot-2"), None, p("out")),
            (None, p("out/robot-2/device.crt"), p("out")),
            (None, p("out/robot-2/previous/device.crt"), p("out")),
            (None, p("/x/out/robot-2/previous/device.crt"), p("/x/out")),
        ];
        for (device, cert, want) in cases {
            assert_eq!(devices_dir(device, cert), want, "{device:?} {cert:?}");
        }
    }
}
