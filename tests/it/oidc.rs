//! OIDC issuers with remote keys, against a fake provider over real HTTP.

use std::time::Duration;

use crate::common::{fake_oidc::FakeOidc, *};
use tonic_health::pb::health_check_response::ServingStatus;

const OK: i32 = 0;
const UNAVAILABLE: i32 = 14;
const UNAUTHENTICATED: i32 = 16;

fn code(r: &envoy_types::ext_authz::v3::pb::CheckResponse) -> i32 {
    r.status.as_ref().unwrap().code
}

/// An issuer `oidc` found by discovery at the fake provider.
fn oidc_source(provider: &FakeOidc, refresh_secs: u64, refetch_secs: u64) -> String {
    format!(
        r#"
[[issuers]]
name = "oidc"
issuer = "{url}"
audiences = ["{AUD}"]
discovery = true
[issuers.remote]
refresh_interval_secs = {refresh_secs}
min_refresh_interval_secs = 1
min_refetch_interval_secs = {refetch_secs}
timeout_ms = 500
"#,
        url = provider.url
    )
}

async fn app_with(provider: &FakeOidc, refresh_secs: u64, refetch_secs: u64) -> TestApp {
    let app = spawn_app_with(Options {
        sources: oidc_source(provider, refresh_secs, refetch_secs),
        ..Default::default()
    })
    .await;
    app.add_user_of("oidc", "alice", "alice").await;
    app
}

/// A provider publishing `kids` (a: rsa.pem, b: rsa-other.pem), and a
/// sidecar that has fetched its keys and allows alice.
async fn serving(kids: &[&str], refresh_secs: u64, refetch_secs: u64) -> (FakeOidc, TestApp) {
    let provider = FakeOidc::start().await;
    for kid in kids {
        provider.add_key(
            kid,
            if *kid == "a" {
                "rsa.pem"
            } else {
                "rsa-other.pem"
            },
        );
    }
    let app = app_with(&provider, refresh_secs, refetch_secs).await;
    wait_health(&app, ServingStatus::Serving).await;
    assert_eq!(
        code(&app.check_bearer(&provider.token("a", "alice")).await),
        OK
    );
    (provider, app)
}

/// Waits until the Authorization service reports `want` (SERVING: keys
/// loaded by the background refresher, so no check spent the refetch budget).
async fn wait_health(app: &TestApp, want: ServingStatus) {
    eventually(want.as_str_name(), async || {
        app.authorization_health().await == want as i32
    })
    .await;
}

