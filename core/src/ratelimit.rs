//! A request-rate limiter for AWS IoT's per-account API limits
//! (e.g. 10 UpdateCertificate calls per second), and for any other rate a
//! caller must keep to (a key store's signatures per second). Async
//! callers await their slot ([`RateLimiter::acquire`]); threads outside a
//! runtime block for it ([`RateLimiter::wait`]).

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use futures::stream::{self, StreamExt};

use tokio::time::Instant;

/// Spaces out callers so at most `per_second` pass each second.
pub struct RateLimiter {
    interval: Duration,
    /// The next free slot; None until the first call.
    next: Mutex<Option<Instant>>,
    /// How far into its first interval (0 to 1) the first call goes out.
    phase: f64,
}

impl RateLimiter {
    /// A limiter letting `per_second` (at least 1) calls through each second.
    pub fn new(per_second: u32) -> Self {
        Self::per_second(f64::from(per_second.max(1)))
    }

    /// A limiter letting `rate` calls through each second; fractional rates
    /// (an account's 10/s shared by 20 instances is 0.5/s each) space calls
    /// seconds apart. A rate below 0.001/s is taken as 0.001/s.
    pub fn per_second(rate: f64) -> Self {
        let rate = if rate.is_finite() {
            rate.max(0.001)
        } else {
            0.001
        };
        RateLimiter {
            interval: Duration::from_secs_f64(1.0 / rate),
            next: Mutex::new(None),
            phase: 0.0,
        }
    }

    /// Like [`RateLimiter::per_second`], the first slot `phase` (0 to 1) of
    /// an interval after the first call (and after an idle spell): instances that start together at a
    /// share of one quota (20 instances at 0.5/s of a 10/s quota) then
    /// spread their first calls over the interval instead of all calling at
    /// once, which the quota's one-second bucket would throttle.
    pub fn per_second_from(rate: f64, phase: f64) -> Self {
        RateLimiter {
            phase: phase.clamp(0.0, 1.0),
            ..Self::per_second(rate)
        }
    }

    /// Waits for this caller's slot.
    pub async fn acquire(&self) {
        self.acquire_one_of(1).await
    }

    /// Waits for this caller's slot at `1/sharers` of the rate: the rate is
    /// the account's, and `sharers` instances are drawing from it now. The
    /// number may change between calls; each call is spaced by the interval
    /// of the number it was made with.
    pub async fn acquire_one_of(&self, sharers: u32) {
        let slot = self.reserve(Instant::now(), sharers);
        tokio::time::sleep_until(slot).await;
    }

    /// Waits for this caller's slot, blocking the thread: the face for
    /// threads outside an async runtime (the CLI's workers).
    pub fn wait(&self) {
        let slot = self.reserve(Instant::now(), 1);
        let left = slot.saturating_duration_since(Instant::now());
        if !left.is_zero() {
            std::thread::sleep(left);
        }
    }

    /// The slot of a caller asking at `now` (and reserves it), at
    /// `1/sharers` of the rate.
    fn reserve(&self, now: Instant, sharers: u32) -> Instant {
        let interval = self.interval * sharers.max(1);
        let mut next = self.next.lock().expect("rate limiter");
        // After an idle spell (no call for a whole interval) the phase
        // applies again: warm instances meeting a new burst together do
        // not all call at once either.
        let slot = match *next {
            Some(free) if free + interval >= now => free.max(now),
            _ => now + interval.mul_f64(self.phase),
        };
        *next = Some(slot + interval);
        slot
    }

    /// Runs `f` on every item, each started in its own slot, several in
    /// flight at once; the answers come back in the order of `items`.
    pub async fn run_all<T, R, Fut>(
        &self,
        items: impl IntoIterator<Item = T>,
        f: impl Fn(T) -> Fut,
    ) -> Vec<R>
    where
        Fut: Future<Output = R>,
    {
        stream::iter(items)
            .map(|item| {
                let call = f(item);
                async move {
                    self.acquire().await;
                    call.await
                }
            })
            .buffered(IN_FLIGHT)
            .collect()
            .await
    }
}

