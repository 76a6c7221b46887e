//! The deployed JITR stack (`infra/`), read back from the services that run
//! it: the topic rule (`topic_rule.rs`), the event queue and its dead-letter
//! queue (`queue.rs`), the event source mapping and the function. Found from
//! the CloudFormation stack's resources (`--stack`, see `stack.rs`) or from
//! the rule that listens on the registration topic.

use std::collections::BTreeMap;

use jitr_core::aws::AwsError;

use super::queue::{queue_name, QueueView};
use super::topic_rule::{covers, RuleView};
use super::Cloud;

#[derive(Debug, Clone, Default)]
pub struct MappingView {
    /// Lambda's state of the mapping (`Enabled`, `Disabled`, `Creating`, ...).
    pub state: String,
    pub queue_arn: String,
    pub function_arn: String,
}

impl MappingView {
    /// Whether Lambda delivers the queue's events (its state is `Enabled`).
    pub fn enabled(&self) -> bool {
        self.state == "Enabled"
    }
}

#[derive(Debug, Clone, Default)]
pub struct FunctionView {
    pub name: String,
    pub arn: String,
    /// The execution role's ARN.
    pub role: String,
    /// Where its logs go (LoggingConfig, else `/aws/lambda/NAME`).
    pub log_group: String,
    pub env: BTreeMap<String, String>,
}

/// What was found; `None` where a part is missing.
#[derive(Debug, Clone, Default)]
pub struct Deployment {
    /// How it was found, for messages.
    pub found_by: String,
    pub rule: Option<RuleView>,
    /// The event queues found (the bulk and the fast lane): those the rule
    /// sends to and, with a stack, its queues that redrive to a dead-letter
    /// queue. One the rule names but SQS does not hold is absent.
    pub queues: Vec<QueueView>,
    /// Their dead-letter queue (the first lane's target), when it exists.
    pub dead_letter: Option<QueueView>,
    /// Every SQS event source mapping of the function or of the queues.
    pub mappings: Vec<MappingView>,
    pub function: Option<FunctionView>,
    /// The device policy the stack created, when found through the stack.
    pub policy: Option<String>,
    /// The rule the stack names, when AWS IoT does not hold it.
    pub missing_rule: Option<String>,
    /// The stack's name, when found through it.
    pub stack: Option<String>,
}

impl Cloud {
    fn lambda(&self) -> aws_sdk_lambda::Client {
        aws_sdk_lambda::Client::new(self.config())
    }

