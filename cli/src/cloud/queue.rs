//! The deployment's SQS queues: an event queue or its dead-letter queue read
//! back (URL, ARN, redrive target, depth), a missing one told from an error.

use jitr_core::aws::AwsError;

use super::Cloud;

#[derive(Debug, Clone, Default)]
pub struct QueueView {
    pub url: String,
    pub arn: String,
    pub dead_letter_arn: Option<String>,
    /// ApproximateNumberOfMessages.
    pub messages: u64,
}

/// The SQS queue name in a queue URL or ARN (the last `/` or `:` part).
pub(crate) fn queue_name(url_or_arn: &str) -> &str {
    url_or_arn.rsplit(['/', ':']).next().unwrap_or_default()
}

/// Whether an SQS error says the queue does not exist. SQS (JSON protocol,
/// AWS query compatible) answers HTTP 400 with `x-amzn-query-error:
/// AWS.SimpleQueueService.NonExistentQueue;Sender` (the code the SDK
/// reports) and `__type` QueueDoesNotExist (the code without that header).
pub(crate) fn queue_missing(e: &AwsError) -> bool {
    match e {
        AwsError::NotFound(_) => true,
        AwsError::Refused { code, .. } | AwsError::Service { code, .. } => {
            code == "AWS.SimpleQueueService.NonExistentQueue" || code == "QueueDoesNotExist"
        }
        _ => false,
    }
}

impl Cloud {
    fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(self.config())
    }

    /// The queue's URL, ARN, dead-letter target and depth; `None` if it does not exist.
    pub fn queue(&self, url_or_arn: &str) -> Result<Option<QueueView>, AwsError> {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        let sqs = self.sqs();
        let url = match self.block_on(
            sqs.get_queue_url()
                .queue_name(queue_name(url_or_arn))
                .send(),
        ) {
            Ok(out) => out.queue_url().unwrap_or_default().to_string(),
            Err(e) => match AwsError::from_sdk(e, &self.endpoint) {
                e if queue_missing(&e) => return Ok(None),
                e => return Err(e),
            },
        };
        let attrs = match self.block_on(
            sqs.get_queue_attributes()
                .queue_url(&url)
                .attribute_names(A::All)
                .send(),
        ) {
            Ok(attrs) => attrs,
            // Deleted since GetQueueUrl.
            Err(e) => match AwsError::from_sdk(e, &self.endpoint) {
                e if queue_missing(&e) => return Ok(None),
                e => return Err(e),
            },
        };
        let attrs = attrs.attributes().cloned().unwrap_or_default();
        let dead_letter_arn = attrs
            .get(&A::RedrivePolicy)
            .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok())
            .and_then(|p| p["deadLetterTargetArn"].as_str().map(str::to_string));
        Ok(Some(QueueView {
            url,
            arn: attrs.get(&A::QueueArn).cloned().unwrap_or_default(),
            dead_letter_arn,
            messages: attrs
                .get(&A::ApproximateNumberOfMessages)
                .and_then(|n| n.parse().ok())
                .unwrap_or(0),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_queue_is_told_by_either_of_sqs_codes() {
        let refused = |code: &str| AwsError::Refused {
            code: code.into(),
            message: "The specified queue does not exist.".into(),
        };
        assert!(queue_missing(&refused(
            "AWS.SimpleQueueService.NonExistentQueue"
        )));
        assert!(queue_missing(&refused("QueueDoesNotExist")));
        assert!(queue_missing(&AwsError::NotFound("q".into())));
        assert!(!queue_missing(&refused("AccessDenied")));
        assert!(!queue_missing(&AwsError::AccessDenied {
            code: "AccessDenied".into(),
            message: "not authorized to perform: sqs:getqueueurl".into(),
        }));
    }

    #[test]
    fn queue_names_come_from_urls_and_arns() {
        assert_eq!(
            queue_name("http://127.0.0.1:4566/000000000000/jitr-EventQueue-X"),
            "jitr-EventQueue-X"
        );
        assert_eq!(
            queue_name("arn:aws:sqs:us-east-1:000000000000:jitr-EventQueue-X"),
            "jitr-EventQueue-X"
        );
    }
}
