//! Reaching AWS IoT: the SDK configuration (standard credential chain and
//! region resolution, optional profile and endpoint override, retries with
//! backoff) and SDK errors reduced to one clear sentence.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_iot::error::{ProvideErrorMetadata, SdkError};

/// Where and as whom to call AWS; unset fields follow the standard chain
/// (environment, `~/.aws/config`, SSO, instance roles, `AWS_ENDPOINT_URL`).
#[derive(Debug, Clone, Default)]
pub struct AwsOptions {
    pub profile: Option<String>,
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
}

/// An AWS failure, classified so callers can act on it and users read one sentence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AwsError {
    #[error("no AWS region: pass --region, set AWS_REGION, or set a region in the profile")]
    NoRegion,
    #[error("AWS profile `{0}` is not defined in ~/.aws/config or ~/.aws/credentials")]
    NoProfile(String),
    #[error("no AWS credentials found ({0}): set AWS_PROFILE or --profile, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run `aws sso login`")]
    NoCredentials(String),
    #[error("cannot reach AWS IoT at {endpoint}: {reason}")]
    Unreachable { endpoint: String, reason: String },
    #[error("AWS rejected the credentials ({code}): {message}")]
    BadCredentials { code: String, message: String },
    #[error("access denied ({code}): {message}")]
    AccessDenied { code: String, message: String },
    #[error("throttled by AWS IoT ({code}) after retries: {message}")]
    Throttled { code: String, message: String },
    /// A quota on resources (AWS IoT's LimitExceededException, HTTP 410: too
    /// many policies on a target, say), not on the request rate.
    #[error("limit exceeded ({code}): {message}; a quota on resources, so retrying cannot help: remove some or ask AWS to raise it")]
    LimitExceeded { code: String, message: String },
    #[error("not found: {0}")]
    NotFound(String),
    #[error("already exists: {message}")]
    AlreadyExists { message: String },
    #[error("AWS IoT refused the request ({code}): {message}")]
    Refused { code: String, message: String },
    #[error("AWS IoT failed ({code}): {message}")]
    Service { code: String, message: String },
    /// The verifier hook could not be asked, failed, or answered what the
    /// rules refuse: not AWS IoT's failure, and retried as a failed record is
    /// (the hook may answer next time).
    #[error("{code}: {message}")]
    Hook { code: String, message: String },
}

impl AwsError {
    /// Whether retrying the same call later may succeed (throttling, 5xx, network).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            AwsError::Throttled { .. }
                | AwsError::Service { .. }
                | AwsError::Hook { .. }
                | AwsError::Unreachable { .. }
        )
    }

    /// Classifies an SDK error; `endpoint` names the endpoint in network errors.
    pub fn from_sdk<E>(err: SdkError<E>, endpoint: &str) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        match &err {
            SdkError::DispatchFailure(d) => {
                let reason = if d.is_timeout() {
                    "timed out".to_string()
                } else if d.is_io() {
                    innermost(&err)
                } else {
                    let text = innermost(&err);
                    if text.to_lowercase().contains("credential") {
                        return AwsError::NoCredentials(text);
                    }
                    text
                };
                AwsError::Unreachable {
                    endpoint: endpoint.to_string(),
                    reason,
                }
            }
            SdkError::TimeoutError(_) => AwsError::Unreachable {
                endpoint: endpoint.to_string(),
                reason: "timed out".into(),
            },
            SdkError::ServiceError(s) => {
                let meta = s.err();
                let (mut code, mut message) = (
                    meta.code().map(str::to_string),
                    meta.message().unwrap_or("").to_string(),
                );
                if code.is_none() {
                    // Errors from the auth layer can come as a query-protocol XML body.
                    if let Some((c, m)) = s.raw().body().bytes().and_then(xml_error) {
                        (code, message) = (Some(c), m);
                    }
                }
                let code = code.unwrap_or_else(|| "Unknown".into());
                classify(code, message, s.raw().status().as_u16())
            }
            // The request could not be built: no retry mends that.
            SdkError::ConstructionFailure(_) => AwsError::Refused {
                code: "Client".into(),
                message: innermost(&err),
            },
            _ => {
                let text = innermost(&err);
                if text.to_lowercase().contains("credential") {
                    AwsError::NoCredentials(text)
                } else {
                    AwsError::Service {
                        code: "Client".into(),
                        message: text,
                    }
                }
            }
        }
    }
}

