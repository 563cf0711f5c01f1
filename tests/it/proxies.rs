//! The conformance matrix (issue 13): every front proxy users run, each the
//! real binary with the repository's own configuration file, in front of the
//! echoing upstream, × the behaviours a user relies on. One test per cell:
//! `proxies::<proxy>::<behaviour>`.
//!
//! | proxy | configuration | asks dispatch-authz over |
//! |---|---|---|
//! | `envoy_grpc` | `envoy/envoy.yaml` | gRPC Check |
//! | `envoy_http` | `envoy/envoy-http.yaml` | HTTP, `proxy = "envoy"` |
//! | `nginx` | `examples/nginx/nginx.conf` | HTTP, `proxy = "nginx"` |
//! | `caddy` | `examples/caddy/Caddyfile` | HTTP, `proxy = "caddy"` |
//! | `traefik` | `examples/traefik/` | HTTP, `proxy = "traefik"` |

use std::path::Path;

use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::common::{
    admin::user_ref,
    programs::{self, Ports, Program, Running},
    upstream::{Upstream, seen, spawn_upstream},
    *,
};
use dispatch_authz::{proto::admin::role_binding::Subject, store::User};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proxy {
    EnvoyGrpc,
    EnvoyHttp,
    Nginx,
    Caddy,
    Traefik,
}

impl Proxy {
    fn program(self) -> Program {
        match self {
            Self::EnvoyGrpc | Self::EnvoyHttp => programs::ENVOY,
            Self::Nginx => programs::NGINX,
            Self::Caddy => programs::CADDY,
            Self::Traefik => programs::TRAEFIK,
        }
    }

    /// The sidecar's `http.proxy` (`None`: the gRPC Check).
    fn http_proxy(self) -> Option<&'static str> {
        match self {
            Self::EnvoyGrpc => None,
            Self::EnvoyHttp => Some("envoy"),
            Self::Nginx => Some("nginx"),
            Self::Caddy => Some("caddy"),
            Self::Traefik => Some("traefik"),
        }
    }

    async fn start(self, binary: &Path, ports: Ports) -> Running {
        match self {
            Self::EnvoyGrpc => Running::envoy(binary, "envoy.yaml", ports).await,
            Self::EnvoyHttp => Running::envoy(binary, "envoy-http.yaml", ports).await,
            Self::Nginx => Running::nginx(binary, ports).await,
            Self::Caddy => Running::caddy(binary, ports).await,
            Self::Traefik => Running::traefik(binary, ports).await,
        }
    }

    /// What the client gets when nothing answers on the sidecar's port:
    /// Envoy's `status_on_error`, the nginx example's `@authz_error`,
    /// Caddy's and Traefik's own.
    fn status_when_the_sidecar_is_down(self) -> u16 {
        match self {
            Self::EnvoyGrpc | Self::EnvoyHttp | Self::Nginx => 503,
            Self::Caddy => 502,
            Self::Traefik => 500,
        }
    }

    /// Envoy removes the forged names dispatch-authz lists; the others
    /// cannot, and dispatch-authz refuses the request instead.
    fn removes_on_our_word(self) -> bool {
        matches!(self, Self::EnvoyGrpc | Self::EnvoyHttp)
    }
}

/// A proxy in front of the upstream, asking a sidecar whose world has
/// alice (a developer in acme) and bob (registered, no role).
struct Stack {
    /// The sidecar, kept running.
    _app: TestApp,
    upstream: Upstream,
    proxy: Running,
    alice: User,
    http: reqwest::Client,
}

const PATH: &str = "/v1/function/hello?v=1";

impl Stack {
    async fn start(proxy: Proxy) -> Option<Self> {
        let binary = programs::require(proxy.program())?;
        let app = spawn_app_with(Options {
            authorization: String::new(),
            http_proxy: proxy.http_proxy(),
            ..Default::default()
        })
        .await;
        let mut admin = app.bootstrap().await;
        admin.org("acme").await.unwrap();
        admin
            .role("acme", "developer", &["function:*"])
            .await
            .unwrap();
        let alice = app.add_user("alice", "alice").await;
        admin
            .member("acme", &user_ref("alice"), true)
            .await
            .unwrap();
        admin
            .bind("acme", "developer", Subject::User(user_ref("alice")))
            .await
            .unwrap();
        app.add_user("bob", "bob").await;
        let (upstream, upstream_port) = spawn_upstream().await;
        let sidecar = match proxy {
            Proxy::EnvoyGrpc => app.addr.port(),
            _ => app.http_addr.expect("the HTTP check listener").port(),
        };
        let ports = Ports {
            sidecar,
            upstream: upstream_port,
        };
        let proxy = proxy.start(&binary, ports).await;
        Some(Self {
            _app: app,
            upstream,
            proxy,
            alice,
            http: reqwest::Client::new(),
        })
    }