    /// The function's configuration; `None` if it does not exist.
    pub fn function(&self, name: &str) -> Result<Option<FunctionView>, AwsError> {
        let answer = self.block_on(
            self.lambda()
                .get_function_configuration()
                .function_name(name)
                .send(),
        );
        let out = match answer {
            Ok(out) => out,
            Err(e) => match AwsError::from_sdk(e, &self.endpoint) {
                AwsError::NotFound(_) => return Ok(None),
                e => return Err(e),
            },
        };
        let env = out
            .environment()
            .and_then(|e| e.variables())
            .map(|v| v.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        let name = out.function_name().unwrap_or(name).to_string();
        Ok(Some(FunctionView {
            arn: out.function_arn().unwrap_or_default().to_string(),
            role: out.role().unwrap_or_default().to_string(),
            log_group: out
                .logging_config()
                .and_then(|l| l.log_group())
                .map(str::to_string)
                .unwrap_or_else(|| format!("/aws/lambda/{name}")),
            name,
            env,
        }))
    }

    /// The SQS event source mappings of a function (by name) or of a queue (by ARN).
    fn mappings(
        &self,
        function: Option<&str>,
        queue_arn: Option<&str>,
    ) -> Result<Vec<MappingView>, AwsError> {
        let out = self
            .block_on(
                self.lambda()
                    .list_event_source_mappings()
                    .set_function_name(function.map(str::to_string))
                    .set_event_source_arn(queue_arn.map(str::to_string))
                    .send(),
            )
            .map_err(|e| AwsError::from_sdk(e, &self.endpoint))?;
        Ok(out
            .event_source_mappings()
            .iter()
            .map(|m| MappingView {
                state: m.state().unwrap_or_default().to_string(),
                queue_arn: m.event_source_arn().unwrap_or_default().to_string(),
                function_arn: m.function_arn().unwrap_or_default().to_string(),
            })
            .filter(|m| m.queue_arn.contains(":sqs:"))
            .collect())
    }

    /// The deployment: from the stack's resources when `stack` is given
    /// (`None` if there is no such stack), else from the registration rule
    /// that covers `ca_id` (or any such rule).
    pub fn deployment(
        &self,
        stack: Option<&str>,
        ca_id: Option<&str>,
    ) -> Result<Option<Deployment>, AwsError> {
        let mut d = match stack {
            Some(stack) => match self.read_stack(stack)? {
                Some(d) => d,
                None => return Ok(None),
            },
            None => self.read_by_rule(ca_id)?,
        };
        if let Some(arn) = d.queues.iter().find_map(|q| q.dead_letter_arn.clone()) {
            d.dead_letter = self.queue(&arn)?;
        }
        Ok(Some(d))
    }

    /// The parts the stack's resources name; `None` if there is no such stack.
    fn read_stack(&self, stack: &str) -> Result<Option<Deployment>, AwsError> {
        let mut d = Deployment::default();
        let Some(parts) = self.stack_parts(stack)? else {
            return Ok(None);
        };
        d.found_by = format!("stack {stack}");
        d.policy = parts.policy;
        if let Some(name) = &parts.rule {
            d.rule = self.rule(name)?;
            d.missing_rule = d.rule.is_none().then(|| name.clone());
        }
        d.stack = Some(stack.to_string());
        // The event queues: the rule's, and the stack's that redrive
        // (a stack queue that is gone and is nobody's redrive target is
        // one the rule names, so it shows in `rule action`).
        let mut urls: Vec<String> = d.rule.iter().flat_map(|r| r.queue_urls.clone()).collect();
        urls.extend(parts.queues.iter().cloned());
        for url in urls {
            if d.queues
                .iter()
                .any(|q| queue_name(&q.url) == queue_name(&url))
            {
                continue;
            }
            if let Some(q) = self.queue(&url)? {
                let of_rule = d.rule.as_ref().is_some_and(|r| {
                    r.queue_urls
                        .iter()
                        .any(|u| queue_name(u) == queue_name(&q.url))
                });
                if of_rule || q.dead_letter_arn.is_some() {
                    d.queues.push(q);
                }
            }
        }
        if let Some(name) = &parts.function {
            d.function = self.function(name)?;
        }
        if let Some(f) = &d.function {
            d.mappings = self.mappings(Some(&f.name), None)?;
        }
        Ok(Some(d))
    }

    /// The parts reached from the registration rule that covers `ca_id`
    /// (or the first such rule): its queues, their mappings, the function.
    fn read_by_rule(&self, ca_id: Option<&str>) -> Result<Deployment, AwsError> {
        let mut d = Deployment::default();
        let rules = self.registration_rules()?;
        let pick = rules
            .iter()
            .find(|r| ca_id.is_some_and(|id| covers(&r.topic, id)))
            .or_else(|| rules.first());
        d.found_by = match pick {
            Some(r) => format!("topic rule {}", r.name),
            None => "no topic rule on the registration topic".into(),
        };
        d.rule = pick.cloned();
        // Every queue the rule sends to, each lane's mapping.
        for url in d.rule.iter().flat_map(|r| r.queue_urls.clone()) {
            if let Some(q) = self.queue(&url)? {
                d.mappings.extend(self.mappings(None, Some(&q.arn))?);
                d.queues.push(q);
            }
        }
        if let Some(m) = d.mappings.first() {
            let name = queue_name(&m.function_arn).to_string();
            d.function = self.function(&name)?;
        }
        Ok(d)
    }
}
