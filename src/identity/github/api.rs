//! The GitHub API calls: who a token belongs to, its organizations and
//! teams (paginated on the configured origin only), and how a response is
//! classified (refusal, rate limit, outage).

use reqwest::{Response, StatusCode, header::HeaderMap};
use serde::Deserialize;

use super::{GithubSource, OAuthApp};
use crate::{identity::TokenError, telemetry::metrics};

#[derive(Deserialize)]
pub(super) struct GithubUser {
    pub(super) id: u64,
    pub(super) login: String,
}

#[derive(Deserialize)]
pub(super) struct AppTokenCheck {
    pub(super) user: GithubUser,
}

#[derive(Deserialize)]
pub(super) struct Org {
    pub(super) login: String,
}

#[derive(Deserialize)]
pub(super) struct Team {
    pub(super) slug: String,
    pub(super) organization: Org,
}

/// Outcomes of one GitHub call.
pub(super) enum Failure {
    /// GitHub judged the token: refuse it (and cache the refusal briefly).
    Refused(TokenError),
    /// GitHub could not answer: 503, not cached.
    Outage(String),
}

impl GithubSource {
    pub(super) async fn get_user(&self, token: &str) -> Result<GithubUser, Failure> {
        let response = self.send(self.api("/user").bearer_auth(token)).await?;
        json(response).await
    }

    pub(super) async fn check_app_token(
        &self,
        token: &str,
        app: &OAuthApp,
    ) -> Result<GithubUser, Failure> {
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
    pub(super) async fn paginate<T: serde::de::DeserializeOwned>(
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
    pub(super) fn same_origin(&self, url: &str) -> bool {
        let base = &self.settings.api_url;
        url.strip_prefix(base.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(['/', '?']))
    }

    pub(super) fn api(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(format!("{}{path}", self.settings.api_url))
    }

    pub(super) async fn send(&self, request: reqwest::RequestBuilder) -> Result<Response, Failure> {
        let call = request
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", "2022-11-28")
            .timeout(self.settings.timeout)
            .send();
        let response = tracing::Instrument::instrument(call, tracing::debug_span!("github_api"))
            .await
            .map_err(|e| {
                metrics::github_call("failed");
                Failure::Outage(format!("request failed: {e}"))
            })?;
        if let Some(remaining) = response
            .headers()
            .get("x-ratelimit-remaining")
            .and_then(|v| v.to_str().ok()?.parse().ok())
        {
            metrics::github_rate_limit_remaining(remaining);
        }
        let classified = classify(response);
        metrics::github_call(match &classified {
            Ok(_) => "ok",
            Err(Failure::Refused(_)) => "refused",
            Err(Failure::Outage(why)) if why.starts_with("rate limited") => "rate_limited",
            Err(Failure::Outage(_)) => "failed",
        });
        classified
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
pub(super) fn rate_limited(status: StatusCode, headers: &HeaderMap) -> Option<String> {
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

pub(super) fn next_link(headers: &HeaderMap) -> Option<String> {
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
