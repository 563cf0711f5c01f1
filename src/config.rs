//! Configuration: raw settings (TOML file, `DISPATCH_AUTHZ_*` environment,
//! command-line flags, in rising precedence) compiled into a [`Config`].
//!
//! Compilation does everything that can fail (parsing addresses, reading
//! keys, checking issuers) so that a mistake stops start-up with a message
//! naming the field, instead of surfacing as refused requests later.
//! Unknown keys are errors: a typo must not silently fall back to a default.

use std::{
    collections::HashSet,
    fmt,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::{
    check::{
        Authorization, CredentialSettings, MethodOverride, RequestRules, UpstreamRules,
        upstream::DEFAULT_PASSTHROUGH,
    },
    directory::CacheSettings,
    domain::IssuerName,
    identity::{
        ClaimMapping, JwtIssuer, KeySource,
        github::{GithubSettings, GithubSource, OAuthApp},
        jwks::{RemoteJwks, RemoteJwksSettings},
        keys::{self, VerifyKey},
        limiter::LimiterSettings,
        service_account::{self, ServiceAccountSettings},
    },
    policy::{PublicPaths, RouteMap},
};

pub const ENV_PREFIX: &str = "DISPATCH_AUTHZ_";

#[derive(Debug, Error)]
pub enum ConfigError {
    /// Figment's message names the key and where it came from (file or
    /// environment). Not a `#[source]`: the message already holds it.
    #[error("configuration: {0}")]
    Load(Box<figment::Error>),
    #[error("configuration: {field}: {reason}")]
    Invalid { field: String, reason: String },
}

impl From<figment::Error> for ConfigError {
    fn from(e: figment::Error) -> Self {
        Self::Load(Box::new(e))
    }
}

fn invalid(field: impl Into<String>, reason: impl ToString) -> ConfigError {
    ConfigError::Invalid {
        field: field.into(),
        reason: reason.to_string(),
    }
}

/// The settings as written. See README.md's configuration reference.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub server: ServerSettings,
    pub store: StoreSettings,
    pub cache: CacheConfig,
    pub check: CheckSettings,
    pub log: LogSettings,
    pub issuers: Vec<IssuerSettings>,
    /// GitHub OAuth tokens, checked against the GitHub API.
    pub github: Option<GithubConfig>,
    pub authorization: AuthorizationSettings,
    pub service_accounts: ServiceAccountConfig,
    pub admin: AdminSettings,
}

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

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminSettings {
    /// `HOST:PORT` of the admin gRPC API (loopback by default), or `off`.
    pub listen: String,
}

impl Default for AdminSettings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:50052".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GithubConfig {
    /// Source name users are stored under.
    #[serde(default = "default_github_name")]
    pub name: String,
    /// `https://api.github.com`, or `https://HOST/api/v3` for GitHub Enterprise Server.
    #[serde(default = "default_github_api")]
    pub api_url: String,
    /// OAuth app: with both set, only tokens issued to this app are accepted.
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub client_secret: Option<Secret>,
    /// Require membership of this organization.
    #[serde(default)]
    pub required_org: Option<String>,
    /// Require membership of this team, as `org/team-slug`.
    #[serde(default)]
    pub required_team: Option<String>,
    #[serde(default = "default_github_ttl")]
    pub cache_ttl_secs: u64,
    #[serde(default = "default_github_failure_ttl")]
    pub failure_ttl_secs: u64,
    #[serde(default = "default_github_timeout")]
    pub timeout_ms: u64,
    /// GitHub API calls for tokens not seen before, per second; beyond it
    /// such tokens get a 503 without a call (a flood of random tokens must
    /// not spend the rate limit every user shares).
    #[serde(default = "default_github_lookups_per_sec")]
    pub lookups_per_sec: u32,
    /// ... and in flight at once.
    #[serde(default = "default_github_concurrent_lookups")]
    pub concurrent_lookups: u32,
}

fn default_github_lookups_per_sec() -> u32 {
    20
}
fn default_github_concurrent_lookups() -> u32 {
    16
}

fn default_github_name() -> String {
    "github".into()
}
fn default_github_api() -> String {
    "https://api.github.com".into()
}
fn default_github_ttl() -> u64 {
    300
}
fn default_github_failure_ttl() -> u64 {
    30
}
fn default_github_timeout() -> u64 {
    2000
}

