//! One copy of each role for every subject's grants.
//!
//! A role's content never changes under its id (roles are created and
//! deleted, never edited), so the grants of all its holders can share one
//! `Arc<Role>` instead of a copy each: with 100,000 users holding the same
//! role, that is one role in memory instead of 100,000 (BENCHMARKS.md).
//! Entries are weak: a role no cached grants hold any more is freed.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, Weak},
};

use crate::policy::rbac::Role;

#[derive(Default)]
pub(super) struct RoleInterner(Mutex<HashMap<String, Weak<Role>>>);

impl RoleInterner {
    /// The shared copy of role `id`, `role` itself if none is alive.
    pub(super) fn intern(&self, id: String, role: Role) -> Arc<Role> {
        let mut roles = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(shared) = roles.get(&id).and_then(Weak::upgrade) {
            return shared;
        }
        // Forget dead entries now and then: amortized over insertions.
        if roles.len() >= 64 && roles.len().is_power_of_two() {
            roles.retain(|_, role| role.strong_count() > 0);
        }
        let shared = Arc::new(role);
        roles.insert(id, Arc::downgrade(&shared));
        shared
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        domain::RoleName,
        policy::rbac::{Permission, Scope},
    };

    fn role(name: &str) -> Role {
        Role {
            name: RoleName::parse(name).unwrap(),
            scope: Scope::Global,
            permissions: vec![Permission::parse("function:get").unwrap()],
        }
    }

    #[test]
    fn holders_of_one_role_share_it_and_a_dropped_role_is_freed() {
        let interner = RoleInterner::default();
        let a = interner.intern("r1".into(), role("developer"));
        let b = interner.intern("r1".into(), role("developer"));
        assert!(Arc::ptr_eq(&a, &b));
        let other = interner.intern("r2".into(), role("viewer"));
        assert!(!Arc::ptr_eq(&a, &other));
        let weak = Arc::downgrade(&a);
        drop((a, b));
        assert!(weak.upgrade().is_none(), "the interner keeps no role alive");
        let again = interner.intern("r1".into(), role("developer"));
        assert_eq!(again.name.as_str(), "developer");
    }
}
