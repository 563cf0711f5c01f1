//! The checked request as the pipeline sees it, whatever protocol brought it
//! (Envoy's gRPC Check, or the HTTP check listener for Envoy's
//! `http_service`, nginx, Caddy and Traefik), and credential extraction.

use std::{borrow::Cow, time::Duration};

use thiserror::Error;

use crate::domain::RequestId;

/// What a check is about: the client's request, headers lower-cased.
/// Borrows from the decoded protocol message, so building it copies nothing
/// in the common case (measured: a dozen allocations fewer per check).
#[derive(Debug, Clone, Default)]
pub struct RequestView<'a> {
    pub method: &'a str,
    /// The `:authority` (for host-specific routes).
    pub host: &'a str,
    /// As sent: query string included, not percent-decoded.
    pub path: &'a str,
    pub request_id: Option<RequestId>,
    pub headers: ClientHeaders<'a>,
    /// How long the caller waits for the answer, less a margin
    /// ([`budget_within`] of gRPC's `grpc-timeout`, or of Envoy's
    /// `x-envoy-expected-rq-timeout-ms` on an HTTP check); `None`: the
    /// configured default.
    pub budget: Option<Duration>,
    /// Whether the proxy removes the client headers an allow lists.
    pub removals: Removals,
    /// The trace context of the call itself, when it carries one (Envoy's
    /// ext_authz span, in gRPC metadata): `(traceparent | uber-trace-id,
    /// value)`. Read only when traces are exported.
    pub trace: Option<(&'static str, &'a str)>,
}

impl<'a> RequestView<'a> {
    /// The trace this check continues: the call's own context, else the
    /// checked request's (`traceparent`, then `uber-trace-id`).
    pub fn trace_parent(&self) -> Option<(&'static str, &str)> {
        use crate::telemetry::trace::{JAEGER, W3C};
        self.trace.or_else(|| {
            [W3C, JAEGER]
                .into_iter()
                .find_map(|name| Some((name, self.headers.get_all(name).next()?)))
        })
    }
}

/// Four fifths of the caller's timeout: the rest is for the answer to
/// travel and for the proxy to act on it before its own timer fires.
pub fn budget_within(timeout: Duration) -> Duration {
    timeout * 4 / 5
}

/// Whether the front proxy acts on the removals of an allow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Removals {
    /// Envoy, in both modes: the client's forged `x-dispatch-*` headers are
    /// removed on our word.
    #[default]
    Honoured,
    /// nginx, Caddy, Traefik: they overwrite the names their configuration
    /// lists and nothing else, so a request that carries any name of our
    /// namespace (but `x-dispatch-org` and the pass-through inputs, in
    /// their canonical spelling) is refused instead.
    Ignored,
}

/// The client's headers in arrival order. A name may occur more than once
/// (Envoy's `encode_raw_headers` keeps repeats apart instead of comma-joining).
#[derive(Debug, Clone, Default)]
pub struct ClientHeaders<'a>(Vec<(Cow<'a, str>, Cow<'a, str>)>);

/// Our header namespace: a client's copy of any of these is a forgery.
pub const DISPATCH_PREFIX: &str = "x-dispatch-";

impl<'a> ClientHeaders<'a> {
    /// Names are lower-cased (Envoy already sends them so; then nothing is
    /// copied).
    pub fn new<K, V>(pairs: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<Cow<'a, str>>,
        V: Into<Cow<'a, str>>,
    {
        Self(
            pairs
                .into_iter()
                .map(|(k, v)| (lower(k.into()), v.into()))
                .collect(),
        )
    }

    /// Every value of `name` (lower-case, `-` spelling), under any spelling
    /// that an upstream could read as it: `x_dispatch_org` counts as
    /// `x-dispatch-org`, since WSGI, Rack and CGI servers map `_` to `-`.
    pub fn get_all<'s, 'n>(
        &'s self,
        name: &'n str,
    ) -> impl Iterator<Item = &'s str> + use<'s, 'a, 'n> {
        self.0
            .iter()
            .filter(move |(k, _)| same_name(k, name))
            .map(|(_, v)| v.as_ref())
    }

    /// Every name the client sent, as sent (lower-cased), each once.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        let mut names: Vec<&str> = self.0.iter().map(|(k, _)| k.as_ref()).collect();
        names.sort_unstable();
        names.dedup();
        names.into_iter()
    }

    /// Names the client sent that read as one of the `x-dispatch-*`
    /// namespace (`_` read as `-`), as sent, each once.
    pub fn dispatch_names(&self) -> Vec<&str> {
        self.names().filter(|k| is_dispatch_name(k)).collect()
    }
}

/// Whether a header name, as sent, reads as `name` (given in its lower-case
/// `-` spelling) once `_` is read as `-`.
pub fn same_name(sent: &str, name: &str) -> bool {
    same_bytes(sent.as_bytes(), name.as_bytes())
}

fn same_bytes(sent: &[u8], name: &[u8]) -> bool {
    sent.len() == name.len()
        && sent
            .iter()
            .zip(name)
            .all(|(s, n)| s == n || (*s == b'_' && *n == b'-'))
}

