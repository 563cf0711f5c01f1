//! Request paths: parsed so that there is exactly one way to read them.
//!
//! Envoy hands us the path as the client sent it, query string included and
//! not percent-decoded. The upstream may decode `%2F`, collapse `//` or resolve
//! `..` differently from us; if we match `/healthz/../admin` as "under
//! `/healthz`" and the upstream serves `/admin`, a public prefix becomes a
//! bypass. So a path that could be read two ways is refused outright instead
//! of being guessed at.

use std::borrow::Cow;

use thiserror::Error;

/// Why a path was refused. The messages are shown to the client.
#[derive(Debug, Clone, Copy, Error, PartialEq, Eq)]
pub enum AmbiguousPath {
    #[error("request path must start with '/'")]
    NotAbsolute,
    #[error("request path contains an empty segment ('//')")]
    EmptySegment,
    #[error("request path contains a '.' or '..' segment")]
    DotSegment,
    #[error("request path contains a backslash")]
    Backslash,
    #[error("request path contains an encoded '/', '\\' or control character")]
    EncodedSeparator,
    #[error("request path contains an invalid percent-encoding")]
    BadEncoding,
    #[error("request path contains a control character")]
    ControlCharacter,
    #[error(
        "request path reads as another resource to some servers (';' parameters, letter case or percent-encoding)"
    )]
    ReadDifferently,
}

/// A path with its query and fragment cut off and every segment checked to
/// mean one thing. It borrows the request's path; [`RequestPath::segments`]
/// yields them percent-decoded, as the upstream will read them, so that
/// `/api/%6Frders` matches the route for `/api/orders` rather than a less
/// specific one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestPath<'a>(&'a str);

impl<'a> RequestPath<'a> {
    pub fn parse(raw: &'a str) -> Result<Self, AmbiguousPath> {
        let path = raw.split(['?', '#']).next().unwrap_or_default();
        if !path.starts_with('/') {
            return Err(AmbiguousPath::NotAbsolute);
        }
        let mut segments = path[1..].split('/').peekable();
        while let Some(segment) = segments.next() {
            // A trailing slash (`/healthz/`) has one reading; `a//b` does not.
            if segment.is_empty() && segments.peek().is_some() {
                return Err(AmbiguousPath::EmptySegment);
            }
            check_segment(segment)?;
        }
        Ok(Self(path))
    }

    pub fn as_str(&self) -> &'a str {
        self.0
    }

    /// The segments after the leading `/`, percent-decoded (`parse`
    /// checked that each decodes to UTF-8 without a separator or a dot
    /// segment); `/` alone has none. No copy unless a segment has a `%`.
    pub fn segments(&self) -> impl Iterator<Item = Cow<'a, str>> + use<'a> {
        self.0[1..]
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| match s.contains('%') {
                false => Cow::Borrowed(s),
                true => decode(s)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .map_or(Cow::Borrowed(s), Cow::Owned),
            })
    }
}

fn check_segment(segment: &str) -> Result<(), AmbiguousPath> {
    if segment.contains('\\') {
        return Err(AmbiguousPath::Backslash);
    }
    if segment.chars().any(char::is_control) {
        return Err(AmbiguousPath::ControlCharacter);
    }
    if !segment.contains('%') {
        // Nothing encoded: the segment reads as it is.
        return match segment {
            "." | ".." => Err(AmbiguousPath::DotSegment),
            _ => Ok(()),
        };
    }
    let decoded = decode(segment)?;
    if std::str::from_utf8(&decoded).is_err() {
        return Err(AmbiguousPath::BadEncoding);
    }
    if decoded
        .iter()
        .any(|&b| b == b'/' || b == b'\\' || b < 0x20 || b == 0x7f)
    {
        return Err(AmbiguousPath::EncodedSeparator);
    }
    if decoded == b"." || decoded == b".." {
        return Err(AmbiguousPath::DotSegment);
    }
    Ok(())
}

/// Percent-decodes strictly: a `%` not followed by two hex digits is an error,
/// because servers disagree on what it means.
fn decode(segment: &str) -> Result<Vec<u8>, AmbiguousPath> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(AmbiguousPath::BadEncoding)?;
            let hex = std::str::from_utf8(hex).map_err(|_| AmbiguousPath::BadEncoding)?;
            let byte = u8::from_str_radix(hex, 16).map_err(|_| AmbiguousPath::BadEncoding)?;
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// Path prefixes that need no credential (`/healthz`, `/public/docs`).
///
/// A prefix covers itself and everything below it, by whole segments:
/// `/healthz` covers `/healthz` and `/healthz/live`, never `/healthz-admin`.
#[derive(Debug, Clone, Default)]
pub struct PublicPaths {
    prefixes: Vec<Vec<String>>,
}

/// A configured prefix that is not a plain absolute path.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("public path {path:?} is not usable: {reason}")]
pub struct InvalidPublicPath {
    pub path: String,
    pub reason: String,
}

