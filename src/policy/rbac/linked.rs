//! Groups linked to an identity source (`domain::GroupLink`): membership
//! that the verified identity proves. The store keeps no member rows for
//! them; a check adds the linked groups whose link the identity carries to
//! the subject's own grants.

use std::{collections::HashMap, sync::Arc};

use super::{Grants, GroupGrant};
use crate::domain::{GroupLink, IssuerName, LinkKey};

/// Every linked group, by its link: a small table, read whole and cached.
#[derive(Debug, Default)]
pub struct LinkedGroups {
    by_link: HashMap<GroupLink, Vec<Arc<GroupGrant>>>,
}

impl LinkedGroups {
    pub fn new(groups: impl IntoIterator<Item = (GroupLink, Arc<GroupGrant>)>) -> Self {
        let mut by_link: HashMap<GroupLink, Vec<Arc<GroupGrant>>> = HashMap::new();
        for (link, group) in groups {
            by_link.entry(link).or_default().push(group);
        }
        Self { by_link }
    }

    pub fn is_empty(&self) -> bool {
        self.by_link.is_empty()
    }

    /// The groups an identity of `issuer` carrying `keys` belongs to.
    pub fn matching(&self, issuer: &IssuerName, keys: &[LinkKey]) -> Vec<Arc<GroupGrant>> {
        if self.by_link.is_empty() {
            return Vec::new();
        }
        let mut found = Vec::new();
        for key in keys {
            let link = GroupLink {
                issuer: issuer.clone(),
                key: key.clone(),
            };
            if let Some(groups) = self.by_link.get(&link) {
                found.extend(groups.iter().cloned());
            }
        }
        found
    }
}

impl Grants {
    /// These grants plus `linked` groups (those not already among them).
    /// Nothing else changes: a disabled subject stays disabled.
    pub fn with_linked(&self, linked: Vec<Arc<GroupGrant>>) -> Self {
        let mut groups: Vec<Arc<GroupGrant>> = self.groups.to_vec();
        for group in linked {
            if !groups
                .iter()
                .any(|g| g.org == group.org && g.name == group.name)
            {
                groups.push(group);
            }
        }
        Self {
            groups: groups.into_boxed_slice(),
            ..self.clone()
        }
    }
}
