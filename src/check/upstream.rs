//! What an allow does to the upstream request: the identity headers we set,
//! and every client header the upstream must not see.
//!
//! Two kinds of client headers are removed:
//! - **forgeries**: every name that reads as one of our `x-dispatch-*`
//!   namespace (with `_` read as `-`, as WSGI, Rack and CGI servers read it)
//!   and that we do not set this time, except the few Dispatch *inputs* on
//!   the pass-through list (`x-dispatch-blocking`, `x-dispatch-project`);
//! - **the caller's credential** (`Authorization`, the configured token
//!   header, the token cookie), unless forwarding is configured: behind
//!   Dispatch the upstream may be user-written function code, which could
//!   otherwise replay its callers' tokens (Envoy's `jwt_authn` removes it
//!   by default too).
//!
//! Envoy applies removals after sets, so a name is never in both lists.

use super::{
    decision::{Permit, UpstreamHeaders, Who, names},
    request::{CredentialSettings, RequestView, is_dispatch_name, same_name},
    text::HeaderText,
};
use std::sync::Arc;

use crate::{assertion::Assertion, domain::RoleName, identity::service_account};

/// Dispatch's own client inputs in our namespace: its API gateway reads
/// them (synchronous or asynchronous runs, the project), so they pass by
/// default.
pub const DEFAULT_PASSTHROUGH: &[&str] = &["x-dispatch-blocking", "x-dispatch-project"];

/// How an allow treats the client's headers.
#[derive(Debug, Clone)]
pub struct UpstreamRules {
    /// Keep the caller's credential on the upstream request.
    pub forward_credential: bool,
    /// Name the groups that granted an allow in `x-dispatch-groups`.
    pub groups_header: bool,
    /// `x-dispatch-*` names (lower case, `-` spelling) the client may send
    /// to the upstream. Never one of [`names::IDENTITY`] (checked by
    /// [`UpstreamRules::new`]).
    passthrough: Vec<String>,
}

impl Default for UpstreamRules {
    fn default() -> Self {
        Self {
            forward_credential: false,
            groups_header: false,
            passthrough: DEFAULT_PASSTHROUGH
                .iter()
                .map(|n| (*n).to_owned())
                .collect(),
        }
    }
}

/// A pass-through name that is not a client input we can let through.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name:?}: {reason}")]
pub struct InvalidPassthrough {
    pub name: String,
    pub reason: &'static str,
}

impl UpstreamRules {
    pub fn new(
        forward_credential: bool,
        passthrough: &[impl AsRef<str>],
    ) -> Result<Self, InvalidPassthrough> {
        let passthrough = passthrough
            .iter()
            .map(|name| {
                let name = name.as_ref();
                let invalid = |reason| InvalidPassthrough {
                    name: name.to_owned(),
                    reason,
                };
                let lower = name.to_ascii_lowercase();
                if !lower.starts_with(super::request::DISPATCH_PREFIX)
                    || lower.len() == super::request::DISPATCH_PREFIX.len()
                    || !lower
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                {
                    return Err(invalid(
                        "must be an x-dispatch-* header name (letters, digits and '-')",
                    ));
                }
                if names::IDENTITY.contains(&lower.as_str()) {
                    return Err(invalid("an identity header we set can never pass through"));
                }
                Ok(lower)
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            forward_credential,
            groups_header: false,
            passthrough,
        })
    }

    pub fn with_groups_header(mut self, on: bool) -> Self {
        self.groups_header = on;
        self
    }

    /// Whether a client may send `name` (as sent, lower-cased) in our
    /// namespace: a pass-through input, or the organization it acts in,
    /// each in its canonical spelling only.
    pub fn is_client_input(&self, name: &str) -> bool {
        name == names::ORG || self.passthrough.iter().any(|p| p == name)
    }

    /// The headers for `permit` on `request`.
    pub fn headers(
        &self,
        permit: &Permit,
        request: &RequestView<'_>,
        credentials: &CredentialSettings,
        signed: Option<Arc<str>>,
    ) -> UpstreamHeaders {
        let mut set = identity_headers(permit);
        if self.groups_header
            && let Permit::Subject {
                allowed: Some(allowed),
                ..
            } = permit
            && !allowed.groups.is_empty()
        {
            set.push((names::GROUPS, joined(&allowed.groups).into()));
        }
        if let Some(id) = &request.request_id {
            set.push((names::REQUEST_ID, id.shared().into()));
        }
        if let Some(token) = signed {
            set.push((names::SIGNED_IDENTITY, token.into()));
        }
        let mut remove = Vec::new();
        for name in request.headers.names() {
            let strip = if is_dispatch_name(name) {
                // The exact name we set is overwritten, not removed; a
                // pass-through name only in its canonical spelling.
                !set.iter().any(|(n, _)| *n == name) && !self.passthrough.iter().any(|p| p == name)
            } else {
                !self.forward_credential && is_credential_header(name, credentials)
            };
            if strip {
                remove.push(HeaderText::name(name));
            }
        }
        if !self.forward_credential
            && let Some(cookie) = &credentials.cookie
        {
            match without_cookie(request, cookie) {
                Some(rest) if rest.is_empty() => remove.push(HeaderText::name("cookie")),
                Some(rest) => set.push(("cookie", rest.into())),
                None => {}
            }
        }
        UpstreamHeaders { set, remove }
    }
}

