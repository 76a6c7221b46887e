//! Checks of the permissions between the deployment's parts: the rule's
//! role may send to the queue, the function's role may consume it
//! (`role.rs`) and call the AWS IoT actions provisioning needs
//! (`provisioning.rs`), and a rule that invokes the function directly is
//! let in by the function's resource policy (here). Pure: the command
//! passes in the policies it read; `policy.rs` evaluates them.

use serde_json::Value;

use super::policy::{evaluate, Request, Verdict};
use super::Check;

mod provisioning;
mod reference;
mod role;

pub use provisioning::provisioning_check;
pub use role::{function_may_read, rule_may_send, Read};

/// A rule with a Lambda action: the function's resource policy lets
/// iot.amazonaws.com invoke it for this rule.
pub fn rule_may_invoke(function_arn: &str, rule_arn: &str, policy: &Read<Value>) -> Check {
    const NAME: &str = "rule may invoke function";
    let (account, _) = super::ca::arn_place(rule_arn);
    let fix = format!(
        "aws lambda add-permission --function-name {function_arn} --statement-id iot-invoke --action lambda:InvokeFunction --principal iot.amazonaws.com --source-arn {rule_arn} --source-account {account}"
    );
    let doc = match policy {
        Err(e) => {
            return Check::warn(
                NAME,
                format!("could not read the function's resource policy: {e}"),
                "grant lambda:GetPolicy to run this check",
            )
        }
        Ok(None) => {
            return Check::fail(
                NAME,
                format!("{function_arn} has no resource policy: AWS IoT may not invoke it"),
                fix,
            )
        }
        Ok(Some(doc)) => doc,
    };
    let context = [("aws:SourceArn", rule_arn), ("aws:SourceAccount", account)];
    let req = Request {
        action: "lambda:InvokeFunction",
        resource: function_arn,
        service: Some("iot.amazonaws.com"),
        context: &context,
    };
    match evaluate(&[doc], &req) {
        Verdict::Allowed => Check::pass(
            NAME,
            format!("iot.amazonaws.com may invoke it for {rule_arn}"),
        ),
        Verdict::Unknown(why) => Check::warn(
            NAME,
            format!("could not evaluate the function's resource policy ({why})"),
            format!("check that it lets iot.amazonaws.com invoke it for {rule_arn}"),
        ),
        _ => Check::fail(
            NAME,
            format!("its resource policy does not let iot.amazonaws.com invoke it for {rule_arn}"),
            fix,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::super::Status::*;
    use super::*;
    use serde_json::json;

    const FUNCTION: &str = "arn:aws:lambda:eu-west-1:1:function:jitr-jitr";

    #[test]
    fn a_rule_invoking_the_function_needs_its_resource_policy() {
        const RULE: &str = "arn:aws:iot:eu-west-1:1:rule/jitr_registered";
        let policy = |source: &str| {
            Ok(Some(json!({"Statement": [{"Effect": "Allow",
                "Principal": {"Service": "iot.amazonaws.com"}, "Action": "lambda:InvokeFunction",
                "Resource": FUNCTION, "Condition": {"ArnLike": {"AWS:SourceArn": source}}}]})))
        };
        let cases = [
            (policy(RULE), Pass),
            (policy("arn:aws:iot:eu-west-1:1:rule/other"), Fail),
            (Ok(None), Fail),
            (Err("AccessDenied".to_string()), Warn),
        ];
        for (read, status) in cases {
            let c = rule_may_invoke(FUNCTION, RULE, &read);
            assert_eq!(c.status, status, "{}", c.line());
        }
        assert!(rule_may_invoke(FUNCTION, RULE, &Ok(None))
            .fix
            .unwrap()
            .starts_with("aws lambda add-permission"));
    }
}
