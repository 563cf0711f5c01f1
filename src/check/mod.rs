//! The check pipeline: request → decision.
//!
//! Phases, each with one rule (Authorino's shape):
//! 1. **path**: a path that could be read two ways is refused; a public path
//!    passes without a credential;
//! 2. **credential**: exactly one bearer token, from `Authorization` or the
//!    configured cookie;
//! 3. **identity**: the token verifies against a configured issuer (cached);
//! 4. **subject**: the principal is a known, enabled user, or the token is
//!    a service account's (both cached);
//! 5. **authorization** (RBAC mode): the request becomes `(org, resource,
//!    action)` and one of the subject's roles must grant it there (cached
//!    grants; see `policy::rbac`). In `registered` mode step 4 suffices.
//!
//! **Invariant:** every path out of [`Checker::check`] is a [`Decision`];
//! there is no error type. An internal failure is a 503 denial.

pub mod decision;
mod log;
pub mod method;
pub mod request;
pub mod upstream;

use std::{sync::Arc, task::Poll, time::Duration};

use tracing::{Instrument, debug_span, error, info};

pub use decision::{BearerError, Decision, Denial, DenialKind, Permit, Who};
pub use method::MethodOverride;
pub use request::{ClientHeaders, CredentialSettings, RequestView};
pub use upstream::{UpstreamHeaders, UpstreamRules};

use log::{Seen, log_decision};

use crate::{
    directory::Directory,
    domain::{OrgName, SubjectRef},
    identity::{IdentityVerifier, TokenError, VerifiedIdentity},
    policy::{
        self, Action, PublicPaths, RequestPath, RouteMap, Target,
        rbac::{Grants, Refused},
    },
    store::User,
};

/// What an allowed identity needs beyond being known.
#[derive(Debug, Clone)]
pub enum Authorization {
    /// Any enabled, registered subject is allowed (no roles consulted).
    Registered,
    /// A role must grant `(resource, action)` in the organization, with
    /// resources from this route map.
    Rbac(RouteMap),
}

/// An authenticated admin API caller.
pub struct Caller {
    pub who: Who,
    pub grants: Arc<Grants>,
}

/// How requests are read and what an allow passes on: configuration of the
/// phases that need no identity.
#[derive(Debug, Clone)]
pub struct RequestRules {
    pub public: PublicPaths,
    pub credentials: CredentialSettings,
    pub upstream: UpstreamRules,
    pub method_override: MethodOverride,
    /// A check's time budget when the caller states none. An answer after
    /// the caller's timeout is a transport error to Envoy, which
    /// `failure_mode_allow: true` turns into an allow: so a check that
    /// cannot decide in time answers a 503 denial instead.
    pub default_budget: Duration,
}

pub struct Checker {
    identity: IdentityVerifier,
    directory: Directory,
    rules: RequestRules,
    authorization: Authorization,
}

impl Checker {
    pub fn new(
        identity: IdentityVerifier,
        directory: Directory,
        rules: RequestRules,
        authorization: Authorization,
    ) -> Self {
        Self {
            identity,
            directory,
            rules,
            authorization,
        }
    }

    /// What an allow does to the upstream request.
    pub fn upstream_headers(&self, permit: &Permit, request: &RequestView<'_>) -> UpstreamHeaders {
        self.rules
            .upstream
            .headers(permit, request, &self.rules.credentials)
    }

    pub fn directory(&self) -> &Directory {
        &self.directory
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
            let budget = request.budget.unwrap_or(self.rules.default_budget);
            let decision = within(budget, self.decide(request, &mut seen)).await;
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
        let method = match self.rules.method_override.effective(request) {
            Ok(method) => method,
            Err(e) => return deny(DenialKind::InvalidRequest, e.code(), e),
        };
        let routes = match &self.authorization {
            Authorization::Registered => None,
            Authorization::Rbac(routes) => Some(routes),
        };
        let resource = match policy::target(&path, request.host, &self.rules.public, routes) {
            Ok(Target::Public) => return Decision::Allow(Permit::PublicPath),
            Ok(Target::Resource(resource)) => resource,
            Err(e) => return deny(DenialKind::InvalidRequest, "ambiguous_path", e),
        };
        let token = match request::bearer_token(&request.headers, &self.rules.credentials) {
            Ok(token) => token,
            Err(e) => return deny(e.kind(), e.code(), e),
        };
        let identity = match self.identity.verify(token).await {
            Ok(identity) => identity,
            Err(e) => return deny(token_denial(&e), e.code(), e),
        };
        seen.principal = Some(identity.principal.clone());
        let who = match self.subject(&identity, seen).await {
            Ok(who) => who,
            Err(denial) => return Decision::Deny(denial),
        };
        if routes.is_none() {
            return Decision::Allow(Permit::Subject { who, allowed: None });
        }
        match self.authorize(request, &method, resource, &who).await {
            Ok(allowed) => Decision::Allow(Permit::Subject {
                who,
                allowed: Some(allowed),
            }),
            Err(denial) => Decision::Deny(denial),
        }
    }

    /// The admin API's way in: the same credential rules, sources and
    /// caches as Check, ending in the caller's grants instead of a request
    /// decision.
    pub async fn authenticate(&self, headers: &ClientHeaders<'_>) -> Result<Caller, Denial> {
        let token = request::bearer_token(headers, &self.rules.credentials)
            .map_err(|e| denial(e.kind(), e.code(), e))?;
        let identity = self
            .identity
            .verify(token)
            .await
            .map_err(|e| denial(token_denial(&e), e.code(), e))?;
        let who = self.subject(&identity, &mut Seen::default()).await?;
        let grants = self.grants(&who).await?;
        Ok(Caller { who, grants })
    }

