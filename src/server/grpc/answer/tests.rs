use std::sync::Arc;

use envoy_types::ext_authz::v3::pb::CheckResponse;
use prost::Message;

use super::Answer;
use crate::{
    check::{Checked, Decision, DecisionId, Permit, UpstreamHeaders, Who},
    domain::{Email, OrgName, RoleName},
    policy::rbac::Allowed,
    server::grpc::check_response,
    store::{User, fixtures},
};

fn user(login: &str, email: Option<&str>) -> Who {
    Who::User(Arc::new(User {
        email: email.map(|e| Email::parse(e).unwrap()),
        ..fixtures::user("dex", "1", login)
    }))
}

fn account() -> Who {
    Who::ServiceAccount(Arc::new(fixtures::account("acme", "ci")))
}

fn allowed(org: &str, roles: &[&str]) -> Option<Allowed> {
    Some(Allowed {
        org: OrgName::parse(org).unwrap(),
        roles: roles.iter().map(|r| RoleName::parse(r).unwrap()).collect(),
        groups: Vec::new(),
    })
}

fn headers(set: &[(&'static str, &str)], remove: &[&str]) -> UpstreamHeaders {
    UpstreamHeaders {
        set: set
            .iter()
            .map(|(k, v)| (*k, (*v).to_owned().into()))
            .collect(),
        remove: remove.iter().map(|n| (*n).to_owned().into()).collect(),
    }
}

/// The hand-written encoding decodes to exactly what envoy-types' structs
/// say, for every shape of allow: users with and without email, a service
/// account, a public path (no metadata), no headers at all, removals, empty
/// and long values (lengths over 127 take two varint bytes, over 16,383
/// three), and non-ASCII text.
#[test]
fn every_allow_decodes_to_the_struct_built_answer() {
    let long = "r".repeat(200);
    let huge = "h".repeat(20_000);
    let cases = [
        (
            Permit::Subject {
                who: user("octocat", Some("octo@example.com")),
                allowed: allowed("acme", &["developer", "viewer"]),
            },
            headers(
                &[
                    ("x-dispatch-user", "octocat"),
                    ("x-dispatch-roles", "developer,viewer"),
                ],
                &["x-dispatch-forged", "authorization"],
            ),
        ),
        (
            Permit::Subject {
                who: user("octocat", None),
                allowed: None,
            },
            headers(&[("x-dispatch-user", "octocat"), ("cookie", "")], &[]),
        ),
        (
            Permit::Subject {
                who: account(),
                allowed: allowed("acme", &["builder"]),
            },
            headers(&[("x-dispatch-roles", &long), ("x-big", &huge)], &[&long]),
        ),
        (Permit::PublicPath, headers(&[], &[])),
        (
            Permit::PublicPath,
            headers(&[("x-request-id", "é✓😀")], &["x_dispatch_user"]),
        ),
    ];
    for (i, (permit, upstream)) in cases.into_iter().enumerate() {
        let id = DecisionId::next();
        let answer = Answer::allow(&permit, &upstream, id);
        assert_eq!(answer.encoded_len(), answer.bytes().len());
        let decoded =
            CheckResponse::decode(answer.bytes()).unwrap_or_else(|e| panic!("case {i}: {e}"));
        let decision = Decision::Allow { permit, upstream };
        let expected = check_response(Checked { id, decision });
        assert_eq!(decoded, expected, "case {i}");
    }
}
