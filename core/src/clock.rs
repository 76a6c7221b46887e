//! The wall clock, read in one place: certificate validity and status
//! timestamps are Unix seconds, metric timestamps Unix milliseconds.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch (0 for a clock set before 1970).
pub fn unix_seconds() -> i64 {
    i64::try_from(since_epoch().as_secs()).unwrap_or(i64::MAX)
}

/// Milliseconds since the Unix epoch (0 for a clock set before 1970).
pub fn unix_millis() -> u128 {
    since_epoch().as_millis()
}

fn since_epoch() -> std::time::Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_and_millis_read_the_same_clock() {
        let s = unix_seconds();
        let ms = unix_millis();
        // 2020-01-01 as a floor: the clock is not at the epoch.
        assert!(s > 1_577_836_800, "{s}");
        assert!(ms / 1000 >= s as u128, "{ms} ms before {s} s");
    }
}
