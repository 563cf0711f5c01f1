//! A GitHub REST API on port 0: `/user`, `/applications/{id}/token`,
//! `/user/orgs` and `/user/teams` (paginated, two per page), with switches
//! for rate limiting, 5xx and slowness, and a call counter.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU8, AtomicU64, Ordering},
    },
    time::Duration,
};

use axum::{
    Json, Router,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use serde_json::{Value, json};

pub const CLIENT_ID: &str = "Iv1.dispatch";
pub const CLIENT_SECRET: &str = "app-secret";

#[derive(Clone)]
pub struct Account {
    pub id: u64,
    pub login: String,
    /// The OAuth app the token was issued to.
    pub app: String,
    pub orgs: Vec<String>,
    /// `(org, team-slug)`.
    pub teams: Vec<(String, String)>,
}

#[derive(Default)]
struct Api {
    tokens: Mutex<HashMap<String, Account>>,
    calls: AtomicU64,
    /// 0 normal, 1 rate limited, 2 server error.
    mode: AtomicU8,
    delay_ms: AtomicU64,
    /// Where `Link: rel="next"` points instead of this server.
    next_origin: Mutex<Option<String>>,
}

#[derive(Clone)]
pub struct FakeGithub {
    pub url: String,
    api: Arc<Api>,
}

fn token_of(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("authorization")?.to_str().ok()?;
    value.strip_prefix("Bearer ").map(str::to_owned)
}

async fn gate(api: &Api) -> Option<Response> {
    api.calls.fetch_add(1, Ordering::SeqCst);
    let delay = api.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    match api.mode.load(Ordering::SeqCst) {
        1 => Some(
            (
                StatusCode::FORBIDDEN,
                [
                    ("x-ratelimit-remaining", "0"),
                    ("x-ratelimit-reset", "1795680000"),
                ],
                Json(json!({"message": "API rate limit exceeded"})),
            )
                .into_response(),
        ),
        2 => Some(StatusCode::BAD_GATEWAY.into_response()),
        _ => None,
    }
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({"message": "Bad credentials"})),
    )
        .into_response()
}

async fn user(State(api): State<Arc<Api>>, headers: HeaderMap) -> Response {
    if let Some(r) = gate(&api).await {
        return r;
    }
    let account = token_of(&headers).and_then(|t| api.tokens.lock().unwrap().get(&t).cloned());
    match account {
        Some(a) => Json(json!({"id": a.id, "login": a.login})).into_response(),
        None => unauthorized(),
    }
}

async fn app_token(
    State(api): State<Arc<Api>>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Some(r) = gate(&api).await {
        return r;
    }
    let basic = format!(
        "Basic {}",
        STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    );
    if client_id != CLIENT_ID
        || headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(&basic)
    {
        return unauthorized();
    }
    let token = body["access_token"].as_str().unwrap_or_default();
    match api.tokens.lock().unwrap().get(token) {
        Some(a) if a.app == client_id => {
            Json(json!({"token": "", "user": {"id": a.id, "login": a.login}})).into_response()
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Two items per page, with a `Link: rel="next"` header, so a membership on
/// a later page needs pagination.
fn page(url: &str, path: &str, items: Vec<Value>, page: usize) -> Response {
    let start = (page - 1) * 2;
    let chunk: Vec<Value> = items.iter().skip(start).take(2).cloned().collect();
    let mut response = Json(Value::Array(chunk)).into_response();
    if start + 2 < items.len() {
        let link = format!("<{url}{path}?per_page=2&page={}>; rel=\"next\"", page + 1);
        response.headers_mut().insert("link", link.parse().unwrap());
    }
    response
}

async fn orgs(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    list(&api, &headers, &q, "/user/orgs", |a| {
        a.orgs.iter().map(|o| json!({"login": o})).collect()
    })
    .await
}

async fn teams(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    list(&api, &headers, &q, "/user/teams", |a| {
        a.teams
            .iter()
            .map(|(org, slug)| json!({"slug": slug, "organization": {"login": org}}))
            .collect()
    })
    .await
}

async fn list(
    api: &Api,
    headers: &HeaderMap,
    q: &HashMap<String, String>,
    path: &str,
    items: impl Fn(&Account) -> Vec<Value>,
) -> Response {
    if let Some(r) = gate(api).await {
        return r;
    }
    let Some(account) = token_of(headers).and_then(|t| api.tokens.lock().unwrap().get(&t).cloned())
    else {
        return unauthorized();
    };
    let n = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let here = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .map(|h| format!("http://{h}"))
        .unwrap_or_default();
    let url = api.next_origin.lock().unwrap().clone().unwrap_or(here);
    page(&url, path, items(&account), n)
}

impl FakeGithub {
    pub async fn start() -> Self {
        let api = Arc::new(Api::default());
        let app = Router::new()
            .route("/user", get(user))
            .route("/user/orgs", get(orgs))
            .route("/user/teams", get(teams))
            .route("/applications/{client_id}/token", post(app_token))
            .with_state(api.clone());
        let url = format!("http://{}", super::serve_http(app).await);
        Self { url, api }
    }

    pub fn add_token(&self, token: &str, account: Account) {
        self.api
            .tokens
            .lock()
            .unwrap()
            .insert(token.into(), account);
    }

    pub fn rename(&self, id: u64, login: &str) {
        for account in self
            .api
            .tokens
            .lock()
            .unwrap()
            .values_mut()
            .filter(|a| a.id == id)
        {
            account.login = login.into();
        }
    }

    /// GitHub moves the user into (or out of) teams, `(org, team-slug)`.
    pub fn set_teams(&self, id: u64, teams: &[(&str, &str)]) {
        for account in self
            .api
            .tokens
            .lock()
            .unwrap()
            .values_mut()
            .filter(|a| a.id == id)
        {
            account.teams = teams
                .iter()
                .map(|(o, t)| ((*o).to_owned(), (*t).to_owned()))
                .collect();
        }
    }

    pub fn calls(&self) -> u64 {
        self.api.calls.load(Ordering::SeqCst)
    }

    pub fn set_rate_limited(&self, on: bool) {
        self.api.mode.store(u8::from(on), Ordering::SeqCst);
    }

    pub fn set_server_error(&self, on: bool) {
        self.api
            .mode
            .store(if on { 2 } else { 0 }, Ordering::SeqCst);
    }

    /// Makes every next-page link point at `origin` (another server).
    pub fn set_next_origin(&self, origin: &str) {
        *self.api.next_origin.lock().unwrap() = Some(origin.to_owned());
    }

    pub fn set_delay(&self, delay: Duration) {
        self.api
            .delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }
}

pub fn account(id: u64, login: &str) -> Account {
    Account {
        id,
        login: login.into(),
        app: CLIENT_ID.into(),
        orgs: vec![],
        teams: vec![],
    }
}
