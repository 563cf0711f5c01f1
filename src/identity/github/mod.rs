//! GitHub OAuth tokens (`gho_`, `ghu_`, `ghp_`, `github_pat_`, legacy hex):
//! opaque strings that only GitHub's API can judge.
//!
//! - With an OAuth app configured, `POST /applications/{client_id}/token`
//!   proves the token was issued to *our* app; otherwise `GET /user`.
//! - The identity is GitHub's numeric user id, which survives renames; the
//!   login is display data and is written back to the user store when it
//!   changes.
//! - Results are cached by the token's SHA-256 (failures for a shorter
//!   time), and concurrent checks of one token make one GitHub call.
//! - Rate limits, timeouts and 5xx are outages (503), never "denied": a
//!   token already validated keeps working from the cache.
//! - Each new token is a call, so floods are stopped before GitHub: a token
//!   without a shape GitHub issues is refused offline (401), refusals are
//!   cached, and calls for unseen tokens are bounded in rate and
//!   concurrency, with a circuit breaker during outages
//!   ([`super::limiter`]); beyond the bounds a 503 without a call.
//! - Pagination follows only links on the configured API origin: the token
//!   goes with each request.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use moka::{Expiry, future::Cache};
use sha2::{Digest, Sha256};

mod api;

use api::{Failure, Org, Team};

use super::{
    TokenError, VerifiedIdentity,
    limiter::{ColdLimiter, LimiterSettings},
    unix_now,
};
use crate::domain::{IssuerName, LinkKey, Login, Principal, Subject};

/// A configured GitHub source.
#[derive(Debug)]
pub struct GithubSettings {
    pub name: IssuerName,
    /// `https://api.github.com`, or `https://HOST/api/v3` for GitHub Enterprise Server.
    pub api_url: String,
    /// OAuth app credentials: when set, only tokens issued to this app pass.
    pub app: Option<OAuthApp>,
    pub required_org: Option<String>,
    /// `(org, team-slug)`.
    pub required_team: Option<(String, String)>,
    /// Read the user's teams (`GET /user/teams`, which needs the `read:org`
    /// scope) so that groups linked to `github:team=ORG/SLUG` apply.
    pub read_teams: bool,
    pub cache_ttl: Duration,
    pub failure_ttl: Duration,
    pub timeout: Duration,
    pub limits: LimiterSettings,
}

pub struct OAuthApp {
    pub client_id: String,
    pub client_secret: String,
}

/// The secret never shows in `Debug` output or logs.
impl std::fmt::Debug for OAuthApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthApp")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .finish()
    }
}

type Outcome = Arc<Result<Arc<VerifiedIdentity>, TokenError>>;

pub struct GithubSource {
    settings: GithubSettings,
    http: reqwest::Client,
    cache: Cache<[u8; 32], Outcome>,
    limiter: ColdLimiter,
}

impl std::fmt::Debug for GithubSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // No client secret in debug output.
        f.debug_struct("GithubSource")
            .field("name", &self.settings.name)
            .field("api_url", &self.settings.api_url)
            .field("app", &self.settings.app.as_ref().map(|a| &a.client_id))
            .finish_non_exhaustive()
    }
}

struct ShorterForFailures {
    ok: Duration,
    failed: Duration,
}

impl Expiry<[u8; 32], Outcome> for ShorterForFailures {
    fn expire_after_create(&self, _: &[u8; 32], value: &Outcome, _: Instant) -> Option<Duration> {
        Some(if value.is_ok() { self.ok } else { self.failed })
    }
}

impl GithubSource {
    pub fn new(settings: GithubSettings, http: reqwest::Client) -> Self {
        let cache = Cache::builder()
            .max_capacity(100_000)
            .expire_after(ShorterForFailures {
                ok: settings.cache_ttl,
                failed: settings.failure_ttl,
            })
            .build();
        Self {
            limiter: ColdLimiter::new(settings.limits),
            settings,
            http,
            cache,
        }
    }

    pub fn name(&self) -> &IssuerName {
        &self.settings.name
    }

    pub async fn verify(
        self: &Arc<Self>,
        token: &str,
    ) -> Result<Arc<VerifiedIdentity>, TokenError> {
        if !well_formed(token) {
            return Err(TokenError::Malformed(
                "token does not have the shape of a GitHub token",
            ));
        }
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let outcome = self
            .cache
            .try_get_with(key, self.clone().judge(key, token.to_owned()))
            .await
            .map_err(|e| (*e).clone())?;
        (*outcome).clone()
    }

