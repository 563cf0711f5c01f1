//! The HTTP check listener on the wire (issue 13), without a proxy: the
//! same decisions as the gRPC Check, its own way of refusing what it
//! cannot read, and a 503 denial when the database is down.

use std::collections::BTreeMap;

use reqwest::Method;
use serde_json::Value;

use crate::common::*;

/// What a front end answered, reduced to what a proxy acts on.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    status: u16,
    /// Headers for the upstream (on an allow) or the client (on a denial),
    /// but the request id.
    headers: BTreeMap<String, String>,
    /// Names the upstream must not see (sorted).
    removed: Vec<String>,
    body: Option<String>,
}

async fn world(proxy: &'static str) -> TestApp {
    let app = spawn_app_with(Options {
        authorization: String::new(),
        http_proxy: Some(proxy),
        ..Default::default()
    })
    .await;
    app.acme_with_alice().await;
    app
}

async fn over_grpc(app: &TestApp, method: &str, path: &str, headers: &[(&str, &str)]) -> Outcome {
    let response = app.check_on(method, "api.test", path, headers).await;
    if code(&response) == OK {
        let mut removed = removed(&response);
        removed.sort();
        return Outcome {
            status: 200,
            headers: upstream_headers(&response)
                .into_iter()
                .filter(|(k, _)| k != "x-dispatch-request-id")
                .collect(),
            removed,
            body: None,
        };
    }
    let denied = denied(&response);
    Outcome {
        status: denied.http as u16,
        headers: denied
            .headers
            .into_iter()
            .filter(|(k, _)| k != "x-dispatch-decision-id")
            .collect(),
        removed: Vec::new(),
        body: Some(denied.body.to_string()),
    }
}

/// The HTTP listener in Envoy's way: the check request is the original.
async fn over_http(app: &TestApp, method: &str, path: &str, headers: &[(&str, &str)]) -> Outcome {
    let url = format!("http://{}{path}", app.http_addr.unwrap());
    let mut request = reqwest::Client::new()
        .request(Method::from_bytes(method.as_bytes()).unwrap(), url)
        .header("host", "api.test");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let mut removed: Vec<String> = response
        .headers()
        .get("x-envoy-auth-headers-to-remove")
        .map(|v| v.to_str().unwrap().split(',').map(str::to_owned).collect())
        .unwrap_or_default();
    removed.sort();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
        .filter(|(k, _)| {
            // Each answer's decision id is its own.
            let ours = k.starts_with("x-dispatch-")
                && k != "x-dispatch-request-id"
                && k != "x-dispatch-decision-id";
            let denial = [
                "content-type",
                "cache-control",
                "www-authenticate",
                "retry-after",
            ];
            ours || k == "cookie" || (status != 200 && denial.contains(&k.as_str()))
        })
        .collect();
    let body = response.text().await.unwrap();
    Outcome {
        status,
        headers,
        removed,
        body: (status != 200).then_some(body),
    }
}

/// Issue 13: "the same decisions — same pipeline, same headers, same
/// denials". Each row through gRPC and through HTTP, compared whole.
#[tokio::test]
async fn the_http_listener_answers_as_the_grpc_check_does() {
    let app = world("envoy").await;
    let alice = bearer(&token(&claims("alice")));
    let bob = bearer(&token(&claims("bob")));
    type Row<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>, u16);
    let rows: &[Row] = &[
        (
            "GET",
            "/v1/function/f?x=1",
            vec![("authorization", &alice), ("x-dispatch-org", "acme")],
            200,
        ),
        (
            "POST",
            "/v1/function",
            vec![
                ("authorization", &alice),
                ("x-dispatch-org", "acme"),
                ("x-dispatch-user", "mallory"),
                ("x-dispatch-admin", "1"),
                ("cookie", "a=1; dispatch_token=t; b=2"),
            ],
            200,
        ),
        ("GET", "/healthz", vec![("x-dispatch-user", "mallory")], 200),
        ("GET", "/v1/function", vec![("x-dispatch-org", "acme")], 401),
        (
            "GET",
            "/v1/function",
            vec![("authorization", "Bearer x.y.z")],
            401,
        ),
        (
            "GET",
            "/v1/function",
            vec![("authorization", "Bearer a, Bearer b")],
            400,
        ),
        (
            "GET",
            "/v1/function",
            vec![("authorization", &bob), ("x-dispatch-org", "acme")],
            403,
        ),
        (
            "GET",
            "/v1/function",
            vec![("authorization", &alice), ("x-dispatch-org", "globex")],
            403,
        ),
        (
            "GET",
            "/v1/secret",
            vec![("authorization", &alice), ("x-dispatch-org", "acme")],
            403,
        ),
        (
            "GET",
            "/v1/function/..%2fsecret",
            vec![("authorization", &alice), ("x-dispatch-org", "acme")],
            400,
        ),
        (
            "POST",
            "/v1/function/f",
            vec![
                ("authorization", &alice),
                ("x-dispatch-org", "acme"),
                ("x-http-method-override", "DELETE"),
            ],
            400,
        ),
    ];
    for (method, path, headers, status) in rows {
        // Decision ids differ from answer to answer: compared apart.
        let grpc = over_grpc(&app, method, path, headers).await;
        let http = over_http(&app, method, path, headers).await;
        assert_eq!(
            grpc.status, *status,
            "{method} {path} {headers:?}: {grpc:?}"
        );
        assert_eq!(http, grpc, "{method} {path} {headers:?}");
    }
}

