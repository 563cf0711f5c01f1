//! `[[issuers]]`: OIDC/JWT issuers, checked into `IssuerConfig`s (keys
//! read from files here; remote key sets are fetched by `startup`).

use std::time::Duration;

use figment::value::magic::RelativePathBuf;

use jsonwebtoken::{Algorithm, DecodingKey};
use serde::{Deserialize, Serialize};

use super::{ConfigError, Secret, check_url, invalid, within};
use crate::{
    domain::{IssuerName, LinkKey},
    identity::{
        ClaimMapping, IssuerConfig, KeyConfig,
        jwks::RemoteJwksSettings,
        keys::{self, VerifyKey},
    },
};

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
    pub jwks_file: Option<RelativePathBuf>,
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
    /// Claims whose values groups may be linked to (`groups` for Dex and
    /// most OIDC providers; `repository`, `job_workflow_ref` for GitHub
    /// Actions): `SOURCE:CLAIM=VALUE` in `iam link group`.
    #[serde(default)]
    pub group_claims: Vec<String>,
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
    pub pem_file: RelativePathBuf,
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

impl IssuerSettings {
    pub(super) fn compile(&self, field: &str) -> Result<IssuerConfig, ConfigError> {
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
        for (i, claim) in self.group_claims.iter().enumerate() {
            LinkKey::new(claim, "-").map_err(|e| invalid(at(&format!("group_claims[{i}]")), e))?;
        }
        let keys = if self.discovery || self.jwks_uri.is_some() || self.preset.is_some() {
            self.remote_keys(&at, &iss)?
        } else {
            KeyConfig::Fixed(self.keys(&at)?)
        };
        Ok(IssuerConfig {
            name,
            iss,
            audiences: self.audiences.clone(),
            keys,
            leeway_secs: self.leeway_secs,
            claims: ClaimMapping {
                subject: claims.subject.clone(),
                login: non_empty(&claims.login),
                email: non_empty(&claims.email),
                groups: self.group_claims.clone(),
            },
        })
    }

    fn remote_keys(
        &self,
        at: &dyn Fn(&str) -> String,
        iss: &str,
    ) -> Result<KeyConfig, ConfigError> {
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
        Ok(KeyConfig::Remote(settings))
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
            let path = path.relative();
            keys.extend(keys::load_jwks_file(&path).map_err(|e| invalid(at("jwks_file"), e))?);
        }
        for (i, key) in self.public_keys.iter().enumerate() {
            let field = at(&format!("public_keys[{i}]"));
            let algorithm = keys::parse_public_algorithm(&key.algorithm)
                .map_err(|e| invalid(format!("{field}.algorithm"), e))?;
            keys.push(
                keys::load_pem(&key.pem_file.relative(), algorithm, key.kid.clone())
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

fn non_empty(value: &str) -> Option<String> {
    (!value.is_empty()).then(|| value.to_owned())
}
