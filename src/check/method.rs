//! The method the upstream will execute, which is what we authorize.
//!
//! Many frameworks let a request name another method than its own: Rails,
//! Laravel, Symfony, Express's `method-override`, ASP.NET and Spring honour
//! `X-HTTP-Method-Override`, `X-HTTP-Method` or `X-Method-Override`
//! headers, or a `_method` query parameter, on a POST. Authorizing the POST
//! as `create` while the framework runs a DELETE is a way around the roles.
//! So by default a request that carries any of them is refused; configured
//! to honour them, we authorize the overriding method instead.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::request::RequestView;

/// Header names frameworks read an overriding method from (`-` spelling;
/// `_` spellings count as these).
pub const OVERRIDE_HEADERS: &[&str] = &[
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// The query parameter (Rails, Laravel, Symfony, Express) of the same use.
pub const OVERRIDE_PARAMETER: &str = "_method";

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MethodOverride {
    /// A request naming another method is refused (400).
    #[default]
    Refuse,
    /// The named method is authorized instead of the request's own.
    Honour,
}

#[derive(Debug, Clone, Copy, Error, PartialEq, Eq)]
pub enum OverrideError {
    #[error(
        "method override (X-HTTP-Method-Override, X-HTTP-Method, X-Method-Override, _method) is not accepted"
    )]
    Refused,
    #[error("method override is sent more than once, or with different methods")]
    Ambiguous,
    #[error("method override does not name an HTTP method")]
    Invalid,
}

impl OverrideError {
    pub fn code(self) -> &'static str {
        match self {
            Self::Refused => "method_override",
            Self::Ambiguous => "ambiguous_method_override",
            Self::Invalid => "invalid_method_override",
        }
    }
}

impl MethodOverride {
    /// The method to authorize.
    pub fn effective<'r>(self, request: &RequestView<'r>) -> Result<Cow<'r, str>, OverrideError> {
        let mut named = override_values(request);
        let Some(first) = named.next() else {
            return Ok(Cow::Borrowed(request.method));
        };
        if self == Self::Refuse {
            return Err(OverrideError::Refused);
        }
        let method = first.trim();
        // Envoy joins a repeated header with ','; several spellings of the
        // override may name different methods: both are ambiguous.
        if method.contains(',') || named.any(|other| !other.trim().eq_ignore_ascii_case(method)) {
            return Err(OverrideError::Ambiguous);
        }
        if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(OverrideError::Invalid);
        }
        Ok(Cow::Owned(method.to_ascii_uppercase()))
    }
}

/// Every overriding method the request names, in headers and in the query.
fn override_values<'s>(request: &'s RequestView<'_>) -> impl Iterator<Item = Cow<'s, str>> {
    let headers = OVERRIDE_HEADERS
        .iter()
        .flat_map(|name| request.headers.get_all(name))
        .map(Cow::Borrowed);
    let query = request
        .path
        .split_once('?')
        .map(|(_, q)| q.split('#').next().unwrap_or_default())
        .unwrap_or_default();
    let params = query.split('&').filter_map(|pair| {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = percent_encoding::percent_decode_str(name).decode_utf8_lossy();
        (name == OVERRIDE_PARAMETER)
            .then(|| percent_encoding::percent_decode_str(value).decode_utf8_lossy())
    });
    headers.chain(params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::request::ClientHeaders;

    fn view<'a>(method: &'a str, path: &'a str, headers: &[(&'a str, &'a str)]) -> RequestView<'a> {
        RequestView {
            method,
            path,
            headers: ClientHeaders::new(headers.iter().copied()),
            ..Default::default()
        }
    }

    /// The reason codes decision lines carry, one per error (found
    /// unchecked by cargo-mutants).
    #[test]
    fn each_override_error_has_its_own_reason_code() {
        let codes = [
            OverrideError::Refused,
            OverrideError::Ambiguous,
            OverrideError::Invalid,
        ]
        .map(OverrideError::code);
        assert_eq!(
            codes,
            [
                "method_override",
                "ambiguous_method_override",
                "invalid_method_override"
            ]
        );
    }

    /// Regression (issue 9, item 11): a POST that names DELETE is not
    /// authorized as `create`.
    #[test]
    fn overrides_are_refused_by_default() {
        let refuse = MethodOverride::default();
        for (path, headers) in [
            ("/v1/function/f", vec![("X-HTTP-Method-Override", "DELETE")]),
            ("/v1/function/f", vec![("x_http_method_override", "DELETE")]),
            ("/v1/function/f", vec![("x-http-method", "DELETE")]),
            ("/v1/function/f", vec![("x-method-override", "DELETE")]),
            ("/v1/function/f?_method=DELETE", vec![]),
            ("/v1/function/f?a=1&%5Fmethod=delete", vec![]),
        ] {
            let r = view("POST", path, &headers);
            assert_eq!(
                refuse.effective(&r),
                Err(OverrideError::Refused),
                "{path} {headers:?}"
            );
        }
        let plain = view("POST", "/v1/function/f?method=x", &[]);
        assert_eq!(refuse.effective(&plain).unwrap(), "POST");
    }

    #[test]
    fn honoured_overrides_are_what_is_authorized() {
        let honour = MethodOverride::Honour;
        let r = view("POST", "/f", &[("x-http-method-override", "delete")]);
        assert_eq!(honour.effective(&r).unwrap(), "DELETE");
        let r = view("POST", "/f?_method=PUT", &[]);
        assert_eq!(honour.effective(&r).unwrap(), "PUT");
        let r = view("POST", "/f?_method=PUT", &[("x-http-method", "DELETE")]);
        assert_eq!(honour.effective(&r), Err(OverrideError::Ambiguous));
        let r = view("POST", "/f", &[("x-http-method", "GET, DELETE")]);
        assert_eq!(honour.effective(&r), Err(OverrideError::Ambiguous));
        let r = view("POST", "/f", &[("x-http-method", "")]);
        assert_eq!(honour.effective(&r), Err(OverrideError::Invalid));
        let r = view("GET", "/f", &[]);
        assert_eq!(honour.effective(&r).unwrap(), "GET");
    }
}
