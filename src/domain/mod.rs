//! Newtypes for the values that cross module boundaries.
//!
//! Each one is parsed once at the edge (config, CLI, token claims, database
//! rows) and is valid from then on: a `Login` can always be sent as an HTTP
//! header value, an `IssuerName` can always be printed in a log line. Parse,
//! don't validate.

use std::{fmt, sync::Arc};

use thiserror::Error;
use uuid::Uuid;

mod link;

pub use link::{GroupLink, LinkKey, MAX_LINK_VALUE};

/// Why a value was refused. `what` names the kind of value, so messages read
/// "invalid login: contains a control character".
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("invalid {what}: {reason}")]
pub struct InvalidValue {
    pub what: &'static str,
    pub reason: String,
}

impl InvalidValue {
    fn new(what: &'static str, reason: impl Into<String>) -> Self {
        Self {
            what,
            reason: reason.into(),
        }
    }
}

/// Checks that `value` is non-empty, at most `max` bytes and holds no control
/// characters, which keeps it safe in an HTTP header and in a log line.
fn printable(what: &'static str, value: &str, max: usize) -> Result<(), InvalidValue> {
    if value.is_empty() {
        return Err(InvalidValue::new(what, "must not be empty"));
    }
    if value.len() > max {
        return Err(InvalidValue::new(
            what,
            format!("longer than {max} bytes ({} bytes)", value.len()),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(InvalidValue::new(what, "contains a control character"));
    }
    if value.trim() != value {
        return Err(InvalidValue::new(
            what,
            "has leading or trailing whitespace",
        ));
    }
    Ok(())
}

macro_rules! string_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Arc<str>);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The text itself, shared: a header value or a copy for an
            /// entry costs no allocation.
            pub fn shared(&self) -> Arc<str> {
                self.0.clone()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

string_newtype!(
    /// The configured name of an identity issuer (`dex`, `github-actions`):
    /// lower-case letters, digits, `-`, `_` and `.`, starting with a letter or
    /// digit. The name, not the issuer URL, is what users are stored under, so
    /// moving an issuer to a new URL keeps its users.
    IssuerName
);

impl IssuerName {
    pub fn parse(value: &str) -> Result<Self, InvalidValue> {
        const WHAT: &str = "issuer name";
        printable(WHAT, value, 64)?;
        let first_ok = value
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        let rest_ok = value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
        if !first_ok || !rest_ok {
            return Err(InvalidValue::new(
                WHAT,
                "use lower-case letters, digits, '-', '_' and '.', starting with a letter or digit",
            ));
        }
        Ok(Self(value.into()))
    }
}

string_newtype!(
    /// An organization (Dispatch's `X-Dispatch-Org`): lower-case letters,
    /// digits and `-`, starting with a letter or digit.
    OrgName
);

impl OrgName {
    pub fn parse(value: &str) -> Result<Self, InvalidValue> {
        slug("organization", value).map(|s| Self(s.into()))
    }
}

string_newtype!(
    /// A role's name, unique within its scope (global, or one organization).
    RoleName
);

impl RoleName {
    pub fn parse(value: &str) -> Result<Self, InvalidValue> {
        slug("role name", value).map(|s| Self(s.into()))
    }
}

string_newtype!(
    /// A group's name, unique within its organization (`platform`): roles
    /// bound to the group are held by its members there.
    GroupName
);

impl GroupName {
    pub fn parse(value: &str) -> Result<Self, InvalidValue> {
        slug("group name", value).map(|s| Self(s.into()))
    }
}

string_newtype!(
    /// A service account's name, unique within its organization. Together
    /// they are the account's token issuer, `"<org>/<name>"`, as in Dispatch.
    ServiceAccountName
);

impl ServiceAccountName {
    pub fn parse(value: &str) -> Result<Self, InvalidValue> {
        slug("service account name", value).map(|s| Self(s.into()))
    }
}

/// Lower-case letters, digits and `-`, 1 to 63 characters, starting with a
/// letter or digit: safe in a header, a path and a log line.
fn slug<'v>(what: &'static str, value: &'v str) -> Result<&'v str, InvalidValue> {
    printable(what, value, 63)?;
    let first_ok = value
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !first_ok
        || !value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err(InvalidValue::new(
            what,
            "use lower-case letters, digits and '-', starting with a letter or digit",
        ));
    }
    Ok(value)
}

string_newtype!(
    /// The issuer's stable identifier for a principal (the `sub` claim, or for
    /// GitHub the numeric user id). Never a display name: logins can be renamed
    /// and then reused by someone else.
    Subject
);

impl Subject {
    pub fn parse(value: &str) -> Result<Self, InvalidValue> {
        printable("subject", value, 255)?;
        Ok(Self(value.into()))
    }
}

string_newtype!(
    /// A user's login (e.g. their GitHub login), injected as `x-dispatch-user`.
    /// For display and auditing only; never used to identify anyone.
    Login
);

impl Login {
    pub fn parse(value: &str) -> Result<Self, InvalidValue> {
        printable("login", value, 255)?;
        Ok(Self(value.into()))
    }
}

string_newtype!(
    /// An e-mail address as the issuer or an administrator gave it.
    Email
);

impl Email {
    pub fn parse(value: &str) -> Result<Self, InvalidValue> {
        printable("e-mail", value, 320)?;
        if value.contains(char::is_whitespace) || !value.contains('@') {
            return Err(InvalidValue::new("e-mail", "expected name@domain"));
        }
        Ok(Self(value.into()))
    }
}

string_newtype!(
    /// A human-readable name; may contain spaces.
    DisplayName
);

impl DisplayName {
    pub fn parse(value: &str) -> Result<Self, InvalidValue> {
        printable("display name", value, 255)?;
        Ok(Self(value.into()))
    }
}

string_newtype!(
    /// Envoy's `x-request-id` for the checked request, echoed in logs and as
    /// `x-dispatch-request-id`.
    RequestId
);

impl RequestId {
    /// Envoy generates UUIDs, but a client may supply its own id (Envoy keeps
    /// it unless told otherwise), so this is untrusted input: anything that is
    /// not short visible ASCII is dropped rather than echoed.
    pub fn parse(value: &str) -> Option<Self> {
        let ok =
            !value.is_empty() && value.len() <= 128 && value.bytes().all(|b| b.is_ascii_graphic());
        ok.then(|| Self(value.into()))
    }

    /// A fresh id (a UUIDv7), for requests whose proxy sends none we can
    /// trust.
    pub fn generate() -> Self {
        Self(Uuid::now_v7().hyphenated().to_string().into())
    }
}

/// Who a credential proves the caller to be: a subject of one configured
/// issuer. Two issuers may use the same subject for different people, so the
/// pair, never the subject alone (let alone a login), identifies a user.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Principal {
    pub issuer: IssuerName,
    pub subject: Subject,
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.issuer, self.subject)
    }
}

