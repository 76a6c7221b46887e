//! CA keys in AWS KMS: asymmetric SIGN_VERIFY keys. jitr hashes locally and
//! asks KMS to sign the digest (MessageType DIGEST); the private key never
//! leaves KMS. Throttling is retried by the SDK's standard retry strategy
//! (exponential backoff with jitter, 8 attempts).

use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{KeySpec, KeyState, KeyUsageType, MessageType, SigningAlgorithmSpec};
use jitr_core::aws::{AwsError, AwsOptions};
use rcgen::SignatureAlgorithm;

use crate::pki::keys::KeyAlg;

/// What `key.json` records for a KMS key (no secret).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct KmsKeyRef {
    /// The key's ARN.
    pub(crate) key_id: String,
    pub(crate) key_spec: String,
}

/// What went wrong with KMS; shown after "key store kms: ".
#[derive(Debug, thiserror::Error)]
pub(crate) enum KmsError {
    #[error("{0}")]
    Aws(String),
    #[error("KMS key {key} is {found}, expected {expected} (--key)")]
    WrongSpec {
        key: String,
        found: String,
        expected: String,
    },
    #[error("KMS key {key} has key usage {found}, expected SIGN_VERIFY")]
    WrongUsage { key: String, found: String },
    #[error("KMS key {key} is {state}, expected Enabled")]
    NotUsable { key: String, state: String },
    #[error("the alias {alias} already exists (pass --kms-key-id {alias} to adopt its key, or choose another CA subject)")]
    AliasTaken { alias: String },
    #[error("KMS returned no {0}")]
    Missing(&'static str),
}

/// The KMS key spec of a key kind.
pub(crate) fn key_spec(alg: KeyAlg) -> KeySpec {
    match alg {
        KeyAlg::EcP256 => KeySpec::EccNistP256,
        KeyAlg::EcP384 => KeySpec::EccNistP384,
        KeyAlg::Rsa2048 => KeySpec::Rsa2048,
        KeyAlg::Rsa3072 => KeySpec::Rsa3072,
        KeyAlg::Rsa4096 => KeySpec::Rsa4096,
    }
}

fn kind_of(spec: &KeySpec) -> Option<KeyAlg> {
    [
        KeyAlg::EcP256,
        KeyAlg::EcP384,
        KeyAlg::Rsa2048,
        KeyAlg::Rsa3072,
        KeyAlg::Rsa4096,
    ]
    .into_iter()
    .find(|k| key_spec(*k) == *spec)
}

fn signing_algorithm(alg: KeyAlg) -> SigningAlgorithmSpec {
    match alg {
        KeyAlg::EcP256 => SigningAlgorithmSpec::EcdsaSha256,
        KeyAlg::EcP384 => SigningAlgorithmSpec::EcdsaSha384,
        _ => SigningAlgorithmSpec::RsassaPkcs1V15Sha256,
    }
}

/// The digest jitr computes for a key kind (matching its X.509 signature algorithm).
fn digest(alg: KeyAlg, msg: &[u8]) -> Vec<u8> {
    let d = if alg == KeyAlg::EcP384 {
        &aws_lc_rs::digest::SHA384
    } else {
        &aws_lc_rs::digest::SHA256
    };
    aws_lc_rs::digest::digest(d, msg).as_ref().to_vec()
}

/// An SDK error in one sentence, with the call that failed.
fn aws_error<E>(action: &str, endpoint: &str, err: SdkError<E>) -> KmsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let code = err.code().unwrap_or_default().to_string();
    let message = err.message().unwrap_or_default().to_string();
    let text = match code.as_str() {
        "NotFoundException" => format!("not found: {message}"),
        "DisabledException" => format!("the key is disabled: {message}"),
        "KMSInvalidStateException" => format!("the key is not usable in its state: {message}"),
        "AccessDeniedException" => format!("access denied: {message}"),
        "ThrottlingException" => format!("throttled by KMS after retries: {message}"),
        _ => in_kms_terms(AwsError::from_sdk(err, endpoint)),
    };
    KmsError::Aws(format!("{action}: {text}"))
}

/// An AWS error in words that name KMS: the shared classification speaks
/// of AWS IoT, the service most commands call.
fn in_kms_terms(e: AwsError) -> String {
    match e {
        AwsError::Unreachable { endpoint, reason } => {
            format!("cannot reach KMS at {endpoint}: {reason}")
        }
        AwsError::Throttled { code, message } => {
            format!("throttled by KMS ({code}) after retries: {message}")
        }
        AwsError::Refused { code, message } => {
            format!("KMS refused the request ({code}): {message}")
        }
        AwsError::Service { code, message } => format!("KMS failed ({code}): {message}"),
        other => other.to_string().replace("AWS IoT", "KMS"),
    }
}

/// A KMS key ready to sign, with the client and runtime that reach it.
pub(crate) struct KmsSigner {
    client: aws_sdk_kms::Client,
    rt: tokio::runtime::Runtime,
    endpoint: String,
    pub(crate) reference: KmsKeyRef,
    kind: KeyAlg,
    public_der: Vec<u8>,
    /// The key and alias this run created (undone by [`KmsSigner::destroy`]).
    created: Option<(String, String)>,
}

