//! `jitr ca import DIR --cert FILE --key FILE [--chain FILE]`: adopts an
//! existing CA (a vendor's) into a CA directory, its key in a file.

use std::path::PathBuf;

use jitr_core::aws::AwsOptions;

use crate::error::CliError;
use crate::files::{self, NewFile};
use crate::flags::UnlockArgs;
use crate::pki::ca_report::CaReport;
use crate::pki::secret::SecretSource;
use crate::pki::store::{self, StoreKind};
use crate::pki::{ca_files, ca_write, encrypted, keys};
use crate::report::Output;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
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

/// `jitr ca import DIR --cert FILE --key FILE [--chain FILE]`.
pub(crate) fn run(a: &Args, aws: &AwsOptions, out: &Output) -> Result<(), CliError> {
    let cert_bytes = files::read(&a.cert)?;
    let (cert_der, facts) = ca_files::read_ca_certificate(&cert_bytes, &a.cert)?;
    let key_what = a.key.display().to_string();
    let key_text = zeroize::Zeroizing::new(files::read(&a.key)?);
    let unlock = a.unlock.unlock(aws);
    let mut passphrase = None;
    let (key, key_pem, was_encrypted) =
        keys::load_private_key_unlocking(&key_text, &key_what, || {
            let secret =
                SecretSource::password(unlock.password_file.clone()).read("file", false)?;
            passphrase = Some(secret.clone());
            Ok(secret)
        })?;
    if unlock.pin_file.is_some() {
        return Err(CliError::invalid(
            "--pin-file",
            "ca import keeps the key in a file, so the PIN would be ignored (leave the flag out)",
        ));
    }
    if unlock.password_file.is_some() && !was_encrypted && !a.encrypt {
        return Err(CliError::invalid(
            "--password-file",
            format!("{key_what} is not encrypted and --encrypt was not given, so the passphrase would be ignored (add --encrypt to store ca.key encrypted with it)"),
        ));
    }
    if !keys::matches_certificate(&key, &facts.public_key) {
        return Err(CliError::invalid(
            key_what,
            format!(
                "this key does not match the certificate in {} (\"{}\")",
                a.cert.display(),
                facts.subject_text
            ),
        ));
    }
    // Like every store's key, proven to sign for its public key.
    let key = store::CaKey::File(key);
    store::check_pair(&key, &key_what)?;
    let store::CaKey::File(key) = key else {
        unreachable!("a file key stays one")
    };
    let chain = chain(a, &cert_bytes)?;
    ca_write::refuse_existing(&a.dir, a.force)?;
    // An encrypted key stays encrypted: as given, or re-encrypted with --encrypt
    // (under the passphrase it came with, else a new one).
    let stored = if a.encrypt {
        let secret = match passphrase {
            Some(p) => p,
            None => SecretSource::password(unlock.password_file.clone()).read("file", true)?,
        };
        encrypted::encrypt(key.serialized_der(), &secret)
            .map_err(|e| CliError::invalid("key store file", e))?
    } else if was_encrypted {
        zeroize::Zeroizing::new(String::from_utf8_lossy(&key_text).into_owned())
    } else {
        key_pem
    };
    let cert_pem = jitr_core::pem::encode_certificate(&cert_der);
    let chain_pem: String = chain
        .iter()
        .map(|der| jitr_core::pem::encode_certificate(der))
        .collect();
    let key_file = NewFile::secret(a.dir.join(ca_files::KEY_FILE), stored.as_bytes());
    ca_write::write_ca(&a.dir, &cert_pem, key_file, &chain_pem, a.force)?;
    let report = CaReport::new(&a.dir, &facts, StoreKind::File, a.encrypt || was_encrypted);
    out.result(&report, || report.text("imported"));
    Ok(())
}

/// The CA's chain: its certificate, the extra blocks in `--cert`, then
/// `--chain`'s; each link must verify.
fn chain(a: &Args, cert_bytes: &[u8]) -> Result<Vec<Vec<u8>>, CliError> {
    let mut chain = jitr_core::pem::certificates(cert_bytes)
        .map_err(|e| CliError::invalid(a.cert.display(), e))?;
    if let Some(chain_path) = &a.chain {
        let extra = jitr_core::pem::certificates(&files::read(chain_path)?)
            .map_err(|e| CliError::invalid(chain_path.display(), e))?;
        chain.extend(extra);
    }
    for pair in chain.windows(2) {
        jitr_core::facts::verify_issued_by(&pair[0], &pair[1]).map_err(|e| {
            CliError::invalid(
                a.chain.as_ref().unwrap_or(&a.cert).display(),
                format!("the chain is broken: {e}"),
            )
        })?;
    }
    Ok(chain)
}
