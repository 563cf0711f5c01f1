//! The phases of a check, each one rule, each `Result<_, Denial>`:
//! route → credential → identity → subject → authorization. `mod.rs` chains
//! them; the admin API's `authenticate` reuses credential → subject.

use std::sync::Arc;

use tracing::{error, info};

use super::{
    Authorization, Checker, Decision, Denial, DenialKind, Permit, Who,
    decision::{self, BearerError},
    log::Seen,
    request::{self, ClientHeaders, Removals, RequestView},
};
use crate::{
    domain::{OrgName, SubjectRef},
    identity::{TokenError, VerifiedIdentity},
    policy::{
        self, Action, RequestPath, Target,
        rbac::{Allowed, Grants, Refused},
    },
    store::User,
};

/// What the request asks for, before any identity.
pub(super) enum Route<'r> {
    /// A configured public path: allowed without a credential.
    Public,
    /// The method to authorize and the route map's resource (`None`: no
    /// route, or no route map in registered mode).
    Protected {
        method: std::borrow::Cow<'r, str>,
        resource: Option<&'r str>,
    },
}

impl Checker {
    /// Route: a path with two readings, or a refused method override, is a
    /// 400; behind a proxy that cannot remove headers on our word, a client's
    /// header of our namespace is a 403; a public path needs nothing more.
    pub(super) fn route<'r>(&'r self, request: &RequestView<'r>) -> Result<Route<'r>, Denial> {
        if request.removals == Removals::Ignored {
            self.refuse_forgeries(&request.headers)?;
        }
        let path = RequestPath::parse(request.path)
            .map_err(|e| denial(DenialKind::InvalidRequest, "ambiguous_path", e))?;
        let method = self
            .rules
            .method_override
            .effective(request)
            .map_err(|e| denial(DenialKind::InvalidRequest, e.code(), e))?;
        let routes = match &self.authorization {
            Authorization::Registered => None,
            Authorization::Rbac(routes) => Some(routes),
        };
        match policy::target(&path, request.host, &self.rules.public, routes) {
            Ok(Target::Public) => Ok(Route::Public),
            Ok(Target::Resource(resource)) => Ok(Route::Protected { method, resource }),
            Err(e) => Err(denial(DenialKind::InvalidRequest, "ambiguous_path", e)),
        }
    }

    /// nginx, Caddy and Traefik overwrite only the identity headers their
    /// configuration lists, so any other name of our namespace (an unknown
    /// `x-dispatch-admin`, an `x_dispatch_user` that a WSGI upstream reads
    /// as ours) would reach the upstream: refused, whatever the path.
    fn refuse_forgeries(&self, headers: &ClientHeaders<'_>) -> Result<(), Denial> {
        let upstream = &self.rules.upstream;
        match headers
            .dispatch_names()
            .into_iter()
            .find(|name| !upstream.is_client_input(name))
        {
            None => Ok(()),
            Some(name) => Err(denial(
                DenialKind::Forbidden,
                "forged_identity_header",
                format!("header {name} is set by the proxy, never by the client"),
            )),
        }
    }

    /// Credential: exactly one bearer token.
    pub(super) fn credential<'h>(&self, headers: &'h ClientHeaders<'_>) -> Result<&'h str, Denial> {
        request::bearer_token(headers, &self.rules.credentials)
            .map_err(|e| denial(e.kind(), e.code(), e))
    }

    /// Identity: the token verifies against a configured source (cached).
    pub(super) async fn verify(&self, token: &str) -> Result<Arc<VerifiedIdentity>, Denial> {
        self.identity
            .verify(token)
            .await
            .map_err(|e| denial(token_denial(&e), e.code(), e))
    }

