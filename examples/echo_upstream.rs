//! A tiny upstream for trying dispatch-authz behind Envoy: it answers every
//! request with the method, path and headers it received, as JSON, so you can
//! see what Envoy passed on (x-dispatch-user and friends).
//!
//!     cargo run --example echo_upstream -- 127.0.0.1:8080

use std::collections::BTreeMap;

use axum::{Json, Router, body::Body, http::Request};
use serde_json::{Value, json};

async fn echo(request: Request<Body>) -> Json<Value> {
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in request.headers() {
        headers
            .entry(name.to_string())
            .or_default()
            .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    Json(json!({
        "method": request.method().as_str(),
        "path": request.uri().to_string(),
        "headers": headers,
    }))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("echo upstream on http://{}", listener.local_addr()?);
    axum::serve(listener, Router::new().fallback(echo)).await
}
