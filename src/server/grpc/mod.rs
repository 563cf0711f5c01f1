//! Envoy's `envoy.service.auth.v3.Authorization/Check`. The only module that
//! knows Envoy's protos: it turns a `CheckRequest` into a [`RequestView`] and
//! a [`Decision`] into an encoded `CheckResponse` ([`Answer`]).
//!
//! **Invariant:** `check` always returns an answer, never a gRPC status. A
//! gRPC error is what Envoy's `failure_mode_allow: true` turns into an
//! allow, so every failure, even a malformed request, is answered as a
//! denial.

mod answer;
mod service;

use std::{borrow::Cow, sync::Arc, time::Duration};

pub use answer::Answer;
pub use service::AuthorizationServer;

use envoy_types::{
    ext_authz::v3::pb::{
        CheckRequest, CheckResponse, DeniedHttpResponse, HeaderAppendAction, HeaderValue,
        HeaderValueOption, HttpResponse, HttpStatus, OkHttpResponse,
    },
    pb::google::{
        protobuf::{BoolValue, Struct, Value, value::Kind},
        rpc,
    },
};
use tonic::{Code, Request, Response};

use crate::{
    check::{
        self, BearerError, Checked, ClientHeaders, DECISION_ID_HEADER, Decision, DecisionId,
        Denial, DenialKind, Live, Permit, Removals, RequestView, UpstreamHeaders,
        request::budget_within,
    },
    domain::RequestId,
    telemetry::trace,
};

pub struct AuthorizationService {
    checker: Arc<Live>,
}

impl AuthorizationService {
    pub fn new(checker: Arc<Live>) -> Self {
        Self { checker }
    }

    /// Check. Never a gRPC error: every outcome is an answer.
    pub async fn check(&self, request: Request<CheckRequest>) -> Response<Answer> {
        let budget = grpc_timeout(request.metadata()).map(budget_within);
        let (metadata, _, request) = request.into_parts();
        let response = match request_view(&request) {
            Ok(mut view) => {
                view.budget = budget;
                if trace::exporting() {
                    view.trace = trace_context(&metadata);
                }
                answer(self.checker.current().check(&view).await)
            }
            Err(message) => answer(check::malformed("malformed_check_request", message)),
        };
        Response::new(response)
    }
}

/// Reads what the pipeline needs; `Err` names what is missing.
pub fn request_view(request: &CheckRequest) -> Result<RequestView<'_>, &'static str> {
    let http = request
        .attributes
        .as_ref()
        .ok_or("check request has no attributes")?
        .request
        .as_ref()
        .and_then(|r| r.http.as_ref())
        .ok_or("check request has no attributes.request.http")?;
    let map = http.header_map.iter().flat_map(|m| m.headers.iter());
    let pairs = http
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), Cow::Borrowed(v.as_str())))
        // With `encode_raw_headers: true` Envoy sends headers here instead,
        // repeats kept apart and values as bytes.
        .chain(map.map(|h| {
            let value = if h.raw_value.is_empty() {
                Cow::Borrowed(h.value.as_str())
            } else {
                String::from_utf8_lossy(&h.raw_value)
            };
            (h.key.as_str(), value)
        }));
    let headers = ClientHeaders::new(pairs);
    // `http.id` is Envoy's internal stream id; `x-request-id` (which Envoy
    // sets before ext_authz runs) is what its access logs and the upstream see.
    let request_id = headers
        .get_all("x-request-id")
        .next()
        .and_then(RequestId::parse)
        .or_else(|| RequestId::parse(&http.id));
    Ok(RequestView {
        method: &http.method,
        host: &http.host,
        path: &http.path,
        request_id,
        headers,
        budget: None,
        // Envoy removes what `headers_to_remove` lists.
        removals: Removals::Honoured,
        trace: None,
    })
}

/// The trace context Envoy puts on its ext_authz call (the span it made for
/// the call), W3C's or Jaeger's.
fn trace_context(metadata: &tonic::metadata::MetadataMap) -> Option<(&'static str, &str)> {
    [trace::W3C, trace::JAEGER]
        .into_iter()
        .find_map(|name| Some((name, metadata.get(name)?.to_str().ok()?)))
}

/// The caller's `grpc-timeout` (gRPC over HTTP/2: up to 8 digits and a
/// unit, H M S m u n). Envoy sends its ext_authz timeout here.
fn grpc_timeout(metadata: &tonic::metadata::MetadataMap) -> Option<Duration> {
    let value = metadata.get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.checked_mul(3600)?),
        "M" => Duration::from_secs(n.checked_mul(60)?),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// The answer on the wire: an allow encoded straight from the decision
