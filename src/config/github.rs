//! `[github]`: GitHub OAuth tokens, judged by the GitHub API.

use std::{collections::HashSet, time::Duration};

use serde::{Deserialize, Serialize};

use super::{ConfigError, Secret, check_url, invalid, within};
use crate::{
    domain::IssuerName,
    identity::{
        github::{GithubSettings, OAuthApp},
        limiter::LimiterSettings,
    },
};

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
    /// Read the user's teams (one more paginated call per new token; the
    /// token needs `read:org`), so groups linked to `github:team=ORG/SLUG`
    /// apply.
    #[serde(default)]
    pub read_teams: bool,
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
    pub(super) fn compile(
        &self,
        taken: &HashSet<IssuerName>,
    ) -> Result<GithubSettings, ConfigError> {
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
        Ok(GithubSettings {
            name,
            api_url: self.api_url.trim_end_matches('/').to_owned(),
            app,
            required_org: self.required_org.clone(),
            required_team,
            read_teams: self.read_teams,
            cache_ttl: Duration::from_secs(self.cache_ttl_secs),
            failure_ttl: Duration::from_secs(self.failure_ttl_secs),
            timeout: Duration::from_millis(self.timeout_ms),
            limits: LimiterSettings {
                per_second: self.lookups_per_sec,
                concurrent: self.concurrent_lookups,
            },
        })
    }
}
