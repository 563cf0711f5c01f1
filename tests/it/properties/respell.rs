//! Other spellings of a path, each read as the path itself by some
//! upstream.

use proptest::prelude::*;

/// A spelling of `path` that some upstream reads as `path` itself.
#[derive(Debug, Clone)]
pub(super) enum Respell {
    /// The byte at this index (of a segment's letters) percent-encoded,
    /// in upper or lower case hex.
    Encode(usize, bool),
    /// A slash doubled.
    DoubleSlash(usize),
    /// `/./` for a slash.
    Dot(usize),
    /// `/x/../` for a slash.
    DotDot(usize),
    /// A slash as `%2F` or `%2f`.
    EncodedSlash(usize, bool),
    /// `;x` after a segment (a path parameter to Tomcat and Jetty).
    Parameter(usize),
    /// A backslash for a slash (the same to IIS and some routers).
    Backslash(usize),
    /// A trailing slash, `?`, or `#x`.
    Trailing(&'static str),
}

pub(super) fn respell() -> impl Strategy<Value = Respell> {
    let i = 0..64usize;
    prop_oneof![
        (i.clone(), any::<bool>()).prop_map(|(i, u)| Respell::Encode(i, u)),
        i.clone().prop_map(Respell::DoubleSlash),
        i.clone().prop_map(Respell::Dot),
        i.clone().prop_map(Respell::DotDot),
        (i.clone(), any::<bool>()).prop_map(|(i, u)| Respell::EncodedSlash(i, u)),
        i.clone().prop_map(Respell::Parameter),
        i.prop_map(Respell::Backslash),
        prop::sample::select(&["/", "?", "#x", "/.", "%00", "%20"][..]).prop_map(Respell::Trailing),
    ]
}

impl Respell {
    pub(super) fn apply(&self, path: &str) -> String {
        let nth = |i: usize, pred: fn(&(usize, char)) -> bool| {
            let found: Vec<usize> = path.char_indices().filter(pred).map(|(at, _)| at).collect();
            found[i % found.len()]
        };
        let slash = |i| nth(i, |(_, c)| *c == '/');
        let splice = |at: usize, len: usize, with: &str| {
            format!("{}{with}{}", &path[..at], &path[at + len..])
        };
        match *self {
            Respell::Encode(i, upper) => {
                let at = nth(i, |(_, c)| c.is_ascii_alphanumeric());
                let byte = path.as_bytes()[at];
                let hex = if upper {
                    format!("%{byte:02X}")
                } else {
                    format!("%{byte:02x}")
                };
                splice(at, 1, &hex)
            }
            Respell::DoubleSlash(i) => splice(slash(i), 1, "//"),
            Respell::Dot(i) => splice(slash(i), 1, "/./"),
            Respell::DotDot(i) => splice(slash(i), 1, "/x/../"),
            Respell::EncodedSlash(i, upper) => {
                let at = slash(i);
                if at == 0 {
                    return path.to_owned();
                }
                splice(at, 1, if upper { "%2F" } else { "%2f" })
            }
            Respell::Parameter(i) => {
                let at = slash(i);
                if at == 0 {
                    return format!("{path};x");
                }
                splice(at, 0, ";x")
            }
            Respell::Backslash(i) => {
                let at = slash(i);
                if at == 0 {
                    return path.to_owned();
                }
                splice(at, 1, "\\")
            }
            Respell::Trailing(tail) => format!("{path}{tail}"),
        }
    }
}
