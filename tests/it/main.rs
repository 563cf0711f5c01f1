//! The integration tests, one binary (one link instead of one per file).
//!
//! Each module spawns the real application (port 0, its own database file)
//! and talks to it over the wire: gRPC Check, the admin API, the CLI, and a
//! real Envoy in `envoy`. Decision tables without the wire live in
//! `pipeline`, over an in-memory world.

mod common;

mod admin;
mod api;
mod architecture;
mod cli;
mod compose;
mod deploy;
mod dry_run;
mod envoy;
mod escalation;
mod explain;
mod faults;
mod first_run;
mod github;
mod groups;
mod http_check;
mod linked_groups;
mod oidc;
mod operations;
mod pipeline;
mod properties;
mod proxies;
mod rbac;
mod reload;
mod replicas;
mod security;
mod service_accounts;
mod signed_identity;
mod soak;
mod traces;
