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
use reqwest::{Response, StatusCode, header::HeaderMap};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{
    TokenError, VerifiedIdentity,
    limiter::{ColdLimiter, LimiterSettings},
    unix_now,
};
use crate::domain::{IssuerName, Login, Principal, Subject};

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

#[derive(Deserialize)]
struct GithubUser {
    id: u64,
    login: String,
}

#[derive(Deserialize)]
struct AppTokenCheck {
    user: GithubUser,
}

#[derive(Deserialize)]
struct Org {
    login: String,
}

#[derive(Deserialize)]
struct Team {
    slug: String,
    organization: Org,
}

/// Outcomes of one GitHub call.
enum Failure {
    /// GitHub judged the token: refuse it (and cache the refusal briefly).
    Refused(TokenError),
    /// GitHub could not answer: 503, not cached.
    Outage(String),
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
        let task = tokio::spawn(async move {
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
        });
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
        if let Some((org, team)) = &self.settings.required_team {
            let teams: Vec<Team> = self.paginate(token, "/user/teams").await?;
            let member = teams.iter().any(|t| {
                t.slug.eq_ignore_ascii_case(team) && t.organization.login.eq_ignore_ascii_case(org)
            });
            if !member {
                return Err(Failure::Refused(TokenError::NotAuthorized(format!(
                    "not a member of the GitHub team {org}/{team}"
                ))));
            }
        }
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
            service_account: None,
        })
    }

    async fn get_user(&self, token: &str) -> Result<GithubUser, Failure> {
        let response = self.send(self.api("/user").bearer_auth(token)).await?;
        json(response).await
    }

    async fn check_app_token(&self, token: &str, app: &OAuthApp) -> Result<GithubUser, Failure> {
        let path = format!("/applications/{}/token", app.client_id);
        let request = self
            .http
            .post(format!("{}{path}", self.settings.api_url))
            .basic_auth(&app.client_id, Some(&app.client_secret))
            .json(&serde_json::json!({ "access_token": token }));
        let response = self.send(request).await.map_err(|f| match f {
            // GitHub answers 404 for a token of another app (or none).
            Failure::Refused(_) => Failure::Refused(TokenError::Rejected(
                "the GitHub token was not issued to this application",
            )),
            outage => outage,
        })?;
        Ok(json::<AppTokenCheck>(response).await?.user)
    }

    /// Follows `Link: rel="next"` for at most 10 pages.
    async fn paginate<T: serde::de::DeserializeOwned>(
        &self,
        token: &str,
        path: &str,
    ) -> Result<Vec<T>, Failure> {
        let mut items = Vec::new();
        let mut url = format!("{}{path}?per_page=100", self.settings.api_url);
        for _ in 0..10 {
            let response = self.send(self.http.get(&url).bearer_auth(token)).await?;
            let next = next_link(response.headers());
            items.extend(json::<Vec<T>>(response).await?);
            match next {
                Some(next) if self.same_origin(&next) => url = next,
                Some(next) => {
                    return Err(Failure::Outage(format!(
                        "a next page outside the API origin ({next}); not sending the token there"
                    )));
                }
                None => break,
            }
        }
        Ok(items)
    }

    /// Whether `url` lies under the configured API URL (scheme, host,
    /// port and path prefix): the token goes with the request.
    fn same_origin(&self, url: &str) -> bool {
        let base = &self.settings.api_url;
        url.strip_prefix(base.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(['/', '?']))
    }

    fn api(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(format!("{}{path}", self.settings.api_url))
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Response, Failure> {
        let response = request
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", "2022-11-28")
            .timeout(self.settings.timeout)
            .send()
            .await
            .map_err(|e| Failure::Outage(format!("request failed: {e}")))?;
        classify(response)
    }
}

fn classify(response: Response) -> Result<Response, Failure> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let headers = response.headers();
    if let Some(limit) = rate_limited(status, headers) {
        return Err(Failure::Outage(limit));
    }
    if status.is_server_error() {
        return Err(Failure::Outage(format!("GitHub answered {status}")));
    }
    Err(Failure::Refused(TokenError::Rejected(
        "GitHub does not accept the token",
    )))
}