    /// The subject's memberships and roles (cached), with the groups
    /// linked to what its identity carries (a GitHub team, a claim's value):
    /// membership proven by the verified token, never by the request.
    pub(super) async fn grants(
        &self,
        who: &Who,
        identity: &VerifiedIdentity,
    ) -> Result<Arc<Grants>, Denial> {
        let grants = &self.directory.grants;
        let own = grants
            .get(who.subject())
            .await
            .map_err(|e| store_unavailable(&e))?;
        if identity.links.is_empty() {
            return Ok(own);
        }
        let linked = self
            .directory
            .linked
            .get()
            .await
            .map_err(|e| store_unavailable(&e))?
            .matching(&identity.principal.issuer, &identity.links);
        Ok(if linked.is_empty() {
            own
        } else {
            grants.with_linked(&own, linked)
        })
    }

    /// Step 4: the verified identity as a known, enabled subject.
    pub(super) async fn subject(
        &self,
        identity: &VerifiedIdentity,
        seen: &mut Seen,
    ) -> Result<Who, Denial> {
        if let Some(account) = &identity.service_account {
            seen.subject = Some(SubjectRef::ServiceAccount(account.id));
            seen.login = Some(account.issuer());
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
                seen.login = Some(user.login.as_str().to_owned());
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

    /// Step 5, before any identity: what the request asks for. `None` in
    /// registered mode, where no role is consulted.
    pub(super) fn asked<'r>(
        &self,
        request: &RequestView<'r>,
        method: &str,
        resource: Option<&'r str>,
    ) -> Result<Option<Asked<'r>>, Denial> {
        if matches!(self.authorization, Authorization::Registered) {
            return Ok(None);
        }
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
        Ok(Some(Asked {
            org,
            resource,
            action,
        }))
    }

    /// Step 5: `(org, resource, action)`, decided by the subject's roles.
    pub(super) async fn authorize(
        &self,
        asked: &Asked<'_>,
        grants: &Grants,
    ) -> Result<Allowed, Denial> {
        let allowed = decide(asked, grants)?;
        // A member's organization exists (memberships go with it); a global
        // role reaches any name, so the name must be one we know, or the
        // upstream would be told a verified organization that is not there.
        if !grants.belongs_to(&allowed.org) {
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

    /// The last phase: what the allow does to the upstream request.
    pub(super) fn allow(&self, permit: Permit, request: &RequestView<'_>) -> Decision {
        // The assertion only when one is signed: most deployments sign none.
        let signing = self.rules.signed_identity.as_ref().and_then(|asserter| {
            super::upstream::assertion(&permit, request).map(|assertion| (asserter, assertion))
        });
        let signed = match signing {
            Some((asserter, assertion)) => match asserter.token(&assertion) {
                Some(token) => Some(token),
                // Never an allow without the identity the upstream expects.
                None => {
                    return Decision::Deny(denial(
                        DenialKind::Unavailable,
                        "signing_failed",
                        "the signed identity could not be made; retry later",
                    ));
                }
            },
            None => None,
        };
        let upstream =
            self.rules
                .upstream
                .headers(&permit, request, &self.rules.credentials, signed);
        Decision::Allow { permit, upstream }
    }

    /// A source that is authoritative for logins (GitHub) renamed the user:
    /// record it, so headers and logs show the current login. Same user, same
    /// id; only the display name changes. A failure here is logged, not fatal.
    pub(super) async fn sync_login(
        &self,
        user: Arc<User>,
        identity: &VerifiedIdentity,
    ) -> Arc<User> {
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

/// What a protected request asks for in RBAC mode.
pub(super) struct Asked<'r> {
    pub org: Option<OrgName>,
    pub resource: &'r str,
    pub action: Action,
}

/// The roles' verdict, without the organization's existence (which only a
/// global role in a foreign organization needs asking about).
pub(super) fn decide(asked: &Asked<'_>, grants: &Grants) -> Result<Allowed, Denial> {
    policy::authorize(grants, asked.org.as_ref(), asked.resource, asked.action)
        .map_err(|refused| denial(DenialKind::Forbidden, refused_code(&refused), refused))
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

pub(super) fn denial(kind: DenialKind, reason: &'static str, message: impl ToString) -> Denial {
    Denial::new(kind, reason, message.to_string())
}

fn store_unavailable(e: &crate::store::StoreError) -> Denial {
    error!(error = %e, "store unavailable");
    crate::telemetry::metrics::database_error("check");
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