/// (`answer.rs`), a denial through envoy-types' structs.
pub fn answer(checked: Checked) -> Answer {
    match checked.decision {
        Decision::Allow { permit, upstream } => Answer::allow(&permit, &upstream, checked.id),
        Decision::Deny(denial) => Answer::message(&denied(&denial, checked.id)),
    }
}

/// The same answer as envoy-types' structs: what [`answer`] must decode to
/// (tests), and what clients of the protos read.
pub fn check_response(checked: Checked) -> CheckResponse {
    match checked.decision {
        Decision::Allow { permit, upstream } => allowed(&permit, upstream, checked.id),
        Decision::Deny(denial) => denied(&denial, checked.id),
    }
}

fn allowed(permit: &Permit, headers: UpstreamHeaders, id: DecisionId) -> CheckResponse {
    CheckResponse {
        status: Some(rpc::Status {
            code: Code::Ok as i32,
            ..Default::default()
        }),
        // For access logs, users and service accounts alike; only what
        // `envoy/envoy.yaml`'s access log reads, since Envoy decodes it on
        // every request (issuer and kind are in the headers).
        dynamic_metadata: Some(match permit.who() {
            Some(who) => metadata(&[
                ("decision_id", id.to_string()),
                ("user_id", who.subject().id().to_string()),
                ("login", who.name().into_owned()),
            ]),
            None => metadata(&[("decision_id", id.to_string())]),
        }),
        http_response: Some(HttpResponse::OkResponse(OkHttpResponse {
            headers: headers
                .set
                .into_iter()
                .map(|(k, v)| overwrite(k, v.into()))
                .collect(),
            headers_to_remove: headers.remove.into_iter().map(String::from).collect(),
            ..Default::default()
        })),
    }
}

fn denied(denial: &Denial, id: DecisionId) -> CheckResponse {
    let code = match denial.kind {
        DenialKind::Unauthenticated {
            error: Some(BearerError::InvalidRequest),
        } => Code::InvalidArgument,
        DenialKind::Unauthenticated { .. } => Code::Unauthenticated,
        DenialKind::Forbidden => Code::PermissionDenied,
        DenialKind::InvalidRequest => Code::InvalidArgument,
        DenialKind::Unavailable => Code::Unavailable,
    };
    CheckResponse {
        status: Some(rpc::Status {
            code: code as i32,
            message: denial.message.clone(),
            details: vec![],
        }),
        // "Who got this 403, and why": the access log and the client both
        // get the id the decision line carries.
        dynamic_metadata: Some(metadata(&[("decision_id", id.to_string())])),
        http_response: Some(HttpResponse::DeniedResponse(DeniedHttpResponse {
            status: Some(HttpStatus {
                code: i32::from(denial.kind.http_status()),
            }),
            headers: denial
                .client_headers()
                .into_iter()
                .chain([(DECISION_ID_HEADER, id.to_string())])
                .map(|(k, v)| overwrite(k, v))
                .collect(),
            body: denial.body(),
        })),
    }
}

/// A header that replaces any value of the same name. Both the deprecated
/// `append = false` and `OVERWRITE_IF_EXISTS_OR_ADD` are sent: Envoy versions
/// have read one or the other, and together they overwrite on all of them.
#[allow(deprecated)]
fn overwrite(key: &str, value: String) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(HeaderValue {
            key: key.to_owned(),
            value,
            raw_value: Vec::new(),
        }),
        append: Some(BoolValue { value: false }),
        append_action: HeaderAppendAction::OverwriteIfExistsOrAdd as i32,
        keep_empty_value: false,
    }
}

fn metadata(fields: &[(&str, String)]) -> Struct {
    Struct {
        fields: fields
            .iter()
            .map(|(k, v)| {
                (
                    (*k).to_owned(),
                    Value {
                        kind: Some(Kind::StringValue(v.clone())),
                    },
                )
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse_and_leave_a_margin() {
        let parse = |v: &str| {
            let mut m = tonic::metadata::MetadataMap::new();
            m.insert("grpc-timeout", v.parse().unwrap());
            grpc_timeout(&m)
        };
        assert_eq!(parse("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse("1S"), Some(Duration::from_secs(1)));
        assert_eq!(parse("2M"), Some(Duration::from_secs(120)));
        assert_eq!(parse("200000u"), Some(Duration::from_millis(200)));
        for bad in ["", "m", "10", "123456789m", "-5m", "5x", "5 m"] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
        assert_eq!(
            budget_within(Duration::from_millis(250)),
            Duration::from_millis(200)
        );
    }
}
