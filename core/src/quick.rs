//! The SDK settings of a client that gives up within seconds: three
//! attempts, 1 s to connect, 2 s an attempt, 5 s in all. The claims, the
//! allow-list and the events are asked inside an invocation's deadline,
//! beside AWS IoT calls that need the time more.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;

/// Three attempts (the standard retries: throttling, 5xx, network).
pub(crate) fn retries() -> RetryConfig {
    RetryConfig::standard().with_max_attempts(3)
}

/// 1 s to connect, 2 s an attempt, 5 s in all.
pub(crate) fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(1))
        .operation_attempt_timeout(Duration::from_secs(2))
        .operation_timeout(Duration::from_secs(5))
        .build()
}
