//! The outcome of a check, and the headers it puts on the upstream request.
//!
//! Protocol-neutral: `server::grpc` turns a [`Decision`] into Envoy's
//! `CheckResponse`; a later HTTP mode turns it into a status and headers.

use std::{borrow::Cow, sync::Arc};

use super::request::RequestView;
use crate::{
    domain::SubjectRef,
    identity::service_account,
    policy::rbac::Allowed,
    store::{ServiceAccount, User},
};

pub enum Decision {
    Allow(Permit),
    Deny(Denial),
}

/// Why a request may pass, and as whom.
#[derive(Debug, Clone)]
pub enum Permit {
    /// A known, enabled subject presented a valid credential; with RBAC,
    /// `allowed` says in which organization and through which roles.
    Subject { who: Who, allowed: Option<Allowed> },
    /// The path is configured public; no identity is asserted.
    PublicPath,
}

/// The verified caller.
#[derive(Debug, Clone)]
pub enum Who {
    User(Arc<User>),
    ServiceAccount(Arc<ServiceAccount>),
}

impl Who {
    pub fn subject(&self) -> SubjectRef {
        match self {
            Self::User(u) => SubjectRef::User(u.id),
            Self::ServiceAccount(a) => SubjectRef::ServiceAccount(a.id),
        }
    }

    /// The display name (`x-dispatch-user`): a login, or `<org>/<name>`.
    pub fn name(&self) -> Cow<'_, str> {
        match self {
            Self::User(u) => Cow::Borrowed(u.login.as_str()),
            Self::ServiceAccount(a) => Cow::Owned(a.issuer()),
        }
    }
}

/// Why a request was refused. `message` is shown to the client and must not
/// carry secrets; `reason` is a stable code for logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub kind: DenialKind,
    pub reason: &'static str,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenialKind {
    /// Answered with 401; `invalid_token` when a credential was presented
    /// and found wrong (RFC 6750 `error="invalid_token"`), not just absent.
    Unauthenticated { invalid_token: bool },
    /// 403: valid credential, but not allowed.
    Forbidden,
    /// 400: the check request itself (or the checked path) is unusable.
    InvalidRequest,
    /// 503: we could not decide (database down). A denial, never an error
    /// Envoy could turn into an allow with `failure_mode_allow`.
    Unavailable,
}

/// Seconds a client should wait after a 503.
pub const RETRY_AFTER_SECS: u32 = 5;

impl DenialKind {
    pub fn http_status(self) -> u16 {
        match self {
            Self::Unauthenticated { .. } => 401,
            Self::Forbidden => 403,
            Self::InvalidRequest => 400,
            Self::Unavailable => 503,
        }
    }

    /// Headers to send to the client with the denial.
    pub fn client_headers(self) -> Vec<(&'static str, String)> {
        let mut headers = vec![
            ("content-type", "application/json".to_owned()),
            ("cache-control", "no-store".to_owned()),
        ];
        match self {
            Self::Unauthenticated {
                invalid_token: true,
            } => headers.push((
                "www-authenticate",
                r#"Bearer realm="dispatch", error="invalid_token""#.to_owned(),
            )),
            Self::Unauthenticated {
                invalid_token: false,
            } => headers.push(("www-authenticate", r#"Bearer realm="dispatch""#.to_owned())),
            Self::Unavailable => headers.push(("retry-after", RETRY_AFTER_SECS.to_string())),
            Self::Forbidden | Self::InvalidRequest => {}
        }
        headers
    }
}

impl Denial {
    pub fn new(kind: DenialKind, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind,
            reason,
            message: message.into(),
        }
    }

    /// `{"code":401,"message":"..."}`, the body Dispatch's clients know.
    pub fn body(&self) -> String {
        serde_json::json!({ "code": self.kind.http_status(), "message": self.message }).to_string()
    }
}

/// The headers we inject. Every name is in the `x-dispatch-` namespace.
pub mod names {
    pub const USER: &str = "x-dispatch-user";
    pub const USER_ID: &str = "x-dispatch-user-id";
    pub const ISSUER: &str = "x-dispatch-issuer";
    pub const EMAIL: &str = "x-dispatch-email";
    pub const REQUEST_ID: &str = "x-dispatch-request-id";
    pub const SUBJECT_KIND: &str = "x-dispatch-subject-kind";
    pub const ORG: &str = "x-dispatch-org";
    pub const ROLES: &str = "x-dispatch-roles";
}

/// What to do to the upstream request on an allow: headers to set
/// (overwriting any client copy) and client headers to remove.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UpstreamHeaders {
    pub set: Vec<(&'static str, String)>,
    /// Every `x-dispatch-*` name the client sent that is not in `set`:
    /// Envoy applies removals after sets, so a name in both would vanish.
    pub remove: Vec<String>,
}

impl Permit {
    pub fn upstream_headers(&self, request: &RequestView<'_>) -> UpstreamHeaders {
        let mut set = Vec::with_capacity(8);
        if let Self::Subject { who, allowed } = self {
            set.push((names::USER, who.name().into_owned()));
            set.push((names::USER_ID, who.subject().id().to_string()));
            match who {
                Who::User(user) => {
                    set.push((names::ISSUER, user.issuer.to_string()));
                    if let Some(email) = &user.email {
                        set.push((names::EMAIL, email.to_string()));
                    }
                }
                Who::ServiceAccount(_) => {
                    set.push((names::ISSUER, service_account::ISSUER_NAME.to_owned()))
                }
            }
            set.push((names::SUBJECT_KIND, who.subject().kind().to_owned()));
            if let Some(allowed) = allowed {
                set.push((names::ORG, allowed.org.to_string()));
                let roles: Vec<&str> = allowed.roles.iter().map(|r| r.as_str()).collect();
                set.push((names::ROLES, roles.join(",")));
            }
        }
        if let Some(id) = &request.request_id {
            set.push((names::REQUEST_ID, id.to_string()));
        }
        let remove = request
            .headers
            .dispatch_names()
            .into_iter()
            .filter(|name| !set.iter().any(|(n, _)| n == name))
            .map(str::to_owned)
            .collect();
        UpstreamHeaders { set, remove }
    }

