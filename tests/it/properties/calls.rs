//! The generated requests, and how Envoy would send them.

use std::collections::HashMap;
use std::sync::OnceLock;

use envoy_types::pb::envoy::service::auth::v3::{
    AttributeContext, CheckRequest,
    attribute_context::{HttpRequest, Request},
};
use proptest::prelude::*;

use super::world::{RESOURCES, USERS};
use crate::rbac::credential;

/// Who calls: a user of the world, a valid token of a subject nobody
/// registered, or no credential.
#[derive(Debug, Clone, Copy)]
pub(super) enum Who {
    User(usize),
    Stranger,
    Nobody,
}

#[derive(Debug, Clone)]
pub(super) struct Call {
    pub(super) who: Who,
    pub(super) method: String,
    pub(super) host: String,
    pub(super) path: String,
    /// Every header but the credential, as the client spelled it.
    pub(super) headers: Vec<(String, String)>,
}

pub(super) fn who() -> impl Strategy<Value = Who> {
    prop_oneof![
        6 => (0..USERS.len()).prop_map(Who::User),
        1 => Just(Who::Stranger),
        1 => Just(Who::Nobody),
    ]
}

pub(super) fn method() -> impl Strategy<Value = String> {
    const METHODS: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "get", "PROPFIND",
    ];
    prop::sample::select(&METHODS[..]).prop_map(str::to_owned)
}

/// Paths the oracle can read: the test's routes and the default map.
pub(super) fn plain_path() -> impl Strategy<Value = String> {
    let resource = prop::sample::select(&RESOURCES[..]);
    let id = prop::option::of("[a-z0-9]{1,6}");
    prop_oneof![
        (resource, id.clone()).prop_map(|(r, id)| match id {
            Some(id) => format!("/v1/{r}/{id}"),
            None => format!("/v1/{r}"),
        }),
        id.clone()
            .prop_map(|id| format!("/api/orders/{}", id.unwrap_or_default())),
        "[a-z]{1,6}".prop_map(|x| format!("/api/{x}")),
        Just("/healthz".to_owned()),
        Just("/v1/runs?functionName=f".to_owned()),
    ]
}

/// `name` in a spelling a client might use: any case, `_` for `-`.
pub(super) fn spelling(name: &'static str) -> impl Strategy<Value = String> {
    prop::collection::vec((any::<bool>(), any::<bool>()), name.len()).prop_map(move |flips| {
        name.chars()
            .zip(flips)
            .map(|(c, (upper, underscore))| match c {
                '-' if underscore => '_',
                c if upper => c.to_ascii_uppercase(),
                c => c,
            })
            .collect()
    })
}

pub(super) fn forged() -> impl Strategy<Value = (String, String)> {
    const NAMES: [&str; 6] = [
        "x-dispatch-user",
        "x-dispatch-roles",
        "x-dispatch-subject-kind",
        "x-dispatch-groups",
        "x-dispatch-identity",
        "x-dispatch-anything",
    ];
    let name = prop::sample::select(&NAMES[..]).prop_flat_map(spelling);
    (
        name,
        prop::sample::select(&["mallory", "admin", "acme", ""][..]),
    )
        .prop_map(|(n, v)| (n, v.to_owned()))
}

pub(super) fn call_with(path: impl Strategy<Value = String>) -> impl Strategy<Value = Call> {
    let org = prop::option::of((
        spelling("x-dispatch-org"),
        prop::sample::select(&["acme", "globex", "nope", "ACME"][..]),
    ));
    (
        who(),
        method(),
        prop::sample::select(&["api.test", "shop.test", "SHOP.test"][..]),
        path,
        org,
        prop::collection::vec(forged(), 0..4),
    )
        .prop_map(|(who, method, host, path, org, mut headers)| {
            if let Some((name, value)) = org {
                headers.push((name, value.to_owned()));
            }
            Call {
                who,
                method,
                host: host.to_owned(),
                path,
                headers,
            }
        })
}

/// One token per subject for the whole run (signing is the slow part).
pub(super) fn credential_of(who: Who) -> Option<String> {
    static TOKENS: OnceLock<std::sync::Mutex<HashMap<String, String>>> = OnceLock::new();
    let subject = match who {
        Who::User(u) => USERS[u],
        Who::Stranger => "stranger",
        Who::Nobody => return None,
    };
    let tokens = TOKENS.get_or_init(Default::default);
    let mut tokens = tokens.lock().unwrap();
    let token = tokens
        .entry(subject.to_owned())
        .or_insert_with(|| credential(subject));
    Some(format!("Bearer {token}"))
}

/// What Envoy sends: names lower-cased, repeated names joined with `,`.
pub(super) fn envoy_request(call: &Call) -> CheckRequest {
    let mut headers: HashMap<String, String> = HashMap::new();
    let credential = credential_of(call.who).map(|c| ("authorization".to_owned(), c));
    for (name, value) in call.headers.iter().cloned().chain(credential) {
        headers
            .entry(name.to_ascii_lowercase())
            .and_modify(|v| {
                v.push(',');
                v.push_str(&value)
            })
            .or_insert(value);
    }
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(Request {
                time: None,
                http: Some(HttpRequest {
                    id: "req-1".into(),
                    method: call.method.clone(),
                    path: call.path.clone(),
                    host: call.host.clone(),
                    scheme: "http".into(),
                    protocol: "HTTP/1.1".into(),
                    headers,
                    ..Default::default()
                }),
            }),
            ..Default::default()
        }),
    }
}
