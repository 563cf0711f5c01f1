//! Policy: what a request may do, as plain data and pure functions.
//!
//! **Invariant:** nothing in `policy` does I/O or knows about Envoy; it is
//! decided from values the check pipeline hands in, which keeps it testable
//! with tables of `(input, expected)`.
//!
//! `routes` (request → resource and action) and `rbac` (roles and
//! organizations) are the authorization model's core: the store loads a
//! subject's `Grants`, the check pipeline asks them.

pub mod authority;
mod orgs;
mod path;
pub mod rbac;
pub mod readings;
pub mod routes;

pub use orgs::OrgSet;
pub use path::{AmbiguousPath, InvalidPublicPath, PublicPaths, RequestPath};
pub use readings::{Target, target};
pub use routes::{Action, RouteMap};

use crate::domain::OrgName;
use rbac::{Allowed, Grants, Refused};

/// The authorization decision, pure: may a subject with `grants` do
/// `action` on `resource` in `org` (the subject's default organization when
/// `None`)? Allowed names the organization and the roles that granted it.
pub fn authorize(
    grants: &Grants,
    org: Option<&OrgName>,
    resource: &str,
    action: Action,
) -> Result<Allowed, Refused> {
    grants.decide(org, resource, action)
}
