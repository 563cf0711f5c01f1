//! The organizations a subject belongs to: a handful at most, held once per
//! cached subject, so stored as a sorted boxed slice (24 bytes each) rather
//! than a `BTreeSet`, whose first node alone is about 280 bytes
//! (BENCHMARKS.md: memory with 100,000 users).

use crate::domain::OrgName;

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct OrgSet(Box<[OrgName]>);

impl OrgSet {
    pub fn contains(&self, org: &OrgName) -> bool {
        self.0.binary_search(org).is_ok()
    }

    /// Adds `org`; false if it was there already.
    pub fn insert(&mut self, org: OrgName) -> bool {
        let Err(at) = self.0.binary_search(&org) else {
            return false;
        };
        let mut orgs = std::mem::take(&mut self.0).into_vec();
        orgs.insert(at, org);
        self.0 = orgs.into_boxed_slice();
        true
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &OrgName> {
        self.0.iter()
    }
}

impl FromIterator<OrgName> for OrgSet {
    fn from_iter<I: IntoIterator<Item = OrgName>>(orgs: I) -> Self {
        let mut orgs: Vec<OrgName> = orgs.into_iter().collect();
        orgs.sort();
        orgs.dedup();
        Self(orgs.into_boxed_slice())
    }
}

impl IntoIterator for OrgSet {
    type Item = OrgName;
    type IntoIter = std::vec::IntoIter<OrgName>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_vec().into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org(name: &str) -> OrgName {
        OrgName::parse(name).unwrap()
    }

    #[test]
    fn a_set_keeps_each_organization_once_in_order() {
        let mut set: OrgSet = [org("globex"), org("acme"), org("globex")]
            .into_iter()
            .collect();
        assert!(set.contains(&org("acme")) && set.contains(&org("globex")));
        assert!(!set.contains(&org("initech")));
        assert!(set.insert(org("initech")));
        assert!(!set.insert(org("acme")));
        let names: Vec<String> = set.into_iter().map(|o| o.to_string()).collect();
        assert_eq!(names, ["acme", "globex", "initech"]);
        assert!(OrgSet::default().is_empty());
    }

    /// Borrowed iteration is in order too, and a set with members is not
    /// empty (found unchecked by cargo-mutants).
    #[test]
    fn a_set_is_read_in_order_without_being_consumed() {
        let set: OrgSet = [org("globex"), org("acme")].into_iter().collect();
        assert!(!set.is_empty());
        let names: Vec<&str> = set.iter().map(|o| o.as_str()).collect();
        assert_eq!(names, ["acme", "globex"]);
        assert_eq!(OrgSet::default().iter().count(), 0);
    }
}
