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
//! Steps 3–5 are looked up first in the token's settled entry
//! (`settled.rs`): a fresh one answers the check without an `.await`; the
//! phases run (boxed) only when it is missing, stale or expired, and settle
//! the token again.
//!
//! **Invariant:** every path out of [`Checker::check`] is a [`Decision`];
//! there is no error type. An internal failure is a 503 denial.

pub mod decision;
pub mod dry_run;
pub mod explain;
mod live;
mod log;
pub mod method;
mod phases;
pub mod request;
mod settled;
mod state;
mod text;
pub mod upstream;

use std::{
    borrow::Cow,
    num::NonZeroU32,
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    task::Poll,
    time::Duration,
};

use tracing::{Instrument, debug_span};

pub use decision::{
    BearerError, Checked, DECISION_ID_HEADER, Decision, DecisionId, Denial, DenialKind, Permit,
    UpstreamHeaders, Who,
};
pub use dry_run::DryRun;
pub use explain::{ExplainAs, Explanation, Step};
pub use live::{Live, Replicas};
pub use method::MethodOverride;
pub use request::{ClientHeaders, CredentialSettings, Removals, RequestView};
pub use settled::SettledCache;
pub use state::Readiness;
pub use text::HeaderText;
pub use upstream::UpstreamRules;

use log::{Seen, log_decision};
use phases::Route;
use settled::{Lookup, Stamps, TokenKey};

use crate::{
    assertion::Asserter,
    directory::Directory,
    identity::{IdentityVerifier, TokenStamp, VerifiedIdentity},
    policy::{PublicPaths, RouteMap, rbac::Grants},
    telemetry::{self, metrics},
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
    /// Write the decision line of one allow in this many (`log.sample_allows`,
    /// 1 by default: every one; `None`: none). Denials always get theirs.
    pub allow_lines_every: Option<NonZeroU32>,
    /// Where the roles' refusals are let through, marked (`dry_run.rs`).
    pub dry_run: DryRun,
    /// Signs `x-dispatch-identity` for every allowed subject, when set.
    pub signed_identity: Option<Arc<Asserter>>,
}

pub struct Checker {
    identity: Arc<IdentityVerifier>,
    directory: Directory,
    settled: Arc<SettledCache>,
    rules: RequestRules,
    authorization: Authorization,
    /// Allows so far, for `allow_lines_every`.
    allows: AtomicU32,
}

/// Where the settled path left off: what the full pipeline goes on from.
struct Unsettled<'a> {
    method: Cow<'a, str>,
    resource: Option<&'a str>,
    token: &'a str,
    key: TokenKey,
    /// The token's identity, when only the subject's part was old.
    verified: Option<(Arc<VerifiedIdentity>, TokenStamp)>,
    /// A fresh entry whose role is global and whose organization is not
    /// one of the subject's: whether that organization exists is all that
    /// is left to ask.
    foreign: Option<Box<(Who, Arc<Grants>, phases::Asked<'a>)>>,
}

impl Checker {
    pub fn new(
        identity: IdentityVerifier,
        directory: Directory,
        settled: SettledCache,
        rules: RequestRules,
        authorization: Authorization,
    ) -> Self {
        Self {
            identity: Arc::new(identity),
            directory,
            settled: Arc::new(settled),
            rules,
            authorization,
            allows: AtomicU32::new(0),
        }
    }

