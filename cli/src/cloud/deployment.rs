//! The deployed JITR stack (`infra/`), read back from the services that run
//! it: the topic rule, the event queue and its dead-letter queue, the event
//! source mapping and the function. Found from the CloudFormation stack's
//! resources (`--stack`, see `stack.rs`) or from the rule that listens on
//! the registration topic.

use std::collections::BTreeMap;

use jitr_core::aws::AwsError;

use super::Cloud;

/// The topic AWS IoT publishes auto-registrations on, before the CA id.
pub const REGISTERED_TOPIC: &str = "$aws/events/certificates/registered/";

#[derive(Debug, Clone, Default)]
pub struct RuleView {
    pub name: String,
    pub arn: String,
    /// The topic the rule's SQL selects from.
    pub topic: String,
    pub disabled: bool,
    pub queue_urls: Vec<String>,
    pub function_arns: Vec<String>,
    /// The roles its SQS actions send with.
    pub role_arns: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct QueueView {
    pub url: String,
    pub arn: String,
    pub dead_letter_arn: Option<String>,
    /// ApproximateNumberOfMessages.
    pub messages: u64,
}

#[derive(Debug, Clone, Default)]
pub struct MappingView {
    pub state: String,
    pub queue_arn: String,
    pub function_arn: String,
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
    pub queue: Option<QueueView>,
    pub dead_letter: Option<QueueView>,
    pub mapping: Option<MappingView>,
    pub function: Option<FunctionView>,
    /// The device policy the stack created, when found through the stack.
    pub policy: Option<String>,
}

/// The SQS queue name in a queue URL or ARN (the last `/` or `:` part).
fn queue_name(url_or_arn: &str) -> &str {
    url_or_arn.rsplit(['/', ':']).next().unwrap_or_default()
}

/// Whether `topic` (a rule's topic filter) receives `ca_id`'s registrations.
pub fn covers(topic: &str, ca_id: &str) -> bool {
    match topic.strip_prefix(REGISTERED_TOPIC) {
        Some("+") | Some("#") => true,
        Some(id) => id.eq_ignore_ascii_case(ca_id),
        None => topic == "$aws/events/certificates/#" || topic == "$aws/events/#",
    }
}

impl Cloud {
    fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(self.config())
    }

    fn lambda(&self) -> aws_sdk_lambda::Client {
        aws_sdk_lambda::Client::new(self.config())
    }

    /// Every topic rule listening on the registration topic, in full.
    pub fn registration_rules(&self) -> Result<Vec<RuleView>, AwsError> {
        let names = self.all_pages(|token| async move {
            let page = self
                .iot
                .list_topic_rules()
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| self.error(e))?;
            let names = page
                .rules()
                .iter()
                .filter_map(|r| r.rule_name().map(str::to_string))
                .collect();
            Ok((names, page.next_token().map(str::to_string)))
        })?;
        let mut rules = Vec::new();
        for name in names {
            if let Some(rule) = self.rule(&name)? {
                if rule.topic.starts_with("$aws/events/") {
                    rules.push(rule);
                }
            }
        }
        Ok(rules)
    }

    /// One topic rule by name; `None` if it does not exist.
    pub fn rule(&self, name: &str) -> Result<Option<RuleView>, AwsError> {
        let answer = self.block_on(self.iot.get_topic_rule().rule_name(name).send());
        let Some(out) = self.found(answer)? else {
            return Ok(None);
        };
        let Some(rule) = out.rule() else {
            return Ok(None);
        };
        let sqs = || rule.actions().iter().filter_map(|a| a.sqs());
        Ok(Some(RuleView {
            name: name.to_string(),
            arn: out.rule_arn().unwrap_or_default().to_string(),
            topic: topic_of(rule.sql().unwrap_or_default()),
            disabled: rule.rule_disabled().unwrap_or(false),
            queue_urls: sqs().map(|s| s.queue_url().to_string()).collect(),
            role_arns: sqs().map(|s| s.role_arn().to_string()).collect(),
            function_arns: rule
                .actions()
                .iter()
                .filter_map(|a| a.lambda().map(|l| l.function_arn().to_string()))
                .collect(),
        }))
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
                AwsError::NotFound(_) => return Ok(None),
                AwsError::Service { code, .. } if code.contains("NonExistentQueue") => {
                    return Ok(None)
                }
                e => return Err(e),
            },
        };
        let attrs = self
            .block_on(
                sqs.get_queue_attributes()
                    .queue_url(&url)
                    .attribute_names(A::All)
                    .send(),
            )
            .map_err(|e| AwsError::from_sdk(e, &self.endpoint))?;
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
        let mut d = Deployment::default();
        if let Some(stack) = stack {
            let Some(parts) = self.stack_parts(stack)? else {
                return Ok(None);
            };
            d.found_by = format!("stack {stack}");
            d.policy = parts.policy;
            if let Some(name) = &parts.rule {
                d.rule = self.rule(name)?;
            }
            // The event queue is the one with a dead-letter target.
            for url in &parts.queues {
                match self.queue(url)? {
                    Some(q) if q.dead_letter_arn.is_some() => d.queue = Some(q),
                    _ => {}
                }
            }
            if d.queue.is_none() {
                if let Some(url) = d.rule.as_ref().and_then(|r| r.queue_urls.first()) {
                    d.queue = self.queue(url)?;
                }
            }
            if let Some(name) = &parts.function {
                d.function = self.function(name)?;
            }
            if let Some(f) = &d.function {
                d.mapping = self.mappings(Some(&f.name), None)?.into_iter().next();
            }
        } else {
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
            if let Some(url) = d.rule.as_ref().and_then(|r| r.queue_urls.first()) {
                d.queue = self.queue(url)?;
            }
            if let Some(q) = &d.queue {
                d.mapping = self.mappings(None, Some(&q.arn))?.into_iter().next();
            }
            if let Some(m) = &d.mapping {
                let name = queue_name(&m.function_arn).to_string();
                d.function = self.function(&name)?;
            }
        }
        if let Some(arn) = d.queue.as_ref().and_then(|q| q.dead_letter_arn.clone()) {
            d.dead_letter = self.queue(&arn)?;
        }
        Ok(Some(d))
    }
}

/// The topic in `SELECT ... FROM 'topic' ...`.
pub fn topic_of(sql: &str) -> String {
    let lower = sql.to_ascii_lowercase();
    let Some(at) = lower.find(" from ") else {
        return String::new();
    };
    let rest = sql[at + 6..].trim_start();
    let quote = rest.chars().next().unwrap_or(' ');
    if quote == '\'' || quote == '"' {
        rest[1..]
            .split(quote)
            .next()
            .unwrap_or_default()
            .to_string()
    } else {
        rest.split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_come_out_of_rule_sql() {
        let cases = [
            (
                "SELECT * FROM '$aws/events/certificates/registered/abc'",
                "$aws/events/certificates/registered/abc",
            ),
            ("select a, b from \"x/+\" where c = 1", "x/+"),
            ("SELECT * FROM 'a/b' WHERE x", "a/b"),
            ("SELECT 1", ""),
        ];
        for (sql, topic) in cases {
            assert_eq!(topic_of(sql), topic, "{sql}");
        }
    }

    #[test]
    fn a_rule_covers_its_ca_or_every_ca() {
        let t = |s: &str| format!("{REGISTERED_TOPIC}{s}");
        assert!(covers(&t("abc"), "abc"));
        assert!(covers(&t("ABC"), "abc"));
        assert!(covers(&t("+"), "abc"));
        assert!(!covers(&t("def"), "abc"));
        assert!(!covers("things/+/hello", "abc"));
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