    async fn get(&self, headers: &[(&str, &str)]) -> (u16, HeaderMap, Value) {
        get(&self.http, &self.proxy, headers).await
    }
}

async fn get(
    http: &reqwest::Client,
    proxy: &Running,
    headers: &[(&str, &str)],
) -> (u16, HeaderMap, Value) {
    let mut request = http.get(proxy.url(PATH));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, headers, body)
}

fn bearer_of(subject: &str) -> String {
    bearer(&token(&claims(subject)))
}

/// An allowed request reaches the upstream as alice, with every identity
/// header of hers, and without her token.
async fn allowed(proxy: Proxy) {
    let Some(stack) = Stack::start(proxy).await else {
        return;
    };
    let auth = bearer_of("alice");
    let hits = stack.upstream.hits();
    let (status, _, echo) = stack
        .get(&[("authorization", &auth), ("x-dispatch-org", "acme")])
        .await;
    assert_eq!(status, 200, "{proxy:?}: {echo}\n{}", stack.proxy.log());
    let one = |name: &str| seen(&echo, name).cloned();
    assert_eq!(one("x-dispatch-user"), Some(vec![json!("alice")]), "{echo}");
    assert_eq!(
        one("x-dispatch-user-id"),
        Some(vec![json!(stack.alice.id.to_string())])
    );
    assert_eq!(one("x-dispatch-issuer"), Some(vec![json!(ISSUER_NAME)]));
    assert_eq!(one("x-dispatch-subject-kind"), Some(vec![json!("user")]));
    assert_eq!(one("x-dispatch-org"), Some(vec![json!("acme")]));
    assert_eq!(one("x-dispatch-roles"), Some(vec![json!("developer")]));
    let request_id = one("x-dispatch-request-id").expect("a request id");
    assert_eq!(request_id.len(), 1, "{echo}");
    assert_eq!(one("authorization"), None, "the token reached the upstream");
    assert_eq!(echo["path"], PATH, "the upstream saw another target");
    assert_eq!(stack.upstream.hits(), hits + 1);
}

