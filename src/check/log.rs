//! The one decision line per check: who (as far as the pipeline got),
//! what, and the outcome, with client input escaped.

use std::borrow::Cow;

use tracing::info;

use super::{Decision, DecisionId, Permit, RequestView, Who};
use crate::{
    domain::{IssuerName, OrgName, SubjectRef},
    telemetry::metrics,
};

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
pub(super) struct Seen {
    /// The verified token's source.
    pub issuer: Option<IssuerName>,
    pub subject: Option<SubjectRef>,
    /// The subject's login (or `<org>/<name>`), once known.
    pub login: Option<String>,
    /// The organization the request asked for, once read.
    pub org: Option<OrgName>,
    /// The known, enabled subject, once found (for dry-run).
    pub who: Option<Who>,
}

/// The outcome as the check span's attributes (exported traces).
pub(super) fn record(span: &tracing::Span, decision: &Decision, seen: &Seen) {
    let (outcome, reason, who, org) = match decision {
        Decision::Allow { permit, .. } => {
            let org = match permit {
                Permit::Subject {
                    allowed: Some(allowed),
                    ..
                } => Some(allowed.org.as_str()),
                _ => seen.org.as_ref().map(OrgName::as_str),
            };
            let outcome = match permit {
                Permit::WouldDeny { .. } => "would_deny",
                _ => "allow",
            };
            (
                outcome,
                permit.reason(),
                permit.who().map(Who::subject),
                org,
            )
        }
        Decision::Deny(denial) => (
            "deny",
            denial.reason,
            seen.subject,
            seen.org.as_ref().map(OrgName::as_str),
        ),
    };
    span.record("decision", outcome);
    span.record("reason", reason);
    if let Some(subject) = who {
        span.record("subject_id", tracing::field::display(subject.id()));
    }
    if let Some(org) = org {
        span.record("org", org);
    }
}

/// `sampled`: this is the line of one allow in that many
/// (`log.sample_allows`), so that counts from lines can be scaled back.
pub(super) fn log_decision(
    request: &RequestView<'_>,
    seen: &Seen,
    id: DecisionId,
    decision: &Decision,
    sampled: Option<u32>,
) {
    let mut id_buffer = [0; DecisionId::LEN];
    let decision_id = id.encode(&mut id_buffer);
    // The path is logged without its query (which may carry secrets), and
    // method and path with control characters escaped: both are client input.
    let path = loggable(request.path.split(['?', '#']).next().unwrap_or_default());
    let method = loggable(request.method);
    let request_id = request.request_id.as_ref().map(|id| id.as_str());
    // Values are passed as `&str` where they can be: the formatter writes
    // those straight, where `%value` goes through `fmt` machinery.
    match decision {
        Decision::Allow { permit, .. } => {
            let who = permit.who();
            let subject = who.map(Who::subject);
            let id = subject.map(|s| s.id().encode());
            let login = who.map(Who::name);
            let allowed = match permit {
                Permit::Subject { allowed, .. } => allowed.as_ref(),
                Permit::PublicPath | Permit::WouldDeny { .. } => None,
            };
            let would_deny = match permit {
                Permit::WouldDeny { denial, .. } => Some(denial),
                _ => None,
            };
            // The groups whose roles granted it, when any did.
            let groups = allowed
                .filter(|a| !a.groups.is_empty())
                .map(|a| super::upstream::joined(&a.groups));
            info!(
                decision = if would_deny.is_some() {
                    "would_deny"
                } else {
                    "allow"
                },
                reason = permit.reason(),
                subject_kind = subject.map(SubjectRef::kind),
                user_id = id.as_ref().map(id_text),
                login = login.as_deref(),
                org = allowed.map(|a| a.org.as_str()),
                groups = groups.as_deref(),
                issuer = who.map(Who::issuer),
                method = &*method,
                path = &*path,
                request_id,
                decision_id,
                sampled_one_in = sampled,
                org_asked = seen.org.as_ref().map(OrgName::as_str),
                detail = would_deny.map(|d| d.message.as_str()),
                "decision"
            );
        }
        Decision::Deny(denial) => {
            let id = seen.subject.map(|s| s.id().encode());
            info!(
                decision = "deny",
                reason = denial.reason,
                status = denial.kind.http_status(),
                subject_kind = seen.subject.map(SubjectRef::kind),
                user_id = id.as_ref().map(id_text),
                login = seen.login.as_deref(),
                org = seen.org.as_ref().map(OrgName::as_str),
                issuer = seen.issuer.as_ref().map(IssuerName::as_str),
                method = &*method,
                path = &*path,
                request_id,
                decision_id,
                detail = %denial.message,
                "decision"
            );
        }
    }
}

/// The decision in the metrics: counted by decision, reason and subject
/// kind, and timed.
pub(super) fn count(decision: &Decision, seen: &Seen, elapsed: std::time::Duration) {
    let (outcome, reason, subject) = match decision {
        Decision::Allow { permit, .. } => {
            let outcome = match permit {
                Permit::WouldDeny { .. } => "would_deny",
                _ => "allow",
            };
            (outcome, permit.reason(), permit.who().map(Who::subject))
        }
        Decision::Deny(denial) => ("deny", denial.reason, seen.subject),
    };
    metrics::check_decided(outcome, reason, subject.map_or("none", SubjectRef::kind));
    metrics::check_duration(elapsed);
}

/// The line of a request too malformed to become a [`RequestView`]: no
/// method or path to name, only what was wrong.
pub(super) fn log_malformed(id: DecisionId, denial: &super::Denial) {
    metrics::check_decided("deny", denial.reason, "none");
    info!(
        decision = "deny",
        reason = denial.reason,
        status = denial.kind.http_status(),
        decision_id = %id,
        detail = %denial.message,
        "decision"
    );
}

/// A subject id's text, from [`SubjectId::encode`](crate::domain::SubjectId::encode)
/// (ASCII hex and hyphens).
fn id_text(id: &[u8; crate::domain::SubjectId::LEN]) -> &str {
    std::str::from_utf8(id).unwrap_or_default()
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
