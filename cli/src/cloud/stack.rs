//! The deployed stack's parts, by resource type, from CloudFormation
//! (DescribeStackResources): the same for the SAM and the CDK template,
//! whose logical ids differ.

use jitr_core::aws::AwsError;

use super::Cloud;

/// The physical ids of the stack's JITR resources.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StackParts {
    /// The topic rule's name.
    pub rule: Option<String>,
    /// Queue URLs (the event queue and its dead-letter queue).
    pub queues: Vec<String>,
    /// The function's name.
    pub function: Option<String>,
    /// The device policy's name.
    pub policy: Option<String>,
}

impl StackParts {
    /// Sorts (resource type, physical id) pairs into parts.
    pub fn from_resources<'a>(resources: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut parts = StackParts::default();
        for (kind, id) in resources {
            let id = Some(id.to_string()).filter(|i| !i.is_empty());
            match kind {
                "AWS::IoT::TopicRule" => parts.rule = parts.rule.or(id),
                "AWS::SQS::Queue" => parts.queues.extend(id),
                "AWS::Lambda::Function" => parts.function = parts.function.or(id),
                "AWS::IoT::Policy" => parts.policy = parts.policy.or(id),
                _ => {}
            }
        }
        parts
    }
}

/// Whether a CloudFormation error says the stack does not exist (it
/// answers ValidationError "Stack with id NAME does not exist").
fn no_such_stack(e: &AwsError) -> bool {
    match e {
        AwsError::NotFound(_) => true,
        AwsError::Refused { message, .. } => message.contains("does not exist"),
        _ => false,
    }
}

impl Cloud {
    /// The stack's parts; `None` when there is no stack of that name.
    pub fn stack_parts(&self, stack: &str) -> Result<Option<StackParts>, AwsError> {
        let cfn = aws_sdk_cloudformation::Client::new(self.config());
        let out = match self
            .block_on(cfn.describe_stack_resources().stack_name(stack).send())
            .map_err(|e| self.error(e))
        {
            Ok(out) => out,
            Err(e) if no_such_stack(&e) => return Ok(None),
            Err(e) => return Err(e),
        };
        // The templates' other function attaches the device policy to the
        // device group at deployment (DeviceGroupPolicyFunction): not JITR's.
        let deployment_only = |r: &&aws_sdk_cloudformation::types::StackResource| {
            r.logical_resource_id()
                .is_some_and(|id| id.starts_with("DeviceGroupPolicyFunction"))
        };
        Ok(Some(StackParts::from_resources(
            out.stack_resources()
                .iter()
                .filter(|r| !deployment_only(r))
                .map(|r| {
                    (
                        r.resource_type().unwrap_or_default(),
                        r.physical_resource_id().unwrap_or_default(),
                    )
                }),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_sort_into_parts_by_type() {
        let parts = StackParts::from_resources([
            ("AWS::IAM::Role", "jitr-RuleRole-X"),
            ("AWS::SQS::Queue", "http://q/jitr-EventQueue-X"),
            ("AWS::SQS::Queue", "http://q/jitr-DeadLetterQueue-X"),
            ("AWS::IoT::TopicRule", "jitr_registered"),
            ("AWS::Lambda::Function", "jitr-jitr"),
            ("AWS::Lambda::EventSourceMapping", "uuid"),
            ("AWS::IoT::Policy", "jitr-DevicePolicy-X"),
            ("AWS::Lambda::Function", ""),
        ]);
        assert_eq!(
            parts,
            StackParts {
                rule: Some("jitr_registered".into()),
                queues: vec![
                    "http://q/jitr-EventQueue-X".into(),
                    "http://q/jitr-DeadLetterQueue-X".into()
                ],
                function: Some("jitr-jitr".into()),
                policy: Some("jitr-DevicePolicy-X".into()),
            }
        );
        assert_eq!(StackParts::from_resources([]), StackParts::default());
    }

    #[test]
    fn a_missing_stack_is_told_from_other_errors() {
        let refused = |m: &str| AwsError::Refused {
            code: "ValidationError".into(),
            message: m.into(),
        };
        assert!(no_such_stack(&refused("Stack with id x does not exist")));
        assert!(!no_such_stack(&refused("bad request")));
        assert!(!no_such_stack(&AwsError::AccessDenied {
            code: "AccessDenied".into(),
            message: "no".into()
        }));
    }
}