/// Classifies an error code (and HTTP status) AWS answered with.
pub fn classify(code: String, message: String, status: u16) -> AwsError {
    match code.as_str() {
        "ThrottlingException"
        | "Throttling"
        | "ThrottledException"
        | "RequestThrottledException"
        | "TooManyRequestsException"
        | "RequestLimitExceeded" => AwsError::Throttled { code, message },
        // AWS IoT's LimitExceededException is HTTP 410, a resource quota;
        // other services answer a throttle with it as 429.
        "LimitExceededException" if status == 429 => AwsError::Throttled { code, message },
        "LimitExceededException" | "LimitExceeded" => AwsError::LimitExceeded { code, message },
        "UnrecognizedClientException"
        | "InvalidClientTokenId"
        | "InvalidSignatureException"
        | "SignatureDoesNotMatch"
        | "ExpiredTokenException"
        | "ExpiredToken" => AwsError::BadCredentials { code, message },
        "AccessDeniedException"
        | "UnauthorizedException"
        | "ForbiddenException"
        | "AccessDenied" => AwsError::AccessDenied { code, message },
        "ResourceNotFoundException" => AwsError::NotFound(message),
        "ResourceAlreadyExistsException" => AwsError::AlreadyExists { message },
        "InternalFailureException"
        | "InternalException"
        | "ServiceUnavailableException"
        | "RequestTimeout"
        | "RequestTimeoutException"
        | "PriorRequestNotComplete" => AwsError::Service { code, message },
        _ if status >= 500 => AwsError::Service { code, message },
        _ if status == 403 => AwsError::AccessDenied { code, message },
        _ => AwsError::Refused { code, message },
    }
}

/// `<Code>` and `<Message>` of an XML error body.
fn xml_error(body: &[u8]) -> Option<(String, String)> {
    let text = std::str::from_utf8(body).ok()?;
    let tag = |name: &str| {
        let start = text.find(&format!("<{name}>"))? + name.len() + 2;
        let end = text[start..].find(&format!("</{name}>"))? + start;
        Some(text[start..end].to_string())
    };
    Some((tag("Code")?, tag("Message").unwrap_or_default()))
}

/// The first line of the innermost error, without the list of providers tried.
fn first_line(text: String) -> String {
    let line = text.lines().next().unwrap_or_default();
    line.trim_end_matches(" Attempted:")
        .trim_end_matches('.')
        .to_string()
}

/// Whether a named profile exists in the AWS config or credentials file.
pub fn profile_exists(name: &str) -> bool {
    let home = std::env::var_os("HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_default();
    let config = std::env::var_os("AWS_CONFIG_FILE")
        .map(Into::into)
        .unwrap_or_else(|| home.join(".aws/config"));
    let creds = std::env::var_os("AWS_SHARED_CREDENTIALS_FILE")
        .map(Into::into)
        .unwrap_or_else(|| home.join(".aws/credentials"));
    let headers = [format!("[profile {name}]"), format!("[{name}]")];
    [config, creds]
        .iter()
        .filter_map(|p: &std::path::PathBuf| std::fs::read_to_string(p).ok())
        .any(|text| {
            text.lines().any(|l| {
                headers
                    .iter()
                    .any(|h| l.split_whitespace().collect::<Vec<_>>().join(" ") == *h)
            })
        })
}

fn innermost(err: &dyn std::error::Error) -> String {
    let mut current: &dyn std::error::Error = err;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

/// Retries for AWS IoT's low per-account limits: up to 8 attempts with
/// exponential backoff and jitter (SDK standard mode), for throttling, 5xx
/// and network errors.
pub fn retry_config() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(8)
        .with_initial_backoff(Duration::from_millis(200))
        .with_max_backoff(Duration::from_secs(10))
}

/// Keeps the SDK from retrying AWS IoT's HTTP 410 answers (its
/// LimitExceededException: a resource quota), which its standard retries
/// take for throttling by the error code.
#[derive(Debug)]
struct QuotaIsNotThrottling;

impl aws_sdk_iot::config::retry::ClassifyRetry for QuotaIsNotThrottling {
    fn classify_retry(
        &self,
        ctx: &aws_sdk_iot::config::interceptors::InterceptorContext,
    ) -> aws_sdk_iot::config::retry::RetryAction {
        use aws_sdk_iot::config::retry::RetryAction;
        match ctx.response() {
            // Forbidden stops the classification: no later classifier retries it.
            Some(r) if r.status().as_u16() == 410 => RetryAction::RetryForbidden,
            _ => RetryAction::NoActionIndicated,
        }
    }

    fn name(&self) -> &'static str {
        "AWS IoT quota (HTTP 410) is not throttling"
    }
}

/// jitr's retry rules on an AWS IoT client configuration: a resource quota
/// reached is answered at once, not retried as throttling.
pub fn iot_retry_rules(config: aws_sdk_iot::config::Builder) -> aws_sdk_iot::config::Builder {
    config.retry_classifier(QuotaIsNotThrottling)
}

/// Time bounds for the CLI: a patient administrator, a slow network.
fn cli_timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        .operation_attempt_timeout(Duration::from_secs(30))
        .build()
}

/// Time bounds for the function, which lives in AWS's network and has a
/// deadline (30 s deployed): an IoT control-plane call answers in well under
/// a second, so a hung connection or attempt is abandoned early enough to be
/// retried, and one call never takes more than 20 s with its retries. The
/// invocation's deadline bounds the whole ([`crate::deadline`]).
pub fn function_timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(2))
        .operation_attempt_timeout(Duration::from_secs(5))
        .operation_timeout(Duration::from_secs(20))
        .build()
}

