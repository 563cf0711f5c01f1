//! Dry-run: for rolling out roles without an outage. Where it applies, a
//! request that the roles refuse is still decided, logged and counted —
//! as `would_deny` — but let through, with the caller's identity headers
//! and `x-dispatch-dry-run` naming the refusal.
//!
//! It applies only to *authorization* refusals (403) of a known, enabled
//! subject: a missing or invalid credential, an unknown or disabled
//! subject, a malformed request and an outage are denied as always, so
//! dry-run never lets an unidentified caller through. Off unless
//! configured.

use super::{Checker, Decision, DenialKind, Permit, RequestView, log::Seen, phases::Route};
use crate::domain::OrgName;

/// Where dry-run applies: everywhere, or in these organizations, or on
/// these route resources.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DryRun {
    pub everywhere: bool,
    pub organizations: Vec<OrgName>,
    pub resources: Vec<String>,
}

impl DryRun {
    pub fn is_off(&self) -> bool {
        !self.everywhere && self.organizations.is_empty() && self.resources.is_empty()
    }

    /// Whether a refusal in `org` on `resource` is let through.
    pub fn applies(&self, org: Option<&OrgName>, resource: Option<&str>) -> bool {
        self.everywhere
            || org.is_some_and(|org| self.organizations.contains(org))
            || resource.is_some_and(|r| self.resources.iter().any(|x| x == r))
    }

    /// For `/readyz` and the start-up line: `off`, or where it applies.
    pub fn describe(&self) -> String {
        if self.is_off() {
            return "off".into();
        }
        if self.everywhere {
            return "everywhere".into();
        }
        let orgs: Vec<&str> = self.organizations.iter().map(OrgName::as_str).collect();
        format!(
            "organizations [{}], resources [{}]",
            orgs.join(", "),
            self.resources.join(", ")
        )
    }
}

impl Checker {
    /// Where dry-run applies, a roles' refusal of a known subject becomes an
    /// allow marked `would_deny`; everything else stands.
    pub(super) fn dry_run(
        &self,
        decision: Decision,
        request: &RequestView<'_>,
        seen: &mut Seen,
    ) -> Decision {
        let dry = &self.rules.dry_run;
        let refused = matches!(&decision, Decision::Deny(d) if d.kind == DenialKind::Forbidden);
        if !refused || dry.is_off() {
            return decision;
        }
        let resource = match self.route(request) {
            Ok(Route::Protected { resource, .. }) => resource,
            _ => None,
        };
        if !dry.applies(seen.org.as_ref(), resource) {
            return decision;
        }
        match (decision, seen.who.take()) {
            (Decision::Deny(denial), Some(who)) => {
                self.allow(Permit::WouldDeny { who, denial }, request)
            }
            (decision, _) => decision,
        }
    }

    /// `dry_run` as configured (`/readyz`).
    pub fn dry_run_scope(&self) -> &DryRun {
        &self.rules.dry_run
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_applies_where_configured_and_nowhere_by_default() {
        let acme = OrgName::parse("acme").unwrap();
        let globex = OrgName::parse("globex").unwrap();
        assert!(DryRun::default().is_off());
        assert!(!DryRun::default().applies(Some(&acme), Some("image")));
        let by_org = DryRun {
            organizations: vec![acme.clone()],
            ..Default::default()
        };
        assert!(by_org.applies(Some(&acme), None));
        assert!(!by_org.applies(Some(&globex), Some("image")));
        assert!(!by_org.applies(None, None));
        let by_route = DryRun {
            resources: vec!["image".into()],
            ..Default::default()
        };
        assert!(by_route.applies(Some(&globex), Some("image")));
        assert!(!by_route.applies(Some(&globex), Some("function")));
        let everywhere = DryRun {
            everywhere: true,
            ..Default::default()
        };
        assert!(everywhere.applies(None, None));
        assert_eq!(everywhere.describe(), "everywhere");
        assert_eq!(by_org.describe(), "organizations [acme], resources []");
    }
}
