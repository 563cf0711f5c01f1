//! Policy: what a request may do, as plain data and pure functions.
//!
//! **Invariant:** nothing in `policy` does I/O or knows about Envoy; it is
//! decided from values the check pipeline hands in, which keeps it testable
//! with tables of `(input, expected)`.
//!
//! `routes` (request → resource and action) and `rbac` (roles and
//! organizations) are the pure core of issue 5's authorization model; the
//! store of organizations, roles and bindings that feeds them, and the check
//! path's use of them, come next.

mod path;
pub mod rbac;
pub mod routes;

pub use path::{AmbiguousPath, InvalidPublicPath, PublicPaths, RequestPath};
pub use routes::{Action, RouteMap};
