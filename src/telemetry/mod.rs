//! Logging: `tracing` to stderr, human-readable or JSON, filtered by
//! `RUST_LOG` (default `info`). Standard output stays free for CLI results.
//!
//! Lines are formatted on the calling thread but written out in batches by
//! a background thread (`batch.rs`): a synchronous, unbuffered write to
//! stderr per decision line cost more than the rest of a cached Check
//! (BENCHMARKS.md). The writer is not lossy: when it falls behind, callers
//! wait rather than drop decision lines.

mod batch;
mod json;
pub mod metrics;
mod stamp;

pub use batch::{BatchGuard, Batched, INTERVAL as FLUSH_INTERVAL, batched};
pub use json::JsonLines;

use tracing_subscriber::{EnvFilter, fmt};

use serde::{Deserialize, Serialize};

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Pretty,
    Json,
}

/// Writes out buffered log lines when dropped: keep it alive until exit.
#[must_use = "dropping the guard stops logging"]
pub struct LogGuard(#[allow(dead_code)] Option<BatchGuard>);

/// Installs the global subscriber; when one is already installed (tests),
/// this is a no-op.
pub fn init(format: LogFormat) -> std::io::Result<LogGuard> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, guard) = batched(std::io::stderr())?;
    let builder = fmt().with_env_filter(filter).with_writer(writer);
    let installed = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .event_format(json::JsonLines)
            .try_init(),
        // No colour codes in a file or a pipe.
        LogFormat::Pretty => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
    };
    Ok(LogGuard(installed.is_ok().then_some(guard)))
}