impl PublicPaths {
    pub fn new<S: AsRef<str>>(prefixes: &[S]) -> Result<Self, InvalidPublicPath> {
        let prefixes = prefixes
            .iter()
            .map(|p| Self::parse_prefix(p.as_ref()))
            .collect::<Result<_, _>>()?;
        Ok(Self { prefixes })
    }

    fn parse_prefix(prefix: &str) -> Result<Vec<String>, InvalidPublicPath> {
        let invalid = |reason: String| InvalidPublicPath {
            path: prefix.to_owned(),
            reason,
        };
        if prefix.contains(['?', '#', '%']) {
            return Err(invalid("use a plain path without '?', '#' or '%'".into()));
        }
        let parsed = RequestPath::parse(prefix).map_err(|e| invalid(e.to_string()))?;
        let segments: Vec<String> = parsed.segments().map(Cow::into_owned).collect();
        if segments.is_empty() {
            return Err(invalid(
                "'/' would make every path public; list the paths instead".into(),
            ));
        }
        Ok(segments)
    }

    /// (Check asks [`super::target`], which reads the path every way.)
    #[cfg(test)]
    pub fn is_public(&self, path: &RequestPath<'_>) -> bool {
        let segments: Vec<Cow<'_, str>> = path.segments().collect();
        self.covers(&segments, false)
    }

    /// Whether a prefix covers these (read) segments.
    pub(super) fn covers(&self, segments: &[Cow<'_, str>], fold_case: bool) -> bool {
        self.prefixes.iter().any(|prefix| {
            prefix.len() <= segments.len()
                && prefix
                    .iter()
                    .zip(segments)
                    .all(|(p, s)| super::readings::same_segment(p, s, fold_case))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_prefixes_match_decoded_segments() {
        let public = PublicPaths::new(&["/healthz"]).unwrap();
        assert!(public.is_public(&RequestPath::parse("/%68ealthz/live").unwrap()));
        assert!(!public.is_public(&RequestPath::parse("/healthz%2Dx").unwrap()));
        assert_eq!(
            RequestPath::parse("/a%FF"),
            Err(AmbiguousPath::BadEncoding),
            "not UTF-8 once decoded"
        );
    }

    #[test]
    fn query_and_fragment_are_cut_off() {
        assert_eq!(RequestPath::parse("/a/b?x=/../y").unwrap().as_str(), "/a/b");
        assert_eq!(RequestPath::parse("/a#frag").unwrap().as_str(), "/a");
    }

    #[test]
    fn paths_with_two_readings_are_refused() {
        let cases = [
            ("a/b", AmbiguousPath::NotAbsolute),
            ("*", AmbiguousPath::NotAbsolute),
            ("http://evil/x", AmbiguousPath::NotAbsolute),
            ("/a//b", AmbiguousPath::EmptySegment),
            ("/a/b//", AmbiguousPath::EmptySegment),
            ("//a", AmbiguousPath::EmptySegment),
            ("/a/../b", AmbiguousPath::DotSegment),
            ("/a/./b", AmbiguousPath::DotSegment),
            ("/a/..", AmbiguousPath::DotSegment),
            ("/a/%2e%2E/b", AmbiguousPath::DotSegment),
            ("/a/.%2e", AmbiguousPath::DotSegment),
            ("/a%2fb", AmbiguousPath::EncodedSeparator),
            ("/a%5Cb", AmbiguousPath::EncodedSeparator),
            ("/a%00", AmbiguousPath::EncodedSeparator),
            ("/a\\..\\b", AmbiguousPath::Backslash),
            ("/a%zz", AmbiguousPath::BadEncoding),
            ("/a%2", AmbiguousPath::BadEncoding),
            ("/a\u{7f}", AmbiguousPath::ControlCharacter),
        ];
        for (raw, want) in cases {
            assert_eq!(RequestPath::parse(raw), Err(want), "{raw}");
        }
    }

    #[test]
    fn ordinary_paths_are_accepted() {
        for ok in [
            "/",
            "/healthz",
            "/healthz/",
            "/v1/function/my.fn",
            "/a%20b",
            "/a..b",
        ] {
            assert!(RequestPath::parse(ok).is_ok(), "{ok} refused");
        }
    }

    #[test]
    fn public_prefixes_match_whole_segments() {
        let public = PublicPaths::new(&["/healthz", "/docs/api"]).unwrap();
        let is_public = |p: &str| public.is_public(&RequestPath::parse(p).unwrap());
        assert!(is_public("/healthz"));
        assert!(is_public("/healthz/"));
        assert!(is_public("/healthz/live?verbose=1"));
        assert!(is_public("/docs/api/v1"));
        assert!(!is_public("/healthz-admin"));
        assert!(!is_public("/healthzz"));
        assert!(!is_public("/docs"));
        assert!(!is_public("/docs/apis"));
        assert!(!is_public("/"));
        assert!(!is_public("/HEALTHZ"));
    }

    #[test]
    fn bad_public_prefixes_are_config_errors() {
        for bad in ["/", "healthz", "/a/../b", "/a?x", "/a%2f"] {
            assert!(PublicPaths::new(&[bad]).is_err(), "{bad} accepted");
        }
    }
}