impl GithubConfig {
    fn compile(
        &self,
        http: &reqwest::Client,
        taken: &HashSet<IssuerName>,
    ) -> Result<GithubSource, ConfigError> {
        let name = IssuerName::parse(&self.name).map_err(|e| invalid("github.name", e))?;
        if taken.contains(&name) {
            return Err(invalid("github.name", "used by an issuer"));
        }
        check_url(&self.api_url).map_err(|e| invalid("github.api_url", e))?;
        let app = match (&self.client_id, &self.client_secret) {
            (Some(id), Some(secret)) if !id.is_empty() => Some(OAuthApp {
                client_id: id.clone(),
                client_secret: secret.0.clone(),
            }),
            (None, None) => None,
            _ => {
                return Err(invalid(
                    "github.client_id",
                    "set both client_id and client_secret, or neither",
                ));
            }
        };
        let required_team = match &self.required_team {
            None => None,
            Some(team) => match team.split_once('/') {
                Some((org, slug)) if !org.is_empty() && !slug.is_empty() => {
                    Some((org.to_owned(), slug.to_owned()))
                }
                _ => return Err(invalid("github.required_team", "expected org/team-slug")),
            },
        };
        within("github.cache_ttl_secs", self.cache_ttl_secs, 1..=86_400)?;
        within("github.failure_ttl_secs", self.failure_ttl_secs, 0..=3600)?;
        within("github.timeout_ms", self.timeout_ms, 1..=60_000)?;
        within(
            "github.lookups_per_sec",
            self.lookups_per_sec.into(),
            1..=10_000,
        )?;
        within(
            "github.concurrent_lookups",
            self.concurrent_lookups.into(),
            1..=1024,
        )?;
        Ok(GithubSource::new(
            GithubSettings {
                name,
                api_url: self.api_url.trim_end_matches('/').to_owned(),
                app,
                required_org: self.required_org.clone(),
                required_team,
                cache_ttl: Duration::from_secs(self.cache_ttl_secs),
                failure_ttl: Duration::from_secs(self.failure_ttl_secs),
                timeout: Duration::from_millis(self.timeout_ms),
                limits: LimiterSettings {
                    per_second: self.lookups_per_sec,
                    concurrent: self.concurrent_lookups,
                },
            },
            http.clone(),
        ))
    }
}

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
            listen: "127.0.0.1:50051".into(),
            shutdown_grace_secs: 10,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSettings {
    /// Path of the SQLite database file; created if missing.
    pub database: PathBuf,
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            database: "dispatch-authz.db".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    pub users_capacity: u64,
    pub users_ttl_secs: u64,
    pub users_negative_ttl_secs: u64,
    pub tokens_capacity: u64,
    pub tokens_max_ttl_secs: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            users_capacity: 100_000,
            users_ttl_secs: 30,
            users_negative_ttl_secs: 5,
            tokens_capacity: 100_000,
            tokens_max_ttl_secs: 300,
        }
    }
}

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
            passthrough_headers: DEFAULT_PASSTHROUGH
                .iter()
                .map(|n| (*n).to_owned())
                .collect(),
            method_override: MethodOverride::Refuse,
            default_deadline_ms: 1000,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Pretty,
    Json,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    pub format: LogFormat,
}

/// A secret that never shows in `Debug` output or logs.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerSettings {
    /// Our name for the issuer; users are stored under it.
    pub name: String,
    /// A ready configuration: `github-actions`.
    #[serde(default)]
    pub preset: Option<Preset>,
    /// The exact `iss` its tokens carry (set by a preset).
    #[serde(default)]
    pub issuer: Option<String>,
    /// Accepted `aud` values; a token must name at least one.
    pub audiences: Vec<String>,
    /// Find the keys through `{issuer}/.well-known/openid-configuration`.
    #[serde(default)]
    pub discovery: bool,
    /// Fetch the keys from this JWKS URL (no discovery).
    #[serde(default)]
    pub jwks_uri: Option<String>,
    #[serde(default)]
    pub remote: RemoteKeySettings,
    #[serde(default)]
    pub jwks_file: Option<PathBuf>,
    #[serde(default)]
    pub public_keys: Vec<PublicKeySettings>,
    /// HS256 shared secret; requires `development_only = true`.
    #[serde(default)]
    pub hmac_secret: Option<Secret>,
    #[serde(default)]
    pub development_only: bool,
    #[serde(default = "default_leeway")]
    pub leeway_secs: u64,
    /// Claim names (a preset brings its own).
    #[serde(default)]
    pub claims: Option<ClaimSettings>,
}

fn default_leeway() -> u64 {
    30
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// GitHub Actions OIDC tokens: `iss` `https://token.actions.githubusercontent.com`,
    /// keys by discovery, subject `sub` (`repo:OWNER/REPO:ref:...`), login `repository`.
    GithubActions,
}

pub const GITHUB_ACTIONS_ISSUER: &str = "https://token.actions.githubusercontent.com";

