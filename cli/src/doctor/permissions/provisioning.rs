//! Whether the function's role may call what provisioning calls, judged
//! against the resources AWS authorises each call against. Pure.

use super::reference::{call_needs, Need, Place};
use super::role::{role_check, Read};
use crate::cloud::iam::{role_name, RolePolicies};
use crate::doctor::{Check, Status};

/// What provisioning calls (`core/src/provision.rs`), on example resources
/// of the function's account and region, each with the resources the call
/// involves; [`call_needs`] keeps those AWS authorises it against. With a
/// device group (the stacks) the thing joins it and JITR_THING_GROUPS';
/// without one, the certificate gets the device policy (AttachPolicy).
pub fn provisioning_needs(
    function_arn: &str,
    config: &jitr_core::config::Config,
    certificate_id: &str,
    thing: &str,
) -> Vec<Need> {
    let place = Place::of(function_arn);
    let (cert, thing) = (("cert", certificate_id), ("thing", thing));
    let mut calls: Vec<(&'static str, Vec<(&str, &str)>)> = vec![
        ("iot:DescribeCertificate", vec![cert]),
        ("iot:UpdateCertificate", vec![cert]),
        ("iot:ListThingPrincipals", vec![thing]),
        ("iot:CreateThing", vec![thing]),
        ("iot:AttachThingPrincipal", vec![cert, thing]),
    ];
    if config.device_group.is_none() {
        calls.push((
            "iot:AttachPolicy",
            vec![cert, ("policy", config.policy_name.as_str())],
        ));
    }
    for g in config.device_group.iter().chain(&config.thing_groups) {
        calls.push(("iot:AddThingToThingGroup", vec![thing, ("thinggroup", g)]));
    }
    let mut needs: Vec<Need> = Vec::new();
    for (action, involved) in calls {
        for need in call_needs(action, place, &involved) {
            if !needs.contains(&need) {
                needs.push(need);
            }
        }
    }
    needs
}

/// The function's role may call what provisioning needs.
pub fn function_may_provision(role_arn: &str, read: &Read<RolePolicies>, needs: &[Need]) -> Check {
    role_check(
        "function may provision",
        role_arn,
        read,
        needs,
        &format!(
            "allow the missing action in role {} (the template's FunctionRole lists them all; redeploy the stack)",
            role_name(role_arn)
        ),
    )
}

/// A thing name no one grants by name: a PASS with it means the role's
/// thing grants cover every name.
const ANY_THING: &str = "jitr-doctor-any-thing";

/// `function may provision` for a device (its certificate id and the thing
/// name the function's naming gives it), or without one: thing-scoped
/// grants then hang on names doctor does not know, so a role that does not
/// grant every thing name is a WARN, not a verdict.
pub fn provisioning_check(
    role_arn: &str,
    read: &Read<RolePolicies>,
    function_arn: &str,
    config: &jitr_core::config::Config,
    device: Option<(&str, &str)>,
) -> Check {
    if let Some((id, thing)) = device {
        let needs = provisioning_needs(function_arn, config, id, thing);
        return function_may_provision(role_arn, read, &needs);
    }
    let needs = provisioning_needs(function_arn, config, &"0".repeat(64), ANY_THING);
    let check = function_may_provision(role_arn, read, &needs);
    if check.status == Status::Pass {
        return check;
    }
    let unnamed: Vec<Need> = needs
        .into_iter()
        .filter(|(_, resource)| !resource.contains(":thing/"))
        .collect();
    let rest = function_may_provision(role_arn, read, &unnamed);
    if rest.status != Status::Pass {
        return rest;
    }
    Check::warn(
        "function may provision",
        format!(
            "role {} allows what provisioning needs on certificates, policies and groups; its grants on things do not cover every name, and could not be judged without a device (the name comes from the function's JITR_THING_NAME_TEMPLATE/SOURCE)",
            role_name(role_arn)
        ),
        "run jitr doctor with the device (DEVICE_DIR or --cert) to judge them against its thing name",
    )
}

#[cfg(test)]
mod tests {
    use super::super::role::function_may_read;
    use super::super::role::tests::{allow, role, QUEUE, ROLE};
    use super::*;
    use crate::doctor::Status::*;
    use serde_json::{json, Value};

    const FUNCTION: &str = "arn:aws:lambda:eu-west-1:1:function:jitr-jitr";