impl std::fmt::Debug for KmsSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KmsSigner")
            .field("key", &self.reference)
            .finish()
    }
}

/// A client from the global AWS options (profile, region, endpoint); `region`
/// defaults to the one in a key ARN.
fn connect(
    opts: &AwsOptions,
    arn_region: Option<&str>,
) -> Result<(aws_sdk_kms::Client, tokio::runtime::Runtime, String), KmsError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| KmsError::Aws(format!("cannot start the async runtime: {e}")))?;
    let mut opts = opts.clone();
    if opts.region.is_none() && std::env::var_os("AWS_REGION").is_none() {
        opts.region = arn_region.map(str::to_string);
    }
    let config = rt
        .block_on(jitr_core::aws::load(&opts))
        .map_err(|e| KmsError::Aws(format!("AWS configuration: {}", in_kms_terms(e))))?;
    rt.block_on(jitr_core::aws::check_credentials(&config))
        .map_err(|e| KmsError::Aws(format!("AWS credentials: {}", in_kms_terms(e))))?;
    let endpoint = jitr_core::aws::endpoint_of(&config);
    Ok((aws_sdk_kms::Client::new(&config), rt, endpoint))
}

fn arn_region(key_id: &str) -> Option<&str> {
    // arn:aws:kms:REGION:ACCOUNT:key/ID
    key_id
        .strip_prefix("arn:")
        .and_then(|rest| rest.split(':').nth(2))
        .filter(|r| !r.is_empty())
}

impl KmsSigner {
    /// Opens the key a `key.json` refers to.
    pub(crate) fn open(reference: &KmsKeyRef, opts: &AwsOptions) -> Result<Self, KmsError> {
        let (client, rt, endpoint) = connect(opts, arn_region(&reference.key_id))?;
        Self::adopt(client, rt, endpoint, &reference.key_id, None)
    }

    /// Adopts `key_id` (id, ARN or alias/NAME) when given, checking its spec
    /// against `alg`; else creates a key of kind `alg` with the alias
    /// `alias/jitr/<name>`.
    pub(crate) fn create(
        opts: &AwsOptions,
        key_id: Option<&str>,
        alg: KeyAlg,
        name: &str,
    ) -> Result<Self, KmsError> {
        let (client, rt, endpoint) = connect(opts, key_id.and_then(arn_region))?;
        if let Some(id) = key_id {
            return Self::adopt(client, rt, endpoint, id, Some(alg));
        }
        let alias = alias_for(name);
        let exists = rt.block_on(client.describe_key().key_id(&alias).send());
        match exists {
            Ok(_) => return Err(KmsError::AliasTaken { alias }),
            Err(e) if e.code() == Some("NotFoundException") => {}
            Err(e) => return Err(aws_error("DescribeKey", &endpoint, e)),
        }
        let made = rt
            .block_on(
                client
                    .create_key()
                    .key_spec(key_spec(alg))
                    .key_usage(KeyUsageType::SignVerify)
                    .description(format!("jitr CA key: {name}"))
                    .send(),
            )
            .map_err(|e| aws_error("CreateKey", &endpoint, e))?;
        let key_arn = made
            .key_metadata()
            .and_then(|m| m.arn().or(Some(m.key_id())))
            .ok_or(KmsError::Missing("key metadata"))?
            .to_string();
        if let Err(e) = rt.block_on(
            client
                .create_alias()
                .alias_name(&alias)
                .target_key_id(&key_arn)
                .send(),
        ) {
            let err = aws_error("CreateAlias", &endpoint, e);
            let _ = rt.block_on(
                client
                    .schedule_key_deletion()
                    .key_id(&key_arn)
                    .pending_window_in_days(7)
                    .send(),
            );
            return Err(err);
        }
        let mut signer = Self::adopt(client, rt, endpoint, &key_arn, Some(alg))?;
        signer.created = Some((key_arn, alias));
        Ok(signer)
    }

