//! The invocation's deadline: Lambda kills a function at its timeout, and a
//! killed invocation returns no `batchItemFailures` (the whole batch comes
//! back). Work stops a margin before the deadline so the answer, naming
//! what is unfinished, always gets out. Work cut short is safe to retry:
//! the certificate is activated last.

use std::future::Future;
use std::time::{Duration, Instant, SystemTime};

/// The least time kept back to send the answer.
const MIN_MARGIN: Duration = Duration::from_millis(250);
/// The most time kept back (a 30 s function works for 28 s).
const MAX_MARGIN: Duration = Duration::from_secs(2);

/// How long before the deadline work stops, for `remaining` time: a tenth
/// of it, within [`MIN_MARGIN`, `MAX_MARGIN`].
pub fn margin(remaining: Duration) -> Duration {
    (remaining / 10).clamp(MIN_MARGIN, MAX_MARGIN)
}

/// 2001-09-09 in Unix milliseconds: no Lambda deadline is earlier, and no
/// function timeout (15 min at most) is longer.
pub const EPOCH_MS_FLOOR: u64 = 1_000_000_000_000;

/// When the work of one invocation must be done (None: no deadline, as for
/// the CLI).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    cutoff: Option<Instant>,
}

impl Deadline {
    /// No deadline: work runs to its end (the SDK's own timeouts still apply).
    pub fn none() -> Self {
        Deadline { cutoff: None }
    }

    /// A deadline `remaining` from now; work stops [`margin`] before it.
    pub fn after(remaining: Duration) -> Self {
        let now = Instant::now();
        Deadline {
            cutoff: Some(now + remaining.saturating_sub(margin(remaining))),
        }
    }

    /// Lambda's deadline (`Context::deadline`, milliseconds since the Unix
    /// epoch), read at `now`. Runtime emulators are looser: `cargo lambda
    /// watch` sends its timeout (600000) instead, so a value below
    /// [`EPOCH_MS_FLOOR`] is a time from now, and 0 is no deadline.
    pub fn from_lambda(deadline_ms: u64, now: SystemTime) -> Self {
        match deadline_ms {
            0 => Self::none(),
            ms if ms < EPOCH_MS_FLOOR => Self::after(Duration::from_millis(ms)),
            ms => {
                let deadline = SystemTime::UNIX_EPOCH + Duration::from_millis(ms);
                Self::after(deadline.duration_since(now).unwrap_or_default())
            }
        }
    }

    /// Time left before work must stop (None: no deadline).
    pub fn remaining(&self) -> Option<Duration> {
        self.cutoff
            .map(|c| c.saturating_duration_since(Instant::now()))
    }

    /// Runs `work` until it ends or the cutoff comes (`None`: cut short;
    /// work not yet started when the cutoff has passed is not started).
    pub async fn run<F: Future>(&self, work: F) -> Option<F::Output> {
        match self.cutoff {
            None => Some(work.await),
            Some(cutoff) if Instant::now() >= cutoff => None,
            Some(cutoff) => tokio::time::timeout_at(cutoff.into(), work).await.ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn margin_is_a_tenth_within_bounds() {
        let ms = Duration::from_millis;
        for (remaining, expected) in [
            (ms(0), ms(250)),
            (ms(1_000), ms(250)),
            (ms(3_000), ms(300)),
            (ms(10_000), ms(1_000)),
            (ms(30_000), ms(2_000)),
            (ms(900_000), ms(2_000)),
        ] {
            assert_eq!(margin(remaining), expected, "{remaining:?}");
        }
    }

    #[test]
    fn lambda_deadlines_leave_the_margin() {
        let now = SystemTime::now();
        let epoch_ms = |t: SystemTime| {
            t.duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_millis() as u64
        };
        let secs = Duration::from_secs;
        let within = |d: Deadline, low: Duration, high: Duration| {
            let left = d.remaining().unwrap();
            assert!(
                left > low && left <= high,
                "{left:?} not in ({low:?}, {high:?}]"
            );
        };
        // Lambda: 30 s from now, 2 s kept back.
        within(
            Deadline::from_lambda(epoch_ms(now + secs(30)), now),
            secs(27),
            secs(28),
        );
        // cargo lambda watch: its 600 s timeout, not a time of day.
        within(Deadline::from_lambda(600_000, now), secs(597), secs(598));
        // A deadline already past leaves nothing; 0 is none.
        let past = Deadline::from_lambda(epoch_ms(now) - 5_000, now);
        assert_eq!(past.remaining(), Some(Duration::ZERO));
        assert_eq!(Deadline::from_lambda(0, now), Deadline::none());
        assert_eq!(Deadline::none().remaining(), None);
    }

    #[tokio::test]
    async fn work_is_cut_at_the_cutoff_and_not_started_after_it() {
        let d = Deadline::after(Duration::from_millis(500));
        assert_eq!(d.run(async { 7 }).await, Some(7));
        let stalled = d.run(std::future::pending::<()>()).await;
        assert_eq!(stalled, None);
        let mut started = false;
        assert_eq!(d.run(async { started = true }).await, None);
        assert!(!started, "nothing starts after the cutoff");
        assert_eq!(Deadline::none().run(async { 8 }).await, Some(8));
    }
}