    #[test]
    fn the_function_role_must_consume_the_queue_and_provision() {
        let consume = role(allow(
            json!([
                "sqs:ReceiveMessage",
                "sqs:DeleteMessage",
                "sqs:GetQueueAttributes"
            ]),
            json!(QUEUE),
        ));
        assert_eq!(function_may_read(ROLE, &consume, QUEUE).status, Pass);
        let receive_only = role(allow(json!("sqs:ReceiveMessage"), json!(QUEUE)));
        let c = function_may_read(ROLE, &receive_only, QUEUE);
        assert_eq!(c.status, Fail);
        assert!(c.detail.contains("sqs:DeleteMessage"), "{}", c.detail);

        let config = |vars: &[(&str, &str)]| {
            let vars: Vec<(String, String)> = [("JITR_POLICY_NAME", "dev-policy")]
                .iter()
                .chain(vars)
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            jitr_core::config::Config::from_lookup(|k| {
                vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
            })
            .unwrap()
        };
        let stack = config(&[
            ("JITR_DEVICE_GROUP", "devices"),
            ("JITR_THING_GROUPS", "fleet"),
        ]);
        let needs = provisioning_needs(FUNCTION, &stack, "ab", "robot-1");
        assert!(
            !needs.iter().any(|(a, _)| *a == "iot:AttachPolicy"),
            "{needs:?}"
        );
        for group in ["devices", "fleet"] {
            let group = format!("arn:aws:iot:eu-west-1:1:thinggroup/{group}");
            assert!(
                needs.contains(&("iot:AddThingToThingGroup", group)),
                "{needs:?}"
            );
        }
        // The template's statements, as deployed with ThingGroups=fleet.
        let template = role(json!([
            {"Effect": "Allow", "Action": ["iot:DescribeCertificate", "iot:UpdateCertificate"], "Resource": "arn:aws:iot:eu-west-1:1:cert/*"},
            {"Effect": "Allow", "Action": "iot:ListThingPrincipals", "Resource": "arn:aws:iot:eu-west-1:1:thing/*"},
            {"Effect": "Allow", "Action": "iot:CreateThing", "Resource": "arn:aws:iot:eu-west-1:1:thing/*"},
            {"Effect": "Allow", "Action": "iot:AttachThingPrincipal", "Resource": "arn:aws:iot:eu-west-1:1:cert/*"},
            {"Effect": "Allow", "Action": "iot:AddThingToThingGroup", "Resource": ["arn:aws:iot:eu-west-1:1:thing/*", "arn:aws:iot:eu-west-1:1:thinggroup/devices", "arn:aws:iot:eu-west-1:1:thinggroup/fleet"]},
        ]));
        assert_eq!(function_may_provision(ROLE, &template, &needs).status, Pass);
        // A group the role may not add to fails, named.
        let other = config(&[
            ("JITR_DEVICE_GROUP", "devices"),
            ("JITR_THING_GROUPS", "elsewhere"),
        ]);
        let c = function_may_provision(
            ROLE,
            &template,
            &provisioning_needs(FUNCTION, &other, "ab", "robot-1"),
        );
        assert_eq!(c.status, Fail);
        assert!(
            c.detail.contains(
                "iot:AddThingToThingGroup on arn:aws:iot:eu-west-1:1:thinggroup/elsewhere"
            ),
            "{}",
            c.detail
        );
        // Without a device group the certificate gets the policy: AttachPolicy on it.
        let per_certificate = provisioning_needs(FUNCTION, &config(&[]), "ab", "robot-1");
        assert!(per_certificate.contains(&(
            "iot:AttachPolicy",
            "arn:aws:iot:eu-west-1:1:cert/ab".to_string()
        )));
        assert_eq!(
            function_may_provision(ROLE, &template, &per_certificate).status,
            Fail
        );
    }

    /// The function's role with `grants` (action, resource) as allowed.
    fn granting(grants: &[(&str, &str)]) -> Read<RolePolicies> {
        role(Value::Array(
            grants
                .iter()
                .map(|(a, r)| json!({"Effect": "Allow", "Action": a, "Resource": r}))
                .collect(),
        ))
    }

