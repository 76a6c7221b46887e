//! The function's configuration, from environment variables. A missing or
//! invalid setting fails at start-up with a message naming it. Each group
//! of settings is read in its own file: `thing` (the policy, thing type,
//! groups, attributes, rotation), `names` (the name template and
//! pattern), `admission`, `rates` and `resources` (the claims table,
//! event bus, verifier function, fast lane queue); `read` turns a
//! setting's text into a value, `error` names the one that is wrong.

mod admission;
mod error;
mod names;
mod rates;
mod read;
mod resources;
#[cfg(test)]
mod tests;
mod thing;

use regex::Regex;

pub use self::error::ConfigError;
use self::read::Get;
use crate::naming::{AttributeTemplates, NameTemplate};
use crate::quota::ApiRates;

/// Which certificates may be admitted at all (`JITR_ADMISSION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Any certificate that passes the other checks.
    Any,
    /// Only certificates on the stack's allow-list (`JITR_ALLOW_LIST_TABLE`).
    AllowList,
}

/// What to do with a certificate that fails admission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnReject {
    /// Set it REVOKED (it can never connect), reason logged.
    Revoke,
    /// Leave it PENDING_ACTIVATION, reason logged.
    Ignore,
}

/// What a new certificate does to the thing's other ACTIVE certificates
/// (of the same CA: a thing never takes another CA's certificate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnRotation {
    /// Attach the new one beside them; they stay ACTIVE.
    Keep,
    /// Once the new one is ACTIVE, set the older ones INACTIVE (the device
    /// proved it holds the new key by connecting with it).
    RetirePrevious,
}

/// The provisioning configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The device policy (created by the infrastructure). Attached to each
    /// certificate only without `device_group`; with it, the stack attached
    /// it to that group once and the function never attaches a policy.
    pub policy_name: String,
    /// The thing group carrying the device policy (`JITR_DEVICE_GROUP`):
    /// every provisioned thing joins it, so the function's role needs no
    /// `iot:AttachPolicy`, which AWS authorises on the target only (a role
    /// allowed it on certificates may attach any policy of the account).
    pub device_group: Option<String>,
    /// How the thing is named (`JITR_THING_NAME_TEMPLATE`, or the
    /// older `JITR_THING_NAME_SOURCE` words, which are its aliases).
    pub thing_name: NameTemplate,
    /// Whether only certificates on the allow-list are admitted.
    pub admission: Admission,
    /// The allow-list's DynamoDB table (`JITR_ALLOW_LIST_TABLE`): required
    /// under [`Admission::AllowList`], where nothing could be admitted without it.
    pub allow_list_table: Option<String>,
    /// The thing's attributes (`JITR_THING_ATTRIBUTES`); None: the
    /// subject's serialNumber, O, OU, C, dnQualifier ([`crate::plan`]).
    pub thing_attributes: Option<AttributeTemplates>,
    /// Anchored: the whole name must match.
    pub thing_name_pattern: Regex,
    /// Certificate ids of the CAs whose devices are admitted; empty = any.
    pub allowed_ca_ids: Vec<String>,
    pub thing_type: Option<String>,
    pub thing_groups: Vec<String>,
    pub on_reject: OnReject,
    pub on_rotation: OnRotation,
    /// Attach certificates as the thing's exclusive principal (AWS IoT's
    /// `EXCLUSIVE_THING`): a certificate can never serve two things.
    pub exclusive_thing: bool,
    /// How far a certificate's notBefore may lie ahead of this clock and
    /// still be admitted (a factory's clock a few minutes fast), seconds.
    pub clock_skew_seconds: i64,
    /// The account's request rates per AWS IoT operation (AWS's default
    /// quotas unless `JITR_API_RATES` says otherwise).
    pub api_rates: ApiRates,
    /// Instances that may run at once (the template's `MaxConcurrency`):
    /// each keeps to `api_rates / max_concurrency`.
    pub max_concurrency: u32,
    /// The fast lane's queue (`JITR_FAST_LANE_QUEUE_ARN`): a batch from it
    /// defers to the bulk lane while that lane works ([`crate::lane`]).
    /// None: every batch is the bulk lane's.
    pub fast_lane_queue_arn: Option<String>,
    /// The claims shared by the instances (`JITR_CLAIMS_TABLE`, a DynamoDB
    /// table: [`crate::claims_table`]). None: no shared claims.
    pub claims_table: Option<String>,
    /// The EventBridge bus the outcomes go to (`JITR_EVENT_BUS`, a bus
    /// name: [`crate::events`]). None: no events.
    pub event_bus: Option<String>,
    /// The verifier hook (`JITR_VERIFIER_FUNCTION`, an unqualified Lambda
    /// function ARN: [`crate::verifier`]), asked about each certificate the
    /// function's own checks admit. None: no hook.
    pub verifier_function: Option<String>,
}

impl Config {
    /// This instance's share of the account's rates.
    pub fn instance_rates(&self) -> ApiRates {
        self.api_rates.share(self.max_concurrency)
    }
}

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `get` (the environment, or a map in
    /// tests). The settings are checked in this order: the first bad one
    /// is the one named.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let trimmed = |name: &str| {
            get(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let get: Get = &trimmed;
        let policy_name = thing::policy_name(get)?;
        let thing_name = names::template(get)?;
        let admission = admission::mode(get)?;
        let allow_list_table = admission::allow_list_table(get, admission)?;
        let thing_name_pattern = names::pattern(get)?;
        let allowed_ca_ids = admission::allowed_ca_ids(get)?;
        let device_group = thing::device_group(get)?;
        let thing_type = thing::thing_type(get)?;
        let thing_groups = thing::thing_groups(get)?;
        let thing_attributes = thing::attributes(get, thing_type.is_some())?;
        let on_reject = admission::on_reject(get)?;
        let on_rotation = thing::on_rotation(get)?;
        let exclusive_thing = thing::exclusive(get)?;
        let clock_skew_seconds = admission::clock_skew(get)?;
        let api_rates = rates::api_rates(get)?;
        let max_concurrency = rates::max_concurrency(get)?;
        let claims_table = resources::claims_table(get);
        let event_bus = resources::event_bus(get)?;
        let verifier_function = resources::verifier_function(get)?;
        let fast_lane_queue_arn = resources::fast_lane_queue_arn(get)?;
        Ok(Config {
            api_rates,
            max_concurrency,
            fast_lane_queue_arn,
            claims_table,
            event_bus,
            verifier_function,
            policy_name,
            device_group,
            thing_name,
            admission,
            allow_list_table,
            thing_attributes,
            thing_name_pattern,
            allowed_ca_ids,
            thing_type,
            thing_groups,
            on_reject,
            on_rotation,
            exclusive_thing,
            clock_skew_seconds,
        })
    }
}
