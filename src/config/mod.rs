//! Configuration: raw settings (TOML file, `DISPATCH_AUTHZ_*` environment,
//! command-line flags, in rising precedence) compiled into a [`Config`].
//!
//! Compilation does everything that can fail (parsing addresses, reading
//! keys, checking issuers) so that a mistake stops start-up with a message
//! naming the field, instead of surfacing as refused requests later.
//! Unknown keys are errors: a typo must not silently fall back to a default.
//!
//! One file per section; each raw section compiles itself into the checked
//! values the modules it configures take. Runtime objects (HTTP clients, key
//! fetchers, caches) are built from those by `startup`, not here.

mod authorization;
mod cache;
mod check;
mod github;
mod issuers;
mod server;
mod signed_identity;
#[cfg(test)]
mod tests;

use std::{collections::HashSet, fmt, path::Path, time::Duration};

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use authorization::{
    AuthorizationMode, AuthorizationSettings, RouteSettings, ServiceAccountConfig,
};
pub use cache::{CacheConfig, Caches};
pub use check::{CheckSettings, DryRunSettings};
pub use github::GithubConfig;
pub use issuers::{
    ClaimSettings, GITHUB_ACTIONS_ISSUER, IssuerSettings, Preset, PublicKeySettings,
    RemoteKeySettings,
};
pub use server::{
    AdminSettings, DEFAULT_ADMIN_LISTEN, DEFAULT_LISTEN, DEFAULT_OPERATIONS_LISTEN, HttpProxy,
    HttpSettings, ListenAddr, LogSettings, OperationsSettings, ServerSettings, StoreSettings,
};
pub use signed_identity::{SignedIdentityConfig, read_keys};

use crate::{
    assertion::{AssertionSettings, Keys},
    check::{Authorization, RequestRules},
    domain::IssuerName,
    identity::{
        IssuerConfig,
        github::GithubSettings,
        service_account::{self, ServiceAccountSettings},
    },
    store::StoreLocation,
    telemetry::LogFormat,
};

pub const ENV_PREFIX: &str = "DISPATCH_AUTHZ_";

#[derive(Debug, Error)]
pub enum ConfigError {
    /// Where (the file, or the environment variable), which key, and what
    /// is wrong: figment's errors rephrased without its internals (its
    /// profile name, "TOML file").
    #[error("configuration: {0}")]
    Load(String),
    #[error("configuration: {field}: {reason}")]
    Invalid { field: String, reason: String },
}

impl From<figment::Error> for ConfigError {
    fn from(errors: figment::Error) -> Self {
        let described: Vec<String> = errors.into_iter().map(|e| describe(&e)).collect();
        Self::Load(described.join("; "))
    }
}