    /// Decides, and writes the one decision line for this request.
    pub async fn check(&self, request: &RequestView<'_>) -> Checked {
        let started = std::time::Instant::now();
        let id = DecisionId::next();
        // A debug-level span: at the default level the decision line carries
        // the request id itself, which spares formatting the span's fields
        // for every check (measured: a few µs per check with JSON logs).
        // With traces exported it is enabled, continues the caller's trace
        // and gets the outcome as attributes.
        let span = debug_span!(
            "check",
            request_id = request.request_id.as_ref().map(|id| id.as_str()),
            decision = tracing::field::Empty,
            reason = tracing::field::Empty,
            subject_id = tracing::field::Empty,
            org = tracing::field::Empty,
        );
        if !span.is_disabled()
            && let Some((name, value)) = request.trace_parent()
        {
            telemetry::trace::continue_trace(&span, name, value);
        }
        let mut seen = Seen::default();
        let decision = match span.in_scope(|| self.settled(request, &mut seen)) {
            Ok(decision) => decision,
            Err(rest) => {
                let budget = request.budget.unwrap_or(self.rules.default_budget);
                // Boxed: the full pipeline's future is large, and the
                // settled path should not carry (and copy) it.
                let full = within(budget, async {
                    match self.decide(request, rest, &mut seen).await {
                        Ok(permit) => self.allow(permit, request),
                        Err(denial) => Decision::Deny(denial),
                    }
                });
                Box::pin(full.instrument(span.clone())).await
            }
        };
        let decision = self.dry_run(decision, request, &mut seen);
        let every = self.rules.allow_lines_every;
        let always = matches!(
            decision,
            Decision::Deny(_)
                | Decision::Allow {
                    permit: Permit::WouldDeny { .. },
                    ..
                }
        );
        if always || every.is_some_and(|every| self.allow_line_due(every)) {
            let sampled = every.map(NonZeroU32::get).filter(|n| *n > 1);
            span.in_scope(|| log_decision(request, &seen, id, &decision, sampled));
        }
        log::count(&decision, &seen, started.elapsed());
        if !span.is_disabled() {
            log::record(&span, &decision, &seen);
        }
        Checked { id, decision }
    }

    /// Whether this allow gets its decision line: one in `every`.
    fn allow_line_due(&self, every: NonZeroU32) -> bool {
        every.get() == 1 || self.allows.fetch_add(1, Ordering::Relaxed) % every == 0
    }

