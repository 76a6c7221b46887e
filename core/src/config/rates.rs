//! The account's request rates and how many instances share them.

use super::error::{err, ConfigError};
use super::read::{number_in, Get};
use crate::quota::ApiRates;

/// `JITR_API_RATES`: AWS's default quotas with the account's overrides.
pub(super) fn api_rates(get: Get) -> Result<ApiRates, ConfigError> {
    ApiRates::parse(&get("JITR_API_RATES").unwrap_or_default())
        .map_err(|e| err("JITR_API_RATES", e.problem))
}

/// `JITR_MAX_CONCURRENCY`: the instances that may run at once, 1 to 1000.
pub(super) fn max_concurrency(get: Get) -> Result<u32, ConfigError> {
    number_in(get, "JITR_MAX_CONCURRENCY", 1, 1..=1000, "instances")
}
