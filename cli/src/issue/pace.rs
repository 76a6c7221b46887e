//! Spacing signatures out so a run stays under the key store's rate limit
//! (KMS: 300 ECC / 500 RSA signatures per second per account), shared by
//! all worker threads.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Hands out start times `1/rate` apart; callers sleep until theirs.
pub(crate) struct Pacer {
    interval: Duration,
    next: Mutex<Instant>,
}

impl Pacer {
    pub(crate) fn new(per_second: u32) -> Self {
        Pacer {
            interval: Duration::from_secs(1) / per_second.max(1),
            next: Mutex::new(Instant::now()),
        }
    }

    /// The start time of the next caller (and reserves it).
    fn reserve(&self, now: Instant) -> Instant {
        let mut next = self.next.lock().expect("pacer");
        let slot = (*next).max(now);
        *next = slot + self.interval;
        slot
    }

    /// Waits for this caller's slot.
    pub(crate) fn wait(&self) {
        let slot = self.reserve(Instant::now());
        let now = Instant::now();
        if slot > now {
            std::thread::sleep(slot - now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_one_interval_apart_and_never_in_the_past() {
        let pacer = Pacer::new(4);
        let t0 = Instant::now();
        let slots: Vec<Instant> = (0..3).map(|_| pacer.reserve(t0)).collect();
        assert_eq!(slots[0], t0);
        assert_eq!(slots[1] - slots[0], Duration::from_millis(250));
        assert_eq!(slots[2] - slots[1], Duration::from_millis(250));
        // After an idle spell the next slot is "now", not a backlog.
        let later = t0 + Duration::from_secs(10);
        assert_eq!(pacer.reserve(later), later);
    }
}
