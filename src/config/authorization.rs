//! `[authorization]` and `[service_accounts]`: how an authenticated request
//! is authorized, and which self-signed service-account tokens are accepted.

use serde::{Deserialize, Serialize};

use super::{ConfigError, invalid, within};
use crate::{
    check::Authorization,
    identity::{limiter::LimiterSettings, service_account::ServiceAccountSettings},
    policy::RouteMap,
};

/// How an authenticated request is authorized.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthorizationMode {
    /// Roles and organizations decide (default: deny unless granted).
    #[default]
    Rbac,
    /// Every enabled, registered subject is allowed (no roles).
    Registered,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthorizationSettings {
    pub mode: AuthorizationMode,
    /// Map Dispatch's API (`/v1/<resource>`).
    pub dispatch_routes: bool,
    /// More routes: path prefix (optionally per host) to resource.
    pub routes: Vec<RouteSettings>,
}

impl Default for AuthorizationSettings {
    fn default() -> Self {
        Self {
            mode: AuthorizationMode::Rbac,
            dispatch_routes: true,
            routes: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSettings {
    pub prefix: String,
    pub resource: String,
    #[serde(default)]
    pub host: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceAccountConfig {
    /// Accept service-account tokens (`iss = "<org>/<name>"`).
    pub enabled: bool,
    /// How far ahead a token's `exp` may lie.
    pub max_token_lifetime_secs: u64,
    /// Accepted `aud` values; empty: `aud` is not checked.
    pub audiences: Vec<String>,
    pub leeway_secs: u64,
    /// Database lookups of accounts not in the cache, per second; beyond
    /// it such tokens get a 503 without a query (random `org/name` issuers
    /// must not become a flood of queries).
    pub lookups_per_sec: u32,
}

impl Default for ServiceAccountConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_token_lifetime_secs: 3600,
            audiences: Vec::new(),
            leeway_secs: 60,
            lookups_per_sec: 200,
        }
    }
}

impl AuthorizationSettings {
    pub(super) fn compile(&self) -> Result<Authorization, ConfigError> {
        if self.mode == AuthorizationMode::Registered {
            return Ok(Authorization::Registered);
        }
        let mut routes = if self.dispatch_routes {
            RouteMap::dispatch()
        } else {
            RouteMap::default()
        };
        for (i, r) in self.routes.iter().enumerate() {
            routes = routes
                .with(r.host.as_deref(), &r.prefix, &r.resource)
                .map_err(|e| invalid(format!("authorization.routes[{i}]"), e))?;
        }
        Ok(Authorization::Rbac(routes))
    }
}

impl ServiceAccountConfig {
    pub(super) fn compile(&self) -> Result<Option<ServiceAccountSettings>, ConfigError> {
        if !self.enabled {
            return Ok(None);
        }
        within(
            "service_accounts.max_token_lifetime_secs",
            self.max_token_lifetime_secs,
            1..=86_400,
        )?;
        within("service_accounts.leeway_secs", self.leeway_secs, 0..=600)?;
        within(
            "service_accounts.lookups_per_sec",
            self.lookups_per_sec.into(),
            1..=100_000,
        )?;
        Ok(Some(ServiceAccountSettings {
            max_token_lifetime_secs: self.max_token_lifetime_secs,
            audiences: self.audiences.clone(),
            leeway_secs: self.leeway_secs,
            lookups: LimiterSettings {
                per_second: self.lookups_per_sec,
                concurrent: 16,
            },
        }))
    }
}