    /// Asks GitHub in a task of its own, which records the answer itself:
    /// when the caller is gone (Envoy's timeout can be shorter than GitHub's
    /// latency), the answer still lands in the cache for the client's retry.
    async fn judge(self: Arc<Self>, key: [u8; 32], token: String) -> Result<Outcome, TokenError> {
        let unavailable = TokenError::ProviderUnavailable {
            source_name: self.settings.name.to_string(),
        };
        // Only a token never seen (or expired from the cache) gets here.
        let Ok(permit) = self.limiter.try_acquire() else {
            return Err(unavailable);
        };
        let this = self.clone();
        // Its own task, in the check's trace (exported traces).
        let span = tracing::debug_span!("github_lookup", source = %self.settings.name);
        let task = tokio::spawn(tracing::Instrument::instrument(
            async move {
                let _permit = permit;
                let outcome: Outcome = match this.lookup(&token).await {
                    Ok(identity) => Arc::new(Ok(Arc::new(identity))),
                    Err(Failure::Refused(e)) => Arc::new(Err(e)),
                    Err(Failure::Outage(detail)) => {
                        this.limiter.record_outage();
                        tracing::warn!(source = %this.settings.name, %detail, "GitHub API unavailable");
                        return None;
                    }
                };
                this.limiter.record_answer();
                this.cache.insert(key, outcome.clone()).await;
                Some(outcome)
            },
            span,
        ));
        task.await.ok().flatten().ok_or(unavailable)
    }

    async fn lookup(&self, token: &str) -> Result<VerifiedIdentity, Failure> {
        let user = match &self.settings.app {
            Some(app) => self.check_app_token(token, app).await?,
            None => self.get_user(token).await?,
        };
        if let Some(org) = &self.settings.required_org {
            let orgs: Vec<Org> = self.paginate(token, "/user/orgs").await?;
            if !orgs.iter().any(|o| o.login.eq_ignore_ascii_case(org)) {
                return Err(Failure::Refused(TokenError::NotAuthorized(format!(
                    "not a member of the GitHub organization {org}"
                ))));
            }
        }
        let teams: Vec<Team> = if self.settings.read_teams || self.settings.required_team.is_some()
        {
            self.paginate(token, "/user/teams").await?
        } else {
            Vec::new()
        };
        if let Some((org, team)) = &self.settings.required_team {
            let member = teams.iter().any(|t| {
                t.slug.eq_ignore_ascii_case(team) && t.organization.login.eq_ignore_ascii_case(org)
            });
            if !member {
                return Err(Failure::Refused(TokenError::NotAuthorized(format!(
                    "not a member of the GitHub team {org}/{team}"
                ))));
            }
        }
        let links = if self.settings.read_teams {
            team_links(&teams)
        } else {
            Box::default()
        };
        let bad = || Failure::Refused(TokenError::BadClaim("GitHub user".into()));
        Ok(VerifiedIdentity {
            principal: Arc::new(Principal {
                issuer: self.settings.name.clone(),
                subject: Subject::parse(&user.id.to_string()).map_err(|_| bad())?,
            }),
            login: Some(Login::parse(&user.login).map_err(|_| bad())?),
            login_is_authoritative: true,
            email: None,
            expires_at: unix_now() + self.settings.cache_ttl.as_secs(),
            verified_at: unix_now(),
            service_account: None,
            links,
        })
    }
}

/// The teams as link keys, `team=org/slug` in lower case: GitHub compares
/// both without case, and links are matched exactly. A name no link could
/// hold is left out (it could never match one).
fn team_links(teams: &[Team]) -> Box<[LinkKey]> {
    let mut keys: Vec<LinkKey> = teams
        .iter()
        .filter_map(|t| {
            let value = format!("{}/{}", t.organization.login, t.slug).to_ascii_lowercase();
            LinkKey::new("team", &value).ok()
        })
        .collect();
    keys.sort_unstable();
    keys.dedup();
    keys.into_boxed_slice()
}

/// Whether a token routed to GitHub has a shape GitHub issues: a known
/// prefix, then letters, digits and `_`, 40 to 255 bytes in all (GitHub's
/// advice for token storage), or the legacy 40 hex digits. Checked offline,
/// before any call: GitHub does not publish its checksum's encoding, and a
/// wrong guess would refuse every real token, so the shape is all we check.
pub fn well_formed(token: &str) -> bool {
    if token.len() == 40 && token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return true;
    }
    (40..=255).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && looks_like_github_token(token)
}

/// Whether a bearer token looks like a GitHub token rather than a JWT.
pub fn looks_like_github_token(token: &str) -> bool {
    const PREFIXES: [&str; 5] = ["gho_", "ghu_", "ghp_", "ghs_", "github_pat_"];
    PREFIXES.iter().any(|p| token.starts_with(p))
        || (token.len() == 40 && token.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests;
