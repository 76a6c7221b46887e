//! What `jitr doctor` reads of the deployed function's running: its
//! timeout and reserved concurrency (Lambda), its event queue's depth and
//! visibility timeout (SQS), its event source mapping's UUID.

use aws_sdk_sqs::types::QueueAttributeName as A;
use jitr_core::aws::AwsError;

use super::Cloud;

/// An event queue as SQS reports it, with the function's timeout.
#[derive(Debug, Clone, Default)]
pub struct QueueDepth {
    pub url: String,
    /// Waiting (ApproximateNumberOfMessages).
    pub visible: u64,
    /// Received, not yet deleted (ApproximateNumberOfMessagesNotVisible).
    pub in_flight: u64,
    pub visibility_timeout: i64,
    pub function_timeout: i64,
}

impl Cloud {
    /// The function's timeout (s) and reserved concurrency (`None`: unreserved).
    pub fn function_limits(&self, name: &str) -> Result<(i64, Option<i32>), AwsError> {
        let lambda = aws_sdk_lambda::Client::new(self.config());
        let conf = self
            .block_on(
                lambda
                    .get_function_configuration()
                    .function_name(name)
                    .send(),
            )
            .map_err(|e| self.error(e))?;
        let reserved = self
            .block_on(lambda.get_function_concurrency().function_name(name).send())
            .map_err(|e| self.error(e))?;
        Ok((
            conf.timeout().unwrap_or(3).into(),
            reserved.reserved_concurrent_executions(),
        ))
    }

    /// The UUID of the event source mapping from `queue_arn` to `function`.
    pub fn mapping_uuid(
        &self,
        function: &str,
        queue_arn: &str,
    ) -> Result<Option<String>, AwsError> {
        let lambda = aws_sdk_lambda::Client::new(self.config());
        let out = self
            .block_on(
                lambda
                    .list_event_source_mappings()
                    .function_name(function)
                    .event_source_arn(queue_arn)
                    .send(),
            )
            .map_err(|e| self.error(e))?;
        Ok(out
            .event_source_mappings()
            .iter()
            .find_map(|m| m.uuid().map(str::to_string)))
    }

    /// The queue's depth and visibility timeout, with `function_timeout`.
    pub fn queue_timing(&self, url: &str, function_timeout: i64) -> Result<QueueDepth, AwsError> {
        let sqs = aws_sdk_sqs::Client::new(self.config());
        let out = self
            .block_on(
                sqs.get_queue_attributes()
                    .queue_url(url)
                    .attribute_names(A::ApproximateNumberOfMessages)
                    .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
                    .attribute_names(A::VisibilityTimeout)
                    .send(),
            )
            .map_err(|e| self.error(e))?;
        let attrs = out.attributes().cloned().unwrap_or_default();
        let number = |a: A| attrs.get(&a).and_then(|n| n.parse().ok()).unwrap_or(0);
        Ok(QueueDepth {
            url: url.to_string(),
            visible: number(A::ApproximateNumberOfMessages),
            in_flight: number(A::ApproximateNumberOfMessagesNotVisible),
            visibility_timeout: number(A::VisibilityTimeout) as i64,
            function_timeout,
        })
    }
}
