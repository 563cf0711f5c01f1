//! The five behaviours of the matrix, each run against one proxy.

use serde_json::json;

use super::*;

/// An allowed request reaches the upstream as alice, with every identity
/// header of hers, and without her token.
pub(super) async fn allowed(proxy: Proxy) {
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
pub(super) async fn no_credential(proxy: Proxy) {
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
    // "Who got this 401?" is one lookup: the id of its decision line.
    if proxy.passes_denial_headers() {
        let id = headers.get("x-dispatch-decision-id");
        assert!(
            id.is_some_and(|id| id.len() == 21),
            "{proxy:?}: {headers:?}"
        );
    }
    assert_eq!(
        stack.upstream.hits(),
        hits,
        "a refused request went upstream"
    );
}

/// A valid token of a subject no role allows: 403, nothing upstream.
pub(super) async fn refused_subject(proxy: Proxy) {
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

/// A client's `x-dispatch-*` header, in either spelling, known to us or
/// not, never reaches the upstream: Envoy removes it on our word and the
/// request passes as alice; behind the others the sidecar refuses it.
pub(super) async fn forged_headers(proxy: Proxy) {
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
pub(super) async fn sidecar_down(proxy: Proxy) {
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
