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

/// What GetTopicRule's denial means once ListTopicRules was asked. AWS IoT
/// answers GetTopicRule of a rule that does not exist with
/// UnauthorizedException ("Access to topic rule 'NAME' was denied"), as it
/// answers a real denial: a rule ListTopicRules does not list is missing
/// (`Ok(None)`), a listed one was really denied (terraform's AWS provider
/// tells them apart the same way). When the listing is denied too, the
/// error says the rule may be missing and names both actions; when it
/// fails otherwise (throttled, 5xx), that failure is the error, not a denial.
pub(crate) fn denied_or_missing(
    name: &str,
    listed: Result<Vec<String>, AwsError>,
    denial: AwsError,
) -> Result<Option<RuleView>, AwsError> {
    let why = |code: &str| {
        format!(
            "topic rule '{name}' may be missing or access to it denied (AWS IoT answers GetTopicRule of a missing rule with UnauthorizedException, and ListTopicRules, which tells the two apart, {code}): allow iot:GetTopicRule and iot:ListTopicRules to the caller"
        )
    };
    match listed {
        Ok(names) if !names.iter().any(|n| n == name) => Ok(None),
        Ok(_) => Err(denial),
        Err(AwsError::AccessDenied { code, .. }) | Err(AwsError::BadCredentials { code, .. }) => {
            let message = why(&format!("was denied too ({code})"));
            Err(AwsError::AccessDenied { code, message })
        }
        Err(AwsError::Throttled { code, message }) => Err(AwsError::Throttled {
            message: retry(name, &message),
            code,
        }),
        Err(AwsError::Service { code, message }) => Err(AwsError::Service {
            message: retry(name, &message),
            code,
        }),
        Err(other) => Err(other),
    }
}

/// A failed ListTopicRules while telling a missing rule from a denied one.
fn retry(name: &str, message: &str) -> String {
    format!("ListTopicRules, asked whether topic rule '{name}' exists (GetTopicRule answered UnauthorizedException), failed: {message}; retry later")
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

    /// The names of every topic rule (ListTopicRules, all pages).
    fn rule_names(&self) -> Result<Vec<String>, AwsError> {
        self.all_pages(|token| async move {
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
        })
    }

    /// Every topic rule listening on the registration topic, in full.
    pub fn registration_rules(&self) -> Result<Vec<RuleView>, AwsError> {
        let mut rules = Vec::new();
        for name in self.rule_names()? {
            if let Some(rule) = self.rule(&name)? {
                if rule.topic.starts_with("$aws/events/") {
                    rules.push(rule);
                }
            }
        }
        Ok(rules)
    }

    /// One topic rule by name; `None` if it does not exist (told apart
    /// from a denial through ListTopicRules, see [`denied_or_missing`]).
    pub fn rule(&self, name: &str) -> Result<Option<RuleView>, AwsError> {
        let answer = self.block_on(self.iot.get_topic_rule().rule_name(name).send());
        let out = match self.found(answer) {
            Ok(Some(out)) => out,
            Ok(None) => return Ok(None),
            Err(denial @ AwsError::AccessDenied { .. }) => {
                return denied_or_missing(name, self.rule_names(), denial)
            }
            Err(e) => return Err(e),
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
        }
        if let Some(arn) = d.queues.iter().find_map(|q| q.dead_letter_arn.clone()) {
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
    fn a_denied_rule_is_missing_only_when_not_listed() {
        let denial = || AwsError::AccessDenied {
            code: "UnauthorizedException".into(),
            message: "Access to topic rule 'jitr_registered' was denied".into(),
        };
        let names = |n: &[&str]| Ok(n.iter().map(|s| s.to_string()).collect());
        let missing = denied_or_missing("jitr_registered", names(&["other"]), denial());
        assert!(matches!(missing, Ok(None)), "{missing:?}");
        let denied = denied_or_missing(
            "jitr_registered",
            names(&["other", "jitr_registered"]),
            denial(),
        );
        assert!(
            matches!(denied, Err(AwsError::AccessDenied { .. })),
            "{denied:?}"
        );
        // ListTopicRules denied too: nothing is called missing, and the
        // error says it may be, naming both actions.
        let unknown = denied_or_missing("jitr_registered", Err(denial()), denial());
        let Err(e @ AwsError::AccessDenied { .. }) = &unknown else {
            panic!("{unknown:?}")
        };
        let text = e.to_string();
        for part in [
            "may be missing",
            "iot:GetTopicRule",
            "iot:ListTopicRules",
            "jitr_registered",
        ] {
            assert!(text.contains(part), "{part}: {text}");
        }
        // ListTopicRules throttled or failing: not a denial.
        let throttled = AwsError::Throttled {
            code: "ThrottlingException".into(),
            message: "Rate exceeded".into(),
        };
        let failing = AwsError::Service {
            code: "InternalFailureException".into(),
            message: "oops".into(),
        };
        for listing in [throttled, failing] {
            let e = denied_or_missing("jitr_registered", Err(listing), denial()).unwrap_err();
            assert!(e.is_transient(), "{e:?}");
            let text = e.to_string();
            assert!(!text.contains("access denied"), "{text}");
            assert!(
                text.contains("ListTopicRules") && text.contains("jitr_registered"),
                "{text}"
            );
        }
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