/// Calls in flight at once in [`RateLimiter::run_all`]: enough that the
/// rate, not the latency, is the limit.
const IN_FLIGHT: usize = 64;

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

    #[tokio::test(start_paused = true)]
    async fn a_phase_delays_the_first_slot_by_that_part_of_an_interval() {
        for (rate, phase, first_ms, third_ms) in [
            (0.5, 0.0, 0, 4000),
            (0.5, 0.25, 500, 4500),
            (0.5, 1.0, 2000, 6000),
            (10.0, 0.5, 50, 250),
            (10.0, 7.0, 100, 300),
        ] {
            let limiter = RateLimiter::per_second_from(rate, phase);
            let start = Instant::now();
            limiter.acquire().await;
            assert_eq!(
                start.elapsed().as_millis(),
                first_ms,
                "{rate}/s from {phase}"
            );
            limiter.acquire().await;
            limiter.acquire().await;
            assert_eq!(
                start.elapsed().as_millis(),
                third_ms,
                "{rate}/s from {phase}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_phase_counts_from_the_first_call_not_from_creation() {
        // An instance started long before its first update: the update
        // still goes out a quarter interval (500 ms of 2 s) after it is asked.
        let limiter = RateLimiter::per_second_from(0.5, 0.25);
        tokio::time::sleep(Duration::from_secs(30)).await;
        let asked = Instant::now();
        limiter.acquire().await;
        assert_eq!(asked.elapsed(), Duration::from_millis(500));
        // Idle again for longer than an interval: the phase applies again.
        tokio::time::sleep(Duration::from_secs(30)).await;
        let asked = Instant::now();
        limiter.acquire().await;
        assert_eq!(asked.elapsed(), Duration::from_millis(500));
        // Busy: the next slot an interval after the last.
        let asked = Instant::now();
        limiter.acquire().await;
        assert_eq!(asked.elapsed(), Duration::from_secs(2));
    }

    #[test]
    fn slots_are_one_interval_apart_and_never_in_the_past() {
        let limiter = RateLimiter::new(4);
        let t0 = Instant::now();
        let slots: Vec<Instant> = (0..3).map(|_| limiter.reserve(t0, 1)).collect();
        assert_eq!(slots[0], t0);
        assert_eq!(slots[1] - slots[0], Duration::from_millis(250));
        assert_eq!(slots[2] - slots[1], Duration::from_millis(250));
        // After an idle spell the next slot is "now", not a backlog.
        let later = t0 + Duration::from_secs(10);
        assert_eq!(limiter.reserve(later, 1), later);
    }

    /// The blocking face, on real threads and the real clock: 3 threads
    /// of 2 calls at 20/s take 6 slots 50 ms apart.
    #[test]
    fn threads_waiting_keep_to_the_rate_together() {
        let limiter = RateLimiter::new(20);
        let start = std::time::Instant::now();
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| {
                    limiter.wait();
                    limiter.wait();
                });
            }
        });
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(250), "{took:?}");
        assert!(took < Duration::from_secs(5), "{took:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn fractional_rates_space_calls_seconds_apart() {
        let limiter = RateLimiter::per_second(0.5);
        let start = Instant::now();
        for _ in 0..3 {
            limiter.acquire().await;
        }
        assert_eq!(start.elapsed(), Duration::from_secs(4));
    }

    #[tokio::test(start_paused = true)]
    async fn run_all_keeps_order_and_rate() {
        let limiter = RateLimiter::new(5);
        let start = Instant::now();
        // Later items finish sooner; the answers still come back in item order.
        let answers = limiter
            .run_all(0..10u64, |n| async move {
                tokio::time::sleep(Duration::from_millis(1000 - n * 100)).await;
                n
            })
            .await;
        assert_eq!(answers, (0..10).collect::<Vec<_>>());
        // The last starts 9 slots (1.8 s) in and takes 0.1 s.
        assert_eq!(start.elapsed(), Duration::from_millis(1900));
    }
}