async fn eventually(what: &str, mut condition: impl AsyncFnMut() -> bool) {
    for _ in 0..100 {
        if condition().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn keys_are_found_by_discovery_and_a_new_key_after_one_refetch() {
    let (provider, app) = serving(&["a"], 3600, 30).await;

    // Rotation: the provider publishes key b; a token signed with it causes
    // exactly one fetch, then verifies.
    provider.add_key("b", "rsa-other.pem");
    let before = provider.jwks_fetches();
    assert_eq!(
        code(&app.check_bearer(&provider.token("b", "alice")).await),
        OK
    );
    assert_eq!(provider.jwks_fetches(), before + 1);
}

#[tokio::test]
async fn a_flood_of_unknown_kids_causes_at_most_one_fetch_per_interval() {
    let (provider, app) = serving(&["a"], 3600, 60).await;
    let before = provider.jwks_fetches();

    let tokens = (0..1000)
        .map(|i| {
            provider.token_with_unpublished_key(&format!("random-{i}"), "rsa-other.pem", "alice")
        })
        .collect();
    let codes = app.check_concurrently(tokens).await;
    assert!(codes.iter().all(|&c| c == UNAUTHENTICATED), "{codes:?}");
    let extra = provider.jwks_fetches() - before;
    assert!(extra <= 1, "{extra} fetches for 1000 unknown kids");
}

#[tokio::test]
async fn an_outage_keeps_the_last_good_keys_and_removed_keys_stop_verifying() {
    let (provider, app) = serving(&["a", "b"], 1, 1).await;

    // Down for a few refresh periods: new tokens (not cached) still verify.
    provider.set_down(true);
    let before = provider.jwks_fetches();
    eventually("failed refreshes", async || {
        provider.jwks_fetches() >= before + 2
    })
    .await;
    let fresh = provider.token("b", "alice");
    assert_eq!(
        code(&app.check_bearer(&fresh).await),
        OK,
        "an outage emptied the key set"
    );

    // Back up without key a: after the next refresh, a is refused.
    provider.remove_key("a");
    provider.set_down(false);
    let mut n = 0;
    eventually("key a to be dropped", async || {
        n += 1;
        // A new subject each time, so no cached token answers.
        let token = provider.token("a", &format!("alice{n}"));
        code(&app.check_bearer(&token).await) == UNAUTHENTICATED
    })
    .await;
    assert_eq!(
        code(&app.check_bearer(&provider.token("b", "alice")).await),
        OK
    );
}

/// Regression (issue 11): a token whose answer is cached per token (user
/// and grants included) is refused once its key is gone from the key set,
/// not when the entry's 60-second lifetime ends.
#[tokio::test]
async fn a_token_answered_from_the_cache_is_refused_once_its_key_is_removed() {
    let (provider, app) = serving(&["a", "b"], 1, 1).await;
    let token = provider.token("a", "alice");
    assert_eq!(code(&app.check_bearer(&token).await), OK);
    assert_eq!(code(&app.check_bearer(&token).await), OK, "cached");
    provider.remove_key("a");
    eventually("the cached token to be refused", async || {
        code(&app.check_bearer(&token).await) == UNAUTHENTICATED
    })
    .await;
}

/// Issue 17, item 3. Fault: the key set URL answers 200 with a page that
/// is not a JWKS (a proxy's error page), at start-up and later.
/// Expected: as an outage, never as "no keys": at start-up, unready and 503
/// denials (not 401); later, the last good keys are kept and tokens still
/// verify; with the real key set back, the server is ready by itself.
#[tokio::test]
async fn a_provider_answering_garbage_is_an_outage_not_an_empty_key_set() {
    let provider = FakeOidc::start().await;
    provider.add_key("a", "rsa.pem");
    provider.set_garbage(true);
    let app = app_with(&provider, 1, 1).await;
    wait_health(&app, ServingStatus::NotServing).await;
    let r = app.check_bearer(&provider.token("a", "alice")).await;
    assert_eq!(code(&r), UNAVAILABLE);

    provider.set_garbage(false);
    wait_health(&app, ServingStatus::Serving).await;
    assert_eq!(
        code(&app.check_bearer(&provider.token("a", "alice")).await),
        OK
    );

    provider.set_garbage(true);
    let before = provider.jwks_fetches();
    eventually("refreshes that got garbage", async || {
        provider.jwks_fetches() >= before + 2
    })
    .await;
    // Not a token verified before: it needs the keys.
    let fresh = provider.token_with("a", "alice", serde_json::json!({"jti": "new"}));
    assert_eq!(code(&app.check_bearer(&fresh).await), OK, "keys kept");
}

#[tokio::test]
async fn a_provider_down_at_start_up_makes_the_server_unready_not_dead() {
    let provider = FakeOidc::start().await;
    provider.add_key("a", "rsa.pem");
    provider.set_down(true);
    let app = app_with(&provider, 1, 1).await;
    wait_health(&app, ServingStatus::NotServing).await;
    // Without keys a token cannot be judged: 503, not 401.
    let r = app.check_bearer(&provider.token("a", "alice")).await;
    assert_eq!(code(&r), UNAVAILABLE);

    provider.set_down(false);
    wait_health(&app, ServingStatus::Serving).await;
    assert_eq!(
        code(&app.check_bearer(&provider.token("a", "alice")).await),
        OK
    );
}

#[tokio::test]
async fn a_slow_provider_does_not_hold_checks_past_the_fetch_timeout() {
    let (provider, app) = serving(&["a"], 3600, 1).await;
    provider.set_delay(Duration::from_secs(5));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let started = std::time::Instant::now();
    let token = provider.token_with_unpublished_key("new", "rsa-other.pem", "alice");
    assert_eq!(code(&app.check_bearer(&token).await), UNAUTHENTICATED);
    // The refetch gave up at timeout_ms (500 ms), not at the provider's 5 s.
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_refetch_outlives_a_check_that_envoy_gave_up_on() {
    let (provider, app) = serving(&["a"], 3600, 60).await;
    provider.add_key("b", "rsa-other.pem");
    // Slower than the caller's patience, within the fetch timeout (500 ms).
    provider.set_delay(Duration::from_millis(300));
    let before = provider.jwks_fetches();

    // The caller gives up after 100 ms, as Envoy would at its timeout.
    let token = provider.token("b", "alice");
    assert!(
        app.check_abandoned_after(&token, Duration::from_millis(100))
            .await,
        "the check should still be waiting on the provider"
    );

    // The fetch went on; the next check finds key b without another fetch.
    eventually("the abandoned fetch to finish", async || {
        provider.jwks_fetches() == before + 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    provider.set_delay(Duration::ZERO);
    assert_eq!(code(&app.check_bearer(&token).await), OK);
    assert_eq!(provider.jwks_fetches(), before + 1);
}

/// Keys a provider publishes that we cannot use (Keycloak's RSA-OAEP
/// encryption key, a P-521 key, a key type from the future).
fn unusable_keys() -> Vec<serde_json::Value> {
    use serde_json::json;
    vec![
        json!({"kty": "RSA", "kid": "enc-1", "use": "enc", "alg": "RSA-OAEP",
               "n": "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1Wl",
               "e": "AQAB"}),
        json!({"kty": "RSA", "kid": "oaep-no-use", "alg": "RSA-OAEP",
               "n": "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1Wl",
               "e": "AQAB"}),
        json!({"kty": "EC", "kid": "p521", "crv": "P-521",
               "x": "AekpBQ8ST8a8VcfVOTNl353vSrDCLLJXmPk06wTjxrrjcBpXp5EOnYG_NjFZ6OvLFV1jSfS9tsz4qUxcWceqwQGk",
               "y": "ADSmRA43Z1DSNx_RvcLI87cdL07l6jQyyBXMoxVg_l2Th-x3S1WDhjDly79ajL4Kkd0AZMaZmh9ubmf63e3kyMj2"}),
        json!({"kty": "AKP", "kid": "pq-1", "alg": "ML-DSA-44", "pub": "AAAA"}),
    ]
}

/// Regression (issue 9, item 7): one unusable key in the JWKS made every
/// fetch fail, so the issuer never became ready or froze on old keys.
#[tokio::test]
async fn unusable_keys_are_skipped_and_the_usable_ones_still_rotate() {
    let provider = FakeOidc::start().await;
    provider.add_key("a", "rsa.pem");
    for jwk in unusable_keys() {
        provider.add_raw_jwk(jwk);
    }
    let app = app_with(&provider, 3600, 1).await;
    wait_health(&app, ServingStatus::Serving).await;
    assert_eq!(
        code(&app.check_bearer(&provider.token("a", "alice")).await),
        OK
    );
    // Rotation still works: the new key arrives by the on-demand refetch.
    provider.add_key("b", "rsa-other.pem");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = app.check_bearer(&provider.token("b", "alice")).await;
    assert_eq!(code(&r), OK, "{:?}", r.status);
}

/// Regression (issue 9, item 8): a provider down at start-up and back a
/// moment later is used within seconds, not after the refresh interval
/// (60 s here, as by default).
#[tokio::test]
async fn an_issuer_without_keys_retries_within_seconds() {
    let provider = FakeOidc::start().await;
    provider.add_key("a", "rsa.pem");
    provider.set_down(true);
    let app = spawn_app_with(Options {
        sources: format!(
            r#"
[[issuers]]
name = "oidc"
issuer = "{url}"
audiences = ["{AUD}"]
discovery = true
[issuers.remote]
refresh_interval_secs = 300
min_refresh_interval_secs = 60
min_refetch_interval_secs = 30
timeout_ms = 500
"#,
            url = provider.url
        ),
        ..Default::default()
    })
    .await;
    app.add_user_of("oidc", "alice", "alice").await;
    wait_health(&app, ServingStatus::NotServing).await;
    assert_eq!(
        code(&app.check_bearer(&provider.token("a", "alice")).await),
        UNAVAILABLE
    );
    provider.set_down(false);
    // `wait_health` gives up after 5 s.
    wait_health(&app, ServingStatus::Serving).await;
    assert_eq!(
        code(&app.check_bearer(&provider.token("a", "alice")).await),
        OK
    );
}
