//! The AWS SDK configuration in-process tests give the crate's code: what
//! `jitr_core::aws` loads, for one emulator, with its endpoint, region and
//! credentials passed in. Never through the process's environment: every
//! test of a binary shares it, so one test's `std::env::set_var` would point
//! another test's SDK, and every process any test starts afterwards, at its
//! emulator (and setting it while other threads read it is unsound).

use aws_config::timeout::TimeoutConfig;
use aws_config::SdkConfig;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use jitr_core::aws::{self, AwsOptions};

/// The configuration for the emulator whose settings are `env`
/// ([`crate::ministack::Ministack::env`], [`crate::moto::Moto::env`]):
/// `jitr_core::aws::load_with` with `timeouts` (the function's,
/// [`aws::function_timeouts`]), or `jitr_core::aws::load` (the CLI's) when
/// None; then its credentials.
pub async fn config(env: &[(&str, String)], timeouts: Option<TimeoutConfig>) -> SdkConfig {
    let get = |name: &str| {
        env.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("{name} is not among the emulator's settings"))
    };
    let options = AwsOptions {
        endpoint_url: Some(get("AWS_ENDPOINT_URL")),
        region: Some(get("AWS_REGION")),
        ..AwsOptions::default()
    };
    let loaded = match timeouts {
        Some(timeouts) => aws::load_with(&options, timeouts).await,
        None => aws::load(&options).await,
    };
    let credentials = Credentials::new(
        get("AWS_ACCESS_KEY_ID"),
        get("AWS_SECRET_ACCESS_KEY"),
        None,
        None,
        "jitr-tests",
    );
    loaded
        .unwrap_or_else(|e| panic!("the SDK configuration: {e}"))
        .into_builder()
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .build()
}

/// The function's configuration ([`aws::function_timeouts`]) for the
/// emulator whose settings are `env`.
pub async fn function_config(env: &[(&str, String)]) -> SdkConfig {
    config(env, Some(aws::function_timeouts())).await
}
