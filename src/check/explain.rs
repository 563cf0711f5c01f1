//! `dispatch-authz explain`: one request decided by the server's own
//! phases, with every step written down — how the path was read, the route,
//! resource and action, the organization, each role considered and the
//! permission that granted the request or why none did.
//!
//! It calls the same phase functions as [`Checker::check`] (nothing here
//! decides on its own), so what it prints is what the server would answer;
//! only the caches are bypassed where a step's detail needs the value
//! itself.

use std::{borrow::Cow, sync::Arc};

use super::{
    Checker, Decision, Denial, Permit, Who,
    log::Seen,
    phases::{Asked, Route},
    request::RequestView,
};
use crate::{
    domain::Principal,
    identity::{VerifiedIdentity, unix_now},
    policy::{RequestPath, rbac::Scope},
};

/// Who the request is explained for.
pub enum ExplainAs<'a> {
    /// A bearer token, verified as a check would verify it.
    Token(&'a str),
    /// A registered subject, named: no token is verified.
    User(Principal),
}

/// One step: its phase and what happened there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub phase: &'static str,
    pub detail: String,
}

pub struct Explanation {
    pub steps: Vec<Step>,
    pub decision: Decision,
}

/// The steps written so far.
#[derive(Default)]
struct Steps(Vec<Step>);

impl Steps {
    fn step(&mut self, phase: &'static str, detail: impl Into<String>) {
        self.0.push(Step {
            phase,
            detail: detail.into(),
        });
    }
}

impl Checker {
    pub async fn explain(&self, request: &RequestView<'_>, caller: ExplainAs<'_>) -> Explanation {
        let mut steps = Steps::default();
        let mut seen = Seen::default();
        let decision = match self.explained(request, caller, &mut seen, &mut steps).await {
            Ok(decision) => decision,
            Err(denial) => Decision::Deny(denial),
        };
        // As `check` does: where dry-run applies, a refusal is let through.
        let decision = self.dry_run(decision, request, &mut seen);
        if let Decision::Allow {
            permit: Permit::WouldDeny { denial, .. },
            ..
        } = &decision
        {
            steps.step(
                "dry_run",
                format!(
                    "refused ({}), let through: dry-run applies here",
                    denial.reason
                ),
            );
        }
        Explanation {
            steps: steps.0,
            decision,
        }
    }

    async fn explained(
        &self,
        request: &RequestView<'_>,
        caller: ExplainAs<'_>,
        seen: &mut Seen,
        out: &mut Steps,
    ) -> Result<Decision, Denial> {
        let host = if request.host.is_empty() {
            "-"
        } else {
            request.host
        };
        out.step(
            "request",
            format!("{} {} (host {host})", request.method, request.path),
        );
        if let Ok(path) = RequestPath::parse(request.path) {
            out.step("path", format!("read as {}", path.as_str()));
        }
        let (method, resource) = match self.route(request)? {
            Route::Public => {
                out.step("route", "a public path: no credential needed");
                return Ok(self.allow(Permit::PublicPath, request));
            }
            Route::Protected { method, resource } => (method, resource),
        };
        if method != request.method {
            out.step("method", format!("{method} (the override is honoured)"));
        }
        out.step(
            "route",
            match resource {
                Some(resource) => format!("resource {resource}"),
                None => "no route maps this path to a resource".into(),
            },
        );
        let (who, identity) = self.explained_subject(caller, seen, out).await?;
        seen.who = Some(who.clone());
        let Some(asked) = self.asked(request, &method, resource)? else {
            out.step(
                "authorization",
                "registered mode: any known, enabled subject",
            );
            return Ok(self.allow(Permit::Subject { who, allowed: None }, request));
        };
        out.step("action", asked.action.as_str());
        seen.org = asked.org.clone();
        let grants = self.grants(&who, &identity).await?;
        self.explain_roles(&asked, &grants, out);
        let allowed = self.authorize(&asked, &grants).await?;
        Ok(self.allow(
            Permit::Subject {
                who,
                allowed: Some(allowed),
            },
            request,
        ))
    }

    /// The subject: verified from the token, or named.
    async fn explained_subject(
        &self,
        caller: ExplainAs<'_>,
        seen: &mut Seen,
        out: &mut Steps,
    ) -> Result<(Who, Arc<VerifiedIdentity>), Denial> {
        let identity = match caller {
            ExplainAs::Token(token) => {
                let identity = self.verify(token).await?;
                out.step(
                    "identity",
                    format!("token verified: {}", identity.principal),
                );
                if !identity.links.is_empty() {
                    let keys: Vec<&str> = identity.links.iter().map(|k| k.as_str()).collect();
                    out.step(
                        "links",
                        format!(
                            "the source says: {} (linked groups match these)",
                            keys.join(", ")
                        ),
                    );
                }
                identity
            }
            ExplainAs::User(principal) => {
                out.step(
                    "identity",
                    format!("{principal}, as named (no token verified)"),
                );
                // What a token would have come to, minus what only a token
                // says (login, e-mail): the subject phase reads the rest.
                // No linked group matches without a token to prove it.
                Arc::new(VerifiedIdentity {
                    principal: Arc::new(principal),
                    login: None,
                    login_is_authoritative: false,
                    email: None,
                    expires_at: u64::MAX,
                    verified_at: unix_now(),
                    service_account: None,
                    links: Box::default(),
                })
            }
        };
        let who = self.subject(&identity, seen).await?;
        let kind = who.subject().kind();
        out.step(
            "subject",
            format!("{kind} {} ({}), enabled", who.name(), who.subject().id()),
        );
        Ok((who, identity))
    }

    fn explain_roles(
        &self,
        asked: &Asked<'_>,
        grants: &crate::policy::rbac::Grants,
        out: &mut Steps,
    ) {
        let org = asked.org.as_ref().or(grants.default_org.as_ref());
        let Some(org) = org else {
            out.step("organization", "none asked (x-dispatch-org) and no default");
            return;
        };
        let from = if asked.org.is_some() {
            "x-dispatch-org"
        } else {
            "the subject's default"
        };
        let member = if grants.belongs_to(org) {
            "a member"
        } else {
            "not a member"
        };
        out.step("organization", format!("{org} ({from}); {member}"));
        let verdicts = grants.verdicts(org, asked.resource, asked.action);
        if verdicts.is_empty() {
            out.step("roles", "none bound");
        }
        for verdict in verdicts {
            let role = &verdict.role;
            let scoped: Cow<'_, str> = match &role.scope {
                Scope::Global => format!("{} (global)", role.name).into(),
                Scope::Org(o) => format!("{o}/{}", role.name).into(),
            };
            let name = match &verdict.via {
                Some(group) => format!("{scoped} through group {group}"),
                None => scoped.into_owned(),
            };
            let detail = match (verdict.applies, verdict.granting) {
                (false, _) => format!("{name}: does not apply in {org}"),
                (true, Some(permission)) => format!(
                    "{name}: {permission} grants {}:{}",
                    asked.resource,
                    asked.action.as_str()
                ),
                (true, None) => format!(
                    "{name}: no permission grants {}:{} (has {})",
                    asked.resource,
                    asked.action.as_str(),
                    role.permissions
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            out.step("role", detail);
        }
    }
}
