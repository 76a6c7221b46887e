//! The CLI's AWS calls, as domain verbs returning typed values (the way
//! `core/src/iot.rs` serves the function): commands hold the flow and the
//! presentation, this module the SDK. One file per concept: CAs, device
//! certificates, the deployed stack, IAM, the function's logs.

use std::future::Future;

use jitr_core::aws::{self, AwsError, AwsOptions};

use crate::error::CliError;

pub mod allow_list;
pub mod ca;
pub mod certificate;
pub mod deployment;
pub mod function;
pub mod iam;
pub mod lifecycle;
pub mod logs;
pub mod metrics;
pub mod queue;
pub mod stack;
pub mod topic_rule;

/// An AWS IoT client ready to call, with the runtime that drives it.
pub struct Cloud {
    /// Private to `cloud`: commands call the verbs, not the SDK.
    iot: aws_sdk_iot::Client,
    /// Where calls go, for messages.
    pub endpoint: String,
    pub region: String,
    config: aws_config::SdkConfig,
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
            .map_err(|e| CliError::startup("the async runtime", e))?;
        let config = rt
            .block_on(aws::load(opts))
            .map_err(|e| CliError::aws("AWS configuration", e))?;
        rt.block_on(aws::check_credentials(&config))
            .map_err(|e| CliError::aws("AWS credentials", e))?;
        Ok(Cloud {
            iot: aws::iot_client(&config),
            endpoint: aws::endpoint_of(&config),
            region: config.region().map(|r| r.to_string()).unwrap_or_default(),
            config,
            rt,
        })
    }

    /// Runs `f` to completion.
    pub fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// Classifies an SDK error (of any AWS service).
    pub fn error<E>(&self, err: aws_sdk_iot::error::SdkError<E>) -> AwsError
    where
        E: aws_sdk_iot::error::ProvideErrorMetadata + std::error::Error + 'static,
    {
        AwsError::from_sdk(err, &self.endpoint)
    }

    /// An SDK answer with "not found" as `None` (a resource AWS does not hold).
    fn found<T, E>(
        &self,
        answer: Result<T, aws_sdk_iot::error::SdkError<E>>,
    ) -> Result<Option<T>, AwsError>
    where
        E: aws_sdk_iot::error::ProvideErrorMetadata + std::error::Error + 'static,
    {
        match answer.map_err(|e| self.error(e)) {
            Ok(out) => Ok(Some(out)),
            Err(AwsError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every item of a paged listing (the one place that pages): `page(token)`
    /// fetches one page and returns its items and the next token, absent or
    /// empty on the last page.
    fn all_pages<T, Fut>(
        &self,
        mut page: impl FnMut(Option<String>) -> Fut,
    ) -> Result<Vec<T>, AwsError>
    where
        Fut: Future<Output = Result<(Vec<T>, Option<String>), AwsError>>,
    {
        let mut items = Vec::new();
        let mut token = None;
        loop {
            let (more, next) = self.block_on(page(token))?;
            items.extend(more);
            token = next.filter(|t| !t.is_empty());
            if token.is_none() {
                return Ok(items);
            }
        }
    }

    /// The names of the policies attached to `target` (a certificate's or
    /// a thing group's ARN; `recursive`: and to the group's ancestors),
    /// ListAttachedPolicies, every page.
    fn attached_policies(&self, target: &str, recursive: bool) -> Result<Vec<String>, AwsError> {
        self.all_pages(|marker| async move {
            let page = self
                .iot
                .list_attached_policies()
                .target(target)
                .set_recursive(recursive.then_some(true))
                .set_marker(marker)
                .send()
                .await
                .map_err(|e| self.error(e))?;
            let names = page
                .policies()
                .iter()
                .filter_map(|p| p.policy_name().map(str::to_string))
                .collect();
            Ok((names, page.next_marker().map(str::to_string)))
        })
    }

    /// The SDK configuration, for the other services' clients.
    pub fn config(&self) -> &aws_config::SdkConfig {
        &self.config
    }

    /// The provisioning API the function uses, for `jitr provision` and `jitr reconcile`.
    pub fn provisioning_api(&self) -> jitr_core::iot::SdkIot {
        jitr_core::iot::SdkIot {
            client: self.iot.clone(),
            endpoint: self.endpoint.clone(),
        }
    }

    /// The account the credentials belong to (STS GetCallerIdentity).
    pub fn account(&self) -> Result<String, AwsError> {
        let sts = aws_sdk_sts::Client::new(self.config());
        let out = self
            .block_on(sts.get_caller_identity().send())
            .map_err(|e| self.error(e))?;
        Ok(out.account().unwrap_or_default().to_string())
    }
}
