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
    let cases: [(&[(&str, &str)], &str); 5] = [
        (&[("Authorization", "Bearer abc.def.ghi")], "abc.def.ghi"),
        (&[("authorization", "bearer abc")], "abc"),
        (&[("authorization", "BEARER  abc ")], "abc"),
        (&[("cookie", "a=1; session=tok.en; b=2")], "tok.en"),
        // Authorization wins over the cookie.
        (
            &[("cookie", "session=c"), ("authorization", "Bearer h")],
            "h",
        ),
    ];
    for (headers, token) in cases {
        assert_eq!(token_of(headers), Ok(token.into()), "{headers:?}");
    }
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
