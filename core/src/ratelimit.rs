//! A request-rate limiter for AWS IoT's per-account API limits
//! (e.g. 10 UpdateCertificate calls per second).

use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// Spaces out callers so at most `per_second` pass each second.
pub struct RateLimiter {
    interval: Duration,
    next: Mutex<Instant>,
}

impl RateLimiter {
    /// A limiter letting `per_second` (at least 1) calls through each second.
    pub fn new(per_second: u32) -> Self {
        RateLimiter {
            interval: Duration::from_secs(1) / per_second.max(1),
            next: Mutex::new(Instant::now()),
        }
    }

    /// Waits for this caller's slot.
    pub async fn acquire(&self) {
        let slot = {
            let mut next = self.next.lock().await;
            let now = Instant::now();
            let slot = (*next).max(now);
            *next = slot + self.interval;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn spaces_calls_by_the_interval() {
        let limiter = RateLimiter::new(10);
        let start = Instant::now();
        for _ in 0..21 {
            limiter.acquire().await;
        }
        // 21 calls at 10/s: the first immediately, the last 2 s later (virtual time).
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }
}
