//! `[server]`, `[admin]`, `[store]`, `[log]`: where the sidecar listens,
//! keeps its data and writes its log.

use std::{net::SocketAddr, num::NonZeroU32, path::PathBuf};

use serde::{Deserialize, Serialize};

use super::invalid;
use crate::{config::ConfigError, store::StoreLocation, telemetry::LogFormat};

/// Where Envoy reaches the Check service.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:50051";
/// Where the admin API listens (and where `dispatch-authz iam` calls it).
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:50052";
/// Where `/healthz`, `/readyz` and `/metrics` are served.
pub const DEFAULT_OPERATIONS_LISTEN: &str = "127.0.0.1:50054";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// `HOST:PORT`, or `unix:/path/to/socket`.
    pub listen: String,
    /// How long in-flight checks may take to finish after SIGTERM.
    pub shutdown_grace_secs: u64,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN.into(),
            shutdown_grace_secs: 10,
        }
    }
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSettings {
    /// A SQLite database file (created if missing), or a `postgres://` URL.
    pub database: String,
    /// Database connections; unset: twice the cores, 4 to 16.
    pub pool_size: Option<u32>,
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            database: "dispatch-authz.db".into(),
            pool_size: None,
        }
    }
}

/// A PostgreSQL URL may hold a password: shown masked.
impl std::fmt::Debug for StoreSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreSettings")
            .field("database", &StoreLocation::parse(&self.database))
            .field("pool_size", &self.pool_size)
            .finish()
    }
}

impl StoreSettings {
    pub(super) fn compile(&self) -> Result<(StoreLocation, Option<u32>), ConfigError> {
        if self.database.trim().is_empty() {
            return Err(invalid("store.database", "is empty"));
        }
        if let Some(n) = self.pool_size
            && !(1..=256).contains(&n)
        {
            return Err(invalid("store.pool_size", "must be between 1 and 256"));
        }
        Ok((StoreLocation::parse(&self.database), self.pool_size))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminSettings {
    /// `HOST:PORT` of the admin gRPC API (loopback by default), or `off`.
    pub listen: String,
}

impl Default for AdminSettings {
    fn default() -> Self {
        Self {
            listen: DEFAULT_ADMIN_LISTEN.into(),
        }
    }
}

/// `[operations]`: health, readiness and metrics over HTTP.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OperationsSettings {
    /// `HOST:PORT` (loopback by default), or `off`.
    pub listen: String,
}

impl Default for OperationsSettings {
    fn default() -> Self {
        Self {
            listen: DEFAULT_OPERATIONS_LISTEN.into(),
        }
    }
}

impl OperationsSettings {
    /// `None`: no operations listener.
    pub(super) fn compile(&self) -> Result<Option<SocketAddr>, ConfigError> {
        tcp_or_off("operations.listen", &self.listen)
    }
}

/// A TCP listener's `HOST:PORT` (an IP address), or `None` for `off`.
fn tcp_or_off(field: &str, value: &str) -> Result<Option<SocketAddr>, ConfigError> {
    match value {
        "off" => Ok(None),
        addr => addr
            .parse()
            .map(Some)
            .map_err(|_| invalid(field, "expected HOST:PORT (an IP address) or \"off\"")),
    }
}

/// `[http]`: the HTTP check listener, for proxies that ask over plain HTTP.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// `HOST:PORT`, `unix:/path`, or `off` (the default).
    pub listen: String,
    /// Which proxy calls it: where the original method and URI are read
    /// from is fixed here, never guessed from the headers a request carries.
    pub proxy: Option<HttpProxy>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            listen: "off".into(),
            proxy: None,
        }
    }
}

/// The proxy in front of the HTTP check listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HttpProxy {
    /// Envoy's ext_authz `http_service`: the original method and path are
    /// the check request's own.
    Envoy,
    /// nginx `auth_request`: `X-Original-Method`, `X-Original-URI`
    /// (and `X-Original-Host`, else `Host`).
    Nginx,
    /// Caddy `forward_auth`: `X-Forwarded-Method`, `-Uri`, `-Host`.
    Caddy,
    /// Traefik `forwardAuth`: as Caddy.
    Traefik,
}

impl HttpSettings {
    /// `None`: no HTTP check listener.
    pub(super) fn compile(&self) -> Result<Option<(ListenAddr, HttpProxy)>, ConfigError> {
        if self.listen == "off" {
            return Ok(None);
        }
        let addr = ListenAddr::parse(&self.listen).map_err(|e| invalid("http.listen", e))?;
        let proxy = self.proxy.ok_or_else(|| {
            invalid(
                "http.proxy",
                "required with http.listen: envoy, nginx, caddy or traefik (where the \
                 original method and URI are read from)",
            )
        })?;
        Ok(Some((addr, proxy)))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    pub format: LogFormat,
    /// Write the decision line of one allow in this many; 1 (the default)
    /// writes every one, 0 none. Denials always get theirs.
    pub sample_allows: u32,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::default(),
            sample_allows: 1,
        }
    }
}

impl LogSettings {
    /// `None` (`sample_allows = 0`): no allow gets a line.
    pub(super) fn allow_lines_every(&self) -> Result<Option<NonZeroU32>, ConfigError> {
        if self.sample_allows > 1_000_000 {
            return Err(invalid(
                "log.sample_allows",
                "must be between 0 (no allow lines) and 1000000",
            ));
        }
        Ok(NonZeroU32::new(self.sample_allows))
    }
}

/// Where the server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl ListenAddr {
    pub fn parse(value: &str) -> Result<Self, String> {
        if let Some(path) = value.strip_prefix("unix:") {
            if path.is_empty() {
                return Err("expected unix:/path/to/socket".into());
            }
            return Ok(Self::Unix(path.into()));
        }
        value
            .parse()
            .map(Self::Tcp)
            .map_err(|_| format!("{value:?} is not HOST:PORT (e.g. 127.0.0.1:50051) or unix:PATH"))
    }
}

impl AdminSettings {
    /// `None`: no admin API.
    pub(super) fn compile(&self) -> Result<Option<SocketAddr>, ConfigError> {
        tcp_or_off("admin.listen", &self.listen)
    }
}
