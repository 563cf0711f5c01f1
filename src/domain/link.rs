//! What links a group to an identity source: membership that the verified
//! identity proves, instead of rows an admin keeps.
//!
//! A link names a source and one value its identities carry, written
//! `SOURCE:CLAIM=VALUE`: `github:team=acme/platform` (a GitHub team, read
//! from the GitHub API with the token), `dex:groups=platform` (an entry of an
//! OIDC token's `groups` claim), `actions:repository=acme/deploy` (a GitHub
//! Actions token's claim). The value is matched exactly, so GitHub teams,
//! which GitHub compares without case, are written in lower case on both
//! sides.

use std::{fmt, sync::Arc};

use super::{InvalidValue, IssuerName, printable};

/// The longest claim value a link or an identity carries: longer ones are
/// refused rather than cut, so two values can never compare equal by their
/// prefix.
pub const MAX_LINK_VALUE: usize = 512;

/// `CLAIM=VALUE`: one fact an identity of some source carries.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkKey(Arc<str>);

impl LinkKey {
    /// A claim name (letters, digits, `_`, `-`, `.`, `:`, `/`, at most 128
    /// bytes) and a value (printable, at most [`MAX_LINK_VALUE`] bytes).
    pub fn new(claim: &str, value: &str) -> Result<Self, InvalidValue> {
        const WHAT: &str = "group link";
        printable(WHAT, claim, 128)?;
        if !claim
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.:/".contains(c))
        {
            return Err(InvalidValue::new(
                WHAT,
                "the claim name takes letters, digits, '_', '-', '.', ':' and '/'",
            ));
        }
        printable(WHAT, value, MAX_LINK_VALUE)?;
        Ok(Self(format!("{claim}={value}").into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The claim's name.
    pub fn claim(&self) -> &str {
        self.0.split_once('=').map_or("", |(claim, _)| claim)
    }
}

impl fmt::Display for LinkKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A group's link: the source whose identities carry `key`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupLink {
    pub issuer: IssuerName,
    pub key: LinkKey,
}

impl GroupLink {
    /// `SOURCE:CLAIM=VALUE`.
    pub fn parse(text: &str) -> Result<Self, InvalidValue> {
        let malformed = || {
            InvalidValue::new(
                "group link",
                "expected SOURCE:CLAIM=VALUE, as github:team=acme/platform or dex:groups=platform",
            )
        };
        let (issuer, rest) = text.split_once(':').ok_or_else(malformed)?;
        let (claim, value) = rest.split_once('=').ok_or_else(malformed)?;
        Ok(Self {
            issuer: IssuerName::parse(issuer)?,
            key: LinkKey::new(claim, value)?,
        })
    }
}

impl fmt::Display for GroupLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.issuer, self.key)
    }
}
