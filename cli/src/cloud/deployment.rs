//! The deployed JITR stack (`infra/`), read back from the services that run
//! it: the topic rule, the event queue and its dead-letter queue, the event
//! source mapping and the function. Found from the stack name (the templates
//! name the function `<stack>-jitr`) or from the rule that listens on the
//! registration topic.

use std::collections::BTreeMap;

use jitr_core::aws::AwsError;

use super::Cloud;

/// The topic AWS IoT publishes auto-registrations on, before the CA id.
pub const REGISTERED_TOPIC: &str = "$aws/events/certificates/registered/";

#[derive(Debug, Clone, Default)]
pub struct RuleView {
    pub name: String,
    /// The topic the rule's SQL selects from.
    pub topic: String,
    pub disabled: bool,
    pub queue_urls: Vec<String>,
    pub function_arns: Vec<String>,
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
        let mut names = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .block_on(
                    self.iot
                        .list_topic_rules()
                        .set_next_token(token.clone())
                        .send(),
                )
                .map_err(|e| self.error(e))?;
            names.extend(
                page.rules()
                    .iter()
                    .filter_map(|r| r.rule_name().map(str::to_string)),
            );
            token = page
                .next_token()
                .filter(|t| !t.is_empty())
                .map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        let mut rules = Vec::new();
        for name in names {
            let out = self
                .block_on(self.iot.get_topic_rule().rule_name(&name).send())
                .map_err(|e| self.error(e))?;
            let Some(rule) = out.rule() else { continue };
            let topic = topic_of(rule.sql().unwrap_or_default());
            if !topic.starts_with("$aws/events/") {
                continue;
            }
            rules.push(RuleView {
                name,
                topic,
                disabled: rule.rule_disabled().unwrap_or(false),
                queue_urls: rule
                    .actions()
                    .iter()
                    .filter_map(|a| a.sqs().map(|s| s.queue_url().to_string()))
                    .collect(),
                function_arns: rule
                    .actions()
                    .iter()
                    .filter_map(|a| a.lambda().map(|l| l.function_arn().to_string()))
                    .collect(),
            });
        }
        Ok(rules)
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
        Ok(Some(FunctionView {
            name: out.function_name().unwrap_or(name).to_string(),
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

    /// The deployment: from the stack's function when `stack` is given, else
    /// from the registration rule that covers `ca_id` (or any such rule).
    pub fn deployment(
        &self,
        stack: Option<&str>,
        ca_id: Option<&str>,
    ) -> Result<Deployment, AwsError> {
        let rules = self.registration_rules()?;
        let mut d = Deployment::default();
        if let Some(stack) = stack {
            let name = format!("{stack}-jitr");
            d.found_by = format!("stack {stack} (function {name})");
            d.function = self.function(&name)?;
            if d.function.is_some() {
                d.mapping = self.mappings(Some(&name), None)?.into_iter().next();
            }
            if let Some(m) = &d.mapping {
                d.queue = self.queue(&m.queue_arn)?;
            }
            let queue = d.queue.as_ref().map(|q| queue_name(&q.url).to_string());
            d.rule = rules
                .iter()
                .find(|r| {
                    r.queue_urls
                        .iter()
                        .any(|u| Some(queue_name(u)) == queue.as_deref())
                        || r.function_arns
                            .iter()
                            .any(|f| f.ends_with(&format!(":{name}")))
                })
                .cloned();
        } else {
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
        Ok(d)
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
