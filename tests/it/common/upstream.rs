//! The upstream behind every real proxy in these tests: it counts the
//! requests that reach it and echoes their path and headers as JSON.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use axum::{Router, body::Body, extract::State, http::Request};
use serde_json::{Value, json};

#[derive(Clone, Default)]
pub struct Upstream {
    pub hits: Arc<AtomicUsize>,
}

impl Upstream {
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

async fn echo(State(up): State<Upstream>, request: Request<Body>) -> axum::Json<Value> {
    up.hits.fetch_add(1, Ordering::SeqCst);
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in request.headers() {
        headers
            .entry(name.to_string())
            .or_default()
            .push(value.to_str().unwrap_or("!").to_owned());
    }
    axum::Json(json!({ "path": request.uri().to_string(), "headers": headers }))
}

/// The upstream, on a port of its own.
pub async fn spawn_upstream() -> (Upstream, u16) {
    let upstream = Upstream::default();
    let app = Router::new().fallback(echo).with_state(upstream.clone());
    let port = super::serve_http(app).await.port();
    (upstream, port)
}

/// Sends `request` with `headers` through a proxy: the status, the headers
/// and the body (JSON, else its text) the client got.
pub async fn through_proxy(
    mut request: reqwest::RequestBuilder,
    headers: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, Value) {
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, headers, body)
}

/// The values of `name` the upstream received, from its echo.
pub fn seen<'a>(echo: &'a Value, name: &str) -> Option<&'a Vec<Value>> {
    echo["headers"][name].as_array()
}
