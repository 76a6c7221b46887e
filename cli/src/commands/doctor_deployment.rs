//! `jitr doctor`'s deployment part: the stack read back from AWS, its
//! checks, and the permissions between its parts read from IAM and Lambda.

use std::collections::BTreeMap;

use jitr_core::config::Config;
use jitr_core::CertFacts;

use crate::cloud::deployment::{Deployment, FunctionView};
use crate::cloud::iam::RolePolicies;
use crate::cloud::Cloud;
use crate::doctor::deployment::{deployment_checks, missing_stack};
use crate::doctor::permissions::{self as perm, Read};
use crate::doctor::Check;
use crate::error::CliError;

/// The deployment's checks, and what the other checks use of it.
pub(super) struct Deployed {
    pub checks: Vec<Check>,
    /// The function's JITR_* settings, parsed.
    pub config: Option<Result<Config, String>>,
    pub function: Option<FunctionView>,
}

/// Reads the deployment (`stack`, else found by its resources) and checks it.
/// `leaf` (the device's certificate) makes the permission checks concrete.
pub(super) fn gather(
    cloud: &Cloud,
    stack: Option<&str>,
    ca_id: Option<&str>,
    leaf: Option<&CertFacts>,
) -> Result<Deployed, CliError> {
    let Some(d) = cloud
        .deployment(stack, ca_id)
        .map_err(|e| CliError::aws("reading the deployment", e))?
    else {
        return Ok(Deployed {
            checks: vec![missing_stack(stack.unwrap_or_default(), &cloud.region)],
            config: None,
            function: None,
        });
    };
    let config = d
        .function
        .as_ref()
        .map(|f| Config::from_lookup(|k| f.env.get(k).cloned()).map_err(|e| e.to_string()));
    let policy_exists = match &config {
        Some(Ok(c)) => Some(
            cloud
                .policy_exists(&c.policy_name)
                .map_err(|e| CliError::aws("reading the device policy", e))?,
        ),
        _ => None,
    };
    let mut checks = deployment_checks(&d, ca_id, config.as_ref(), policy_exists);
    checks.extend(permissions(cloud, &d, config.as_ref(), leaf));
    Ok(Deployed {
        checks,
        config,
        function: d.function,
    })
}

/// The permission checks the found parts allow.
fn permissions(
    cloud: &Cloud,
    d: &Deployment,
    config: Option<&Result<Config, String>>,
    leaf: Option<&CertFacts>,
) -> Vec<Check> {
    // Each role read once (the rule's two actions usually share one).
    let mut roles: BTreeMap<String, Read<RolePolicies>> = BTreeMap::new();
    let mut role = |arn: &str| {
        roles
            .entry(arn.to_string())
            .or_insert_with(|| cloud.role_policies(arn).map_err(|e| e.to_string()))
            .clone()
    };
    let mut out = Vec::new();
    let queue = d.queue.as_ref().map(|q| q.arn.as_str());
    if let (Some(rule), Some(queue)) = (&d.rule, queue) {
        if let Some(arn) = rule.role_arns.first() {
            out.push(perm::rule_may_send(arn, &role(arn), queue));
        }
    }
    if let Some(f) = &d.function {
        let read = role(&f.role);
        if let Some(queue) = queue {
            out.push(perm::function_may_read(&f.role, &read, queue));
        }
        if let Some(Ok(c)) = config {
            let id = leaf.map_or("0".repeat(64), |l| l.certificate_id.clone());
            let thing = leaf
                .and_then(|l| l.common_name())
                .unwrap_or("example-thing");
            let needs = perm::provisioning_needs(&f.arn, c, &id, thing);
            out.push(perm::function_may_provision(&f.role, &read, &needs));
        }
    }
    for function in d.rule.iter().flat_map(|r| &r.function_arns) {
        let policy = cloud.function_policy(function).map_err(|e| e.to_string());
        let rule = d.rule.as_ref().map(|r| r.arn.as_str()).unwrap_or_default();
        out.push(perm::rule_may_invoke(function, rule, &policy));
    }
    out
}