    #[test]
    fn permissions_are_judged_against_the_resources_aws_authorises() {
        const P: &str = "arn:aws:iot:eu-west-1:1:";
        let config = |vars: &[(&str, &str)]| {
            jitr_core::config::Config::from_lookup(|k| {
                [("JITR_POLICY_NAME", "dev-policy")]
                    .iter()
                    .chain(vars)
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            })
            .unwrap()
        };
        let grant = |a: &'static str, r: &str| (a, format!("{P}{r}"));
        let base = [
            grant("iot:DescribeCertificate", "cert/*"),
            grant("iot:UpdateCertificate", "cert/*"),
            grant("iot:ListThingPrincipals", "thing/*"),
            grant("iot:CreateThing", "thing/*"),
        ];
        let check = |cfg: &jitr_core::config::Config, extra: &[(&'static str, String)]| {
            let grants: Vec<(&str, &str)> = base
                .iter()
                .chain(extra)
                .map(|(a, r)| (*a, r.as_str()))
                .collect();
            let needs = provisioning_needs(FUNCTION, cfg, "ab", "robot-1");
            function_may_provision(ROLE, &granting(&grants), &needs)
        };
        let per_cert = config(&[]);
        let grouped = config(&[("JITR_DEVICE_GROUP", "devices")]);
        let cases = [
            // AttachThingPrincipal is authorised against the certificate: a thing grant gives nothing.
            (
                &per_cert,
                vec![
                    grant("iot:AttachThingPrincipal", "thing/*"),
                    grant("iot:AttachPolicy", "cert/*"),
                ],
                Fail,
                "iot:AttachThingPrincipal on arn:aws:iot:eu-west-1:1:cert/ab",
            ),
            (
                &per_cert,
                vec![
                    grant("iot:AttachThingPrincipal", "cert/*"),
                    grant("iot:AttachPolicy", "cert/*"),
                ],
                Pass,
                "",
            ),
            // AttachPolicy is authorised against its target, never the policy.
            (
                &per_cert,
                vec![
                    grant("iot:AttachThingPrincipal", "cert/*"),
                    grant("iot:AttachPolicy", "policy/dev-policy"),
                ],
                Fail,
                "iot:AttachPolicy on arn:aws:iot:eu-west-1:1:cert/ab",
            ),
            // AddThingToThingGroup: against the thing and the group, both.
            (
                &grouped,
                vec![
                    grant("iot:AttachThingPrincipal", "cert/*"),
                    grant("iot:AddThingToThingGroup", "thinggroup/devices"),
                ],
                Fail,
                "iot:AddThingToThingGroup on arn:aws:iot:eu-west-1:1:thing/robot-1",
            ),
            (
                &grouped,
                vec![
                    grant("iot:AttachThingPrincipal", "cert/*"),
                    grant("iot:AddThingToThingGroup", "thing/*"),
                ],
                Fail,
                "iot:AddThingToThingGroup on arn:aws:iot:eu-west-1:1:thinggroup/devices",
            ),
            (
                &grouped,
                vec![
                    grant("iot:AttachThingPrincipal", "cert/*"),
                    grant("iot:AddThingToThingGroup", "thing/*"),
                    grant("iot:AddThingToThingGroup", "thinggroup/devices"),
                ],
                Pass,
                "",
            ),
        ];
        for (cfg, extra, status, missing) in cases {
            let c = check(cfg, &extra);
            assert_eq!(c.status, status, "{extra:?}: {}", c.line());
            assert!(c.detail.ends_with(missing), "{extra:?}: {}", c.line());
        }
        // The stacks' function attaches no policy: AttachPolicy is not needed there.
        let needs = provisioning_needs(FUNCTION, &grouped, "ab", "robot-1");
        assert!(
            !needs.iter().any(|(a, _)| *a == "iot:AttachPolicy"),
            "{needs:?}"
        );
        // ARNs take the partition and place of the function's.
        let china = provisioning_needs(
            "arn:aws-cn:lambda:cn-north-1:2:function:f",
            &per_cert,
            "ab",
            "t",
        );
        assert!(
            china.contains(&(
                "iot:AttachThingPrincipal",
                "arn:aws-cn:iot:cn-north-1:2:cert/ab".to_string()
            )),
            "{china:?}"
        );
    }

    #[test]
    fn each_checked_action_is_in_the_reference_with_its_required_types() {
        let place = Place::of(FUNCTION);
        // A required resource type missing from a call is a mistake here.
        let missing_group = std::panic::catch_unwind(|| {
            call_needs("iot:AddThingToThingGroup", place, &[("thing", "t")])
        });
        assert!(missing_group.is_err());
        assert!(std::panic::catch_unwind(|| call_needs("iot:NoSuchAction", place, &[])).is_err());
        assert_eq!(
            call_needs(
                "sqs:SendMessage",
                Place::of(QUEUE),
                &[("queue", "jitr-EventQueue-X")]
            ),
            vec![("sqs:SendMessage", QUEUE.to_string())]
        );
    }

    /// A thing-scoped grant is judged against the name the function gives
    /// the device; without a device, only a grant on every name can PASS.
    #[test]
    fn thing_grants_are_judged_by_the_functions_naming_or_not_at_all() {
        let config = jitr_core::config::Config::from_lookup(|k| match k {
            "JITR_POLICY_NAME" => Some("p".to_string()),
            "JITR_THING_NAME_TEMPLATE" => Some("robot-{serialNumber}".to_string()),
            _ => None,
        })
        .unwrap();
        let grants = |things: &str| {
            role(json!([
                {"Effect": "Allow", "Action": "iot:*", "Resource": [
                    "arn:aws:iot:eu-west-1:1:cert/*", "arn:aws:iot:eu-west-1:1:policy/*",
                    format!("arn:aws:iot:eu-west-1:1:thing/{things}")]}
            ]))
        };
        let id = "ab".repeat(32);
        let check = |read: &Read<RolePolicies>, device: Option<(&str, &str)>| {
            provisioning_check(ROLE, read, FUNCTION, &config, device)
        };
        let robots = grants("robot-*");
        assert_eq!(check(&robots, Some((&id, "robot-7"))).status, Pass);
        assert_eq!(check(&robots, Some((&id, "other"))).status, Fail);
        let c = check(&robots, None);
        assert_eq!(c.status, Warn, "{}", c.line());
        assert!(c.detail.contains("without a device"), "{}", c.line());
        assert_eq!(check(&grants("*"), None).status, Pass);
        // What does not depend on the name still fails without a device.
        let no_certs = role(json!([{"Effect": "Allow", "Action": "iot:*",
            "Resource": "arn:aws:iot:eu-west-1:1:thing/*"}]));
        assert_eq!(check(&no_certs, None).status, Fail);
    }
}