    /// The phases that need no identity, then the token's settled entry
    /// (`settled.rs`): the whole check without an `.await` when the entry
    /// is fresh. `Err`: what the full pipeline needs to go on.
    fn settled<'a>(
        &'a self,
        request: &'a RequestView<'_>,
        seen: &mut Seen,
    ) -> Result<Decision, Unsettled<'a>> {
        let (method, resource) = match self.route(request) {
            Ok(Route::Protected { method, resource }) => (method, resource),
            Ok(Route::Public) => return Ok(self.allow(Permit::PublicPath, request)),
            Err(denial) => return Ok(Decision::Deny(denial)),
        };
        let token = match self.credential(&request.headers) {
            Ok(token) => token,
            Err(denial) => return Ok(Decision::Deny(denial)),
        };
        let key = settled::key(token);
        let mut rest = Unsettled {
            method,
            resource,
            token,
            key,
            verified: None,
            foreign: None,
        };
        let lookup = self.settled.get(&key, &self.identity, &self.directory);
        metrics::cache_lookup("settled", matches!(lookup, Lookup::Hit(_)));
        let entry = match lookup {
            Lookup::Hit(entry) => entry,
            Lookup::Verified(identity, stamp) => {
                rest.verified = Some((identity, stamp));
                return Err(rest);
            }
            Lookup::Miss => return Err(rest),
        };
        seen.subject = Some(entry.who.subject());
        // The issuer only for a denial's line: an allow's names its subject.
        let deny = |seen: &mut Seen, denial| {
            seen.issuer = entry.issuer();
            seen.login = Some(entry.who.name().into_owned());
            seen.who = Some(entry.who.clone());
            Ok(Decision::Deny(denial))
        };
        let asked = match self.asked(request, &rest.method, rest.resource) {
            Ok(asked) => asked,
            Err(denial) => return deny(seen, denial),
        };
        let allowed = match (asked, &entry.grants) {
            (None, _) => None,
            (Some(asked), Some(grants)) => match phases::decide(&asked, grants) {
                Ok(allowed) if grants.belongs_to(&allowed.org) => Some(allowed),
                // A global role in a foreign organization: whether that
                // organization exists is an `.await` away.
                Ok(_) => {
                    seen.issuer = entry.issuer();
                    rest.foreign = Some(Box::new((entry.who.clone(), grants.clone(), asked)));
                    return Err(rest);
                }
                Err(denial) => {
                    seen.org = asked.org.clone();
                    return deny(seen, denial);
                }
            },
            (Some(_), None) => return Err(rest),
        };
        let permit = Permit::Subject {
            who: entry.who.clone(),
            allowed,
        };
        Ok(self.allow(permit, request))
    }

    /// The identity phases in order, from where the settled path left off;
    /// the first denial ends the check. What they find is settled for the
    /// token's next checks.
    async fn decide(
        &self,
        request: &RequestView<'_>,
        rest: Unsettled<'_>,
        seen: &mut Seen,
    ) -> Result<Permit, Denial> {
        if let Some(foreign) = rest.foreign {
            let (who, grants, asked) = *foreign;
            let allowed = self.authorize(&asked, &grants).await?;
            return Ok(Permit::Subject {
                who,
                allowed: Some(allowed),
            });
        }
        let mut stamps = Stamps::now(&self.identity, &self.directory);
        let identity = match rest.verified {
            Some((identity, stamp)) => {
                stamps = stamps.with_token(stamp);
                identity
            }
            None => self.verify(rest.token).await?,
        };
        seen.issuer = Some(identity.principal.issuer.clone());
        let who = self.subject(&identity, seen).await?;
        seen.login = Some(who.name().into_owned());
        seen.who = Some(who.clone());
        let Some(asked) = self.asked(request, &rest.method, rest.resource)? else {
            self.settle(rest.key, identity, &who, None, stamps).await;
            return Ok(Permit::Subject { who, allowed: None });
        };
        seen.org = asked.org.clone();
        let grants = self.grants(&who, &identity).await?;
        self.settle(rest.key, identity, &who, Some(grants.clone()), stamps)
            .await;
        let allowed = self.authorize(&asked, &grants).await?;
        Ok(Permit::Subject {
            who,
            allowed: Some(allowed),
        })
    }

    /// Keeps what the token came to for its next checks. The token cache
    /// then drops its copy, and so do the user and grants caches for a
    /// user: one entry per token is what memory allows with many users
    /// (BENCHMARKS.md), and a user rarely holds several tokens at once. A
    /// service account's grants stay: its tokens are often minted per call,
    /// and there are few accounts.
    async fn settle(
        &self,
        key: TokenKey,
        identity: Arc<VerifiedIdentity>,
        who: &Who,
        grants: Option<Arc<Grants>>,
        stamps: Stamps,
    ) {
        let principal = identity.principal.clone();
        let has_grants = grants.is_some();
        if !self
            .settled
            .insert(key, identity, who.clone(), grants, stamps)
        {
            return;
        }
        self.identity.release(&key).await;
        if let Who::User(_) = who {
            self.directory.users.release(&principal).await;
            if has_grants {
                self.directory.grants.release(who.subject()).await;
            }
        }
    }

    /// The admin API's way in: the same credential rules, sources and
    /// caches as Check, ending in the caller's grants instead of a request
    /// decision.
    pub async fn authenticate(&self, headers: &ClientHeaders<'_>) -> Result<Caller, Denial> {
        let token = self.credential(headers)?;
        let identity = self.verify(token).await?;
        let who = self.subject(&identity, &mut Seen::default()).await?;
        let grants = self.grants(&who, &identity).await?;
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

/// The denial of a request a front end could not read (a check request
/// without its HTTP attributes, a forwarded request without the original
/// URI), with its id and decision line: a 400, never a transport error.
pub fn malformed(reason: &'static str, message: impl ToString) -> Checked {
    let denial = phases::denial(DenialKind::InvalidRequest, reason, message);
    let id = DecisionId::next();
    log::log_malformed(id, &denial);
    Checked {
        id,
        decision: Decision::Deny(denial),
    }
}

fn deny(kind: DenialKind, reason: &'static str, message: impl ToString) -> Decision {
    Decision::Deny(phases::denial(kind, reason, message))
}