/// The stable id of a user in our own database, injected as
/// `x-dispatch-user-id`. A UUIDv7, so ids sort by creation time and can be
/// minted by any replica without coordination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(Uuid);

impl UserId {
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    pub fn parse(value: &str) -> Result<Self, InvalidValue> {
        Uuid::parse_str(value)
            .map(Self)
            .map_err(|_| InvalidValue::new("user id", "expected a UUID"))
    }
}

impl Default for UserId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// The stable id of a service account, injected as `x-dispatch-user-id`
/// for its requests (a UUIDv7 like [`UserId`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceAccountId(Uuid);

impl ServiceAccountId {
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    pub fn parse(value: &str) -> Result<Self, InvalidValue> {
        Uuid::parse_str(value)
            .map(Self)
            .map_err(|_| InvalidValue::new("service account id", "expected a UUID"))
    }
}

impl Default for ServiceAccountId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for ServiceAccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// Who holds roles: a user or a service account. Never a bare name
/// (Dispatch's defect: a service account could match a user's policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SubjectRef {
    User(UserId),
    ServiceAccount(ServiceAccountId),
}

impl SubjectRef {
    /// `user` or `service-account`, as in `x-dispatch-subject-kind`.
    pub fn kind(self) -> &'static str {
        match self {
            Self::User(_) => "user",
            Self::ServiceAccount(_) => "service-account",
        }
    }

    /// The id alone (`x-dispatch-user-id`), displayed without a copy.
    pub fn id(self) -> SubjectId {
        SubjectId(self)
    }
}

/// A subject's id without its kind; see [`SubjectRef::id`].
#[derive(Debug, Clone, Copy)]
pub struct SubjectId(SubjectRef);

impl SubjectId {
    /// The length of its text: a hyphenated UUID.
    pub const LEN: usize = uuid::fmt::Hyphenated::LENGTH;

    /// Its text (lower-case ASCII), without the heap.
    pub fn encode(self) -> [u8; Self::LEN] {
        let uuid = match self.0 {
            SubjectRef::User(id) => id.0,
            SubjectRef::ServiceAccount(id) => id.0,
        };
        let mut bytes = [0; Self::LEN];
        uuid.hyphenated().encode_lower(&mut bytes);
        bytes
    }
}

impl fmt::Display for SubjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            SubjectRef::User(id) => id.fmt(f),
            SubjectRef::ServiceAccount(id) => id.fmt(f),
        }
    }
}

impl fmt::Display for SubjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind(), self.id())
    }
}

/// Seconds since the Unix epoch (0 if the clock is before it): the one
/// clock of token lifetimes, cache stamps and stored timestamps.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests;