/// nginx, Caddy and Traefik read the original request from headers that
/// only they may set: without them, or with another proxy's, a 400 that
/// names the header; with a client's `x-dispatch-*` header (which they
/// cannot remove on our word), a 403.
#[tokio::test]
async fn proxies_headers_are_required_and_forgeries_refused() {
    let app = world("nginx").await;
    let url = format!("http://{}/_dispatch_authz", app.http_addr.unwrap());
    let alice = bearer(&token(&claims("alice")));
    let send = |headers: Vec<(&'static str, String)>| {
        let mut request = reqwest::Client::new().get(&url);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let body: Value =
                serde_json::from_str(&response.text().await.unwrap()).unwrap_or_default();
            (status, headers, body)
        }
    };
    let original = |uri: &str| {
        vec![
            ("x-original-method", "GET".to_owned()),
            ("x-original-uri", uri.to_owned()),
            ("authorization", alice.clone()),
            ("x-dispatch-org", "acme".to_owned()),
        ]
    };

    let (status, headers, body) = send(original("/v1/function/f")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["x-dispatch-user"], "alice");
    assert_eq!(headers["x-dispatch-org"], "acme");
    assert!(headers.get("x-envoy-auth-headers-to-remove").is_none());

    let mut no_uri = original("/v1/function/f");
    no_uri.remove(1);
    let (status, _, body) = send(no_uri).await;
    assert_eq!(status, 400);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("X-Original-URI is missing"),
        "{body}"
    );

    let mut mixed = original("/healthz");
    mixed.push(("x-forwarded-uri", "/v1/secret".to_owned()));
    let (status, _, body) = send(mixed).await;
    assert_eq!(status, 400);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("X-Forwarded-Uri is not read here"),
        "{body}"
    );

    for forged in ["x-dispatch-user", "x-dispatch-admin", "x_dispatch_org"] {
        let mut headers = original("/v1/function/f");
        headers.push((forged, "mallory".to_owned()));
        let (status, _, body) = send(headers).await;
        assert_eq!(status, 403, "{forged}: {body}");
        assert!(body["message"].as_str().unwrap().contains(forged), "{body}");
    }
    // Dispatch's pass-through inputs are the client's to send.
    let mut input = original("/v1/function/f");
    input.push(("x-dispatch-blocking", "true".to_owned()));
    assert_eq!(send(input).await.0, 200);
}

/// The database down is a 503 denial over HTTP too, with `Retry-After`.
#[tokio::test]
async fn a_database_outage_is_a_503_denial_over_http() {
    let app = world("caddy").await;
    app.add_user("carol", "carol").await;
    app.break_database().await;
    let response = reqwest::Client::new()
        .get(format!("http://{}/check", app.http_addr.unwrap()))
        .header("x-forwarded-method", "GET")
        .header("x-forwarded-uri", "/v1/function")
        .header("x-forwarded-host", "api.test")
        .header("authorization", bearer(&token(&claims("carol"))))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "5");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], 503);
    app.repair_database().await;
}

#[tokio::test]
async fn the_http_listener_is_off_unless_configured() {
    let app = spawn_app().await;
    assert_eq!(app.http_addr, None);
}

