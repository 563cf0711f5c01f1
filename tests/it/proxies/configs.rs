//! Each HTTP-mode configuration file alone, behind a stand-in sidecar.

use serde_json::json;

use super::*;

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