/// How remote keys are kept fresh.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RemoteKeySettings {
    /// Background refresh when the provider sends no `Cache-Control: max-age`.
    pub refresh_interval_secs: u64,
    /// A provider's max-age is honoured within these bounds.
    pub min_refresh_interval_secs: u64,
    pub max_refresh_interval_secs: u64,
    /// Tokens with unknown `kid`s cause at most one fetch per this interval.
    pub min_refetch_interval_secs: u64,
    /// Per HTTP request to the provider.
    pub timeout_ms: u64,
}

impl Default for RemoteKeySettings {
    fn default() -> Self {
        Self {
            refresh_interval_secs: 300,
            min_refresh_interval_secs: 60,
            max_refresh_interval_secs: 86_400,
            min_refetch_interval_secs: 30,
            timeout_ms: 2000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicKeySettings {
    pub pem_file: PathBuf,
    /// RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384 or EdDSA.
    pub algorithm: String,
    #[serde(default)]
    pub kid: Option<String>,
}

/// Claim names; an empty string switches an optional claim off.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClaimSettings {
    pub subject: String,
    pub login: String,
    pub email: String,
}

impl Default for ClaimSettings {
    fn default() -> Self {
        let d = ClaimMapping::default();
        Self {
            subject: d.subject,
            login: d.login.unwrap_or_default(),
            email: d.email.unwrap_or_default(),
        }
    }
}

/// Values given on the command line; they win over file and environment.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub listen: Option<String>,
    pub database: Option<PathBuf>,
    pub log_format: Option<LogFormat>,
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

/// Everything the server needs, checked.
#[derive(Debug)]
pub struct Config {
    pub listen: ListenAddr,
    pub shutdown_grace: Duration,
    pub database: PathBuf,
    pub users_cache: CacheSettings,
    pub tokens_capacity: u64,
    pub tokens_max_ttl: Duration,
    pub request_rules: RequestRules,
    pub issuers: Vec<JwtIssuer>,
    pub github: Option<GithubSource>,
    pub authorization: Authorization,
    pub service_accounts: Option<ServiceAccountSettings>,
    /// `None`: no admin API.
    pub admin_listen: Option<SocketAddr>,
    pub log_format: LogFormat,
}

impl Config {
    /// Every configured source name (issuers and GitHub).
    pub fn source_names(&self) -> Vec<&IssuerName> {
        let github = self.github.as_ref().map(GithubSource::name);
        self.issuers.iter().map(|i| &i.name).chain(github).collect()
    }
}

impl Settings {
    /// Reads defaults, then `file` (which must exist when given), then the
    /// environment, then `overrides`.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(file) = file {
            figment = figment.merge(Toml::file_exact(file));
        }
        figment = figment.merge(
            Env::prefixed(ENV_PREFIX)
                .split("__")
                // Read by the CLI itself, not part of the settings.
                .ignore(&["config"]),
        );
        if let Some(listen) = &overrides.listen {
            figment = figment.merge(Serialized::default("server.listen", listen));
        }
        if let Some(database) = &overrides.database {
            figment = figment.merge(Serialized::default("store.database", database));
        }
        if let Some(format) = overrides.log_format {
            figment = figment.merge(Serialized::default("log.format", format));
        }
        Ok(figment.extract()?)
    }