/// Whether a name, as sent, reads as one of ours (`x-dispatch-*`, any
/// spelling of the separators). Compared as bytes: a name is any text, and
/// its prefix need not end on a character boundary.
pub fn is_dispatch_name(sent: &str) -> bool {
    sent.as_bytes()
        .get(..DISPATCH_PREFIX.len())
        .is_some_and(|prefix| same_bytes(prefix, DISPATCH_PREFIX.as_bytes()))
}

fn lower(name: Cow<'_, str>) -> Cow<'_, str> {
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(name.to_ascii_lowercase())
    } else {
        name
    }
}

/// Where a bearer token may come from.
#[derive(Debug, Clone)]
pub struct CredentialSettings {
    /// A header holding the bare token (e.g. oauth2-proxy's
    /// `x-forwarded-access-token`), read when there is no `Authorization`.
    pub header: Option<String>,
    /// A cookie holding the token, read when there is neither.
    pub cookie: Option<String>,
    /// Longer tokens are refused before any parsing.
    pub max_token_bytes: usize,
}

/// Why no usable credential was found. The messages go to the client.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum CredentialError {
    #[error("no credential: send Authorization: Bearer <token>")]
    Missing,
    #[error("more than one Authorization header value")]
    Repeated,
    #[error("unsupported authorization scheme; use Bearer")]
    UnsupportedScheme,
    #[error("empty bearer token")]
    Empty,
    #[error("bearer token contains characters a token cannot have")]
    InvalidCharacters,
    #[error("bearer token is longer than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("more than one token cookie")]
    RepeatedCookie,
}

impl CredentialError {
    /// RFC 6750: no error code without a bearer token (none, or another
    /// scheme); `invalid_request` when one is there but ambiguous or
    /// malformed.
    pub fn kind(&self) -> super::DenialKind {
        let error = match self {
            Self::Missing | Self::UnsupportedScheme => None,
            _ => Some(super::BearerError::InvalidRequest),
        };
        super::DenialKind::Unauthenticated { error }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::Missing => "missing_credential",
            Self::Repeated => "repeated_authorization",
            Self::UnsupportedScheme => "unsupported_scheme",
            Self::Empty => "empty_token",
            Self::InvalidCharacters => "invalid_token_characters",
            Self::TooLarge { .. } => "token_too_large",
            Self::RepeatedCookie => "repeated_cookie",
        }
    }
}

/// The bearer token of the request: from `Authorization` (scheme matched
/// case-insensitively), else from the configured cookie.
pub fn bearer_token<'h>(
    headers: &'h ClientHeaders<'_>,
    settings: &CredentialSettings,
) -> Result<&'h str, CredentialError> {
    let mut values = headers.get_all("authorization");
    let token = match (values.next(), values.next()) {
        (Some(_), Some(_)) => return Err(CredentialError::Repeated),
        (Some(value), None) => from_authorization(value)?,
        (None, _) => match from_header(headers, settings.header.as_deref())? {
            Some(token) => token,
            None => match &settings.cookie {
                Some(name) => from_cookie(headers, name)?,
                None => return Err(CredentialError::Missing),
            },
        },
    };
    if token.len() > settings.max_token_bytes {
        return Err(CredentialError::TooLarge {
            limit: settings.max_token_bytes,
        });
    }
    if !token.bytes().all(is_token_byte) {
        return Err(CredentialError::InvalidCharacters);
    }
    Ok(token)
}

fn from_authorization(value: &str) -> Result<&str, CredentialError> {
    // Envoy joins repeated headers with ','; a token never contains one.
    if value.contains(',') {
        return Err(CredentialError::Repeated);
    }
    let value = value.trim();
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(CredentialError::UnsupportedScheme);
    }
    let token = token.trim_start();
    if token.is_empty() {
        return Err(CredentialError::Empty);
    }
    Ok(token)
}

fn from_header<'h>(
    headers: &'h ClientHeaders<'_>,
    name: Option<&str>,
) -> Result<Option<&'h str>, CredentialError> {
    let Some(name) = name else { return Ok(None) };
    let mut values = headers.get_all(name);
    match (values.next(), values.next()) {
        (Some(_), Some(_)) => Err(CredentialError::Repeated),
        (Some(value), None) if value.contains(',') => Err(CredentialError::Repeated),
        (Some(value), None) if value.trim().is_empty() => Err(CredentialError::Empty),
        (Some(value), None) => Ok(Some(value.trim())),
        (None, _) => Ok(None),
    }
}

fn from_cookie<'h>(headers: &'h ClientHeaders<'_>, name: &str) -> Result<&'h str, CredentialError> {
    let mut found = headers
        .get_all("cookie")
        .flat_map(|h| h.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'));
    match (found.next(), found.next()) {
        (Some(_), Some(_)) => Err(CredentialError::RepeatedCookie),
        (Some(""), None) => Err(CredentialError::Empty),
        (Some(token), None) => Ok(token),
        (None, _) => Err(CredentialError::Missing),
    }
}

/// RFC 6750's b64token characters; a JWT uses a subset of them.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b)
}

#[cfg(test)]
mod tests;
