//! Fixes as complete commands: every value doctor knows (region, profile,
//! endpoint, CA, policy) is on the printed line, so it runs as printed in
//! the shell doctor ran in.

use std::collections::BTreeMap;

/// What doctor knows that a fix's command needs.
#[derive(Debug, Clone, Default)]
pub struct Known {
    /// The region the calls went to.
    pub region: String,
    /// `--profile`, when given.
    pub profile: Option<String>,
    /// The endpoint the calls went to, when not AWS's own.
    pub endpoint_url: Option<String>,
}

/// A word for a POSIX shell: as is when safe, else in single quotes.
pub fn shell_word(w: &str) -> String {
    let safe = !w.is_empty()
        && w.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@+%".contains(c));
    if safe {
        w.to_string()
    } else {
        format!("'{}'", w.replace('\'', r"'\''"))
    }
}

impl Known {
    /// The global flags `jitr` and the aws CLI share (`--region`, `--profile`, `--endpoint-url`).
    fn flags(&self) -> String {
        let mut out = String::new();
        if !self.region.is_empty() {
            out.push_str(&format!(" --region {}", shell_word(&self.region)));
        }
        if let Some(p) = &self.profile {
            out.push_str(&format!(" --profile {}", shell_word(p)));
        }
        if let Some(u) = &self.endpoint_url {
            out.push_str(&format!(" --endpoint-url {}", shell_word(u)));
        }
        out
    }

    /// `jitr ARGS` with the known flags.
    pub fn jitr(&self, args: &str) -> String {
        format!("jitr {args}{}", self.flags())
    }

    /// `aws ARGS` (the AWS CLI) with the known flags.
    pub fn aws(&self, args: &str) -> String {
        format!("aws {args}{}", self.flags())
    }

    /// A fix that is a `jitr` or `aws` command (after `NAME=VALUE` words)
    /// with the known flags added when it has none: every check's fix, as
    /// printed, goes where doctor's calls went.
    pub fn complete(&self, fix: &str) -> String {
        let command = fix
            .split_whitespace()
            .find(|w| !w.contains('='))
            .unwrap_or_default();
        let has_flags = fix.contains(" --region ") || fix.contains(" --endpoint-url ");
        if matches!(command, "jitr" | "aws") && !has_flags && !fix.contains(';') {
            format!("{fix}{}", self.flags())
        } else {
            fix.to_string()
        }
    }

    /// `jitr reconcile` as the function would provision: its policy, and its
    /// device group (JITR_DEVICE_GROUP, read from the environment by reconcile).
    pub fn reconcile(&self, ca: &str, policy: Option<&str>, device_group: Option<&str>) -> String {
        let group = device_group
            .filter(|g| !g.is_empty())
            .map(|g| format!("JITR_DEVICE_GROUP={} ", shell_word(g)))
            .unwrap_or_default();
        let policy = policy
            .map(|p| format!(" --policy {}", shell_word(p)))
            .unwrap_or_default();
        format!(
            "{group}{}",
            self.jitr(&format!("reconcile --ca {}{policy}", shell_word(ca)))
        )
    }
}

/// What the deployment's fixes name beyond the deployment itself.
#[derive(Debug, Clone, Default)]
pub struct StackFixes {
    pub known: Known,
    /// `jitr reconcile` for the CA, complete.
    pub reconcile: String,
    /// The event source mappings' UUIDs, by the queue ARN they read.
    pub mapping_uuids: BTreeMap<String, String>,
    /// The CA id the stack is deployed for, when known.
    pub ca_id: Option<String>,
}

/// How to put a missing part back when the stack is not known.
pub const DEPLOY: &str =
    "deploy the stack as docs/src/guide/deploying.md says (make deploy CA_ID=ID), or pass --stack NAME";

impl StackFixes {
    /// How to put a missing part of `stack` back: CloudFormation restores
    /// nothing deleted behind its back on a redeploy, so delete and deploy.
    pub fn deploy(&self, stack: Option<&str>) -> String {
        let Some(stack) = stack else {
            return DEPLOY.to_string();
        };
        let k = &self.known;
        let mut make = format!(
            "make deploy STACK={} CA_ID={}",
            shell_word(stack),
            shell_word(self.ca_id.as_deref().unwrap_or("all"))
        );
        if !k.region.is_empty() {
            make.push_str(&format!(" REGION={}", shell_word(&k.region)));
        }
        if let Some(p) = &k.profile {
            make.push_str(&format!(" PROFILE={}", shell_word(p)));
        }
        format!(
            "redeploy the stack (docs/src/guide/deploying.md); a part deleted outside CloudFormation comes back only after `{}` and, in the jitr checkout, `{make}`",
            k.aws(&format!("cloudformation delete-stack --stack-name {}", shell_word(stack)))
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_carry_every_known_value() {
        let k = Known {
            region: "eu-west-1".into(),
            profile: Some("ops".into()),
            endpoint_url: Some("http://127.0.0.1:4566".into()),
        };
        assert_eq!(
            k.aws("iot enable-topic-rule --rule-name r"),
            "aws iot enable-topic-rule --rule-name r --region eu-west-1 --profile ops --endpoint-url http://127.0.0.1:4566"
        );
        assert_eq!(
            k.reconcile("root", Some("jitr-p"), Some("devices")),
            "JITR_DEVICE_GROUP=devices jitr reconcile --ca root --policy jitr-p --region eu-west-1 --profile ops --endpoint-url http://127.0.0.1:4566"
        );
        assert_eq!(
            k.complete("aws lambda add-permission --function-name f"),
            "aws lambda add-permission --function-name f --region eu-west-1 --profile ops --endpoint-url http://127.0.0.1:4566"
        );
        let done = k.aws("iot enable-topic-rule --rule-name r");
        assert_eq!(k.complete(&done), done);
        assert_eq!(k.complete("redeploy the stack"), "redeploy the stack");
        let bare = Known::default();
        assert_eq!(
            bare.reconcile("c d", None, Some("")),
            "jitr reconcile --ca 'c d'"
        );
        assert_eq!(shell_word("it's"), r"'it'\''s'");
    }
}