    /// The subject's memberships and roles (cached).
    async fn grants(&self, who: &Who) -> Result<Arc<Grants>, Denial> {
        self.directory
            .grants
            .get(who.subject())
            .await
            .map_err(|e| store_unavailable(&e))
    }

    /// Step 4: the verified identity as a known, enabled subject.
    async fn subject(&self, identity: &VerifiedIdentity, seen: &mut Seen) -> Result<Who, Denial> {
        if let Some(account) = &identity.service_account {
            seen.subject = Some(SubjectRef::ServiceAccount(account.id));
            if !account.enabled {
                return Err(denial(
                    DenialKind::Forbidden,
                    "subject_disabled",
                    "service account is disabled",
                ));
            }
            return Ok(Who::ServiceAccount(account.clone()));
        }
        match self.directory.users.find(&identity.principal).await {
            Ok(Some(user)) => {
                seen.subject = Some(SubjectRef::User(user.id));
                if !user.enabled {
                    return Err(denial(
                        DenialKind::Forbidden,
                        "user_disabled",
                        "user is disabled",
                    ));
                }
                Ok(Who::User(self.sync_login(user, identity).await))
            }
            Ok(None) => Err(denial(
                DenialKind::Forbidden,
                "unknown_user",
                "user is not registered with dispatch",
            )),
            Err(e) => Err(store_unavailable(&e)),
        }
    }

    /// Step 5: `(org, resource, action)`, decided by the subject's roles.
    async fn authorize(
        &self,
        request: &RequestView<'_>,
        method: &str,
        resource: Option<&str>,
        who: &Who,
    ) -> Result<crate::policy::rbac::Allowed, Denial> {
        let Some(action) = Action::from_method(method) else {
            return Err(denial(
                DenialKind::Forbidden,
                "method_not_mapped",
                "the request method has no action in the authorization model",
            ));
        };
        let Some(resource) = resource else {
            return Err(denial(
                DenialKind::Forbidden,
                "unmatched_route",
                "no route maps this path to a resource",
            ));
        };
        let org = requested_org(request)?;
        let grants = self.grants(who).await?;
        let allowed = grants
            .decide(org.as_ref(), resource, action)
            .map_err(|refused| denial(DenialKind::Forbidden, refused_code(&refused), refused))?;
        // A member's organization exists (memberships go with it); a global
        // role reaches any name, so the name must be one we know, or the
        // upstream would be told a verified organization that is not there.
        if !grants.member_of.contains(&allowed.org) {
            match self.directory.orgs.exists(&allowed.org).await {
                Ok(true) => {}
                Ok(false) => {
                    return Err(denial(
                        DenialKind::Forbidden,
                        "unknown_org",
                        format!("no organization {}", allowed.org),
                    ));
                }
                Err(e) => return Err(store_unavailable(&e)),
            }
        }
        Ok(allowed)
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
        match self.directory.users.update_login(&user, login).await {
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

/// `decide`, or a 503 denial once `budget` has passed. The timer is armed
/// only if the decision has to wait (a cache hit never does: measured, an
/// armed timer costs a sixth of a cache-hit check). Outbound calls (GitHub,
/// key fetches) run as tasks of their own and still fill the caches when
/// this gives up on them.
async fn within(budget: Duration, decide: impl Future<Output = Decision>) -> Decision {
    let mut decide = std::pin::pin!(decide);
    let first = std::future::poll_fn(|cx| Poll::Ready(decide.as_mut().poll(cx))).await;
    match first {
        Poll::Ready(decision) => decision,
        Poll::Pending => tokio::time::timeout(budget, decide)
            .await
            .unwrap_or_else(|_| {
                deny(
                    DenialKind::Unavailable,
                    "deadline_exceeded",
                    "authorization could not be decided in time; retry later",
                )
            }),
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
            error: Some(BearerError::InvalidToken),
        },
    }
}

fn deny(kind: DenialKind, reason: &'static str, message: impl ToString) -> Decision {
    Decision::Deny(denial(kind, reason, message))
}

fn denial(kind: DenialKind, reason: &'static str, message: impl ToString) -> Denial {
    Denial::new(kind, reason, message.to_string())
}

fn store_unavailable(e: &crate::store::StoreError) -> Denial {
    error!(error = %e, "store unavailable");
    denial(
        DenialKind::Unavailable,
        "store_unavailable",
        "authorization is temporarily unavailable; retry later",
    )
}

/// The organization the client asks for (`x-dispatch-org`), if any. Sent
/// twice, or not a valid name, it is refused rather than guessed at.
fn requested_org(request: &RequestView<'_>) -> Result<Option<OrgName>, Denial> {
    let mut values = request.headers.get_all(decision::names::ORG);
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() || value.contains(',') {
        return Err(denial(
            DenialKind::InvalidRequest,
            "ambiguous_org",
            "x-dispatch-org must be sent once, with one organization",
        ));
    }
    OrgName::parse(value).map(Some).map_err(|e| {
        denial(
            DenialKind::InvalidRequest,
            "invalid_org",
            format!("x-dispatch-org: {e}"),
        )
    })
}

fn refused_code(refused: &Refused) -> &'static str {
    match refused {
        Refused::Disabled => "subject_disabled",
        Refused::NoOrg => "no_org",
        Refused::NotAMember(_) => "not_a_member",
        Refused::NotGranted { .. } => "not_granted",
    }
}
