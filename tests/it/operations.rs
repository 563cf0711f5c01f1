//! The operations listener (issue 14): `/healthz`, `/readyz` following the
//! database and the identity sources (and the gRPC health status with it),
//! `/metrics` in Prometheus text. Exact counts are asserted in
//! `cli::serve_logs_decisions_without_tokens_and_stops_on_sigterm`, on a
//! process that served nothing else; here many apps share one recorder.

use std::time::Duration;

use serde_json::Value;

use crate::common::*;

async fn get(app: &TestApp, path: &str) -> (u16, String) {
    let url = format!("http://{}{path}", app.operations_addr.unwrap());
    let response = reqwest::get(url).await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// Polls until `path` answers `want` (readiness is re-read each time).
async fn until(app: &TestApp, path: &str, want: u16) -> String {
    for _ in 0..100 {
        let (status, body) = get(app, path).await;
        if status == want {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{path} never answered {want}");
}

#[tokio::test]
async fn readyz_fails_while_the_database_is_unreachable_and_recovers() {
    let app = spawn_app().await;
    assert_eq!(get(&app, "/healthz").await, (200, "ok\n".to_owned()));
    let ready: Value = serde_json::from_str(&until(&app, "/readyz", 200).await).unwrap();
    assert_eq!(ready["ready"], true);
    assert_eq!(ready["database"], "ok");
    let replicas = match app.store.location() {
        dispatch_authz::store::StoreLocation::Postgres(_) => "following",
        _ => "alone",
    };
    assert_eq!(ready["replicas"], replicas);

    app.break_database().await;
    let body: Value = serde_json::from_str(&until(&app, "/readyz", 503).await).unwrap();
    assert_eq!(body["ready"], false);
    assert_ne!(body["database"], "ok", "{body}");
    assert_eq!(body["keys"], "ok");
    // Alive all the same: a restart would not bring the database back.
    assert_eq!(get(&app, "/healthz").await.0, 200);
    // The gRPC health status follows.
    let not_serving = 2;
    for _ in 0..100 {
        if app.authorization_health().await == not_serving {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(app.authorization_health().await, not_serving);

    app.repair_database().await;
    until(&app, "/readyz", 200).await;
    let serving = 1;
    for _ in 0..100 {
        if app.authorization_health().await == serving {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(app.authorization_health().await, serving);
}

#[tokio::test]
async fn metrics_are_prometheus_text_and_unknown_paths_are_404() {
    let app = spawn_app().await;
    app.add_user("1001", "octocat").await;
    let r = app.check_bearer(&token(&claims("1001"))).await;
    assert_eq!(code(&r), OK);
    let response = reqwest::get(format!("http://{}/metrics", app.operations_addr.unwrap()))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = response.text().await.unwrap();
    for name in [
        "# TYPE dispatch_authz_checks_total counter",
        "# TYPE dispatch_authz_check_duration_seconds histogram",
        "# TYPE dispatch_authz_cache_lookups_total counter",
        "# TYPE dispatch_authz_cache_entries gauge",
    ] {
        assert!(text.contains(name), "{name} missing:\n{text}");
    }
    assert_eq!(get(&app, "/nope").await.0, 404);
}
