//! The check pipeline: request → decision.
//!
//! Phases, each with one rule (Authorino's shape):
//! 1. **path**: a path that could be read two ways is refused; a public path
//!    passes without a credential;
//! 2. **credential**: exactly one bearer token, from `Authorization` or the
//!    configured cookie;
//! 3. **identity**: the token verifies against a configured issuer (cached);
//! 4. **user**: the principal is a known, enabled user (cached).
//!
//! **Invariant:** every path out of [`Checker::check`] is a [`Decision`];
//! there is no error type. An internal failure is a 503 denial.

pub mod decision;
pub mod request;

use std::{borrow::Cow, sync::Arc};

use tracing::{Instrument, debug_span, error, info};

pub use decision::{Decision, Denial, DenialKind, Permit, UpstreamHeaders};
pub use request::{ClientHeaders, CredentialSettings, RequestView};

use crate::{
    domain::{Principal, UserId},
    identity::{IdentityVerifier, TokenError, VerifiedIdentity},
    policy::{PublicPaths, RequestPath},
    store::{User, UserCache},
};

pub struct Checker {
    identity: IdentityVerifier,
    users: UserCache,
    public: PublicPaths,
    credentials: CredentialSettings,
}

impl Checker {
    pub fn new(
        identity: IdentityVerifier,
        users: UserCache,
        public: PublicPaths,
        credentials: CredentialSettings,
    ) -> Self {
        Self {
            identity,
            users,
            public,
            credentials,
        }
    }

    /// Whether every identity source can verify tokens (remote keys fetched).
    pub fn is_ready(&self) -> bool {
        self.identity.is_ready()
    }

    pub fn identity(&self) -> &IdentityVerifier {
        &self.identity
    }

    /// Decides, and writes the one decision line for this request.
    pub async fn check(&self, request: &RequestView<'_>) -> Decision {
        // A debug-level span: at the default level the decision line carries
        // the request id itself, which spares formatting the span's fields
        // for every check (measured: a few µs per check with JSON logs).
        let span = debug_span!(
            "check",
            request_id = request.request_id.as_ref().map(|id| id.as_str())
        );
        async {
            let mut seen = Seen::default();
            let decision = self.decide(request, &mut seen).await;
            log_decision(request, &seen, &decision);
            decision
        }
        .instrument(span)
        .await
    }

    async fn decide(&self, request: &RequestView<'_>, seen: &mut Seen) -> Decision {
        let path = match RequestPath::parse(request.path) {
            Ok(path) => path,
            Err(e) => return deny(DenialKind::InvalidRequest, "ambiguous_path", e),
        };
        if self.public.is_public(&path) {
            return Decision::Allow(Permit::PublicPath);
        }
        let token = match request::bearer_token(&request.headers, &self.credentials) {
            Ok(token) => token,
            Err(e) => {
                let invalid_token = e != request::CredentialError::Missing;
                return deny(DenialKind::Unauthenticated { invalid_token }, e.code(), e);
            }
        };
        let identity = match self.identity.verify(token).await {
            Ok(identity) => identity,
            Err(e) => return deny(token_denial(&e), e.code(), e),
        };
        seen.principal = Some(identity.principal.clone());
        match self.users.find(&identity.principal).await {
            Ok(Some(user)) if user.enabled => {
                Decision::Allow(Permit::User(self.sync_login(user, &identity).await))
            }
            Ok(Some(user)) => {
                seen.user_id = Some(user.id);
                deny(DenialKind::Forbidden, "user_disabled", "user is disabled")
            }
            Ok(None) => deny(
                DenialKind::Forbidden,
                "unknown_user",
                "user is not registered with dispatch",
            ),
            Err(e) => {
                error!(
                    error = %e,
                    request_id = request.request_id.as_ref().map(|id| id.as_str()),
                    "user store unavailable"
                );
                deny(
                    DenialKind::Unavailable,
                    "store_unavailable",
                    "authorization is temporarily unavailable; retry later",
                )
            }
        }
    }

    /// A source that is authoritative for logins (GitHub) renamed the user:
    /// record it, so headers and logs show the current login. Same user, same
    /// id; only the display name changes. A failure here is logged, not fatal.
    async fn sync_login(&self, user: Arc<User>, identity: &VerifiedIdentity) -> Arc<User> {
        let Some(login) = identity
            .login
            .as_ref()
            .filter(|l| identity.login_is_authoritative && **l != user.login)
        else {
            return user;
        };
        match self.users.update_login(&user, login).await {
            Ok(updated) => {
                info!(user_id = %user.id, old = %user.login, new = %login, "login changed at the source");
                Arc::new(updated)
            }
            Err(e) => {
                error!(user_id = %user.id, error = %e, "could not record a changed login");
                user
            }
        }
    }
}

/// A provider outage is not the caller's fault: 503, like a database fault.
fn token_denial(e: &TokenError) -> DenialKind {
    match e {
        TokenError::KeysUnavailable | TokenError::ProviderUnavailable { .. } => {
            DenialKind::Unavailable
        }
        TokenError::NotAuthorized(_) => DenialKind::Forbidden,
        _ => DenialKind::Unauthenticated {
            invalid_token: true,
        },
    }
}

fn deny(kind: DenialKind, reason: &'static str, message: impl ToString) -> Decision {
    Decision::Deny(Denial::new(kind, reason, message.to_string()))
}

/// Client input as it may appear in a log line: control characters escaped,
/// and no copy in the common case that there are none.
fn loggable(value: &str) -> Cow<'_, str> {
    if value.chars().any(char::is_control) {
        Cow::Owned(value.escape_debug().to_string())
    } else {
        Cow::Borrowed(value)
    }
}

/// Who a denied request turned out to be, as far as the pipeline got: for
/// the decision line.
#[derive(Default)]
struct Seen {
    principal: Option<Arc<Principal>>,
    user_id: Option<UserId>,
}

fn log_decision(request: &RequestView<'_>, seen: &Seen, decision: &Decision) {
    // The path is logged without its query (which may carry secrets), and
    // method and path with control characters escaped: both are client input.
    let path = loggable(request.path.split(['?', '#']).next().unwrap_or_default());
    let method = loggable(request.method);
    let issuer = seen.principal.as_ref().map(|p| p.issuer.as_str());
    let request_id = request.request_id.as_ref().map(|id| id.as_str());
    match decision {
        Decision::Allow(permit) => {
            let user = permit.user();
            info!(
                decision = "allow",
                reason = permit.reason(),
                user_id = user.map(|u| tracing::field::display(u.id)),
                login = user.map(|u| u.login.as_str()),
                issuer,
                %method,
                %path,
                request_id,
                "decision"
            );
        }
        Decision::Deny(denial) => info!(
            decision = "deny",
            reason = denial.reason,
            status = denial.kind.http_status(),
            user_id = seen.user_id.map(tracing::field::display),
            issuer,
            %method,
            %path,
            request_id,
            detail = %denial.message,
            "decision"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::loggable;

    #[test]
    fn client_input_is_escaped_for_logs_only_when_needed() {
        assert_eq!(loggable("/v1/function"), "/v1/function");
        assert!(matches!(loggable("/a"), std::borrow::Cow::Borrowed(_)));
        assert_eq!(loggable("/a\n{\"forged\":1}"), "/a\\n{\\\"forged\\\":1}");
    }
}
