//! A [`Decision`] as the HTTP answer the proxies act on: exactly 200 to
//! allow, with the identity headers as response headers (the proxy copies
//! them onto the upstream request); a denial's status, headers and JSON
//! body otherwise, the same as the gRPC mode's `denied_response`.

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Response, StatusCode};
use http_body_util::Full;

use super::Style;
use crate::check::{
    Checked, DECISION_ID_HEADER, Decision, DecisionId, Denial, DenialKind, UpstreamHeaders,
};

pub type Body = Full<Bytes>;

/// Envoy's `http_service` removes the upstream request headers this names
/// (comma-separated). Other proxies have no such header.
pub const ENVOY_REMOVE: &str = "x-envoy-auth-headers-to-remove";

pub fn answer(style: Style, checked: Checked) -> Response<Body> {
    match checked.decision {
        Decision::Allow { upstream, .. } => allowed(style, &upstream),
        Decision::Deny(denial) => denied(&denial, Some(checked.id)),
    }
}

/// 200 and the headers to set. Envoy overwrites the client's copies of the
/// ones its `allowed_upstream_headers` lists; nginx, Caddy and Traefik copy
/// the ones their configuration names, and refuse-or-overwrite is theirs.
fn allowed(style: Style, upstream: &UpstreamHeaders) -> Response<Body> {
    let mut response = Response::new(Body::default());
    let headers = response.headers_mut();
    for (name, value) in &upstream.set {
        // Our values are checked newtypes; a cookie remainder is the
        // client's own text. Not sendable: not an allow.
        let Ok(value) = HeaderValue::from_str(value.as_str()) else {
            return unencodable(name);
        };
        headers.insert(HeaderName::from_static(name), value);
    }
    if style == Style::Envoy && !upstream.remove.is_empty() {
        let names: Vec<&str> = upstream.remove.iter().map(|n| n.as_str()).collect();
        match HeaderValue::from_str(&names.join(",")) {
            Ok(value) => headers.insert(HeaderName::from_static(ENVOY_REMOVE), value),
            // Names as the client sent them, so header-name characters only;
            // were one not, its header would pass: not an allow.
            Err(_) => return unencodable(ENVOY_REMOVE),
        };
    }
    response
}

fn unencodable(name: &str) -> Response<Body> {
    tracing::error!(
        header = name,
        "a header of an allow cannot be sent over HTTP"
    );
    let denial = Denial::new(
        DenialKind::Unavailable,
        "unencodable_header",
        format!("the {name} header cannot be sent"),
    );
    denied(&denial, None)
}

/// The denial's status, client headers (with its decision's id) and body.
pub fn denied(denial: &Denial, id: Option<DecisionId>) -> Response<Body> {
    let mut response = Response::new(Body::from(denial.body()));
    *response.status_mut() =
        StatusCode::from_u16(denial.kind.http_status()).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let headers = response.headers_mut();
    for (name, value) in denial.client_headers() {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
    if let Some(id) = id
        && let Ok(value) = HeaderValue::from_str(&id.to_string())
    {
        headers.insert(HeaderName::from_static(DECISION_ID_HEADER), value);
    }
    response
}
