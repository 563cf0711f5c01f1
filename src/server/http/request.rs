//! A proxy's HTTP check request read into a [`RequestView`]. Where the
//! original method, URI and host are depends on the proxy, and is fixed by
//! configuration (`http.proxy`), never guessed from the headers present:
//! Caddy and Traefik pass a client's own `X-Original-URI` through to us, so a
//! listener that preferred it behind them would let the client choose the
//! path it is authorized for.

use std::{borrow::Cow, time::Duration};

use http::request::Parts;

use crate::{
    check::{
        ClientHeaders, Removals, RequestView,
        request::{budget_within, same_name},
    },
    domain::RequestId,
};

/// How the proxy in front hands the original request over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Envoy's `http_service`: the check request carries the original
    /// method and path as its own, and Envoy removes the headers we name.
    Envoy,
    /// nginx `auth_request`: `X-Original-Method`, `X-Original-URI`, and
    /// `X-Original-Host` (else `Host`), set by the proxy's configuration.
    Nginx,
    /// Caddy `forward_auth`, Traefik `forwardAuth`: `X-Forwarded-Method`,
    /// `-Uri` and `-Host`, set by the proxy itself.
    Forwarded,
}

const ORIGINAL: [&str; 2] = ["x-original-method", "x-original-uri"];
const FORWARDED: [&str; 2] = ["x-forwarded-method", "x-forwarded-uri"];

/// Why a check request cannot be read: the message names the header.
pub type Malformed = String;

/// The original request as the pipeline sees it.
pub fn view(style: Style, parts: &Parts) -> Result<RequestView<'_>, Malformed> {
    let (method, path, host) = original(style, parts)?;
    if http::Method::from_bytes(method.as_bytes()).is_err() {
        return Err(format!(
            "the original method {method:?} is not an HTTP method"
        ));
    }
    if !path.starts_with('/') {
        return Err("the original URI is not a path (it must start with /)".into());
    }
    let headers = ClientHeaders::new(parts.headers.iter().map(|(name, value)| {
        let value = match value.to_str() {
            Ok(text) => Cow::Borrowed(text),
            Err(_) => String::from_utf8_lossy(value.as_bytes()),
        };
        (name.as_str(), value)
    }));
    Ok(RequestView {
        method,
        host,
        path,
        request_id: request_id(style, &headers),
        budget: budget(style, parts)?,
        headers,
        removals: match style {
            Style::Envoy => Removals::Honoured,
            Style::Nginx | Style::Forwarded => Removals::Ignored,
        },
        // The proxy's trace context is on this very request: read from the
        // headers.
        trace: None,
    })
}

/// The original method, path and host, where `style` puts them.
fn original(style: Style, parts: &Parts) -> Result<(&str, &str, &str), Malformed> {
    match style {
        Style::Envoy => {
            refuse_any(parts, &ORIGINAL, "the check request's own method and path")?;
            refuse_any(parts, &FORWARDED, "the check request's own method and path")?;
            let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
            let host = match one(parts, "host")? {
                Some(host) => host,
                None => parts.uri.authority().map_or("", |a| a.as_str()),
            };
            Ok((parts.method.as_str(), path, host))
        }
        Style::Nginx => {
            refuse_any(parts, &FORWARDED, "X-Original-Method and X-Original-URI")?;
            let host = match one(parts, "x-original-host")? {
                Some(host) => host,
                None => one(parts, "host")?.unwrap_or_default(),
            };
            Ok((
                required(parts, "x-original-method")?,
                required(parts, "x-original-uri")?,
                host,
            ))
        }
        Style::Forwarded => {
            refuse_any(parts, &ORIGINAL, "X-Forwarded-Method and X-Forwarded-Uri")?;
            Ok((
                required(parts, "x-forwarded-method")?,
                required(parts, "x-forwarded-uri")?,
                required(parts, "x-forwarded-host")?,
            ))
        }
    }
}

fn request_id(style: Style, headers: &ClientHeaders<'_>) -> Option<RequestId> {
    match style {
        // Envoy regenerates a client's x-request-id (`envoy/envoy-http.yaml`);
        // the nginx example sets it from `$request_id`.
        Style::Envoy | Style::Nginx => headers
            .get_all("x-request-id")
            .next()
            .and_then(RequestId::parse),
        // Caddy and Traefik pass the client's own: not an id to audit by.
        Style::Forwarded => Some(RequestId::generate()),
    }
}

/// Envoy states its ext_authz timeout on the check request; the others
/// state none (the configured default applies).
fn budget(style: Style, parts: &Parts) -> Result<Option<Duration>, Malformed> {
    if style != Style::Envoy {
        return Ok(None);
    }
    let Some(ms) = one(parts, "x-envoy-expected-rq-timeout-ms")? else {
        return Ok(None);
    };
    ms.parse::<u32>()
        .map(|ms| Some(budget_within(Duration::from_millis(ms.into()))))
        .map_err(|_| "X-Envoy-Expected-Rq-Timeout-Ms is not a number".to_owned())
}

/// The one value of `name` (`_` read as `-`): two are ambiguous, and a
/// value must be visible ASCII.
fn one<'p>(parts: &'p Parts, name: &str) -> Result<Option<&'p str>, Malformed> {
    let mut values = parts
        .headers
        .iter()
        .filter(|(sent, _)| same_name(sent.as_str(), name))
        .map(|(_, value)| value);
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(format!("{} is sent more than once", display(name)));
    }
    match value.to_str() {
        Ok(text) if !text.is_empty() && text.bytes().all(|b| b.is_ascii_graphic()) => {
            Ok(Some(text))
        }
        _ => Err(format!("{} is empty or not visible ASCII", display(name))),
    }
}

fn required<'p>(parts: &'p Parts, name: &str) -> Result<&'p str, Malformed> {
    one(parts, name)?.ok_or_else(|| {
        format!(
            "{} is missing: only the configured proxy may call this listener, and it always sets it",
            display(name)
        )
    })
}

/// Another proxy's way of naming the original request: a request carrying
/// it is refused, whichever way this listener reads.
fn refuse_any(parts: &Parts, names: &[&str], ours: &str) -> Result<(), Malformed> {
    match names
        .iter()
        .find(|name| parts.headers.keys().any(|k| same_name(k.as_str(), name)))
    {
        None => Ok(()),
        Some(name) => Err(format!(
            "{} is not read here (this listener reads {ours}); a request carrying both is refused",
            display(name)
        )),
    }
}

/// A header's usual spelling, for messages.
fn display(name: &str) -> &str {
    match name {
        "x-original-method" => "X-Original-Method",
        "x-original-uri" => "X-Original-URI",
        "x-original-host" => "X-Original-Host",
        "x-forwarded-method" => "X-Forwarded-Method",
        "x-forwarded-uri" => "X-Forwarded-Uri",
        "x-forwarded-host" => "X-Forwarded-Host",
        "host" => "Host",
        other => other,
    }
}

#[cfg(test)]
mod tests;
