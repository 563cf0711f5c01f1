//! `[check]`: how requests are read (public paths, where the token is) and
//! what an allow passes upstream.

use std::{num::NonZeroU32, time::Duration};

use serde::{Deserialize, Serialize};

use super::{ConfigError, invalid};
use crate::{
    check::{
        CredentialSettings, DryRun, MethodOverride, RequestRules, UpstreamRules,
        upstream::DEFAULT_PASSTHROUGH,
    },
    domain::OrgName,
    policy::PublicPaths,
};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CheckSettings {
    /// Path prefixes that need no credential, matched by whole segments.
    pub public_paths: Vec<String>,
    /// Header holding a bare token (oauth2-proxy: x-forwarded-access-token),
    /// read when there is no Authorization.
    pub token_header: Option<String>,
    /// Cookie to read the bearer token from when there is no Authorization.
    pub token_cookie: Option<String>,
    pub max_token_bytes: usize,
    /// Keep the caller's credential (Authorization, the token header or
    /// cookie) on the upstream request; removed by default.
    pub forward_credential: bool,
    /// Client `x-dispatch-*` inputs the upstream may see (Dispatch's own by
    /// default); every other name of the namespace is removed.
    pub passthrough_headers: Vec<String>,
    /// Name the groups whose roles granted an allow in `x-dispatch-groups`.
    pub groups_header: bool,
    /// `refuse` (default) or `honour` X-HTTP-Method-Override and its kin.
    pub method_override: MethodOverride,
    /// A check's time budget when the caller sends no `grpc-timeout`
    /// (Envoy always does: then four fifths of it).
    pub default_deadline_ms: u64,
}

impl Default for CheckSettings {
    fn default() -> Self {
        Self {
            public_paths: Vec::new(),
            token_header: None,
            token_cookie: None,
            max_token_bytes: 8192,
            forward_credential: false,
            groups_header: false,
            passthrough_headers: DEFAULT_PASSTHROUGH
                .iter()
                .map(|n| (*n).to_owned())
                .collect(),
            method_override: MethodOverride::default(),
            default_deadline_ms: 1000,
        }
    }
}

impl CheckSettings {
    pub(super) fn compile(&self) -> Result<RequestRules, ConfigError> {
        if !(10..=60_000).contains(&self.default_deadline_ms) {
            return Err(invalid(
                "check.default_deadline_ms",
                "must be between 10 and 60000",
            ));
        }
        if !(512..=32768).contains(&self.max_token_bytes) {
            return Err(invalid(
                "check.max_token_bytes",
                "must be between 512 and 32768",
            ));
        }
        if let Some(header) = &self.token_header
            && (header.is_empty()
                || header.eq_ignore_ascii_case("authorization")
                || !header
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        {
            return Err(invalid(
                "check.token_header",
                "not a header name (and not authorization)",
            ));
        }
        if let Some(cookie) = &self.token_cookie
            && (cookie.is_empty()
                || !cookie
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)))
        {
            return Err(invalid("check.token_cookie", "not a cookie name"));
        }
        Ok(RequestRules {
            public: PublicPaths::new(&self.public_paths)
                .map_err(|e| invalid("check.public_paths", e))?,
            credentials: CredentialSettings {
                header: self.token_header.as_ref().map(|h| h.to_ascii_lowercase()),
                cookie: self.token_cookie.clone(),
                max_token_bytes: self.max_token_bytes,
            },
            upstream: UpstreamRules::new(self.forward_credential, &self.passthrough_headers)
                .map_err(|e| invalid("check.passthrough_headers", e))?
                .with_groups_header(self.groups_header),
            method_override: self.method_override,
            default_budget: Duration::from_millis(self.default_deadline_ms),
            allow_lines_every: Some(NonZeroU32::MIN),
            dry_run: DryRun::default(),
            signed_identity: None,
        })
    }
}

/// `[dry_run]`: where the roles' refusals are logged and counted as
/// `would_deny` but let through. Never on by default.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DryRunSettings {
    pub everywhere: bool,
    pub organizations: Vec<String>,
    /// Route map resources (`function`, `image`, ...).
    pub resources: Vec<String>,
}

impl DryRunSettings {
    pub(super) fn compile(&self) -> Result<DryRun, ConfigError> {
        let organizations = self
            .organizations
            .iter()
            .enumerate()
            .map(|(i, org)| {
                OrgName::parse(org).map_err(|e| invalid(format!("dry_run.organizations[{i}]"), e))
            })
            .collect::<Result<_, _>>()?;
        for (i, resource) in self.resources.iter().enumerate() {
            if resource.is_empty()
                || !resource
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_".contains(&b))
            {
                return Err(invalid(
                    format!("dry_run.resources[{i}]"),
                    "a route resource name (lower-case letters, digits, - and _)",
                ));
            }
        }
        Ok(DryRun {
            everywhere: self.everywhere,
            organizations,
            resources: self.resources.clone(),
        })
    }
}