/// nginx reaches its auth service over a Unix socket as readily as over TCP.
#[tokio::test]
async fn the_http_listener_can_listen_on_a_unix_socket() {
    use dispatch_authz::{
        config::{Overrides, Settings},
        startup::App,
    };
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("http.sock");
    let options = Options {
        http_proxy: Some("nginx"),
        ..Default::default()
    };
    let toml = config_toml(dir.path(), &options).replace(
        "[http]\nlisten = \"127.0.0.1:0\"",
        &format!("[http]\nlisten = \"unix:{}\"", socket.display()),
    );
    let path = dir.path().join("c.toml");
    std::fs::write(&path, toml).unwrap();
    let config = Settings::load(Some(&path), &Overrides::default())
        .unwrap()
        .compile()
        .unwrap();
    let app = App::build(config).await.unwrap();
    assert_eq!(app.http_addr(), None, "not on TCP");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));

    let mut stream = tokio::net::UnixStream::connect(&socket).await.unwrap();
    stream
        .write_all(
            b"GET /_dispatch_authz HTTP/1.1\r\nHost: authz\r\nX-Original-Method: GET\r\n\
              X-Original-URI: /healthz\r\nConnection: close\r\n\r\n",
        )
        .await
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    assert!(!socket.exists(), "socket file left behind");
}

/// Issue 17, item 2: the same decision through both front ends, for
/// generated requests over the RBAC world: every subject, methods, paths
/// and their respellings (as sent on the wire: no dot segments, which an
/// HTTP client resolves first), organizations, forged `x-dispatch-*` names
/// in any spelling.
#[test]
fn generated_requests_are_decided_alike_through_grpc_and_http() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    const WHO: [&str; 8] = [
        "alice", "bob", "carol", "dave", "erin", "frank", "ci", "nobody",
    ];
    const METHODS: [&str; 7] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PROPFIND",
    ];
    const PATHS: [&str; 13] = [
        "/v1/function/f",
        "/v1/function",
        "/v1/image/i?x=1",
        "/v1/secret",
        "/v1//function",
        "/v1/%66unction/f",
        "/v1/function%2Ff",
        "/v1/function;x/f",
        "/v1/function/f%00",
        "/v1/function/f%20",
        "/api/orders/1",
        "/api/cart",
        "/healthz",
    ];
    const NAMES: [&str; 5] = [
        "x-dispatch-org",
        "X_Dispatch_Org",
        "x_dispatch_user",
        "X-Dispatch-Roles",
        "x-dispatch-other",
    ];
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let app = runtime.block_on(async {
        let app = spawn_app_with(Options {
            http_proxy: Some("envoy"),
            ..crate::rbac::rbac()
        })
        .await;
        crate::rbac::world(&app).await;
        app
    });
    let tokens: Vec<Option<String>> = WHO
        .iter()
        .map(|w| (*w != "nobody").then(|| bearer(&crate::rbac::credential(w))))
        .collect();
    let header = (
        prop::sample::select(&NAMES[..]),
        prop::sample::select(&["acme", "globex", "mallory", "ACME"][..]),
    );
    let request = (
        0..WHO.len(),
        prop::sample::select(&METHODS[..]),
        prop::sample::select(&PATHS[..]),
        prop::collection::btree_map(header.0, header.1, 0..3),
    );
    let mut runner = TestRunner::new(Config {
        cases: 128,
        ..Config::default()
    });
    let result = runner.run(&request, |(who, method, path, forged)| {
        let mut headers: Vec<(&str, &str)> = forged.into_iter().collect();
        if let Some(token) = &tokens[who] {
            headers.push(("authorization", token));
        }
        let (mut grpc, http) = runtime.block_on(async {
            let grpc = over_grpc(&app, method, path, &headers).await;
            (grpc, over_http(&app, method, path, &headers).await)
        });
        if method == "HEAD" {
            // An answer to HEAD has no body, by HTTP's rules; the client
            // of a HEAD would not see one either.
            grpc.body = grpc.body.map(|_| String::new());
        }
        prop_assert_eq!(http, grpc, "{} {} {} {:?}", WHO[who], method, path, headers);
        Ok(())
    });
    runtime.block_on(async move { drop(app) });
    if let Err(failure) = result {
        panic!("{failure}");
    }
}
