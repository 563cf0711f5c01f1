//! Policy: what a request may do, as plain data and pure functions.
//!
//! **Invariant:** nothing in `policy` does I/O or knows about Envoy; it is
//! decided from values the check pipeline hands in, which keeps it testable
//! with tables of `(input, expected)`.

mod path;

pub use path::{AmbiguousPath, InvalidPublicPath, PublicPaths, RequestPath};
