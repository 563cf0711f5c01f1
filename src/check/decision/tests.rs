use super::*;
use crate::{
    domain::{OrgName, RoleName},
    store::fixtures,
};

fn octocat() -> Who {
    Who::User(Arc::new(fixtures::user("github", "583231", "octocat")))
}

fn ci() -> Who {
    Who::ServiceAccount(Arc::new(fixtures::account("acme", "ci")))
}

/// What `x-dispatch-user`, `x-dispatch-issuer` and the decision line
/// say of each kind of caller (found unchecked by cargo-mutants).
#[test]
fn a_caller_is_named_by_login_or_org_and_name_and_by_its_source() {
    let (user, account) = (octocat(), ci());
    assert_eq!((user.name().as_ref(), user.issuer()), ("octocat", "github"));
    assert_eq!(
        (account.name().as_ref(), account.issuer()),
        ("acme/ci", service_account::ISSUER_NAME)
    );
    assert_ne!(service_account::ISSUER_NAME, "");
}

/// The reason codes of decision lines, and whom a permit names.
#[test]
fn a_permit_names_its_caller_and_its_reason() {
    let allowed = Allowed {
        org: OrgName::parse("acme").unwrap(),
        roles: vec![RoleName::parse("developer").unwrap()],
        groups: Vec::new(),
    };
    let cases = [
        (
            Permit::Subject {
                who: octocat(),
                allowed: None,
            },
            "authenticated",
            Some("octocat"),
        ),
        (
            Permit::Subject {
                who: ci(),
                allowed: Some(allowed),
            },
            "role_granted",
            None,
        ),
        (Permit::PublicPath, "public_path", None),
        (
            Permit::WouldDeny {
                who: octocat(),
                denial: Denial::new(DenialKind::Forbidden, "no_role", "m"),
            },
            "no_role",
            Some("octocat"),
        ),
    ];
    for (permit, reason, user) in cases {
        assert_eq!(permit.reason(), reason);
        assert_eq!(permit.user().map(|u| u.login.as_str()), user, "{reason}");
        let named = permit.who().map(|w| w.name().into_owned());
        let want = match reason {
            "public_path" => None,
            "role_granted" => Some("acme/ci".to_owned()),
            _ => Some("octocat".to_owned()),
        };
        assert_eq!(named, want, "{reason}");
    }
}

#[test]
fn decision_ids_are_unique_and_fixed_width() {
    let (a, b) = (DecisionId::next(), DecisionId::next());
    let (a, b) = (a.to_string(), b.to_string());
    assert_ne!(a, b);
    assert_eq!(a.len(), DecisionId::LEN);
    assert_eq!(a[..9], b[..9], "one prefix per process");
    assert!(a.bytes().all(|c| c.is_ascii_hexdigit() || c == b'-'), "{a}");
    assert_eq!(DecisionId(0x1a2b).to_string()[9..], *"000000001a2b");
}

#[test]
fn denials_carry_the_right_status_headers_and_body() {
    let www = |kind, message: &str| {
        let d = Denial::new(kind, "r", message);
        let h = d.client_headers();
        let v = h
            .iter()
            .find(|(n, _)| *n == "www-authenticate")
            .map(|(_, v)| v.clone());
        (d.kind.http_status(), v)
    };
    let invalid_token = DenialKind::Unauthenticated {
        error: Some(BearerError::InvalidToken),
    };
    // Regression (issue 9, item 14): RFC 6750 §3.
    assert_eq!(
        www(invalid_token, r#"unsigned tokens (alg "none") are not accepted"#),
        (
            401,
            Some(
                r#"Bearer realm="dispatch", error="invalid_token", error_description="unsigned tokens (alg 'none') are not accepted""#
                    .into()
            )
        )
    );
    assert_eq!(
        www(DenialKind::Unauthenticated { error: None }, "no credential"),
        (401, Some(r#"Bearer realm="dispatch""#.into()))
    );
    let invalid_request = DenialKind::Unauthenticated {
        error: Some(BearerError::InvalidRequest),
    };
    assert_eq!(www(invalid_request, "x").0, 400);
    assert_eq!(description("a\\b\u{e9}\n"), "a/b??");

    let d = Denial::new(invalid_token, "token_expired", "token has expired");
    assert_eq!(d.body(), r#"{"code":401,"message":"token has expired"}"#);
    let unavailable = Denial::new(DenialKind::Unavailable, "r", "m").client_headers();
    assert!(unavailable.contains(&("retry-after", "5".to_owned())));
    assert_eq!(DenialKind::Forbidden.http_status(), 403);
}