/// `FILE: KEY: what` or `VARIABLE: what`.
fn describe(e: &figment::Error) -> String {
    use figment::Source;
    let key = e.path.join(".");
    let origin = e.metadata.as_ref().map(|m| match &m.source {
        Some(Source::File(path)) => match key.as_str() {
            "" => path.display().to_string(),
            key => format!("{}: {key}", path.display()),
        },
        // The environment: the variable's own name.
        _ if !e.path.is_empty() && m.name.contains("environment") => {
            let path: Vec<String> = e.path.iter().map(|k| k.to_uppercase()).collect();
            format!(
                "environment variable {ENV_PREFIX}{} ({key})",
                path.join("__")
            )
        }
        _ => key.clone(),
    });
    let what = e.kind.to_string();
    let what = what.trim_end();
    match origin {
        Some(origin) if !origin.is_empty() => format!("{origin}: {what}"),
        _ if !key.is_empty() => format!("{key}: {what}"),
        _ => what.to_owned(),
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
    pub http: HttpSettings,
    pub operations: OperationsSettings,
    pub dry_run: DryRunSettings,
    /// The `x-dispatch-identity` JWT; off when absent.
    pub signed_identity: Option<SignedIdentityConfig>,
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

/// Values given on the command line; they win over file and environment.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub listen: Option<String>,
    pub database: Option<String>,
    pub log_format: Option<LogFormat>,
}

/// Everything the server needs, checked.
#[derive(Debug)]
pub struct Config {
    pub listen: ListenAddr,
    pub shutdown_grace: Duration,
    pub database: StoreLocation,
    /// `None`: [`crate::store::default_pool_size`].
    pub pool_size: Option<u32>,
    pub caches: Caches,
    pub request_rules: RequestRules,
    pub issuers: Vec<IssuerConfig>,
    pub github: Option<GithubSettings>,
    pub authorization: Authorization,
    pub service_accounts: Option<ServiceAccountSettings>,
    /// `None`: no admin API.
    pub admin_listen: Option<std::net::SocketAddr>,
    /// `None`: no HTTP check listener.
    pub http: Option<(ListenAddr, HttpProxy)>,
    /// `None`: no `/healthz`, `/readyz`, `/metrics`.
    pub operations_listen: Option<std::net::SocketAddr>,
    pub log_format: LogFormat,
    /// `None`: no `x-dispatch-identity`.
    pub signed_identity: Option<(AssertionSettings, Keys)>,
}

impl Config {
    /// Every configured source name (issuers and GitHub).
    pub fn source_names(&self) -> Vec<&IssuerName> {
        let github = self.github.as_ref().map(|g| &g.name);
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
        let mut settings: Settings = figment.extract()?;
        // Paths written in the file are read from the file's directory, so
        // a configuration works whatever directory it is started from (key
        // files are `RelativePathBuf`s for the same reason); a path from the
        // environment or the command line is the caller's, from theirs.
        let from_file = figment
            .find_metadata("store.database")
            .and_then(|m| m.source.as_ref()?.file_path())
            .and_then(Path::parent);
        if let Some(dir) = from_file {
            settings.store.database = relative_to(dir, &settings.store.database);
        }
        Ok(settings)
    }

    pub fn compile(&self) -> Result<Config, ConfigError> {
        let listen =
            ListenAddr::parse(&self.server.listen).map_err(|e| invalid("server.listen", e))?;
        within(
            "server.shutdown_grace_secs",
            self.server.shutdown_grace_secs,
            0..=3600,
        )?;
        let (database, pool_size) = self.store.compile()?;
        let caches = self.cache.compile()?;
        let request_rules = RequestRules {
            allow_lines_every: self.log.allow_lines_every()?,
            dry_run: self.dry_run.compile()?,
            ..self.check.compile()?
        };
        let issuers = self.compile_issuers()?;
        let names = issuers.iter().map(|i| i.name.clone()).collect();
        let github = self
            .github
            .as_ref()
            .map(|g| g.compile(&names))
            .transpose()?;
        Ok(Config {
            listen,
            shutdown_grace: Duration::from_secs(self.server.shutdown_grace_secs),
            database,
            pool_size,
            caches,
            request_rules,
            issuers,
            github,
            authorization: self.authorization.compile()?,
            service_accounts: self.service_accounts.compile()?,
            admin_listen: self.admin.compile()?,
            http: self.http.compile()?,
            operations_listen: self.operations.compile()?,
            log_format: self.log.format,
            signed_identity: self
                .signed_identity
                .as_ref()
                .map(SignedIdentityConfig::compile)
                .transpose()?,
        })
    }

    fn compile_issuers(&self) -> Result<Vec<IssuerConfig>, ConfigError> {
        let mut names = HashSet::new();
        let mut isses = HashSet::new();
        self.issuers
            .iter()
            .enumerate()
            .map(|(i, settings)| {
                let field = format!("issuers[{i}]");
                let issuer = settings.compile(&field)?;
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

/// A relative SQLite path, joined to `dir`; URLs and absolute paths as
/// they are.
fn relative_to(dir: &Path, database: &str) -> String {
    match StoreLocation::parse(database) {
        // An empty value stays empty: `compile` names it.
        StoreLocation::Sqlite(path)
            if path.is_relative() && !dir.as_os_str().is_empty() && !database.trim().is_empty() =>
        {
            dir.join(path).to_string_lossy().into_owned()
        }
        _ => database.to_owned(),
    }
}
