use super::*;

fn parts(method: &str, uri: &str, headers: &[(&str, &str)]) -> Parts {
    let mut builder = http::Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(()).unwrap().into_parts().0
}

/// `(method, host, path)` as read, or the message.
fn read(style: Style, headers: &[(&str, &str)]) -> Result<(String, String, String), String> {
    let parts = parts("GET", "/_auth?x=1", headers);
    view(style, &parts).map(|v| (v.method.to_owned(), v.host.to_owned(), v.path.to_owned()))
}

fn ok(method: &str, host: &str, path: &str) -> Result<(String, String, String), String> {
    Ok((method.into(), host.into(), path.into()))
}

#[test]
fn each_proxy_is_read_where_it_puts_the_original_request() {
    let nginx = [
        ("x-original-method", "DELETE"),
        ("x-original-uri", "/v1/function/f?a=1"),
        ("host", "authz:50053"),
    ];
    assert_eq!(
        read(Style::Nginx, &nginx),
        ok("DELETE", "authz:50053", "/v1/function/f?a=1")
    );
    let mut with_host = nginx.to_vec();
    with_host.push(("x-original-host", "api.example.com"));
    assert_eq!(
        read(Style::Nginx, &with_host),
        ok("DELETE", "api.example.com", "/v1/function/f?a=1")
    );
    let forwarded = [
        ("x-forwarded-method", "POST"),
        ("x-forwarded-uri", "/v1/function"),
        ("x-forwarded-host", "api.example.com"),
        ("x-forwarded-proto", "https"),
    ];
    assert_eq!(
        read(Style::Forwarded, &forwarded),
        ok("POST", "api.example.com", "/v1/function")
    );
    // Envoy: the check request's own method and path (query included).
    assert_eq!(
        read(Style::Envoy, &[("host", "api.example.com")]),
        ok("GET", "api.example.com", "/_auth?x=1")
    );
}

/// Issue 13: the style is configured, never chosen by the headers; a
/// request carrying another style's headers, or lacking its own, is refused.
#[test]
fn missing_ambiguous_and_mixed_forwarding_headers_are_refused() {
    type Case<'a> = (Style, &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        (
            Style::Nginx,
            &[("x-original-uri", "/v1/f")],
            "X-Original-Method is missing",
        ),
        (
            Style::Nginx,
            &[("x-original-method", "GET")],
            "X-Original-URI is missing",
        ),
        (
            Style::Forwarded,
            &[("x-forwarded-method", "GET"), ("x-forwarded-uri", "/v1/f")],
            "X-Forwarded-Host is missing",
        ),
        // Caddy and Traefik pass a client's X-Original-URI through.
        (
            Style::Forwarded,
            &[
                ("x-forwarded-method", "GET"),
                ("x-forwarded-uri", "/public"),
                ("x-forwarded-host", "h"),
                ("x-original-uri", "/v1/secret"),
            ],
            "X-Original-URI is not read here",
        ),
        (
            Style::Nginx,
            &[
                ("x-original-method", "GET"),
                ("x-original-uri", "/v1/f"),
                ("x-forwarded-uri", "/other"),
            ],
            "X-Forwarded-Uri is not read here",
        ),
        (
            Style::Envoy,
            &[("x-original-uri", "/other")],
            "X-Original-URI is not read here",
        ),
        (
            Style::Envoy,
            &[("x_forwarded_method", "DELETE")],
            "X-Forwarded-Method is not read here",
        ),
        // Two values, or a second under the `_` spelling: which is meant?
        (
            Style::Nginx,
            &[
                ("x-original-method", "GET"),
                ("x-original-uri", "/v1/f"),
                ("x_original_uri", "/v1/g"),
            ],
            "X-Original-URI is sent more than once",
        ),
        (
            Style::Nginx,
            &[("x-original-method", "GET"), ("x-original-uri", "/v1/f /x")],
            "X-Original-URI is empty or not visible ASCII",
        ),
        (
            Style::Nginx,
            &[("x-original-method", "GET"), ("x-original-uri", "*")],
            "not a path",
        ),
        (
            Style::Nginx,
            &[("x-original-method", "G(T"), ("x-original-uri", "/")],
            "not an HTTP method",
        ),
        (
            Style::Forwarded,
            &[
                ("x-forwarded-method", "GET"),
                ("x-forwarded-uri", "http://evil/v1/f"),
                ("x-forwarded-host", "h"),
            ],
            "not a path",
        ),
    ];
    for (style, headers, want) in cases {
        match read(*style, headers) {
            Err(message) => assert!(message.contains(want), "{style:?} {headers:?}: {message}"),
            Ok(read) => panic!("{style:?} {headers:?}: read as {read:?}, want {want:?}"),
        }
    }
}

#[test]
fn request_ids_come_only_from_proxies_that_set_them() {
    let id = |style, extra: &[(&str, &str)]| {
        let mut headers = vec![
            ("x-original-method", "GET"),
            ("x-original-uri", "/"),
            ("x-forwarded-host", "h"),
            ("x-request-id", "client-chosen"),
        ];
        if style == Style::Forwarded {
            headers = vec![
                ("x-forwarded-method", "GET"),
                ("x-forwarded-uri", "/"),
                ("x-forwarded-host", "h"),
                ("x-request-id", "client-chosen"),
            ];
        }
        headers.extend_from_slice(extra);
        let parts = parts("GET", "/", &headers);
        let view = view(style, &parts).unwrap();
        (
            view.request_id.map(|id| id.as_str().to_owned()),
            view.removals,
        )
    };
    assert_eq!(
        id(Style::Nginx, &[]),
        (Some("client-chosen".into()), Removals::Ignored)
    );
    let (generated, removals) = id(Style::Forwarded, &[]);
    assert_ne!(generated.as_deref(), Some("client-chosen"));
    assert_eq!(generated.unwrap().len(), 36);
    assert_eq!(removals, Removals::Ignored);
    let parts = parts("GET", "/", &[("x-request-id", "envoy-made")]);
    let view = view(Style::Envoy, &parts).unwrap();
    assert_eq!(view.request_id.unwrap().as_str(), "envoy-made");
    assert_eq!(view.removals, Removals::Honoured);
}

/// Envoy's ext_authz timeout arrives as `x-envoy-expected-rq-timeout-ms`:
/// the check answers within four fifths of it, as with `grpc-timeout`.
#[test]
fn envoy_states_its_timeout() {
    let budget = |headers: &[(&str, &str)]| {
        let parts = parts("GET", "/v1/f", headers);
        view(Style::Envoy, &parts).map(|v| v.budget)
    };
    assert_eq!(
        budget(&[("x-envoy-expected-rq-timeout-ms", "250")]),
        Ok(Some(Duration::from_millis(200)))
    );
    assert_eq!(budget(&[]), Ok(None));
    assert!(budget(&[("x-envoy-expected-rq-timeout-ms", "soon")]).is_err());
    // Only Envoy's style reads it.
    let nginx = parts(
        "GET",
        "/",
        &[
            ("x-original-method", "GET"),
            ("x-original-uri", "/"),
            ("x-envoy-expected-rq-timeout-ms", "250"),
        ],
    );
    assert_eq!(view(Style::Nginx, &nginx).unwrap().budget, None);
}