/// The subject's headers. Values are shared with the settled entry or
/// formatted in place, not copied (`text.rs`): only a list of several roles
/// and a service account's name are new text.
fn identity_headers(permit: &Permit) -> Vec<(&'static str, HeaderText)> {
    let mut set = Vec::with_capacity(8);
    let (who, allowed) = match permit {
        Permit::Subject { who, allowed } => (who, allowed.as_ref()),
        Permit::WouldDeny { who, denial } => {
            set.push((names::DRY_RUN, denial.reason.into()));
            (who, None)
        }
        Permit::PublicPath => return set,
    };
    let subject = who.subject();
    match who {
        Who::User(user) => {
            set.push((names::USER, user.login.shared().into()));
            set.push((names::USER_ID, HeaderText::id(subject.id())));
            set.push((names::ISSUER, user.issuer.shared().into()));
            if let Some(email) = &user.email {
                set.push((names::EMAIL, email.shared().into()));
            }
        }
        Who::ServiceAccount(account) => {
            set.push((names::USER, account.issuer().into()));
            set.push((names::USER_ID, HeaderText::id(subject.id())));
            set.push((names::ISSUER, service_account::ISSUER_NAME.into()));
        }
    }
    set.push((names::SUBJECT_KIND, subject.kind().into()));
    if let Some(allowed) = allowed {
        set.push((names::ORG, allowed.org.shared().into()));
        set.push((names::ROLES, roles_header(&allowed.roles)));
    }
    set
}

/// What the signed identity asserts about `permit`'s subject, if any.
pub(super) fn assertion<'a>(
    permit: &'a Permit,
    request: &'a RequestView<'_>,
) -> Option<Assertion<'a>> {
    let (who, allowed, would_deny) = match permit {
        Permit::Subject { who, allowed } => (who, allowed.as_ref(), None),
        Permit::WouldDeny { who, denial } => (who, None, Some(denial.reason)),
        Permit::PublicPath => return None,
    };
    let (source, email) = match who {
        Who::User(user) => (
            user.issuer.as_str(),
            user.email.as_ref().map(|e| e.as_str()),
        ),
        Who::ServiceAccount(_) => (service_account::ISSUER_NAME, None),
    };
    Some(Assertion {
        subject: who.subject(),
        login: who.name(),
        source,
        email,
        org: allowed.map(|a| &a.org),
        roles: allowed.map_or(&[], |a| &a.roles),
        would_deny,
        request_id: request.request_id.as_ref().map(|id| id.as_str()),
    })
}

/// `a,b,c`.
pub(super) fn joined<T: AsRef<str>>(names: &[T]) -> String {
    let mut text = String::new();
    for (i, name) in names.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        text.push_str(name.as_ref());
    }
    text
}

/// `a,b,c`; one role, the common case, is its name unchanged.
fn roles_header(roles: &[RoleName]) -> HeaderText {
    if let [role] = roles {
        return role.shared().into();
    }
    let mut text = String::with_capacity(roles.iter().map(|r| r.as_str().len() + 1).sum());
    for (i, role) in roles.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        text.push_str(role.as_str());
    }
    text.into()
}

fn is_credential_header(name: &str, credentials: &CredentialSettings) -> bool {
    same_name(name, "authorization")
        || credentials
            .header
            .as_deref()
            .is_some_and(|h| same_name(name, h))
}

/// The client's `Cookie` value without the token cookie, or `None` when the
/// token cookie is not there (nothing to change).
fn without_cookie(request: &RequestView<'_>, token_cookie: &str) -> Option<String> {
    let pairs: Vec<&str> = request
        .headers
        .get_all("cookie")
        .flat_map(|h| h.split(';'))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    let is_token = |p: &&str| {
        p.split_once('=')
            .is_some_and(|(k, _)| k.trim() == token_cookie)
    };
    if !pairs.iter().any(is_token) {
        return None;
    }
    let rest: Vec<&str> = pairs.into_iter().filter(|p| !is_token(p)).collect();
    Some(rest.join("; "))
}

#[cfg(test)]
mod tests;
