//! The generated worlds, and the oracle read from README's model: action
//! from the method, resource from the test's routes (a host's route first,
//! then the longest prefix), organization from `x-dispatch-org` or the
//! default, grants from memberships and bindings.

use proptest::prelude::*;

use crate::common::memory::World;

pub(super) const ORGS: [&str; 2] = ["acme", "globex"];
pub(super) const RESOURCES: [&str; 5] = ["function", "image", "orders", "shop", "runs"];
pub(super) const ACTIONS: [&str; 4] = ["get", "create", "update", "delete"];
pub(super) const USERS: [&str; 4] = ["u0", "u1", "u2", "u3"];

/// A permission: each side an index, or `*`.
pub(super) type PermSpec = (Option<usize>, Option<usize>);

#[derive(Debug, Clone)]
pub(super) struct RoleSpec {
    /// `None`: global.
    pub(super) org: Option<usize>,
    pub(super) perms: Vec<PermSpec>,
}

#[derive(Debug, Clone)]
pub(super) struct UserSpec {
    pub(super) enabled: bool,
    pub(super) member: [bool; 2],
    pub(super) default_org: Option<usize>,
    /// Role indexes (modulo the roles there are); an organization's role
    /// only where the user is a member, as the admin API allows.
    pub(super) roles: Vec<usize>,
}

#[derive(Debug, Clone)]
pub(super) struct WorldSpec {
    pub(super) roles: Vec<RoleSpec>,
    pub(super) users: Vec<UserSpec>,
}

impl UserSpec {
    pub(super) fn is_member(&self, org: usize) -> bool {
        self.member[org] || self.default_org == Some(org)
    }
}

impl WorldSpec {
    pub(super) fn bound(&self, user: usize) -> impl Iterator<Item = (usize, &RoleSpec)> {
        let spec = &self.users[user];
        let mut roles: Vec<usize> = spec.roles.iter().map(|r| r % self.roles.len()).collect();
        roles.sort_unstable();
        roles.dedup();
        roles
            .into_iter()
            .map(|r| (r, &self.roles[r]))
            .filter(|(_, role)| role.org.is_none_or(|o| spec.is_member(o)))
    }

    pub(super) fn world(&self) -> World {
        let mut w = World::default();
        for org in ORGS {
            w.org(org);
        }
        for (i, role) in self.roles.iter().enumerate() {
            let perms: Vec<String> = role
                .perms
                .iter()
                .map(|(r, a)| {
                    let r = r.map_or("*", |r| RESOURCES[r]);
                    let a = a.map_or("*", |a| ACTIONS[a]);
                    format!("{r}:{a}")
                })
                .collect();
            let perms: Vec<&str> = perms.iter().map(String::as_str).collect();
            w.role(role.org.map_or("", |o| ORGS[o]), &format!("r{i}"), &perms);
        }
        for (u, spec) in self.users.iter().enumerate() {
            w.user(USERS[u]);
            if !spec.enabled {
                w.disable(USERS[u]);
            }
            for (o, org) in ORGS.iter().enumerate() {
                if spec.is_member(o) {
                    w.member(org, USERS[u], spec.default_org == Some(o));
                }
            }
            for (r, role) in self.bound(u) {
                w.bind(role.org.map_or("", |o| ORGS[o]), &format!("r{r}"), USERS[u]);
            }
        }
        w
    }

    /// Whether `user` may do `action` on `resource` in `org`, by README.
    pub(super) fn grants(&self, user: usize, org: usize, resource: &str, action: &str) -> bool {
        let spec = &self.users[user];
        let bound: Vec<&RoleSpec> = self.bound(user).map(|(_, r)| r).collect();
        let has_global = bound.iter().any(|r| r.org.is_none());
        if !spec.enabled || !(spec.is_member(org) || has_global) {
            return false;
        }
        bound
            .iter()
            .filter(|r| r.org.is_none_or(|o| o == org))
            .flat_map(|r| &r.perms)
            .any(|(r, a)| {
                r.is_none_or(|r| RESOURCES[r] == resource) && a.is_none_or(|a| ACTIONS[a] == action)
            })
    }
}

pub(super) fn role_spec() -> impl Strategy<Value = RoleSpec> {
    let perm = (
        prop::option::weighted(0.8, 0..RESOURCES.len()),
        prop::option::weighted(0.8, 0..ACTIONS.len()),
    );
    (
        prop::option::weighted(0.7, 0..ORGS.len()),
        prop::collection::vec(perm, 1..4),
    )
        .prop_map(|(org, perms)| RoleSpec { org, perms })
}

pub(super) fn user_spec() -> impl Strategy<Value = UserSpec> {
    (
        prop::bool::weighted(0.85),
        [any::<bool>(), any::<bool>()],
        prop::option::of(0..ORGS.len()),
        prop::collection::vec(0..8usize, 0..4),
    )
        .prop_map(|(enabled, member, default_org, roles)| UserSpec {
            enabled,
            member,
            default_org,
            roles,
        })
}

pub(super) fn world_spec() -> impl Strategy<Value = WorldSpec> {
    (
        prop::collection::vec(role_spec(), 1..6),
        prop::collection::vec(user_spec(), USERS.len()),
    )
        .prop_map(|(roles, users)| WorldSpec { roles, users })
}

pub(super) fn resource_of<'a>(host: &str, path: &'a str) -> Option<&'a str> {
    let path = path.split('?').next().unwrap_or_default();
    let under = |prefix: &str| path == prefix || path.starts_with(&format!("{prefix}/"));
    // A route for the request's host first, then the longest prefix.
    if under("/api") && host.eq_ignore_ascii_case("shop.test") {
        return Some("shop");
    }
    if under("/api/orders") {
        return Some("orders");
    }
    if under("/api") {
        return None;
    }
    let mut segments = path.strip_prefix("/v1/")?.split('/');
    segments.next().filter(|s| !s.is_empty())
}

pub(super) fn action_of(method: &str) -> Option<&'static str> {
    Some(match method {
        "GET" | "HEAD" => "get",
        "POST" => "create",
        "PUT" | "PATCH" => "update",
        "DELETE" => "delete",
        _ => return None,
    })
}