    pub fn who(&self) -> Option<&Who> {
        match self {
            Self::Subject { who, .. } => Some(who),
            Self::PublicPath => None,
        }
    }

    pub fn user(&self) -> Option<&User> {
        match self.who() {
            Some(Who::User(user)) => Some(user),
            _ => None,
        }
    }

    pub fn reason(&self) -> &'static str {
        match self {
            Self::Subject { allowed: None, .. } => "authenticated",
            Self::Subject {
                allowed: Some(_), ..
            } => "role_granted",
            Self::PublicPath => "public_path",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        check::request::ClientHeaders,
        domain::{Email, IssuerName, Login, OrgName, RequestId, RoleName, Subject, UserId},
    };

    fn user() -> Arc<User> {
        Arc::new(User {
            id: UserId::new(),
            issuer: IssuerName::parse("dex").unwrap(),
            subject: Subject::parse("1").unwrap(),
            login: Login::parse("octocat").unwrap(),
            email: Some(Email::parse("octo@example.com").unwrap()),
            display_name: None,
            enabled: true,
            created_at: 0,
            updated_at: 0,
        })
    }

    fn request<'a>(headers: &[(&'a str, &'a str)]) -> RequestView<'a> {
        RequestView {
            method: "GET",
            host: "api.example.com",
            path: "/",
            request_id: RequestId::parse("req-1"),
            headers: ClientHeaders::new(headers.iter().copied()),
        }
    }

    #[test]
    fn an_allowed_user_gets_our_headers_and_forgeries_removed() {
        let u = user();
        let req = request(&[
            ("x-dispatch-user", "mallory"),
            ("x-dispatch-user-id", "0"),
            ("x-dispatch-org", "evil"),
            ("X-Dispatch-Admin", "true"),
        ]);
        let permit = Permit::Subject {
            who: Who::User(u.clone()),
            allowed: None,
        };
        let h = permit.upstream_headers(&req);
        assert_eq!(
            h.set,
            vec![
                (names::USER, "octocat".to_owned()),
                (names::USER_ID, u.id.to_string()),
                (names::ISSUER, "dex".to_owned()),
                (names::EMAIL, "octo@example.com".to_owned()),
                (names::SUBJECT_KIND, "user".to_owned()),
                (names::REQUEST_ID, "req-1".to_owned()),
            ]
        );
        assert_eq!(h.remove, ["x-dispatch-admin", "x-dispatch-org"]);

        let permit = Permit::Subject {
            who: Who::User(u.clone()),
            allowed: Some(Allowed {
                org: OrgName::parse("acme").unwrap(),
                roles: vec![
                    RoleName::parse("builder").unwrap(),
                    RoleName::parse("viewer").unwrap(),
                ],
            }),
        };
        let h = permit.upstream_headers(&req);
        assert!(h.set.contains(&(names::ORG, "acme".to_owned())));
        assert!(h.set.contains(&(names::ROLES, "builder,viewer".to_owned())));
        assert_eq!(
            h.remove,
            ["x-dispatch-admin"],
            "a set name is never removed"
        );
    }

    #[test]
    fn a_public_path_asserts_no_identity_and_strips_forgeries() {
        let req = request(&[
            ("x-dispatch-user", "mallory"),
            ("x-dispatch-request-id", "f"),
        ]);
        let h = Permit::PublicPath.upstream_headers(&req);
        assert_eq!(h.set, vec![(names::REQUEST_ID, "req-1".to_owned())]);
        assert_eq!(h.remove, ["x-dispatch-user"]);
    }

    #[test]
    fn without_a_request_id_a_forged_one_is_removed() {
        let mut req = request(&[("x-dispatch-request-id", "forged")]);
        req.request_id = None;
        let h = Permit::PublicPath.upstream_headers(&req);
        assert!(h.set.is_empty());
        assert_eq!(h.remove, ["x-dispatch-request-id"]);
    }

    #[test]
    fn denials_carry_the_right_status_headers_and_body() {
        let d = Denial::new(
            DenialKind::Unauthenticated {
                invalid_token: true,
            },
            "token_expired",
            "token has expired",
        );
        assert_eq!(d.kind.http_status(), 401);
        assert_eq!(d.body(), r#"{"code":401,"message":"token has expired"}"#);
        assert!(d.kind.client_headers().contains(&(
            "www-authenticate",
            r#"Bearer realm="dispatch", error="invalid_token""#.to_owned()
        )));
        let unavailable = DenialKind::Unavailable.client_headers();
        assert!(unavailable.contains(&("retry-after", "5".to_owned())));
        assert_eq!(DenialKind::Forbidden.http_status(), 403);
    }
}
