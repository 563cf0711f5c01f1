//! dispatch-authz: an Envoy ext_authz sidecar that verifies GitHub-derived
//! identities, looks them up in its own user database, decides with
//! organizations and roles, and tells Envoy who is calling through
//! `x-dispatch-*` headers that clients cannot forge.
//!
//! The modules follow a request, one way: [`server`] (and [`iam`] for the
//! admin API) → [`check`] → [`identity`] → [`directory`] → [`store`] →
//! [`policy`] → [`domain`]; [`config`], [`startup`], [`cli`] and
//! [`telemetry`] beside them. See ARCHITECTURE.md (and
//! `tests/it/architecture.rs`, which enforces the arrows).

// No unsafe code of our own: what needs it lives in well-kept crates.
#![forbid(unsafe_code)]

pub mod assertion;
pub mod check;
pub mod cli;
pub mod config;
pub mod directory;
pub mod domain;
pub mod freshness;
pub mod iam;
pub mod identity;
pub mod policy;
pub mod server;
pub mod shared;
pub mod startup;
pub mod store;
pub mod telemetry;

/// Code generated from `proto/` by build.rs: the admin API, served on its
/// own listener by `server::admin` (not listed by reflection).
pub mod proto {
    #[allow(clippy::all, clippy::pedantic)]
    pub mod admin {
        tonic::include_proto!("dispatch.authz.admin.v1");

        /// For gRPC reflection on the admin listener.
        pub const FILE_DESCRIPTOR_SET: &[u8] =
            include_bytes!(concat!(env!("OUT_DIR"), "/admin_descriptor.bin"));
    }

    /// Envoy's `envoy.service.auth.v3.Authorization` and its imports, for
    /// gRPC reflection (compiled from `proto/vendor/`).
    pub const EXT_AUTHZ_FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/ext_authz_descriptor.bin"));
}
