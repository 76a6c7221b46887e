//! A bounded memory of things that stop being true after a while (a
//! certificate seen ACTIVE, a certificate found done), kept by an instance
//! for the invocations it serves. Time is Unix seconds from the caller
//! (the wall clock, [`crate::clock`], in the function): no reads of its
//! own, so what it forgets is decided by its arguments alone. When full it
//! drops what has expired first, then the oldest.

use std::collections::{BTreeMap, HashMap};

/// At most `capacity` entries, each valid until its own time.
#[derive(Debug)]
pub struct Expiring<V> {
    capacity: usize,
    entries: HashMap<String, Entry<V>>,
    /// (until, age) -> key: what expires first, first.
    by_expiry: BTreeMap<(i64, u64), String>,
    /// age -> key: the oldest first.
    by_age: BTreeMap<u64, String>,
    /// The next entry's age (counts up: a smaller age is older).
    next_age: u64,
}

#[derive(Debug)]
struct Entry<V> {
    value: V,
    until: i64,
    age: u64,
}

impl<V> Expiring<V> {
    /// Holds at most `capacity` entries (at least one).
    pub fn new(capacity: usize) -> Self {
        Expiring {
            capacity: capacity.max(1),
            entries: HashMap::new(),
            by_expiry: BTreeMap::new(),
            by_age: BTreeMap::new(),
            next_age: 0,
        }
    }

    /// Entries held, expired ones not yet dropped included.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// `key`'s value while it is valid: until its time, inclusive.
    pub fn get(&self, key: &str, now: i64) -> Option<&V> {
        self.entries
            .get(key)
            .filter(|e| e.until >= now)
            .map(|e| &e.value)
    }

    /// Remembers `value` for `key` until `until`, in place of what `key`
    /// held (and as the youngest entry). When full: expired entries are
    /// dropped, and if none were, the oldest.
    pub fn insert(&mut self, key: &str, value: V, until: i64, now: i64) {
        self.remove(key);
        if self.entries.len() >= self.capacity {
            self.drop_expired(now);
        }
        while self.entries.len() >= self.capacity {
            let Some((_, oldest)) = self.by_age.pop_first() else {
                break;
            };
            self.remove(&oldest);
        }
        let age = self.next_age;
        self.next_age += 1;
        self.by_expiry.insert((until, age), key.to_string());
        self.by_age.insert(age, key.to_string());
        self.entries
            .insert(key.to_string(), Entry { value, until, age });
    }

    /// Forgets `key`; its value, valid or not.
    pub fn remove(&mut self, key: &str) -> Option<V> {
        let entry = self.entries.remove(key)?;
        self.by_expiry.remove(&(entry.until, entry.age));
        self.by_age.remove(&entry.age);
        Some(entry.value)
    }

    /// Drops every entry whose time passed before `now`.
    fn drop_expired(&mut self, now: i64) {
        while let Some((&(until, _), _)) = self.by_expiry.first_key_value() {
            if until >= now {
                break;
            }
            let (_, key) = self.by_expiry.pop_first().expect("just seen");
            if let Some(entry) = self.entries.remove(&key) {
                self.by_age.remove(&entry.age);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(cache: &Expiring<u32>, now: i64) -> Vec<&'static str> {
        ["a", "b", "c", "d", "e"]
            .into_iter()
            .filter(|k| cache.get(k, now).is_some())
            .collect()
    }

    #[test]
    fn an_entry_is_valid_until_its_time() {
        let mut cache = Expiring::new(10);
        cache.insert("a", 1, 100, 0);
        assert_eq!(cache.get("a", 100), Some(&1));
        assert_eq!(cache.get("a", 101), None);
        assert_eq!(cache.get("b", 0), None);
        // Replaced: the new value and time.
        cache.insert("a", 2, 200, 150);
        assert_eq!(cache.get("a", 200), Some(&2));
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.remove("a"), Some(2));
        assert_eq!(cache.get("a", 0), None);
        assert!(cache.is_empty());
    }

    #[test]
    fn a_full_cache_drops_expired_entries_first() {
        let mut cache = Expiring::new(3);
        cache.insert("a", 1, 100, 0);
        cache.insert("b", 2, 10, 0);
        cache.insert("c", 3, 10, 0);
        // At 50, b and c have expired; a (the oldest) is still valid.
        cache.insert("d", 4, 100, 50);
        assert_eq!(held(&cache, 50), ["a", "d"]);
        assert_eq!(cache.len(), 2, "both expired entries dropped");
    }

    #[test]
    fn then_the_oldest() {
        let mut cache = Expiring::new(3);
        for k in ["a", "b", "c"] {
            cache.insert(k, 0, 100, 0);
        }
        cache.insert("d", 0, 100, 1);
        assert_eq!(held(&cache, 1), ["b", "c", "d"]);
        // b written again is the youngest now: c goes next.
        cache.insert("b", 1, 100, 2);
        cache.insert("e", 0, 100, 3);
        assert_eq!(held(&cache, 3), ["b", "d", "e"]);
        assert_eq!(cache.len(), 3);
    }

    #[test]
    fn a_full_cache_of_valid_entries_keeps_its_capacity() {
        let mut cache = Expiring::new(1000);
        for i in 0..5000 {
            cache.insert(&i.to_string(), i, 1_000_000, i64::from(i));
        }
        assert_eq!(cache.len(), 1000);
        assert!(cache.get("3999", 5000).is_none());
        assert!(cache.get("4000", 5000).is_some());
    }
}
