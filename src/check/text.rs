//! A header value or name in an answer, without a copy where one can be
//! avoided.
//!
//! An allow names the subject in five or more headers. As owned `String`s
//! they were most of a cache-hit check's allocations (BENCHMARKS.md), though
//! every value already exists: the login, issuer and organization in the
//! settled entry (shared `Arc<str>`s, see `crate::domain`), the kind and the
//! common header names as constants, and an id fits on the stack.

use std::{fmt, ops::Deref, sync::Arc};

use crate::domain::SubjectId;

/// Text that dereferences to `str`; equality is the text's, whichever
/// variant holds it.
#[derive(Clone)]
pub enum HeaderText {
    Static(&'static str),
    Shared(Arc<str>),
    Owned(String),
    /// A subject id (a hyphenated UUID, 36 bytes) rendered in place.
    Id([u8; SubjectId::LEN]),
}

impl HeaderText {
    pub fn id(id: SubjectId) -> Self {
        Self::Id(id.encode())
    }

    /// A client header's name, lower case as Envoy sends it: the ones an
    /// allow usually removes (the caller's credential) are not copied.
    pub fn name(name: &str) -> Self {
        match name {
            "authorization" => Self::Static("authorization"),
            "cookie" => Self::Static("cookie"),
            other => Self::Owned(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Static(s) => s,
            Self::Shared(s) => s,
            Self::Owned(s) => s,
            // `SubjectId::encode` writes ASCII only.
            Self::Id(bytes) => std::str::from_utf8(bytes).unwrap_or_default(),
        }
    }
}

impl Deref for HeaderText {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for HeaderText {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl From<String> for HeaderText {
    fn from(value: String) -> Self {
        Self::Owned(value)
    }
}

impl From<&'static str> for HeaderText {
    fn from(value: &'static str) -> Self {
        Self::Static(value)
    }
}

impl From<Arc<str>> for HeaderText {
    fn from(value: Arc<str>) -> Self {
        Self::Shared(value)
    }
}

impl From<HeaderText> for String {
    fn from(value: HeaderText) -> Self {
        match value {
            HeaderText::Owned(s) => s,
            other => other.as_str().to_owned(),
        }
    }
}

impl PartialEq for HeaderText {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for HeaderText {}

impl PartialEq<str> for HeaderText {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for HeaderText {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<HeaderText> for &str {
    fn eq(&self, other: &HeaderText) -> bool {
        *self == other.as_str()
    }
}

impl fmt::Debug for HeaderText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for HeaderText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{SubjectRef, UserId};

    #[test]
    fn every_kind_reads_as_its_text() {
        let id = UserId::new();
        let texts = [
            (HeaderText::from("a"), "a".to_owned()),
            (HeaderText::from(Arc::<str>::from("b")), "b".to_owned()),
            (HeaderText::from("c".to_owned()), "c".to_owned()),
            (HeaderText::id(SubjectRef::User(id).id()), id.to_string()),
            (
                HeaderText::name("authorization"),
                "authorization".to_owned(),
            ),
            (HeaderText::name("x-other"), "x-other".to_owned()),
        ];
        for (text, expected) in texts {
            assert_eq!(text.as_str(), expected);
            assert_eq!(text.to_string(), expected);
            assert_eq!(String::from(text.clone()), expected);
            assert_eq!(text, HeaderText::Owned(expected));
        }
        assert!(matches!(HeaderText::name("cookie"), HeaderText::Static(_)));
    }
}
