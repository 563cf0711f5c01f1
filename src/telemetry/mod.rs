//! Logging: `tracing` to stderr, human-readable or JSON, filtered by
//! `RUST_LOG` (default `info`). Standard output stays free for CLI results.
//!
//! Lines are formatted on the calling thread but written by a background
//! thread through a buffer: a synchronous, unbuffered write to stderr per
//! decision line cost more than the rest of a cached Check (BENCHMARKS.md).
//! The writer is not lossy: when it falls behind, callers wait rather than
//! drop decision lines.

mod json;

pub use json::JsonLines;

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
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

/// Lines waiting for the writer thread. Its channel allocates every slot
/// up front: the library's default (128,000) was 4 MiB. This is about a
/// fifth of a second of decision lines at full load; beyond it callers
/// wait (the writer is not lossy).
const BUFFERED_LINES: usize = 8_192;

/// Flushes buffered log lines when dropped: keep it alive until exit.
#[must_use = "dropping the guard stops logging"]
pub struct LogGuard(#[allow(dead_code)] Option<WorkerGuard>);

/// Installs the global subscriber; when one is already installed (tests),
/// this is a no-op.
pub fn init(format: LogFormat) -> LogGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(BUFFERED_LINES)
        .finish(std::io::BufWriter::new(std::io::stderr()));
    let builder = fmt().with_env_filter(filter).with_writer(writer);
    let installed = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .event_format(json::JsonLines)
            .try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
    LogGuard(installed.is_ok().then_some(guard))
}
