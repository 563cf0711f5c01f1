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
mod tests {
    use super::*;

    fn settings(cookie: Option<&str>) -> CredentialSettings {
        CredentialSettings {
            header: Some("x-forwarded-access-token".into()),
            cookie: cookie.map(str::to_owned),
            max_token_bytes: 8192,
        }
    }

    fn token_of(pairs: &[(&str, &str)]) -> Result<String, CredentialError> {
        let headers = ClientHeaders::new(pairs.iter().copied());
        bearer_token(&headers, &settings(Some("session"))).map(str::to_owned)
    }

    /// The call's own trace context first, then the request's W3C, then
    /// its Jaeger header (found unchecked by cargo-mutants).
    #[test]
    fn a_check_continues_the_nearest_trace() {
        use crate::telemetry::trace::{JAEGER, W3C};
        let w3c = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let headers = [(JAEGER, "abc:def:0:1"), (W3C, w3c)];
        let view = |pairs: &[(&'static str, &'static str)], trace| RequestView {
            headers: ClientHeaders::new(pairs.iter().copied()),
            trace,
            ..Default::default()
        };
        assert_eq!(view(&headers, None).trace_parent(), Some((W3C, w3c)));
        assert_eq!(
            view(&headers[..1], None).trace_parent(),
            Some((JAEGER, "abc:def:0:1"))
        );
        let own = Some((W3C, "00-own"));
        assert_eq!(view(&headers, own).trace_parent(), own);
        assert_eq!(view(&[], None).trace_parent(), None);
    }

    #[test]
    fn bearer_tokens_are_found() {
        assert_eq!(
            token_of(&[("Authorization", "Bearer abc.def.ghi")]),
            Ok("abc.def.ghi".into())
        );
        assert_eq!(
            token_of(&[("authorization", "bearer abc")]),
            Ok("abc".into())
        );
        assert_eq!(
            token_of(&[("authorization", "BEARER  abc ")]),
            Ok("abc".into())
        );
        assert_eq!(
            token_of(&[("cookie", "a=1; session=tok.en; b=2")]),
            Ok("tok.en".into())
        );
        // Authorization wins over the cookie.
        assert_eq!(
            token_of(&[("cookie", "session=c"), ("authorization", "Bearer h")]),
            Ok("h".into())
        );
    }

    /// oauth2-proxy's way: the token alone in the configured header, read
    /// when there is no `Authorization`, before the cookie (found unchecked
    /// by cargo-mutants: no test accepted a token from that header).
    #[test]
    fn the_configured_token_header_is_read_after_authorization() {
        let header = "x-forwarded-access-token";
        assert_eq!(token_of(&[(header, " abc.def ")]), Ok("abc.def".into()));
        assert_eq!(
            token_of(&[("cookie", "session=c"), (header, "h")]),
            Ok("h".into())
        );
        assert_eq!(
            token_of(&[(header, "h"), ("authorization", "Bearer a")]),
            Ok("a".into())
        );
        // Without the setting, the header is nobody's credential.
        let headers = ClientHeaders::new([(header, "h")]);
        let mut unset = settings(None);
        unset.header = None;
        assert_eq!(
            bearer_token(&headers, &unset),
            Err(CredentialError::Missing)
        );
    }

    /// RFC 6750: no error code without a bearer token, `invalid_request`
    /// with a bad one; and each error's reason code for decision lines
    /// (found unchecked by cargo-mutants).
    #[test]
    fn credential_errors_have_their_rfc_6750_kind_and_reason_code() {
        use super::super::{BearerError::InvalidRequest, DenialKind::Unauthenticated};
        use CredentialError::*;
        let cases = [
            (Missing, None, "missing_credential"),
            (UnsupportedScheme, None, "unsupported_scheme"),
            (Repeated, Some(InvalidRequest), "repeated_authorization"),
            (Empty, Some(InvalidRequest), "empty_token"),
            (
                InvalidCharacters,
                Some(InvalidRequest),
                "invalid_token_characters",
            ),
            (
                TooLarge { limit: 1 },
                Some(InvalidRequest),
                "token_too_large",
            ),
            (RepeatedCookie, Some(InvalidRequest), "repeated_cookie"),
        ];
        for (e, error, code) in cases {
            assert_eq!(e.kind(), Unauthenticated { error }, "{e:?}");
            assert_eq!(e.code(), code);
        }
    }

