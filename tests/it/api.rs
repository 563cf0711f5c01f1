//! The real server on port 0, called with the envoy-types client exactly as
//! Envoy calls it.

use std::time::Duration;

use crate::common::*;
use envoy_types::pb::envoy::service::auth::v3::CheckRequest;
use jsonwebtoken::Algorithm;
use serde_json::json;

#[tokio::test]
async fn a_known_user_is_allowed_with_our_headers_and_forgeries_removed() {
    let app = spawn_app().await;
    let user = app.add_user("1001", "octocat").await;
    let auth = bearer(&token(&claims("1001")));
    let r = app
        .check(
            "/v1/function?x=1",
            &[
                ("authorization", &auth),
                ("x-dispatch-user", "mallory"),
                ("x-dispatch-org", "evil"),
                ("x-dispatch-user-id", "0"),
            ],
        )
        .await;
    assert_eq!(code(&r), OK);
    let set = upstream_headers(&r);
    assert_eq!(
        header(&set, "x-dispatch-user"),
        Some("octocat"),
        "login from the store, not the token"
    );
    assert_eq!(
        header(&set, "x-dispatch-user-id"),
        Some(user.id.to_string().as_str())
    );
    assert_eq!(header(&set, "x-dispatch-issuer"), Some("test"));
    assert_eq!(header(&set, "x-dispatch-request-id"), Some("req-42"));
    assert_eq!(
        removed(&r),
        ["authorization", "x-dispatch-org"],
        "never remove a header we set; the caller's token stays here"
    );
    let meta = r
        .dynamic_metadata
        .as_ref()
        .expect("metadata for access logs");
    let field = |k: &str| match &meta.fields[k].kind {
        Some(envoy_types::pb::google::protobuf::value::Kind::StringValue(s)) => s.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(field("login"), "octocat");
    assert_eq!(field("user_id"), user.id.to_string());
    // The decision's id (issue 14), as the decision line has it.
    assert_eq!(field("decision_id").len(), 21);
    // No more than the access log reads (issue 11): the rest is in headers.
    assert_eq!(meta.fields.len(), 3, "{:?}", meta.fields.keys());
}

#[tokio::test]
async fn the_token_may_come_from_the_configured_cookie() {
    let app = spawn_app().await;
    app.add_user("1001", "octocat").await;
    let cookie = format!("theme=dark; dispatch_token={}", token(&claims("1001")));
    let r = app.check("/", &[("cookie", &cookie)]).await;
    assert_eq!(code(&r), OK);
}

#[tokio::test]
async fn no_credential_is_a_401_challenge() {
    let app = spawn_app().await;
    let r = app.check("/v1/function", &[]).await;
    assert_eq!(code(&r), UNAUTHENTICATED);
    let d = denied(&r);
    assert_eq!(d.http, 401);
    assert_eq!(
        header(&d.headers, "www-authenticate"),
        Some(r#"Bearer realm="dispatch""#)
    );
    assert_eq!(header(&d.headers, "content-type"), Some("application/json"));
    assert_eq!(d.body["code"], 401);
    assert!(
        d.body["message"]
            .as_str()
            .unwrap()
            .contains("no credential")
    );
}

#[tokio::test]
async fn unknown_and_disabled_users_are_forbidden() {
    let app = spawn_app().await;
    let r = app
        .check("/", &[("authorization", &bearer(&token(&claims("404"))))])
        .await;
    assert_eq!(code(&r), PERMISSION_DENIED);
    let d = denied(&r);
    assert_eq!((d.http, d.body["code"].as_i64()), (403, Some(403)));
    assert!(
        d.body["message"]
            .as_str()
            .unwrap()
            .contains("not registered")
    );

    let user = app.add_user("7", "ghost").await;
    app.disable_user(&user).await;
    let r = app
        .check("/", &[("authorization", &bearer(&token(&claims("7"))))])
        .await;
    assert_eq!(code(&r), PERMISSION_DENIED);
    assert!(
        denied(&r).body["message"]
            .as_str()
            .unwrap()
            .contains("disabled")
    );
}

#[tokio::test]
async fn public_paths_pass_without_credential_but_lose_forged_headers() {
    let app = spawn_app().await;
    let r = app
        .check(
            "/healthz/live?probe=1",
            &[("x-dispatch-user", "mallory"), ("X-Dispatch-Admin", "1")],
        )
        .await;
    assert_eq!(code(&r), OK);
    let set = upstream_headers(&r);
    assert_eq!(
        header(&set, "x-dispatch-user"),
        None,
        "no identity on a public path"
    );
    assert_eq!(removed(&r), ["x-dispatch-admin", "x-dispatch-user"]);

    // Whole segments only, and no way around the prefix.
    for path in ["/healthz-admin", "/healthzz"] {
        assert_eq!(code(&app.check(path, &[]).await), UNAUTHENTICATED, "{path}");
    }
    for path in [
        "/healthz/../admin",
        "/healthz/%2e%2e/admin",
        "/healthz%2f..%2fadmin",
        "/healthz//x",
        "/healthz\\..\\admin",
    ] {
        let r = app.check(path, &[]).await;
        assert_eq!(code(&r), INVALID_ARGUMENT, "{path}");
        assert_eq!(denied(&r).http, 400);
    }
}

#[tokio::test]
async fn a_malformed_check_request_is_a_400_denial_not_an_error() {
    let app = spawn_app().await;
    let mut client = app.client().await;
    for request in [
        CheckRequest { attributes: None },
        CheckRequest {
            attributes: Some(Default::default()),
        },
    ] {
        let r = client
            .check(request)
            .await
            .expect("denial, not a transport error")
            .into_inner();
        assert_eq!(code(&r), INVALID_ARGUMENT);
        let d = denied(&r);
        assert_eq!(d.http, 400);
        assert!(
            d.body["message"].as_str().unwrap().contains("attributes"),
            "{}",
            d.body
        );
    }
}

#[tokio::test]
async fn a_database_fault_is_a_503_denial_never_an_allow() {
    let app = spawn_app().await;
    app.add_user("1001", "octocat").await;
    app.break_database().await;
    let r = app
        .check("/", &[("authorization", &bearer(&token(&claims("1001"))))])
        .await;
    assert_eq!(code(&r), UNAVAILABLE);
    let d = denied(&r);
    assert_eq!(d.http, 503);
    assert_eq!(header(&d.headers, "retry-after"), Some("5"));
    // The fault was not cached: once repaired, the user is allowed again.
    app.repair_database().await;
    let r = app
        .check("/", &[("authorization", &bearer(&token(&claims("1001"))))])
        .await;
    assert_eq!(code(&r), OK);
}

#[tokio::test]
async fn a_cache_hit_needs_neither_the_database_nor_a_signature_check() {
    // What is under test is where the second check is answered from, not
    // how fast the first is: a cold check on a busy CI machine gets 10 s.
    let app = spawn_app_with(Options {
        extra: "default_deadline_ms = 10000",
        ..Default::default()
    })
    .await;
    app.add_user("1001", "octocat").await;
    let auth = bearer(&token(&claims("1001")));
    let first = app.check("/", &[("authorization", &auth)]).await;
    assert_eq!(code(&first), OK, "the first check: {first:?}");
    // With the users table gone, only a request that touches the database fails.
    app.break_database().await;
    let hit = app.check("/", &[("authorization", &auth)]).await;
    assert_eq!(code(&hit), OK, "the cache hit: {hit:?}");
    let other = bearer(&token(&claims("2002")));
    let miss = app.check("/", &[("authorization", &other)]).await;
    assert_eq!(code(&miss), UNAVAILABLE, "the miss: {miss:?}");
}

#[tokio::test]
async fn store_changes_reach_the_server_within_the_user_ttl() {
    let app = spawn_app_with(Options {
        users_ttl_secs: 1,
        ..Default::default()
    })
    .await;
    let user = app.add_user("1001", "octocat").await;
    let auth = bearer(&token(&claims("1001")));
    assert_eq!(code(&app.check("/", &[("authorization", &auth)]).await), OK);
    app.disable_user(&user).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        code(&app.check("/", &[("authorization", &auth)]).await),
        PERMISSION_DENIED
    );
}

#[tokio::test]
async fn bad_credentials_get_a_401_naming_the_problem() {
    let app = spawn_app().await;
    app.add_user("1001", "octocat").await;
    let now = now();
    let valid = token(&claims("1001"));
    let with = |k: &str, v: serde_json::Value| {
        let mut c = claims("1001");
        c[k] = v;
        token(&c)
    };
    let hs256_with_public_key = sign(Algorithm::HS256, "rsa.pub.pem", Some("k1"), &claims("1001"));
    let none = {
        use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
        format!(
            "{}.{}.",
            B64.encode(r#"{"alg":"none"}"#),
            B64.encode(claims("1001").to_string())
        )
    };
    let huge = format!("{}.{}.sig", "a".repeat(32 * 1024), "b".repeat(32 * 1024));
    let cases: Vec<(&str, String, &str)> = vec![
        ("empty bearer", "Bearer ".into(), "empty bearer token"),
        (
            "wrong scheme",
            "Basic dXNlcjpwYXNz".into(),
            "unsupported authorization scheme",
        ),
        (
            "two Authorization headers",
            format!("Bearer {valid}, Bearer {valid}"),
            "more than one Authorization",
        ),
        (
            "truncated",
            bearer(&valid[..valid.rfind('.').unwrap()]),
            "not a JWT",
        ),
        (
            "truncated signature",
            bearer(&valid[..valid.len() - 3]),
            "signature",
        ),
        (
            "not base64",
            bearer("e30!.e30.sig"),
            "characters a token cannot have",
        ),
        (
            "header not base64 json",
            bearer("aGVsbG8.e30.c2ln"),
            "header is not base64url",
        ),
        ("alg none", bearer(&none), "alg \\\"none\\\""),
        (
            "hs256 with the public key",
            bearer(&hs256_with_public_key),
            "pinned algorithm RS256",
        ),
        (
            "unknown kid",
            bearer(&sign(
                Algorithm::RS256,
                "rsa.pem",
                Some("k9"),
                &claims("1001"),
            )),
            "kid",
        ),
        (
            "other key",
            bearer(&sign(
                Algorithm::RS256,
                "rsa-other.pem",
                Some("k1"),
                &claims("1001"),
            )),
            "signature is invalid",
        ),
        (
            "wrong iss",
            bearer(&with("iss", json!("https://evil.test"))),
            "issuer is not trusted",
        ),
        (
            "wrong aud",
            bearer(&with("aud", json!("other"))),
            "audience",
        ),
        ("expired", bearer(&with("exp", json!(now - 60))), "expired"),
        (
            "not yet valid",
            bearer(&with("nbf", json!(now + 120))),
            "not valid yet",
        ),
        ("64 KiB token", bearer(&huge), "longer than 8192 bytes"),
    ];
    for (name, authorization, want) in cases {
        let r = app.check("/", &[("authorization", &authorization)]).await;
        let d = denied(&r);
        let www = header(&d.headers, "www-authenticate").unwrap_or_default();
        // RFC 6750 §3.1: no bearer token, no error code; one that is there
        // but ambiguous or malformed, invalid_request (400); one read and
        // found wrong, invalid_token (401); each with a description.
        match name {
            "wrong scheme" => {
                assert_eq!((code(&r), d.http), (UNAUTHENTICATED, 401), "{name}");
                assert_eq!(www, r#"Bearer realm="dispatch""#, "{name}");
            }
            "empty bearer" | "two Authorization headers" | "not base64" | "64 KiB token" => {
                assert_eq!((code(&r), d.http), (INVALID_ARGUMENT, 400), "{name}");
                assert!(
                    www.starts_with(
                        r#"Bearer realm="dispatch", error="invalid_request", error_description=""#
                    ),
                    "{name}: {www}"
                );
            }
            _ => {
                assert_eq!((code(&r), d.http), (UNAUTHENTICATED, 401), "{name}");
                assert!(
                    www.starts_with(
                        r#"Bearer realm="dispatch", error="invalid_token", error_description=""#
                    ),
                    "{name}: {www}"
                );
            }
        }
        let body = d.body.to_string();
        assert!(body.contains(want), "{name}: {body}");
        assert!(!body.contains(&valid), "{name}: the body echoes the token");
    }
}

/// Issue 16, item 6: health and reflection on both gRPC listeners, and
/// reflection lists (and describes) the services each one serves, as
/// `grpcurl list` / `grpcurl describe` ask.
#[tokio::test]
async fn health_and_reflection_are_served_on_every_grpc_listener() {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    let app = spawn_app().await;
    let listeners = [
        (app.addr, "envoy.service.auth.v3.Authorization"),
        (app.admin_addr.unwrap(), "dispatch.authz.admin.v1.Admin"),
    ];
    for (addr, service) in listeners {
        let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut health = HealthClient::new(channel.clone());
        for name in ["", service] {
            let status = health
                .check(HealthCheckRequest {
                    service: name.into(),
                })
                .await
                .unwrap()
                .into_inner()
                .status;
            assert_eq!(status, ServingStatus::Serving as i32, "{addr} {name:?}");
        }
        let names = reflect(channel.clone(), ReflectAsk::List).await;
        for want in ["grpc.health.v1.Health", service] {
            assert!(names.contains(&want.to_owned()), "{addr}: {names:?}");
        }
        // `describe`: the file defining the service, with its imports.
        let files = reflect(channel, ReflectAsk::Symbol(service)).await;
        assert!(!files.is_empty(), "{service} not described");
    }
}

enum ReflectAsk {
    List,
    Symbol(&'static str),
}

/// Service names, or the names of the files describing a symbol.
async fn reflect(channel: tonic::transport::Channel, ask: ReflectAsk) -> Vec<String> {
    use prost::Message;
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let message_request = match ask {
        ReflectAsk::List => MessageRequest::ListServices(String::new()),
        ReflectAsk::Symbol(symbol) => MessageRequest::FileContainingSymbol(symbol.into()),
    };
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(message_request),
    };
    let mut stream = ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    match stream.message().await.unwrap().unwrap().message_response {
        Some(MessageResponse::ListServicesResponse(list)) => {
            list.service.into_iter().map(|s| s.name).collect()
        }
        Some(MessageResponse::FileDescriptorResponse(files)) => files
            .file_descriptor_proto
            .iter()
            .map(|f| {
                prost_types::FileDescriptorProto::decode(&f[..])
                    .unwrap()
                    .name()
                    .to_owned()
            })
            .collect(),
        other => panic!("unexpected answer {other:?}"),
    }
}

#[tokio::test]
async fn shutdown_finishes_and_closes_the_port() {
    let mut app = spawn_app().await;
    let addr = app.addr;
    app.stop().await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "still accepting"
    );
}

#[tokio::test]
async fn the_server_can_listen_on_a_unix_socket() {
    use dispatch_authz::{
        config::{Overrides, Settings},
        startup::App,
    };
    use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
    use hyper_util::rt::TokioIo;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, config_toml(dir.path(), &Options::default())).unwrap();
    let socket = dir.path().join("authz.sock");
    let overrides = Overrides {
        listen: Some(format!("unix:{}", socket.display())),
        ..Default::default()
    };
    let config = Settings::load(Some(&path), &overrides)
        .unwrap()
        .compile()
        .unwrap();
    let app = App::build(config).await.unwrap();
    assert_eq!(app.local_addr(), None);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));

    let connect_to = socket.clone();
    let channel = tonic::transport::Endpoint::from_static("http://unix.socket")
        .connect_with_connector(tower::service_fn(move |_| {
            let path = connect_to.clone();
            async move {
                Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(path).await?))
            }
        }))
        .await
        .unwrap();
    let r = AuthorizationClient::new(channel)
        .check(check_request("GET", "/healthz", &[]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(&r), OK);

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    assert!(!socket.exists(), "socket file left behind");
}

/// Regression (issue 17, found by the `check` fuzzer): a header name with a
/// multi-byte character at the 11th byte panicked the check, a transport
/// error that `failure_mode_allow` would turn into an allow. It is answered.
#[tokio::test]
async fn a_header_name_with_multibyte_characters_is_answered_not_dropped() {
    let app = spawn_app().await;
    app.add_user("1001", "octocat").await;
    let auth = bearer(&token(&claims("1001")));
    for name in ["x-dispatch\u{e9}", "x-dispatc\u{e9}-user"] {
        let r = app
            .check(
                "/v1/function/f",
                &[("authorization", auth.as_str()), (name, "v")],
            )
            .await;
        assert!(r.status.is_some(), "{name}: no answer");
    }
}