    pub fn compile(&self) -> Result<Config, ConfigError> {
        let listen =
            ListenAddr::parse(&self.server.listen).map_err(|e| invalid("server.listen", e))?;
        let c = &self.cache;
        within("cache.users_capacity", c.users_capacity, 1..=100_000_000)?;
        within("cache.tokens_capacity", c.tokens_capacity, 1..=100_000_000)?;
        within("cache.users_ttl_secs", c.users_ttl_secs, 0..=86_400)?;
        within(
            "cache.users_negative_ttl_secs",
            c.users_negative_ttl_secs,
            0..=86_400,
        )?;
        within(
            "cache.tokens_max_ttl_secs",
            c.tokens_max_ttl_secs,
            0..=86_400,
        )?;
        within(
            "server.shutdown_grace_secs",
            self.server.shutdown_grace_secs,
            0..=3600,
        )?;
        if !(10..=60_000).contains(&self.check.default_deadline_ms) {
            return Err(invalid(
                "check.default_deadline_ms",
                "must be between 10 and 60000",
            ));
        }
        if !(512..=32768).contains(&self.check.max_token_bytes) {
            return Err(invalid(
                "check.max_token_bytes",
                "must be between 512 and 32768",
            ));
        }
        if let Some(header) = &self.check.token_header
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
        if let Some(cookie) = &self.check.token_cookie
            && (cookie.is_empty()
                || !cookie
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)))
        {
            return Err(invalid("check.token_cookie", "not a cookie name"));
        }
        let http = http_client();
        let issuers = self.compile_issuers(&http)?;
        let names = issuers.iter().map(|i| i.name.clone()).collect();
        let github = self
            .github
            .as_ref()
            .map(|g| g.compile(&http, &names))
            .transpose()?;
        Ok(Config {
            listen,
            shutdown_grace: Duration::from_secs(self.server.shutdown_grace_secs),
            database: self.store.database.clone(),
            users_cache: CacheSettings {
                capacity: c.users_capacity,
                ttl: Duration::from_secs(c.users_ttl_secs),
                negative_ttl: Duration::from_secs(c.users_negative_ttl_secs),
            },
            tokens_capacity: c.tokens_capacity,
            tokens_max_ttl: Duration::from_secs(c.tokens_max_ttl_secs),
            request_rules: RequestRules {
                public: PublicPaths::new(&self.check.public_paths)
                    .map_err(|e| invalid("check.public_paths", e))?,
                credentials: CredentialSettings {
                    header: self
                        .check
                        .token_header
                        .as_ref()
                        .map(|h| h.to_ascii_lowercase()),
                    cookie: self.check.token_cookie.clone(),
                    max_token_bytes: self.check.max_token_bytes,
                },
                upstream: UpstreamRules::new(
                    self.check.forward_credential,
                    &self.check.passthrough_headers,
                )
                .map_err(|e| invalid("check.passthrough_headers", e))?,
                method_override: self.check.method_override,
                default_budget: Duration::from_millis(self.check.default_deadline_ms),
            },
            issuers,
            github,
            authorization: self.compile_authorization()?,
            service_accounts: self.compile_service_accounts()?,
            admin_listen: match self.admin.listen.as_str() {
                "off" => None,
                addr => Some(addr.parse().map_err(|_| {
                    invalid(
                        "admin.listen",
                        "expected HOST:PORT (an IP address) or \"off\"",
                    )
                })?),
            },
            log_format: self.log.format,
        })
    }

    fn compile_authorization(&self) -> Result<Authorization, ConfigError> {
        let a = &self.authorization;
        if a.mode == AuthorizationMode::Registered {
            return Ok(Authorization::Registered);
        }
        let mut routes = if a.dispatch_routes {
            RouteMap::dispatch()
        } else {
            RouteMap::default()
        };
        for (i, r) in a.routes.iter().enumerate() {
            routes = routes
                .with(r.host.as_deref(), &r.prefix, &r.resource)
                .map_err(|e| invalid(format!("authorization.routes[{i}]"), e))?;
        }
        Ok(Authorization::Rbac(routes))
    }

    fn compile_service_accounts(&self) -> Result<Option<ServiceAccountSettings>, ConfigError> {
        let s = &self.service_accounts;
        if !s.enabled {
            return Ok(None);
        }
        within(
            "service_accounts.max_token_lifetime_secs",
            s.max_token_lifetime_secs,
            1..=86_400,
        )?;
        within("service_accounts.leeway_secs", s.leeway_secs, 0..=600)?;
        within(
            "service_accounts.lookups_per_sec",
            s.lookups_per_sec.into(),
            1..=100_000,
        )?;
        Ok(Some(ServiceAccountSettings {
            max_token_lifetime_secs: s.max_token_lifetime_secs,
            audiences: s.audiences.clone(),
            leeway_secs: s.leeway_secs,
            lookups: LimiterSettings {
                per_second: s.lookups_per_sec,
                concurrent: 16,
            },
        }))
    }

    fn compile_issuers(&self, http: &reqwest::Client) -> Result<Vec<JwtIssuer>, ConfigError> {
        let mut names = HashSet::new();
        let mut isses = HashSet::new();
        self.issuers
            .iter()
            .enumerate()
            .map(|(i, settings)| {
                let field = format!("issuers[{i}]");
                let issuer = settings.compile(&field, http)?;
                if issuer.name.as_str() == service_account::ISSUER_NAME {
                    return Err(invalid(
                        format!("{field}.name"),
                        "reserved for service accounts",
                    ));
                }
                if !names.insert(issuer.name.clone()) {
                    return Err(invalid(format!("{field}.name"), "used by another issuer"));
                }
                if !isses.insert(issuer.iss.clone()) {
                    return Err(invalid(format!("{field}.issuer"), "used by another issuer"));
                }
                Ok(issuer)
            })
            .collect()
    }
}

/// The client for identity providers and the GitHub API: one connection
/// pool, rustls with the system's trust store.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(concat!("dispatch-authz/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(2))
        .tcp_nodelay(true)
        .build()
        .unwrap_or_default()
}

fn check_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    match parsed.scheme() {
        "https" | "http" => Ok(()),
        other => Err(format!("{url:?}: scheme {other} is not http(s)")),
    }
}

