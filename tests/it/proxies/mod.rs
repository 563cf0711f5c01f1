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

mod behaviours;
mod configs;

use std::path::Path;

use reqwest::header::HeaderMap;
use serde_json::Value;

use crate::common::{
    programs::{self, Ports, Program, Running},
    upstream::{Upstream, seen, spawn_upstream, through_proxy},
    *,
};
use dispatch_authz::store::User;

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

    /// Whether a denial's headers reach the client (nginx passes only
    /// `WWW-Authenticate`).
    fn passes_denial_headers(self) -> bool {
        self != Self::Nginx
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

/// The value of every forged header: it must never reach the upstream.
const FORGED: &str = "forged-by-mallory";

impl Stack {
    async fn start(proxy: Proxy) -> Option<Self> {
        let binary = programs::require(proxy.program())?;
        let app = spawn_app_with(Options {
            authorization: String::new(),
            http_proxy: proxy.http_proxy(),
            ..Default::default()
        })
        .await;
        let (_, alice) = app.acme_with_alice().await;
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
    through_proxy(http.get(proxy.url(PATH)), headers).await
}

fn bearer_of(subject: &str) -> String {
    bearer(&token(&claims(subject)))
}

use behaviours::*;

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