/// No credential: 401 with `WWW-Authenticate`, and nothing upstream.
async fn no_credential(proxy: Proxy) {
    let Some(stack) = Stack::start(proxy).await else {
        return;
    };
    let hits = stack.upstream.hits();
    let (status, headers, body) = stack.get(&[("x-dispatch-org", "acme")]).await;
    assert_eq!(status, 401, "{proxy:?}: {body}");
    assert_eq!(
        headers.get("www-authenticate").map(|v| v.to_str().unwrap()),
        Some(r#"Bearer realm="dispatch""#),
        "{proxy:?}: {headers:?}"
    );
    assert_eq!(
        stack.upstream.hits(),
        hits,
        "a refused request went upstream"
    );
}

/// A valid token of a subject no role allows: 403, nothing upstream.
async fn refused_subject(proxy: Proxy) {
    let Some(stack) = Stack::start(proxy).await else {
        return;
    };
    let hits = stack.upstream.hits();
    let auth = bearer_of("bob");
    let (status, _, body) = stack
        .get(&[("authorization", &auth), ("x-dispatch-org", "acme")])
        .await;
    assert_eq!(status, 403, "{proxy:?}: {body}");
    assert_eq!(
        stack.upstream.hits(),
        hits,
        "a refused request went upstream"
    );
}

const FORGED: &str = "forged-by-mallory";

/// A client's `x-dispatch-*` header, in either spelling, known to us or
/// not, never reaches the upstream: Envoy removes it on our word and the
/// request passes as alice; behind the others the sidecar refuses it.
async fn forged_headers(proxy: Proxy) {
    let Some(stack) = Stack::start(proxy).await else {
        return;
    };
    let auth = bearer_of("alice");
    let forgeries: [&[(&str, &str)]; 4] = [
        &[("x-dispatch-user", FORGED), ("x-dispatch-roles", FORGED)],
        &[("x-dispatch-admin", FORGED)],
        &[("x_dispatch_user", FORGED)],
        &[("x_dispatch_org", FORGED), ("x-dispatch-user-id", FORGED)],
    ];
    for forged in forgeries {
        let hits = stack.upstream.hits();
        let mut headers = vec![("authorization", auth.as_str()), ("x-dispatch-org", "acme")];
        headers.extend_from_slice(forged);
        let (status, _, echo) = stack.get(&headers).await;
        let reached = stack.upstream.hits() > hits;
        if reached {
            assert!(
                !echo.to_string().contains(FORGED),
                "{proxy:?} {forged:?}: a forged value reached the upstream: {echo}"
            );
            assert_eq!(status, 200, "{proxy:?} {forged:?}: {echo}");
            assert_eq!(
                seen(&echo, "x-dispatch-user"),
                Some(&vec![json!("alice")]),
                "{proxy:?} {forged:?}"
            );
        } else {
            assert!(
                [400, 403].contains(&status),
                "{proxy:?} {forged:?}: {status} {echo}"
            );
        }
        // The canonical spelling of a known name: removed by Envoy, refused
        // by the sidecar behind the others.
        if forged[0].0 == "x-dispatch-user" {
            let want = if proxy.removes_on_our_word() {
                200
            } else {
                403
            };
            assert_eq!(status, want, "{proxy:?}: {echo}");
        }
    }
}

/// Nothing answers on the sidecar's port: the request fails closed.
async fn sidecar_down(proxy: Proxy) {
    let Some(binary) = programs::require(proxy.program()) else {
        return;
    };
    let (upstream, upstream_port) = spawn_upstream().await;
    let ports = Ports {
        sidecar: programs::free_port(),
        upstream: upstream_port,
    };
    let running = proxy.start(&binary, ports).await;
    let auth = bearer_of("alice");
    let (status, _, body) = get(
        &reqwest::Client::new(),
        &running,
        &[("authorization", &auth), ("x-dispatch-user", "alice")],
    )
    .await;
    assert_eq!(
        status,
        proxy.status_when_the_sidecar_is_down(),
        "{proxy:?}: {body}"
    );
    assert_eq!(upstream.hits(), 0, "{proxy:?}: a request went upstream");
}

macro_rules! matrix {
    ($($name:ident => $proxy:expr),* $(,)?) => {$(
        mod $name {
            use super::*;

            #[tokio::test]
            async fn an_allowed_request_reaches_the_upstream_with_our_identity() {
                allowed($proxy).await
            }

            #[tokio::test]
            async fn no_credential_is_a_401_with_www_authenticate() {
                no_credential($proxy).await
            }

            #[tokio::test]
            async fn a_valid_token_of_a_refused_subject_is_a_403() {
                refused_subject($proxy).await
            }

            #[tokio::test]
            async fn a_forged_identity_header_never_reaches_the_upstream() {
                forged_headers($proxy).await
            }

            #[tokio::test]
            async fn the_request_fails_closed_when_the_sidecar_is_down() {
                sidecar_down($proxy).await
            }
        }
    )*};
}

matrix! {
    envoy_grpc => Proxy::EnvoyGrpc,
    envoy_http => Proxy::EnvoyHttp,
    nginx => Proxy::Nginx,
    caddy => Proxy::Caddy,
    traefik => Proxy::Traefik,
}

/// The configurations on their own (issue 13, item 2): behind a stand-in
/// sidecar that allows everything and refuses nothing, answering only
/// `x-dispatch-user`, a client's copies of the identity headers, in either
/// spelling, are still overwritten or removed by the proxy. (nginx and
/// Caddy can only clear the names their files list; the real sidecar
/// refuses any other, as the matrix shows.)
async fn configuration_alone_overwrites_identity_headers(proxy: Proxy) {
    use axum::{Router, http::HeaderMap as Map};
    let Some(binary) = programs::require(proxy.program()) else {
        return;
    };
    let allow_all = Router::new().fallback(|| async {
        let mut headers = Map::new();
        headers.insert("x-dispatch-user", "alice".parse().unwrap());
        (headers, "")
    });
    let sidecar = serve_http(allow_all).await.port();
    let (upstream, upstream_port) = spawn_upstream().await;
    let running = proxy
        .start(
            &binary,
            Ports {
                sidecar,
                upstream: upstream_port,
            },
        )
        .await;
    let mut forged: Vec<(&str, &str)> = dispatch_authz::check::decision::names::IDENTITY
        .iter()
        .map(|name| (*name, FORGED))
        .collect();
    let underscored: Vec<String> = dispatch_authz::check::decision::names::IDENTITY
        .iter()
        .map(|name| name.replace('-', "_"))
        .collect();
    forged.extend(underscored.iter().map(|name| (name.as_str(), FORGED)));
    forged.push(("authorization", "Bearer t"));
    let (status, _, echo) = get(&reqwest::Client::new(), &running, &forged).await;
    assert_eq!(status, 200, "{proxy:?}: {echo}\n{}", running.log());
    assert_eq!(upstream.hits(), 2, "readiness, then this request");
    assert_eq!(seen(&echo, "x-dispatch-user"), Some(&vec![json!("alice")]));
    assert!(
        !echo.to_string().contains(FORGED),
        "{proxy:?}: a forged value reached the upstream: {echo}"
    );
    assert_eq!(seen(&echo, "authorization"), None, "{proxy:?}: {echo}");
}

#[tokio::test]
async fn nginx_configuration_alone_overwrites_identity_headers() {
    configuration_alone_overwrites_identity_headers(Proxy::Nginx).await
}

#[tokio::test]
async fn caddy_configuration_alone_overwrites_identity_headers() {
    configuration_alone_overwrites_identity_headers(Proxy::Caddy).await
}

#[tokio::test]
async fn traefik_configuration_alone_overwrites_identity_headers() {
    configuration_alone_overwrites_identity_headers(Proxy::Traefik).await
}
