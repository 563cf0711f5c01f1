//! The operations listener: `/healthz` (the process is alive), `/readyz`
//! (checks can be decided: the database answers and every identity source
//! has keys), `/metrics` (Prometheus text). Loopback by default, its own
//! port, stopped with the others.

use std::sync::Arc;

use http::{Method, Response, StatusCode, header::CONTENT_TYPE};
use hyper::body::Incoming;
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;

use super::http::{Body, Handler};
use crate::{check::Live, telemetry::metrics};

pub struct Operations {
    checker: Arc<Live>,
    metrics: &'static PrometheusHandle,
}

impl Operations {
    pub fn new(checker: Arc<Live>, metrics: &'static PrometheusHandle) -> Self {
        Self { checker, metrics }
    }

    async fn ready(&self) -> Response<Body> {
        let readiness = self.checker.readiness().await;
        let status = if readiness.is_ready() {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        let body = json!({
            "ready": readiness.is_ready(),
            "database": readiness.database.as_ref().err().map_or("ok", String::as_str),
            "keys": if readiness.keys { "ok" } else { "an identity source has no keys yet" },
            "replicas": readiness.replicas.describe(),
            // Visible where operators look: refusals are being let through.
            "dry_run": self.checker.current().dry_run_scope().describe(),
        });
        answer(status, "application/json", body.to_string())
    }

    fn metrics(&self) -> Response<Body> {
        // Sizes are read when asked for, not kept up to date per check.
        for (cache, entries) in self.checker.current().cache_entries() {
            metrics::cache_entries(cache, entries);
        }
        answer(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            self.metrics.render(),
        )
    }
}

impl Operations {
    /// The keys `x-dispatch-identity` verifies with; a 404 when it is off.
    fn jwks(&self) -> Response<Body> {
        let checker = self.checker.current();
        let Some(asserter) = checker.signed_identity() else {
            return answer(
                StatusCode::NOT_FOUND,
                "text/plain",
                "no signed identity: [signed_identity] is not configured\n",
            );
        };
        let body = serde_json::to_string(&asserter.jwks()).unwrap_or_default();
        let mut response = answer(StatusCode::OK, "application/json", body);
        // How long a verifier may keep it: less than the time a new key is
        // published before it signs.
        let max_age = format!("max-age={}", asserter.jwks_max_age().as_secs());
        if let Ok(value) = http::HeaderValue::from_str(&max_age) {
            response
                .headers_mut()
                .insert(http::header::CACHE_CONTROL, value);
        }
        response
    }
}

impl Handler for Operations {
    async fn handle(&self, request: http::Request<Incoming>) -> Response<Body> {
        if request.method() != Method::GET && request.method() != Method::HEAD {
            return answer(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "GET only\n");
        }
        match request.uri().path() {
            "/healthz" => answer(StatusCode::OK, "text/plain", "ok\n"),
            "/readyz" => self.ready().await,
            "/metrics" => self.metrics(),
            "/.well-known/jwks.json" => self.jwks(),
            _ => answer(
                StatusCode::NOT_FOUND,
                "text/plain",
                "not found: /healthz, /readyz, /metrics, /.well-known/jwks.json\n",
            ),
        }
    }
}

fn answer(status: StatusCode, content_type: &'static str, body: impl Into<Body>) -> Response<Body> {
    let mut response = Response::new(body.into());
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, http::HeaderValue::from_static(content_type));
    response
}