    /// The limit is inclusive: a token of exactly `max_token_bytes` passes.
    #[test]
    fn a_token_of_exactly_the_limit_passes_and_one_byte_more_does_not() {
        let at = format!("Bearer {}", "a".repeat(8192));
        let over = format!("Bearer {}", "a".repeat(8193));
        assert_eq!(
            token_of(&[("authorization", &at)]).map(|t| t.len()),
            Ok(8192)
        );
        assert_eq!(
            token_of(&[("authorization", &over)]),
            Err(CredentialError::TooLarge { limit: 8192 })
        );
    }

    #[test]
    fn bad_credentials_are_named() {
        use CredentialError::*;
        let long = format!("Bearer {}", "a".repeat(64 * 1024));
        let cases: Vec<(Vec<(&str, &str)>, CredentialError)> = vec![
            (vec![], Missing),
            (vec![("cookie", "other=1")], Missing),
            (vec![("authorization", "Bearer")], Empty),
            (vec![("authorization", "Bearer ")], Empty),
            (
                vec![("authorization", "Basic dXNlcjpwYXNz")],
                UnsupportedScheme,
            ),
            (vec![("authorization", "Token abc")], UnsupportedScheme),
            (vec![("authorization", "Bearer a, Bearer b")], Repeated),
            (
                vec![("authorization", "Bearer a"), ("authorization", "Bearer b")],
                Repeated,
            ),
            (vec![("authorization", "Bearer a b")], InvalidCharacters),
            (vec![("authorization", "Bearer a\"b")], InvalidCharacters),
            (
                vec![("authorization", long.as_str())],
                TooLarge { limit: 8192 },
            ),
            (
                vec![("cookie", "session=a"), ("cookie", "session=b")],
                RepeatedCookie,
            ),
            (vec![("cookie", "session=")], Empty),
            (vec![("x-forwarded-access-token", "")], Empty),
            (vec![("x-forwarded-access-token", "a, b")], Repeated),
        ];
        for (headers, want) in cases {
            assert_eq!(token_of(&headers), Err(want.clone()), "{headers:?}");
        }
    }

    #[test]
    fn dispatch_names_are_collected_once() {
        let headers = ClientHeaders::new([
            ("X-Dispatch-User", "mallory"),
            ("x-dispatch-user", "eve"),
            ("x-dispatch-org", "acme"),
            ("x-dispatcher", "no"),
            ("x_dispatch_user", "mallory"),
            ("X_Dispatch-Admin", "1"),
            ("accept", "*/*"),
        ]);
        assert_eq!(
            headers.dispatch_names(),
            [
                "x-dispatch-org",
                "x-dispatch-user",
                "x_dispatch-admin",
                "x_dispatch_user"
            ]
        );
    }

    /// Regression (issue 9, item 4): `x_dispatch_user` is `X-Dispatch-User`
    /// to WSGI, Rack and CGI servers, so it is one of ours.
    #[test]
    fn underscores_read_as_dashes() {
        let headers = ClientHeaders::new([("x_dispatch_org", "evil"), ("authorization", "a")]);
        assert_eq!(
            headers.get_all("x-dispatch-org").collect::<Vec<_>>(),
            ["evil"]
        );
        assert!(same_name(
            "x_http_method_override",
            "x-http-method-override"
        ));
        assert!(
            !same_name("x-dispatch-org", "x_dispatch_org"),
            "only _ as -"
        );
        assert!(!same_name("x-dispatch-orgs", "x-dispatch-org"));
        assert!(is_dispatch_name("x_dispatch_"));
        assert!(!is_dispatch_name("x_dispatch"));
        assert!(!is_dispatch_name("x-dispatcher-user"));
    }

    /// Regression (issue 17, found by the `check` fuzzer): a header name
    /// whose 11th byte is inside a multi-byte character panicked the check
    /// (slicing a `str` off a character boundary). A panic is a transport
    /// error to Envoy, which `failure_mode_allow: true` lets through.
    #[test]
    fn a_name_with_multibyte_characters_is_read_without_a_panic() {
        for name in [
            "x-dispatché",
            "x-dispatc\u{e9}-user",
            "é",
            "x-dispatch\u{1F600}",
        ] {
            assert!(!is_dispatch_name(name), "{name}");
            let headers = ClientHeaders::new([(name, "v")]);
            assert!(headers.dispatch_names().is_empty(), "{name}");
        }
        assert!(is_dispatch_name("x-dispatch-é"));
    }
}
