//! The check pipeline: request → decision.
//!
//! Phases (`phases.rs`), each one rule and one function returning
//! `Result<_, Denial>`, chained with `?` in [`Checker::check`]:
//! 1. **route**: a path that could be read two ways, or a refused method
//!    override, is a 400; a public path passes without a credential;
//! 2. **credential**: exactly one bearer token, from `Authorization` or the
//!    configured header or cookie;
//! 3. **identity**: the token verifies against a configured source (cached);
//! 4. **subject**: the principal is a known, enabled user, or the token is
//!    a service account's (both cached);
//! 5. **authorization** (RBAC mode): the request becomes `(org, resource,
//!    action)` and one of the subject's roles must grant it there (cached
//!    grants; `policy::authorize`). In `registered` mode step 4 suffices;
//! 6. **allow**: the permit's upstream headers (`upstream.rs`), so the
//!    [`Decision`] is the final answer a front end only translates.
//!
//! **Invariant:** every path out of [`Checker::check`] is a [`Decision`];
//! there is no error type. An internal failure is a 503 denial.

pub mod decision;
mod log;
pub mod method;
mod phases;
pub mod request;
pub mod upstream;

use std::{sync::Arc, task::Poll, time::Duration};

use tracing::{Instrument, debug_span};

pub use decision::{BearerError, Decision, Denial, DenialKind, Permit, UpstreamHeaders, Who};
pub use method::MethodOverride;
pub use request::{ClientHeaders, CredentialSettings, RequestView};
pub use upstream::UpstreamRules;

use log::{Seen, log_decision};
use phases::Route;

use crate::{
    directory::Directory,
    identity::IdentityVerifier,
    policy::{PublicPaths, RouteMap, rbac::Grants},
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
            let decision = within(budget, async {
                match self.decide(request, &mut seen).await {
                    Ok(permit) => self.allow(permit, request),
                    Err(denial) => Decision::Deny(denial),
                }
            })
            .await;
            log_decision(request, &seen, &decision);
            decision
        }
        .instrument(span)
        .await
    }

    /// The phases in order; the first denial ends the check.
    async fn decide(&self, request: &RequestView<'_>, seen: &mut Seen) -> Result<Permit, Denial> {
        let Route::Protected { method, resource } = self.route(request)? else {
            return Ok(Permit::PublicPath);
        };
        let token = self.credential(&request.headers)?;
        let identity = self.verify(token).await?;
        seen.principal = Some(identity.principal.clone());
        let who = self.subject(&identity, seen).await?;
        let allowed = match &self.authorization {
            Authorization::Registered => None,
            Authorization::Rbac(_) => Some(self.authorize(request, &method, resource, &who).await?),
        };
        Ok(Permit::Subject { who, allowed })
    }

    /// The last phase: what the allow does to the upstream request.
    fn allow(&self, permit: Permit, request: &RequestView<'_>) -> Decision {
        let upstream = self
            .rules
            .upstream
            .headers(&permit, request, &self.rules.credentials);
        Decision::Allow { permit, upstream }
    }

    /// The admin API's way in: the same credential rules, sources and
    /// caches as Check, ending in the caller's grants instead of a request
    /// decision.
    pub async fn authenticate(&self, headers: &ClientHeaders<'_>) -> Result<Caller, Denial> {
        let token = self.credential(headers)?;
        let identity = self.verify(token).await?;
        let who = self.subject(&identity, &mut Seen::default()).await?;
        let grants = self.grants(&who).await?;
        Ok(Caller { who, grants })
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

fn deny(kind: DenialKind, reason: &'static str, message: impl ToString) -> Decision {
    Decision::Deny(phases::denial(kind, reason, message))
}
