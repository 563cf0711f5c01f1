//! The outcome of a check: a permit (as whom) or a denial (why, and what
//! the client is told). An allow carries the upstream headers its permit
//! produces (`upstream.rs`).
//!
//! Protocol-neutral: `server::grpc` turns a [`Decision`] into Envoy's
//! `CheckResponse`; a later HTTP mode turns it into a status and headers.

use std::{
    borrow::Cow,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
};

use super::text::HeaderText;
use crate::{
    domain::SubjectRef,
    identity::service_account,
    policy::rbac::Allowed,
    store::{ServiceAccount, User},
};

/// A decision and its id: what [`Checker::check`](super::Checker::check)
/// returns.
pub struct Checked {
    pub id: DecisionId,
    pub decision: Decision,
}

/// Names one decision, so that "who got this 403, and why" is one lookup:
/// in the decision line, Envoy's dynamic metadata (its access log) and a
/// denial's `x-dispatch-decision-id` header. A random prefix per process
/// (replicas differ) and a counter: unique without a UUID per check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecisionId(u64);

impl DecisionId {
    /// Hex: 8 digits of the process's prefix, `-`, 12 of the counter.
    pub const LEN: usize = 21;

    pub fn next() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        Self(NEXT.fetch_add(1, Ordering::Relaxed))
    }

    /// Written on the stack; `text` lives as long as the buffer.
    pub fn encode(self, buffer: &mut [u8; Self::LEN]) -> &str {
        let prefix = process_prefix();
        let digits = |mut value: u64, out: &mut [u8]| {
            for byte in out.iter_mut().rev() {
                *byte = b"0123456789abcdef"[(value & 0xf) as usize];
                value >>= 4;
            }
        };
        digits(u64::from(prefix), &mut buffer[..8]);
        buffer[8] = b'-';
        digits(self.0 & 0xffff_ffff_ffff, &mut buffer[9..]);
        std::str::from_utf8(buffer).unwrap_or_default()
    }
}

impl std::fmt::Display for DecisionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.encode(&mut [0; Self::LEN]))
    }
}

/// Random per process: the random bits of a UUIDv7.
fn process_prefix() -> u32 {
    static PREFIX: OnceLock<u32> = OnceLock::new();
    *PREFIX.get_or_init(|| uuid::Uuid::now_v7().as_u128() as u32)
}

/// The header a denial names its decision in.
pub const DECISION_ID_HEADER: &str = "x-dispatch-decision-id";

/// The final answer: a front end only translates it.
pub enum Decision {
    Allow {
        permit: Permit,
        upstream: UpstreamHeaders,
    },
    Deny(Denial),
}

/// What to do to the upstream request on an allow: headers to set
/// (overwriting any client copy) and client headers to remove.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UpstreamHeaders {
    pub set: Vec<(&'static str, HeaderText)>,
    /// Names exactly as the client sent them (lower-cased), never a name in
    /// `set`.
    pub remove: Vec<HeaderText>,
}

/// Why a request may pass, and as whom.
#[derive(Debug, Clone)]
pub enum Permit {
    /// A known, enabled subject presented a valid credential; with RBAC,
    /// `allowed` says in which organization and through which roles.
    Subject { who: Who, allowed: Option<Allowed> },
    /// The path is configured public; no identity is asserted.
    PublicPath,
    /// Dry-run (`dry_run.rs`): the roles refused this known subject, and
    /// the request passes all the same, marked.
    WouldDeny { who: Who, denial: Denial },
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

    /// The source that vouched for the caller (`x-dispatch-issuer`).
    pub fn issuer(&self) -> &str {
        match self {
            Self::User(u) => u.issuer.as_str(),
            Self::ServiceAccount(_) => service_account::ISSUER_NAME,
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
    /// A bearer token is needed. RFC 6750 §3.1: no error code when none
    /// was presented (no credential, another scheme); `invalid_request`
    /// (400) when the request carries one ambiguously or malformed;
    /// `invalid_token` (401) when the token was read and found wrong.
    Unauthenticated { error: Option<BearerError> },
    /// 403: valid credential, but not allowed.
    Forbidden,
    /// 400: the check request itself (or the checked path) is unusable.
    InvalidRequest,
    /// 503: we could not decide (database down). A denial, never an error
    /// Envoy could turn into an allow with `failure_mode_allow`.
    Unavailable,
}

/// RFC 6750's error codes for a bearer token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BearerError {
    InvalidRequest,
    InvalidToken,
}

impl BearerError {
    fn code(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidToken => "invalid_token",
        }
    }
}

/// Seconds a client should wait after a 503.
pub const RETRY_AFTER_SECS: u32 = 5;

impl DenialKind {
    pub fn http_status(self) -> u16 {
        match self {
            Self::Unauthenticated {
                error: Some(BearerError::InvalidRequest),
            } => 400,
            Self::Unauthenticated { .. } => 401,
            Self::Forbidden => 403,
            Self::InvalidRequest => 400,
            Self::Unavailable => 503,
        }
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

    /// Headers to send to the client with the denial.
    pub fn client_headers(&self) -> Vec<(&'static str, String)> {
        let mut headers = vec![
            ("content-type", "application/json".to_owned()),
            ("cache-control", "no-store".to_owned()),
        ];
        match self.kind {
            DenialKind::Unauthenticated { error: None } => {
                headers.push(("www-authenticate", r#"Bearer realm="dispatch""#.to_owned()))
            }
            DenialKind::Unauthenticated { error: Some(error) } => headers.push((
                "www-authenticate",
                format!(
                    r#"Bearer realm="dispatch", error="{}", error_description="{}""#,
                    error.code(),
                    description(&self.message)
                ),
            )),
            DenialKind::Unavailable => headers.push(("retry-after", RETRY_AFTER_SECS.to_string())),
            DenialKind::Forbidden | DenialKind::InvalidRequest => {}
        }
        headers
    }

    /// `{"code":401,"message":"..."}`, the body Dispatch's clients know.
    pub fn body(&self) -> String {
        serde_json::json!({ "code": self.kind.http_status(), "message": self.message }).to_string()
    }
}

/// RFC 6750's `error_description`: printable ASCII without `"` and `\\`.
fn description(message: &str) -> String {
    message
        .chars()
        .map(|c| match c {
            '"' => '\'',
            '\\' => '/',
            ' '..='~' => c,
            _ => '?',
        })
        .collect()
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
    /// Dry-run: the reason the request would have been refused.
    pub const DRY_RUN: &str = "x-dispatch-dry-run";
    /// The signed identity (`assertion`), when configured.
    pub const SIGNED_IDENTITY: &str = "x-dispatch-identity";
    /// The groups whose roles granted the request (`check.groups_header`).
    pub const GROUPS: &str = "x-dispatch-groups";

    /// Every name we may set: none of them can ever pass through from a
    /// client.
    pub const IDENTITY: &[&str] = &[
        USER,
        USER_ID,
        ISSUER,
        EMAIL,
        REQUEST_ID,
        SUBJECT_KIND,
        ORG,
        ROLES,
        DRY_RUN,
        SIGNED_IDENTITY,
        GROUPS,
    ];
}

impl Permit {
    pub fn who(&self) -> Option<&Who> {
        match self {
            Self::Subject { who, .. } | Self::WouldDeny { who, .. } => Some(who),
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
            Self::WouldDeny { denial, .. } => denial.reason,
        }
    }
}

#[cfg(test)]
mod tests;
