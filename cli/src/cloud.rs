//! The connection to AWS IoT for the commands that talk to AWS: the SDK
//! client, a runtime to drive it, and errors in the user's terms.

use std::future::Future;

use jitr_core::aws::{self, AwsError, AwsOptions};

use crate::error::CliError;

/// An AWS IoT client ready to call, with the runtime that drives it.
pub struct Cloud {
    pub iot: aws_sdk_iot::Client,
    /// Where calls go, for messages.
    pub endpoint: String,
    pub region: String,
    rt: tokio::runtime::Runtime,
}

impl Cloud {
    /// Resolves region and credentials (one clear sentence if either is
    /// missing) and builds the client.
    pub fn connect(opts: &AwsOptions) -> Result<Self, CliError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| CliError::Crypto(format!("cannot start the async runtime: {e}")))?;
        let config = rt
            .block_on(aws::load(opts))
            .map_err(|e| CliError::aws("AWS configuration", e))?;
        rt.block_on(aws::check_credentials(&config))
            .map_err(|e| CliError::aws("AWS credentials", e))?;
        Ok(Cloud {
            iot: aws::iot_client(&config),
            endpoint: aws::endpoint_of(&config),
            region: config.region().map(|r| r.to_string()).unwrap_or_default(),
            rt,
        })
    }

    /// Runs `f` to completion.
    pub fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// Classifies an SDK error of the call `action`.
    pub fn error<E>(&self, err: aws_sdk_iot::error::SdkError<E>) -> AwsError
    where
        E: aws_sdk_iot::error::ProvideErrorMetadata + std::error::Error + 'static,
    {
        AwsError::from_sdk(err, &self.endpoint)
    }
}
