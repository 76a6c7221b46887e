//! `jitr doctor`'s deployment part: the stack read back from AWS, its
//! checks, and the permissions between its parts read from IAM and Lambda.

use std::collections::BTreeMap;

use jitr_core::config::Config;
use jitr_core::plan::named_by;
use jitr_core::CertFacts;

use crate::cloud::deployment::{Deployment, FunctionView};
use crate::cloud::iam::RolePolicies;
use crate::cloud::queue::queue_name;
use crate::cloud::Cloud;
use crate::doctor::deployment::{deployment_checks, missing_stack};
use crate::doctor::fixes::{Known, StackFixes};
use crate::doctor::function::{self as health, LogWindow};
use crate::doctor::metrics::{self, Reading};
use crate::doctor::permissions::{self as perm, Read};
use crate::doctor::queue;
use crate::doctor::{Check, Status};
use crate::error::CliError;

/// What the deployment's checks need besides AWS: where the device's CA is,
/// the values fixes carry, the window the function's health is read over.
pub(super) struct Asked<'a> {
    pub stack: Option<&'a str>,
    pub ca_id: Option<&'a str>,
    /// The CA as the fixes name it (`DIR|ID`).
    pub ca_target: Option<&'a str>,
    /// The device's certificate: makes the permission checks concrete.
    pub leaf: Option<&'a CertFacts>,
    pub known: &'a Known,
    /// Seconds of the function's log read (`--since`).
    pub since: i64,
}

/// The deployment's checks, and what the other checks use of it.
pub(super) struct Deployed {
    pub checks: Vec<Check>,
    /// The function's JITR_* settings, parsed.
    pub config: Option<Result<Config, String>>,
    pub function: Option<FunctionView>,
    /// The failing function's reason, when the function check FAILs.
    pub function_failure: Option<String>,
    /// `jitr reconcile` for the device's CA, complete.
    pub reconcile: String,
}

