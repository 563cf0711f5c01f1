//! Dry-run (issue 14): where configured, what the roles refuse a known
//! subject is let through, marked and counted as `would_deny`; everything
//! else is decided as always.

use serde_json::Value;

use crate::common::*;

#[tokio::test]
async fn dry_run_allows_what_enforce_mode_denies_and_counts_it() {
    let app = spawn_app_with(Options {
        authorization: String::new(),
        sources: "[dry_run]\norganizations = [\"acme\"]\n".into(),
        ..Default::default()
    })
    .await;
    let (_admin, alice) = app.acme_with_alice().await;
    let auth = bearer(&token(&claims("alice")));
    let in_org = |org: &'static str| {
        vec![
            ("authorization", auth.clone()),
            ("x-dispatch-org", org.into()),
        ]
    };
    let check = |path: &'static str, headers: Vec<(&'static str, String)>| {
        let app = &app;
        async move {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            app.check(path, &headers).await
        }
    };

    // Granted: an allow like any other.
    let r = check("/v1/function/f", in_org("acme")).await;
    assert_eq!(code(&r), OK);
    assert_eq!(header(&upstream_headers(&r), "x-dispatch-dry-run"), None);

    // Refused by the roles in acme, where dry-run applies: let through as
    // alice, marked, with no organization or roles vouched for.
    let r = check("/v1/secret/s", in_org("acme")).await;
    assert_eq!(code(&r), OK, "{r:?}");
    let set = upstream_headers(&r);
    assert_eq!(header(&set, "x-dispatch-user"), Some("alice"));
    assert_eq!(
        header(&set, "x-dispatch-user-id"),
        Some(alice.id.to_string().as_str())
    );
    assert_eq!(header(&set, "x-dispatch-dry-run"), Some("not_granted"));
    assert_eq!(header(&set, "x-dispatch-roles"), None);
    assert_eq!(header(&set, "x-dispatch-org"), None);
    // A client's own dry-run header never passes.
    let mut forged = in_org("acme");
    forged.push(("x-dispatch-dry-run", "mallory".into()));
    let r = check("/v1/function/f", forged).await;
    assert!(
        removed(&r).contains(&"x-dispatch-dry-run".to_owned()),
        "{r:?}"
    );

    // Elsewhere, enforced.
    let r = check("/v1/function/f", in_org("globex")).await;
    assert_eq!(denied(&r).http, 403);
    // Never for who is not a known, enabled subject, nor without a credential.
    let ghost = bearer(&token(&claims("ghost")));
    let r = check(
        "/v1/function/f",
        vec![("authorization", ghost), ("x-dispatch-org", "acme".into())],
    )
    .await;
    assert_eq!(denied(&r).http, 403, "unknown user");
    let r = check("/v1/function/f", vec![("x-dispatch-org", "acme".into())]).await;
    assert_eq!(denied(&r).http, 401);

    // Counted apart (only this test ever lets a refusal through), and on
    // /readyz for operators to see.
    let ops = app.operations_addr.unwrap();
    let metrics = reqwest::get(format!("http://{ops}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let series = r#"dispatch_authz_checks_total{decision="would_deny",reason="not_granted",subject_kind="user"} "#;
    assert!(
        metrics.lines().any(|l| l.strip_prefix(series) == Some("1")),
        "{metrics}"
    );
    let ready: Value = reqwest::get(format!("http://{ops}/readyz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["dry_run"], "organizations [acme], resources []");
}