    fn adopt(
        client: aws_sdk_kms::Client,
        rt: tokio::runtime::Runtime,
        endpoint: String,
        key_id: &str,
        expect: Option<KeyAlg>,
    ) -> Result<Self, KmsError> {
        let described = rt
            .block_on(client.describe_key().key_id(key_id).send())
            .map_err(|e| aws_error(&format!("DescribeKey {key_id}"), &endpoint, e))?;
        let meta = described
            .key_metadata()
            .ok_or(KmsError::Missing("key metadata"))?;
        let key = key_id.to_string();
        if let Some(state) = meta.key_state() {
            if *state != KeyState::Enabled {
                return Err(KmsError::NotUsable {
                    key,
                    state: state.as_str().to_string(),
                });
            }
        }
        if meta.key_usage() != Some(&KeyUsageType::SignVerify) {
            return Err(KmsError::WrongUsage {
                key,
                found: meta.key_usage().map_or("none", |u| u.as_str()).to_string(),
            });
        }
        let spec = meta
            .key_spec()
            .cloned()
            .ok_or(KmsError::Missing("key spec"))?;
        let kind = match (kind_of(&spec), expect) {
            (Some(k), None) => k,
            (Some(k), Some(e)) if k == e => k,
            (_, expected) => {
                return Err(KmsError::WrongSpec {
                    key,
                    found: spec.as_str().to_string(),
                    expected: expected
                        .map(|e| key_spec(e).as_str().to_string())
                        .unwrap_or_else(|| "ECC_NIST_P256/P384 or RSA_2048/3072/4096".into()),
                })
            }
        };
        let arn = meta.arn().unwrap_or(meta.key_id()).to_string();
        let public = rt
            .block_on(client.get_public_key().key_id(&arn).send())
            .map_err(|e| aws_error("GetPublicKey", &endpoint, e))?;
        let spki = public
            .public_key()
            .ok_or(KmsError::Missing("public key"))?
            .as_ref()
            .to_vec();
        let public_der =
            subject_public_key(&spki).ok_or(KmsError::Missing("readable public key"))?;
        Ok(KmsSigner {
            client,
            rt,
            endpoint,
            reference: KmsKeyRef {
                key_id: arn,
                key_spec: spec.as_str().to_string(),
            },
            kind,
            public_der,
            created: None,
        })
    }

    pub(crate) fn public_key_der(&self) -> &[u8] {
        &self.public_der
    }

    pub(crate) fn algorithm(&self) -> &'static SignatureAlgorithm {
        self.kind.signature_algorithm()
    }

    pub(crate) fn kind(&self) -> KeyAlg {
        self.kind
    }

    /// Signs `msg`: the digest is computed here, the signature made in KMS
    /// (DER for ECDSA, as X.509 wants).
    pub(crate) fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, KmsError> {
        let out = self
            .rt
            .block_on(
                self.client
                    .sign()
                    .key_id(&self.reference.key_id)
                    .message(Blob::new(digest(self.kind, msg)))
                    .message_type(MessageType::Digest)
                    .signing_algorithm(signing_algorithm(self.kind))
                    .send(),
            )
            .map_err(|e| aws_error("Sign", &self.endpoint, e))?;
        Ok(out
            .signature()
            .ok_or(KmsError::Missing("signature"))?
            .as_ref()
            .to_vec())
    }

    /// Undoes a key this run created: the alias goes, the key is scheduled
    /// for deletion (KMS's shortest window, 7 days).
    pub(crate) fn destroy(&self) {
        if let Some((arn, alias)) = &self.created {
            let _ = self
                .rt
                .block_on(self.client.delete_alias().alias_name(alias).send());
            let _ = self.rt.block_on(
                self.client
                    .schedule_key_deletion()
                    .key_id(arn)
                    .pending_window_in_days(7)
                    .send(),
            );
        }
    }
}

/// `alias/jitr/<name>` with characters KMS does not allow replaced by `-`.
pub(crate) fn alias_for(name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("alias/jitr/{clean}")
}

/// The subjectPublicKey bits of a DER SubjectPublicKeyInfo.
fn subject_public_key(spki: &[u8]) -> Option<Vec<u8>> {
    use x509_parser::prelude::FromDer;
    let (_, info) = x509_parser::x509::SubjectPublicKeyInfo::from_der(spki).ok()?;
    Some(info.subject_public_key.data.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_keep_only_what_kms_allows() {
        for (name, alias) in [
            ("jitr Root CA", "alias/jitr/jitr-Root-CA"),
            ("Acme/Line_3-a", "alias/jitr/Acme/Line_3-a"),
            ("Ünï", "alias/jitr/-n-"),
        ] {
            assert_eq!(alias_for(name), alias);
        }
    }

    #[test]
    fn aws_errors_are_told_in_kms_terms() {
        let cases = [
            (
                AwsError::Unreachable {
                    endpoint: "http://127.0.0.1:9".into(),
                    reason: "connection refused".into(),
                },
                "cannot reach KMS at http://127.0.0.1:9: connection refused",
            ),
            (
                AwsError::Throttled {
                    code: "ThrottlingException".into(),
                    message: "m".into(),
                },
                "throttled by KMS (ThrottlingException) after retries: m",
            ),
            (
                AwsError::Service {
                    code: "KMSInternalException".into(),
                    message: "m".into(),
                },
                "KMS failed (KMSInternalException): m",
            ),
            (
                AwsError::Refused {
                    code: "ValidationException".into(),
                    message: "m".into(),
                },
                "KMS refused the request (ValidationException): m",
            ),
        ];
        for (error, expected) in cases {
            assert_eq!(in_kms_terms(error), expected);
        }
    }

    #[test]
    fn arn_regions() {
        assert_eq!(
            arn_region("arn:aws:kms:eu-west-1:123456789012:key/abc"),
            Some("eu-west-1")
        );
        assert_eq!(arn_region("alias/jitr/x"), None);
        assert_eq!(arn_region("1234abcd-12ab"), None);
    }
}