/// Reads the deployment (`stack`, else found by its resources) and checks it.
pub(super) fn gather(cloud: &Cloud, asked: &Asked) -> Result<Deployed, CliError> {
    let ca = asked.ca_target.or(asked.ca_id).unwrap_or("CA_DIR|ID");
    let Some(d) = cloud
        .deployment(asked.stack, asked.ca_id)
        .map_err(|e| CliError::aws("reading the deployment", e))?
    else {
        return Ok(Deployed {
            checks: vec![missing_stack(
                asked.stack.unwrap_or_default(),
                &cloud.region,
            )],
            config: None,
            function: None,
            function_failure: None,
            reconcile: asked.known.reconcile(ca, None, None),
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
    let env = |k: &str| {
        d.function
            .as_ref()
            .and_then(|f| f.env.get(k))
            .map(String::as_str)
    };
    let reconcile = asked
        .known
        .reconcile(ca, env("JITR_POLICY_NAME"), env("JITR_DEVICE_GROUP"));
    // The UUIDs of the mappings that are not enabled (their fix names them).
    let mapping_uuids = match &d.function {
        Some(f) => d
            .mappings
            .iter()
            .filter(|m| !m.enabled())
            .filter_map(|m| {
                let uuid = cloud.mapping_uuid(&f.name, &m.queue_arn).ok().flatten()?;
                Some((m.queue_arn.clone(), uuid))
            })
            .collect(),
        None => BTreeMap::new(),
    };
    let fixes = StackFixes {
        known: asked.known.clone(),
        reconcile: reconcile.clone(),
        mapping_uuids,
        ca_id: asked.ca_id.map(str::to_string),
    };
    let mut checks = deployment_checks(&d, asked.ca_id, config.as_ref(), policy_exists, &fixes);
    checks.extend(permissions(cloud, &d, config.as_ref(), asked.leaf));
    let mut function_failure = None;
    if let Some(f) = &d.function {
        let running = running(cloud, &d, f, asked, &reconcile);
        function_failure = running
            .iter()
            .find(|c| c.name == "function" && c.status == Status::Fail)
            .map(|c| c.detail.clone());
        checks.extend(running);
    }
    Ok(Deployed {
        checks,
        config,
        function: d.function,
        function_failure,
        reconcile,
    })
}

/// The function's running: its outcomes over the window, its claims table,
/// its concurrency, its event queue.
fn running(
    cloud: &Cloud,
    d: &Deployment,
    f: &FunctionView,
    asked: &Asked,
    reconcile: &str,
) -> Vec<Check> {
    let log = match cloud.log_window(&f.log_group, asked.since) {
        Ok(Some((lines, seconds))) => LogWindow::Lines { lines, seconds },
        Ok(None) => LogWindow::NoGroup(f.log_group.clone()),
        Err(e) => LogWindow::Unreadable(e.to_string()),
    };
    let reason = match &log {
        LogWindow::Lines { lines, .. } => health::activity(lines).latest_failure,
        _ => None,
    };
    let fix = health::function_fix(reason.as_deref(), &f.role, reconcile);
    // One GetMetricData call; its failure is said in the details, not fatal.
    let lanes: Vec<String> = d
        .queues
        .iter()
        .map(|q| queue_name(&q.url).to_string())
        .collect();
    let reading = match cloud.metric_data(&metrics::queries(&f.name, &lanes), asked.since) {
        Ok(series) => Reading::Read(series),
        Err(e) => Reading::Unreadable(format!(
            "{e} (allow cloudwatch:GetMetricData to the caller)"
        )),
    };
    let function =
        health::function_check(&f.name, &log, &metrics::counts(&reading), asked.since, &fix);
    let function_fails = function.status == Status::Fail;
    let mut out = vec![function];
    let table = f.env.get("JITR_CLAIMS_TABLE").map(String::as_str);
    let claims_fix = format!(
        "redeploy the stack (it creates the table {}) or grant its role {} dynamodb:GetItem, PutItem, UpdateItem and DeleteItem on it; provisioning goes on meanwhile",
        table.unwrap_or_default(),
        f.role
    );
    out.extend(health::claims_check(table, &log, &claims_fix));
    let known = asked.known;
    let limits = cloud.function_limits(&f.name);
    match &limits {
        Ok((_, reserved)) => out.push(queue::concurrency_check(
            &f.name,
            *reserved,
            &known.aws(&format!("lambda delete-function-concurrency --function-name {}", f.name)),
            &known.aws(&format!(
                "lambda put-function-concurrency --function-name {} --reserved-concurrent-executions 5",
                f.name
            )),
        )),
        Err(e) => out.push(Check::warn(
            "function concurrency",
            format!("{}: not read: {e}", f.name),
            "allow lambda:GetFunctionConcurrency to the caller",
        )),
    }
    if let Ok((timeout, _)) = &limits {
        for (lane, q) in d.queues.iter().enumerate() {
            out.push(match cloud.queue_timing(&q.url, *timeout) {
                Ok(depth) => queue::queue_check(
                    &queue::QueueTiming::new(depth, metrics::oldest_age(&reading, lane)),
                    &known.aws(&format!(
                        "sqs set-queue-attributes --queue-url {} --attributes VisibilityTimeout={}",
                        q.url,
                        (timeout * 6).min(43_200)
                    )),
                    function_fails,
                ),
                Err(e) => Check::warn(
                    "event queue",
                    format!("{}: not read: {e}", q.url),
                    "allow sqs:GetQueueAttributes to the caller",
                ),
            });
        }
    }
    out
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
    // Each lane: the rule's action that sends to it, the function reading it.
    if let Some(rule) = &d.rule {
        for (url, arn) in rule.queue_urls.iter().zip(&rule.role_arns) {
            let held = d
                .queues
                .iter()
                .find(|q| queue_name(&q.url) == queue_name(url));
            if let Some(q) = held {
                out.push(perm::rule_may_send(arn, &role(arn), &q.arn));
            }
        }
    }
    if let Some(f) = &d.function {
        let read = role(&f.role);
        for q in &d.queues {
            out.push(perm::function_may_read(&f.role, &read, &q.arn));
        }
        if let Some(Ok(c)) = config {
            // The thing name the function's naming gives the device; a
            // device it cannot name is judged as no device (`thing name`
            // says why).
            let named = leaf.and_then(|l| {
                let thing = named_by(&c.thing_name, l, &l.certificate_id).ok()?;
                Some((l.certificate_id.as_str(), thing))
            });
            let device = named.as_ref().map(|(id, thing)| (*id, thing.as_str()));
            out.push(perm::provisioning_check(&f.role, &read, &f.arn, c, device));
        }
    }
    for function in d.rule.iter().flat_map(|r| &r.function_arns) {
        let policy = cloud.function_policy(function).map_err(|e| e.to_string());
        let rule = d.rule.as_ref().map(|r| r.arn.as_str()).unwrap_or_default();
        out.push(perm::rule_may_invoke(function, rule, &policy));
    }
    out
}