/// A number within its sensible range: a typo (a timeout in ms written in
/// µs, a TTL of years) stops start-up instead of surprising later.
fn within(
    field: &str,
    value: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<(), ConfigError> {
    if !range.contains(&value) {
        return Err(invalid(
            field,
            format!("must be between {} and {}", range.start(), range.end()),
        ));
    }
    Ok(())
}

fn non_empty(value: &str) -> Option<String> {
    (!value.is_empty()).then(|| value.to_owned())
}

impl IssuerSettings {
    fn compile(&self, field: &str, http: &reqwest::Client) -> Result<JwtIssuer, ConfigError> {
        let at = |sub: &str| format!("{field}.{sub}");
        let name = IssuerName::parse(&self.name).map_err(|e| invalid(at("name"), e))?;
        let preset_issuer = self
            .preset
            .map(|Preset::GithubActions| GITHUB_ACTIONS_ISSUER);
        let iss = match (&self.issuer, preset_issuer) {
            (Some(iss), _) if !iss.is_empty() => iss.clone(),
            (None, Some(iss)) => iss.to_owned(),
            _ => return Err(invalid(at("issuer"), "must not be empty")),
        };
        if self.audiences.is_empty() || self.audiences.iter().any(String::is_empty) {
            return Err(invalid(
                at("audiences"),
                "list at least one non-empty audience; tokens for other services must not pass",
            ));
        }
        if self.leeway_secs > 300 {
            return Err(invalid(at("leeway_secs"), "must be at most 300"));
        }
        let claims = match (&self.claims, self.preset) {
            (Some(claims), _) => claims.clone(),
            (None, Some(Preset::GithubActions)) => ClaimSettings {
                subject: "sub".into(),
                login: "repository".into(),
                email: String::new(),
            },
            (None, None) => ClaimSettings::default(),
        };
        if claims.subject.is_empty() {
            return Err(invalid(at("claims.subject"), "must name a claim"));
        }
        let keys = if self.discovery || self.jwks_uri.is_some() || self.preset.is_some() {
            self.remote_keys(&at, &name, &iss, http)?
        } else {
            KeySource::fixed(self.keys(&at)?)
        };
        Ok(JwtIssuer {
            name,
            iss,
            audiences: self.audiences.clone(),
            keys,
            leeway_secs: self.leeway_secs,
            claims: ClaimMapping {
                subject: claims.subject.clone(),
                login: non_empty(&claims.login),
                email: non_empty(&claims.email),
            },
        })
    }

    fn remote_keys(
        &self,
        at: &dyn Fn(&str) -> String,
        name: &IssuerName,
        iss: &str,
        http: &reqwest::Client,
    ) -> Result<KeySource, ConfigError> {
        if self.jwks_file.is_some() || !self.public_keys.is_empty() || self.hmac_secret.is_some() {
            return Err(invalid(
                at("jwks_uri"),
                "remote keys (discovery, jwks_uri, preset) cannot be combined with local keys",
            ));
        }
        if let Some(uri) = &self.jwks_uri {
            check_url(uri).map_err(|e| invalid(at("jwks_uri"), e))?;
        }
        let discovery_url = format!(
            "{}/.well-known/openid-configuration",
            iss.trim_end_matches('/')
        );
        if self.jwks_uri.is_none() {
            check_url(&discovery_url).map_err(|e| invalid(at("issuer"), e))?;
        }
        let r = &self.remote;
        if r.min_refresh_interval_secs == 0
            || r.min_refresh_interval_secs > r.max_refresh_interval_secs
        {
            return Err(invalid(
                at("remote.min_refresh_interval_secs"),
                "must be greater than 0 and at most max_refresh_interval_secs",
            ));
        }
        within(&at("remote.timeout_ms"), r.timeout_ms, 1..=60_000)?;
        within(
            &at("remote.refresh_interval_secs"),
            r.refresh_interval_secs,
            1..=7 * 86_400,
        )?;
        within(
            &at("remote.max_refresh_interval_secs"),
            r.max_refresh_interval_secs,
            1..=7 * 86_400,
        )?;
        within(
            &at("remote.min_refetch_interval_secs"),
            r.min_refetch_interval_secs,
            0..=86_400,
        )?;
        let settings = RemoteJwksSettings {
            discovery_url: self.jwks_uri.is_none().then_some(discovery_url),
            jwks_uri: self.jwks_uri.clone(),
            refresh_interval: Duration::from_secs(r.refresh_interval_secs.max(1)),
            min_refresh_interval: Duration::from_secs(r.min_refresh_interval_secs),
            max_refresh_interval: Duration::from_secs(r.max_refresh_interval_secs),
            min_refetch_interval: Duration::from_secs(r.min_refetch_interval_secs),
            timeout: Duration::from_millis(r.timeout_ms),
        };
        Ok(KeySource::Remote(Arc::new(RemoteJwks::new(
            name.clone(),
            settings,
            http.clone(),
        ))))
    }

    fn keys(&self, at: &dyn Fn(&str) -> String) -> Result<Vec<VerifyKey>, ConfigError> {
        if let Some(secret) = &self.hmac_secret {
            if !self.development_only {
                return Err(invalid(
                    at("hmac_secret"),
                    "HS256 shared secrets are for development only; set development_only = true to accept the risk",
                ));
            }
            if self.jwks_file.is_some() || !self.public_keys.is_empty() {
                return Err(invalid(
                    at("hmac_secret"),
                    "cannot be combined with public keys in one issuer",
                ));
            }
            if secret.0.len() < 32 {
                return Err(invalid(at("hmac_secret"), "must be at least 32 bytes"));
            }
            return Ok(vec![VerifyKey {
                kid: None,
                algorithm: Algorithm::HS256,
                key: DecodingKey::from_secret(secret.0.as_bytes()),
            }]);
        }
        if self.development_only {
            return Err(invalid(
                at("development_only"),
                "only applies to hmac_secret",
            ));
        }
        let mut keys = Vec::new();
        if let Some(path) = &self.jwks_file {
            keys.extend(keys::load_jwks_file(path).map_err(|e| invalid(at("jwks_file"), e))?);
        }
        for (i, key) in self.public_keys.iter().enumerate() {
            let field = at(&format!("public_keys[{i}]"));
            let algorithm = keys::parse_public_algorithm(&key.algorithm)
                .map_err(|e| invalid(format!("{field}.algorithm"), e))?;
            keys.push(
                keys::load_pem(&key.pem_file, algorithm, key.kid.clone())
                    .map_err(|e| invalid(format!("{field}.pem_file"), e))?,
            );
        }
        if keys.is_empty() {
            return Err(invalid(
                at("jwks_file"),
                "the issuer has no keys: set jwks_file or public_keys",
            ));
        }
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_str(toml: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, toml).unwrap();
        Settings::load(Some(&path), &Overrides::default())?.compile()
    }

    fn err(toml: &str) -> String {
        load_str(toml).unwrap_err().to_string()
    }

    const KEY: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/keys/rsa.pub.pem"
    );

    fn issuer(extra: &str) -> String {
        format!(
            "[[issuers]]\nname = \"dex\"\nissuer = \"https://dex.test\"\naudiences = [\"dispatch\"]\n{extra}\n"
        )
    }

    #[test]
    fn defaults_compile() {
        let config = load_str("").unwrap();
        assert_eq!(config.listen, ListenAddr::parse("127.0.0.1:50051").unwrap());
        assert!(config.issuers.is_empty());
    }

    #[test]
    fn a_full_issuer_compiles() {
        let config = load_str(&issuer(&format!(
            "[[issuers.public_keys]]\npem_file = \"{KEY}\"\nalgorithm = \"RS256\"\nkid = \"k1\"\n[issuers.claims]\nlogin = \"login\"\nemail = \"\""
        )))
        .unwrap();
        let dex = &config.issuers[0];
        assert_eq!(dex.keys.current().len(), 1);
        assert_eq!(dex.claims.login.as_deref(), Some("login"));
        assert_eq!(dex.claims.email, None);
    }

    #[test]
    fn a_jwks_file_compiles_with_pinned_algorithms() {
        use jsonwebtoken::{
            EncodingKey,
            jwk::{Jwk, JwkSet},
        };
        let dir = tempfile::tempdir().unwrap();
        let pem = |name: &str| std::fs::read(KEY.replace("rsa.pub.pem", name)).unwrap();
        let mut rsa = Jwk::from_encoding_key(
            &EncodingKey::from_rsa_pem(&pem("rsa.pem")).unwrap(),
            Algorithm::PS256,
        )
        .unwrap();
        rsa.common.key_id = Some("r".into());
        let mut ec = Jwk::from_encoding_key(
            &EncodingKey::from_ec_pem(&pem("ec256.pem")).unwrap(),
            Algorithm::ES256,
        )
        .unwrap();
        ec.common.key_id = Some("e".into());
        let jwks = dir.path().join("jwks.json");
        std::fs::write(
            &jwks,
            serde_json::to_string(&JwkSet {
                keys: vec![rsa, ec],
            })
            .unwrap(),
        )
        .unwrap();
        let config = load_str(&issuer(&format!("jwks_file = \"{}\"", jwks.display()))).unwrap();
        let algs: Vec<_> = config.issuers[0]
            .keys
            .current()
            .iter()
            .map(|k| (k.kid.clone().unwrap(), k.algorithm))
            .collect();
        assert_eq!(
            algs,
            [
                ("r".to_owned(), Algorithm::PS256),
                ("e".to_owned(), Algorithm::ES256)
            ]
        );

        std::fs::write(&jwks, "{\"keys\": 3}").unwrap();
        let e = err(&issuer(&format!("jwks_file = \"{}\"", jwks.display())));
        assert!(
            e.contains("issuers[0].jwks_file") && e.contains("not a JWKS document"),
            "{e}"
        );
    }

    #[test]
    fn remote_sources_compile_and_are_checked() {
        let config = load_str(
            "[[issuers]]\nname = \"actions\"\npreset = \"github-actions\"\naudiences = [\"dispatch\"]\n\n[github]\nrequired_team = \"acme/platform\"\n",
        )
        .unwrap();
        let actions = &config.issuers[0];
        assert_eq!(actions.iss, GITHUB_ACTIONS_ISSUER);
        assert!(matches!(actions.keys, KeySource::Remote(_)));
        assert_eq!(actions.claims.login.as_deref(), Some("repository"));
        assert_eq!(config.github.as_ref().unwrap().name().as_str(), "github");
        assert_eq!(config.source_names().len(), 2);

        let cases = [
            ("[github]\nclient_id = \"x\"\n", "github.client_id"),
            (
                "[github]\nrequired_team = \"acme\"\n",
                "github.required_team",
            ),
            ("[github]\napi_url = \"ftp://x\"\n", "github.api_url"),
            (
                "[github]\nname = \"test\"\n[[issuers]]\nname = \"test\"\nissuer = \"https://x\"\naudiences = [\"a\"]\ndiscovery = true\n",
                "github.name",
            ),
            ("[github]\ncleint_id = \"x\"\n", "cleint_id"),
            (
                &issuer(&format!("discovery = true\njwks_file = \"{KEY}\"")),
                "cannot be combined",
            ),
            (&issuer("jwks_uri = \"not a url\""), "issuers[0].jwks_uri"),
            (
                "[[issuers]]\nname = \"x\"\naudiences = [\"a\"]\ndiscovery = true\n",
                "issuers[0].issuer",
            ),
            (
                "[check]\ntoken_header = \"Authorization\"\n",
                "check.token_header",
            ),
        ];
        for (toml, want) in cases {
            let e = err(toml);
            assert!(e.contains(want), "want {want:?} in {e}");
        }
    }

    #[test]
    fn a_typo_names_the_key() {
        let e = err("[server]\nlisten_addr = \"127.0.0.1:1\"\n");
        assert!(e.contains("listen_addr"), "{e}");
        let e = err("[sever]\n");
        assert!(e.contains("sever"), "{e}");
    }

    #[test]
    fn invalid_values_name_the_field() {
        let cases = [
            ("[server]\nlisten = \"localhost\"", "server.listen"),
            ("[cache]\nusers_capacity = 0", "cache.users_capacity"),
            (
                "[check]\npublic_paths = [\"/a/../b\"]",
                "check.public_paths",
            ),
            ("[check]\nmax_token_bytes = 70000", "check.max_token_bytes"),
            (
                "[check]\npassthrough_headers = [\"x-dispatch-user\"]",
                "check.passthrough_headers",
            ),
            (
                "[check]\npassthrough_headers = [\"authorization\"]",
                "check.passthrough_headers",
            ),
            (
                "[check]\nmethod_override = \"maybe\"",
                "check.method_override",
            ),
            (
                "[check]\ndefault_deadline_ms = 0",
                "check.default_deadline_ms",
            ),
            // Regression (issue 9, item 14): numbers are range-checked.
            ("[cache]\nusers_ttl_secs = 99999999", "cache.users_ttl_secs"),
            (
                "[cache]\ntokens_max_ttl_secs = 99999999",
                "cache.tokens_max_ttl_secs",
            ),
            (
                "[server]\nshutdown_grace_secs = 99999",
                "server.shutdown_grace_secs",
            ),
            ("[github]\ntimeout_ms = 0", "github.timeout_ms"),
            ("[github]\nlookups_per_sec = 0", "github.lookups_per_sec"),
            (
                "[github]\nfailure_ttl_secs = 99999",
                "github.failure_ttl_secs",
            ),
            (
                "[service_accounts]\nmax_token_lifetime_secs = 9999999",
                "service_accounts.max_token_lifetime_secs",
            ),
            ("[cache]\nusers_ttl_secs = \"soon\"", "users_ttl_secs"),
        ];
        for (toml, field) in cases {
            let e = err(toml);
            assert!(e.contains(field), "{toml}: {e}");
        }
    }

    #[test]
    fn issuers_are_checked() {
        let pem = format!("[[issuers.public_keys]]\npem_file = \"{KEY}\"\nalgorithm = \"RS256\"");
        let cases = [
            (issuer(""), "issuers[0].jwks_file: the issuer has no keys"),
            (
                issuer("hmac_secret = \"0123456789abcdef0123456789abcdef\""),
                "development only",
            ),
            (
                issuer("hmac_secret = \"short\"\ndevelopment_only = true"),
                "at least 32 bytes",
            ),
            (
                issuer(&pem.replace("RS256", "HS256")),
                "not allowed for a public key",
            ),
            (issuer(&pem.replace("RS256", "RS999")), "unknown algorithm"),
            (
                issuer(&pem.replace(KEY, "/nonexistent.pem")),
                "issuers[0].public_keys[0].pem_file",
            ),
            (
                issuer("jwks_file = \"/nonexistent.json\""),
                "/nonexistent.json",
            ),
            (
                issuer(&pem).replace("audiences = [\"dispatch\"]", "audiences = []"),
                "issuers[0].audiences",
            ),
            (
                issuer(&pem).replace("name = \"dex\"", "name = \"Dex\""),
                "issuers[0].name",
            ),
            (
                format!(
                    "{}{}",
                    issuer(&pem),
                    issuer(&pem).replace("https://dex.test", "https://x")
                ),
                "issuers[1].name: used by another issuer",
            ),
        ];
        for (toml, want) in cases {
            let e = err(&toml);
            assert!(e.contains(want), "want {want:?} in {e}");
        }
    }

    #[test]
    fn a_private_key_is_refused_as_a_public_key() {
        let private = KEY.replace("rsa.pub.pem", "rsa.pem");
        let e = err(&issuer(&format!(
            "[[issuers.public_keys]]\npem_file = \"{private}\"\nalgorithm = \"RS256\""
        )));
        assert!(e.contains("private key"), "{e}");
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let settings: IssuerSettings = toml_like(
            r#"name = "dev"
issuer = "x"
audiences = ["a"]
hmac_secret = "super-secret-value-super-secret-value"
development_only = true"#,
        );
        assert!(!format!("{settings:?}").contains("super-secret"));
    }

    fn toml_like<T: serde::de::DeserializeOwned>(s: &str) -> T {
        Figment::from(Toml::string(s)).extract().unwrap()
    }

    #[test]
    fn a_missing_config_file_is_an_error() {
        let e = Settings::load(
            Some(Path::new("/nonexistent/c.toml")),
            &Overrides::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("/nonexistent/c.toml"), "{e}");
    }

    #[test]
    fn flags_win_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[server]\nlisten = \"127.0.0.1:1\"\n").unwrap();
        let overrides = Overrides {
            listen: Some("127.0.0.1:2".into()),
            ..Default::default()
        };
        let settings = Settings::load(Some(&path), &overrides).unwrap();
        assert_eq!(settings.server.listen, "127.0.0.1:2");
    }

    #[test]
    fn authorization_service_accounts_and_admin_compile_or_name_the_field() {
        let config = load_str("").unwrap();
        assert!(
            matches!(config.authorization, Authorization::Rbac(_)),
            "rbac by default"
        );
        assert_eq!(
            config.admin_listen,
            Some("127.0.0.1:50052".parse().unwrap())
        );
        assert_eq!(
            config.service_accounts.map(|s| s.max_token_lifetime_secs),
            Some(3600)
        );
        let config = load_str(
            "[authorization]\nmode = \"registered\"\n[admin]\nlisten = \"off\"\n\
             [service_accounts]\nenabled = false\n",
        )
        .unwrap();
        assert!(matches!(config.authorization, Authorization::Registered));
        assert!(config.admin_listen.is_none() && config.service_accounts.is_none());

        let cases = [
            (
                "[[authorization.routes]]\nprefix = \"/a/../b\"\nresource = \"x\"\n",
                "authorization.routes[0]",
            ),
            (
                "[[authorization.routes]]\nprefix = \"/a\"\nresource = \"Bad Name\"\n",
                "authorization.routes[0]",
            ),
            ("[authorization]\nmode = \"allow-all\"\n", "allow-all"),
            ("[admin]\nlisten = \"localhost\"\n", "admin.listen"),
            (
                "[service_accounts]\nmax_token_lifetime_secs = 0\n",
                "service_accounts.max_token_lifetime_secs",
            ),
        ];
        let reserved = issuer(&format!(
            "[[issuers.public_keys]]\npem_file = \"{KEY}\"\nalgorithm = \"RS256\"\n"
        ))
        .replace("name = \"dex\"", "name = \"service-account\"");
        let reserved = [(reserved.as_str(), "reserved for service accounts")];
        for (toml, want) in cases.into_iter().chain(reserved) {
            let e = err(toml);
            assert!(e.contains(want), "{toml}: {e}");
        }
    }
}
