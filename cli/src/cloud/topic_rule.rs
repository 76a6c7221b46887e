//! The topic rule that listens on the registration topic: read back from
//! AWS IoT, a missing rule told from a denied one, its topic read from its SQL.

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
}
