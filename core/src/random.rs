//! Random numbers where nothing rests on their secrecy: jitter that keeps
//! instances and devices from acting in step, and names that only have to
//! differ between processes. Keys, serial numbers and anything an attacker
//! must not guess come from a cryptographic generator instead.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};

/// 64 random bits. std seeds its hasher keys from the operating system's
/// random source (once per thread, then a new key for every `RandomState`);
/// a counter, the time and the process id are hashed in as well, so two
/// draws never hash the same input.
pub fn bits() -> u64 {
    static DRAWS: AtomicU64 = AtomicU64::new(0);
    let draw = DRAWS.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    std::collections::hash_map::RandomState::new().hash_one((draw, nanos, std::process::id()))
}

/// A uniform number in [0, 1).
pub fn unit() -> f64 {
    (bits() >> 11) as f64 / (1u64 << 53) as f64
}

/// 16 hex digits, different in every process: a name for this instance.
pub fn token() -> String {
    format!("{:016x}", bits())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_in_range_and_vary() {
        let units: Vec<f64> = (0..50).map(|_| unit()).collect();
        assert!(units.iter().all(|p| (0.0..1.0).contains(p)), "{units:?}");
        assert!(units.iter().any(|p| *p != units[0]), "{units:?}");
    }

    #[test]
    fn tokens_are_sixteen_hex_digits_and_differ() {
        let (a, b) = (token(), token());
        for t in [&a, &b] {
            assert_eq!(t.len(), 16, "{t}");
            assert!(t.chars().all(|c| c.is_ascii_hexdigit()), "{t}");
        }
        assert_ne!(a, b);
    }

    #[test]
    fn units_spread_over_the_interval() {
        // 1000 draws: each tenth of [0, 1) holds some (a stuck or biased
        // source would leave tenths empty; the chance of a fair one doing
        // so is below 10^-40).
        let mut tenths = [0u32; 10];
        for _ in 0..1000 {
            tenths[(unit() * 10.0) as usize] += 1;
        }
        assert!(tenths.iter().all(|n| *n > 0), "{tenths:?}");
    }
}
