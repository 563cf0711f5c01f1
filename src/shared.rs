//! One copy of equal values, shared by every cache entry that holds one.
//!
//! Most subjects of an organization have the same grants (the same
//! memberships and the same few roles), and every holder of a role holds
//! the same role. Kept once per subject, 100,000 users held 100,000 equal
//! copies of each (BENCHMARKS.md). A loaded value is exchanged here for the
//! live copy equal to it, if there is one: the directory does it for grants,
//! the SQLite store for the roles inside them. Values are immutable once
//! loaded, so sharing one changes nothing a reader sees; entries are weak,
//! so a value no cache holds any more is freed.

use std::{
    collections::HashMap,
    hash::{BuildHasher, Hash, RandomState},
    sync::{Arc, Mutex, Weak},
};

pub struct Shared<T> {
    by_hash: Mutex<HashMap<u64, Weak<T>>>,
    hasher: RandomState,
}

impl<T> Default for Shared<T> {
    fn default() -> Self {
        Self {
            by_hash: Mutex::default(),
            hasher: RandomState::new(),
        }
    }
}

impl<T: Hash + Eq> Shared<T> {
    /// The live copy equal to `value`, else `value` itself, now shared.
    /// Two different values with one hash are both kept, only the newer
    /// shared: equality, not the hash, decides.
    pub fn intern(&self, value: T) -> Arc<T> {
        let hash = self.hasher.hash_one(&value);
        let mut by_hash = self.by_hash.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(live) = by_hash.get(&hash).and_then(Weak::upgrade)
            && *live == value
        {
            return live;
        }
        // Forget dead entries now and then: amortized over insertions.
        if by_hash.len() >= 64 && by_hash.len().is_power_of_two() {
            by_hash.retain(|_, v| v.strong_count() > 0);
        }
        let shared = Arc::new(value);
        by_hash.insert(hash, Arc::downgrade(&shared));
        shared
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_values_share_one_copy_and_an_unheld_one_is_freed() {
        let shared = Shared::default();
        let a = shared.intern(vec!["acme".to_owned()]);
        let b = shared.intern(vec!["acme".to_owned()]);
        assert!(Arc::ptr_eq(&a, &b));
        let other = shared.intern(vec!["globex".to_owned()]);
        assert!(!Arc::ptr_eq(&a, &other));
        assert_eq!(*other, ["globex"]);
        let weak = Arc::downgrade(&a);
        drop((a, b));
        assert!(weak.upgrade().is_none(), "the set keeps nothing alive");
        let again = shared.intern(vec!["acme".to_owned()]);
        assert_eq!(*again, ["acme"]);
    }

    #[test]
    fn many_dead_entries_are_forgotten() {
        let shared = Shared::default();
        for i in 0..1000 {
            drop(shared.intern(i));
        }
        let kept = shared.by_hash.lock().unwrap().len();
        assert!(kept < 1000, "{kept} entries kept for no live value");
    }
}