/// Loads the SDK configuration and checks a region is set. Credentials are
/// resolved lazily by the SDK; call [`check_credentials`] for an early,
/// clear answer.
pub async fn load(opts: &AwsOptions) -> Result<SdkConfig, AwsError> {
    load_with(opts, cli_timeouts()).await
}

/// [`load`] with other time bounds (the function's: [`function_timeouts`]).
pub async fn load_with(opts: &AwsOptions, timeouts: TimeoutConfig) -> Result<SdkConfig, AwsError> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(retry_config())
        .timeout_config(timeouts);
    if let Some(profile) = &opts.profile {
        if !profile_exists(profile) {
            return Err(AwsError::NoProfile(profile.clone()));
        }
        loader = loader.profile_name(profile);
    }
    if let Some(region) = &opts.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(url) = &opts.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    let config = loader.load().await;
    if config.region().is_none_or(|r| r.as_ref().trim().is_empty()) {
        return Err(AwsError::NoRegion);
    }
    Ok(config)
}

/// Resolves credentials once, so a missing profile or key is one sentence
/// before any API call.
pub async fn check_credentials(config: &SdkConfig) -> Result<(), AwsError> {
    use aws_sdk_iot::config::ProvideCredentials;
    let provider = config
        .credentials_provider()
        .ok_or_else(|| AwsError::NoCredentials("no credentials provider".into()))?;
    provider
        .provide_credentials()
        .await
        .map(|_| ())
        .map_err(|e| AwsError::NoCredentials(first_line(innermost(&e))))
}

/// The endpoint AWS IoT calls go to, for messages: AWS IoT's own
/// (`AWS_ENDPOINT_URL_IOT`, which the SDK prefers) before the shared one.
pub fn endpoint_of(config: &SdkConfig) -> String {
    let iot = std::env::var("AWS_ENDPOINT_URL_IOT")
        .ok()
        .filter(|u| !u.is_empty());
    match iot.as_deref().or(config.endpoint_url()) {
        Some(url) => url.to_string(),
        None => format!(
            "iot.{}.amazonaws.com",
            config.region().map(|r| r.as_ref()).unwrap_or("?")
        ),
    }
}

/// An AWS IoT control-plane client for `config`.
pub fn iot_client(config: &SdkConfig) -> aws_sdk_iot::Client {
    aws_sdk_iot::Client::from_conf(
        iot_retry_rules(aws_sdk_iot::config::Builder::from(config)).build(),
    )
}

/// An AWS IoT client that makes each call once: for a caller that retries
/// through its pacer ([`crate::pacing::Paced::retrying`]), so retries, too,
/// keep to the quota.
pub fn iot_client_without_retries(config: &SdkConfig) -> aws_sdk_iot::Client {
    let config = iot_retry_rules(aws_sdk_iot::config::Builder::from(config))
        .retry_config(RetryConfig::disabled())
        .build();
    aws_sdk_iot::Client::from_conf(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_classified() {
        let c = |code: &str, status| classify(code.into(), "m".into(), status);
        assert!(matches!(
            c("ThrottlingException", 429),
            AwsError::Throttled { .. }
        ));
        assert!(matches!(
            c("UnrecognizedClientException", 403),
            AwsError::BadCredentials { .. }
        ));
        assert!(matches!(
            c("AccessDeniedException", 403),
            AwsError::AccessDenied { .. }
        ));
        assert!(matches!(c("Whatever", 403), AwsError::AccessDenied { .. }));
        assert!(matches!(
            c("ResourceNotFoundException", 404),
            AwsError::NotFound(_)
        ));
        assert!(matches!(
            c("InternalFailureException", 500),
            AwsError::Service { .. }
        ));
        assert!(matches!(c("Odd", 503), AwsError::Service { .. }));
        assert!(matches!(
            c("InvalidRequestException", 400),
            AwsError::Refused { .. }
        ));
        assert!(c("ThrottlingException", 429).is_transient());
        assert!(!c("InvalidRequestException", 400).is_transient());
    }

    #[test]
    fn a_quota_reached_is_not_throttling() {
        // AWS IoT answers a resource quota (too many policies on a target)
        // with LimitExceededException, HTTP 410: retrying cannot help.
        let e = classify(
            "LimitExceededException".into(),
            "too many policies".into(),
            410,
        );
        assert!(!e.is_transient(), "{e:?}");
        let text = e.to_string();
        assert!(
            text.contains("limit") && text.contains("too many policies"),
            "{text}"
        );
        assert!(!text.contains("throttled"), "{text}");
        // The same code answered 429 (API Gateway's throttle) stays a throttle.
        assert!(classify("LimitExceededException".into(), "m".into(), 429).is_transient());
    }
}