/// 403/429 with `x-ratelimit-remaining: 0` or `retry-after`: GitHub's rate
/// limits (primary and secondary). Returns a description with the reset time.
fn rate_limited(status: StatusCode, headers: &HeaderMap) -> Option<String> {
    if status != StatusCode::FORBIDDEN && status != StatusCode::TOO_MANY_REQUESTS {
        return None;
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let exhausted = header("x-ratelimit-remaining") == Some("0");
    let retry_after = header("retry-after");
    if !exhausted && retry_after.is_none() {
        return None;
    }
    Some(format!(
        "rate limited ({status}); x-ratelimit-reset={}, retry-after={}",
        header("x-ratelimit-reset").unwrap_or("-"),
        retry_after.unwrap_or("-")
    ))
}

async fn json<T: serde::de::DeserializeOwned>(response: Response) -> Result<T, Failure> {
    response
        .json()
        .await
        .map_err(|e| Failure::Outage(format!("unexpected GitHub answer: {e}")))
}

fn next_link(headers: &HeaderMap) -> Option<String> {
    let link = headers.get("link")?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (url, rel) = part.split_once(';')?;
        rel.contains("rel=\"next\"").then(|| {
            url.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned()
        })
    })
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
mod tests {
    use super::*;

    #[test]
    fn github_tokens_are_recognised() {
        for t in [
            "gho_abc",
            "ghu_x",
            "ghp_y",
            "github_pat_11AB",
            &"a1".repeat(20),
        ] {
            assert!(looks_like_github_token(t), "{t}");
        }
        for t in ["eyJ.eyJ.sig", "abc", &"g".repeat(40)] {
            assert!(!looks_like_github_token(t), "{t}");
        }
    }

    /// Regression (issue 9, item 10): shapes checked offline.
    #[test]
    fn only_tokens_of_a_github_shape_are_sent_to_github() {
        let ok = [
            "ghp_16C7e42F292c6912E7710c838347Ae178B4a".to_owned(),
            "gho_16C7e42F292c6912E7710c838347Ae178B4a".to_owned(),
            format!("github_pat_11ABCDEFG0{}", "x".repeat(72)),
            "a1".repeat(20),
        ];
        for t in &ok {
            assert!(well_formed(t), "{t}");
        }
        let bad = [
            "ghp_short".to_owned(),
            "ghp_16C7e42F292c6912E7710c838347Ae178B4-".to_owned(),
            format!("ghp_{}", "a".repeat(252)),
            "ghx_16C7e42F292c6912E7710c838347Ae178B4a".to_owned(),
            "g1".repeat(20),
        ];
        for t in &bad {
            assert!(!well_formed(t), "{t}");
        }
    }

    #[test]
    fn the_next_page_is_found_in_the_link_header() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "link",
            r#"<https://api.github.com/user/orgs?page=3>; rel="next", <https://api.github.com/user/orgs?page=9>; rel="last""#
                .parse()
                .unwrap(),
        );
        assert_eq!(
            next_link(&headers).as_deref(),
            Some("https://api.github.com/user/orgs?page=3")
        );
        assert_eq!(next_link(&HeaderMap::new()), None);
    }

    #[test]
    fn rate_limits_are_told_from_refusals() {
        let mut headers = HeaderMap::new();
        assert!(rate_limited(StatusCode::FORBIDDEN, &headers).is_none());
        headers.insert("x-ratelimit-remaining", "0".parse().unwrap());
        headers.insert("x-ratelimit-reset", "1795680000".parse().unwrap());
        assert!(
            rate_limited(StatusCode::FORBIDDEN, &headers)
                .unwrap()
                .contains("1795680000")
        );
        let mut retry = HeaderMap::new();
        retry.insert("retry-after", "60".parse().unwrap());
        assert!(rate_limited(StatusCode::TOO_MANY_REQUESTS, &retry).is_some());
        assert!(rate_limited(StatusCode::UNAUTHORIZED, &retry).is_none());
    }
}
