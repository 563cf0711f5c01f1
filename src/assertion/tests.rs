use std::{sync::Arc, time::Duration};

use jsonwebtoken::{DecodingKey, Validation};
use serde_json::Value;

use super::*;
use crate::domain::{OrgName, RoleName, SubjectRef, UserId};

fn asserter(per_request: bool, ttl: Duration) -> Asserter {
    let settings = AssertionSettings {
        algorithm: SigningAlgorithm::EdDSA,
        ttl,
        issuer: "dispatch-authz-test".into(),
        audience: Some("functions".into()),
        per_request,
        cache_capacity: 100,
        origin: KeyOrigin::Generated {
            rotate: Duration::from_secs(3600),
        },
    };
    let keys = Keys {
        signing: SigningKey::generate(SigningAlgorithm::EdDSA).unwrap(),
        published: vec![SigningKey::generate(SigningAlgorithm::EdDSA).unwrap()],
    };
    Asserter::new(settings, keys)
}

fn verify(asserter: &Asserter, token: &str) -> Value {
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::EdDSA);
    let set = asserter.jwks();
    let jwk = set
        .find(header.kid.as_deref().unwrap())
        .expect("kid published");
    let mut validation = Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_issuer(&["dispatch-authz-test"]);
    validation.set_audience(&["functions"]);
    jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
        .unwrap()
        .claims
}

struct World {
    subject: SubjectRef,
    org: OrgName,
    roles: Vec<RoleName>,
}

fn world() -> World {
    World {
        subject: SubjectRef::User(UserId::new()),
        org: OrgName::parse("acme").unwrap(),
        roles: vec![RoleName::parse("developer").unwrap()],
    }
}

fn alice<'a>(w: &'a World, request_id: &'a str) -> Assertion<'a> {
    Assertion {
        subject: w.subject,
        login: "alice".into(),
        source: "github",
        email: Some("alice@example.com"),
        org: Some(&w.org),
        roles: &w.roles,
        would_deny: None,
        request_id: Some(request_id),
    }
}

#[test]
fn the_token_carries_who_where_and_with_which_roles() {
    let signer = asserter(false, Duration::from_secs(300));
    let w = world();
    let token = signer.token(&alice(&w, "r-1")).unwrap();
    let claims = verify(&signer, &token);
    assert_eq!(claims["sub"], w.subject.id().to_string());
    assert_eq!(claims["kind"], "user");
    assert_eq!(claims["login"], "alice");
    assert_eq!(claims["idp"], "github");
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["org"], "acme");
    assert_eq!(claims["roles"], serde_json::json!(["developer"]));
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        300
    );
    assert!(
        claims.get("rid").is_none(),
        "a reused token names no request"
    );
}

#[test]
fn a_token_is_reused_per_subject_and_organization_until_its_claims_change() {
    let signer = asserter(false, Duration::from_secs(300));
    let w = world();
    let first = signer.token(&alice(&w, "r-1")).unwrap();
    assert!(Arc::ptr_eq(
        &first,
        &signer.token(&alice(&w, "r-2")).unwrap()
    ));

    let admin = [RoleName::parse("admin").unwrap()];
    let promoted = Assertion {
        roles: &admin,
        ..alice(&w, "r-3")
    };
    let again = signer.token(&promoted).unwrap();
    assert_ne!(first, again, "new roles, new token");
    assert_eq!(
        verify(&signer, &again)["roles"],
        serde_json::json!(["admin"])
    );

    let other = OrgName::parse("globex").unwrap();
    let elsewhere = signer
        .token(&Assertion {
            org: Some(&other),
            ..alice(&w, "r-4")
        })
        .unwrap();
    assert_eq!(verify(&signer, &elsewhere)["org"], "globex");
}

#[test]
fn a_reused_token_is_signed_again_after_half_its_life_or_a_rotation() {
    let signer = asserter(false, Duration::from_secs(1));
    let w = world();
    let first = signer.token(&alice(&w, "r-1")).unwrap();
    std::thread::sleep(Duration::from_millis(600));
    let later = signer.token(&alice(&w, "r-2")).unwrap();
    assert!(!Arc::ptr_eq(&first, &later), "less than half its life left");

    signer.rotate().unwrap();
    let rotated = signer.token(&alice(&w, "r-3")).unwrap();
    let kid = |t: &str| jsonwebtoken::decode_header(t).unwrap().kid.unwrap();
    assert_ne!(kid(&later), kid(&rotated));
    assert_eq!(kid(&rotated), signer.ring().current().0.kid());
    // Both still verify: the old key stays published.
    verify(&signer, &later);
    verify(&signer, &rotated);
}

#[test]
fn per_request_tokens_name_their_request() {
    let signer = asserter(true, Duration::from_secs(300));
    let w = world();
    let one = signer.token(&alice(&w, "r-1")).unwrap();
    let two = signer.token(&alice(&w, "r-2")).unwrap();
    assert_eq!(verify(&signer, &one)["rid"], "r-1");
    assert_eq!(verify(&signer, &two)["rid"], "r-2");
}
