//! Logging: `tracing` to stderr, human-readable or JSON, filtered by
//! `RUST_LOG` (default `info`). Standard output stays free for CLI results.
//!
//! Lines are formatted on the calling thread but written out in batches by
//! a background thread (`batch.rs`): a synchronous, unbuffered write to
//! stderr per decision line cost more than the rest of a cached Check
//! (BENCHMARKS.md). The writer is not lossy: when it falls behind, callers
//! wait rather than drop decision lines.
//!
//! Traces (`trace.rs`) go to an OTLP collector when the standard
//! `OTEL_EXPORTER_OTLP_*` variables name one; otherwise no tracing layer
//! exists.

mod batch;
mod json;
pub mod metrics;
mod stamp;
pub mod trace;

pub use batch::{BatchGuard, Batched, INTERVAL as FLUSH_INTERVAL, batched};
pub use json::JsonLines;

use tracing_subscriber::{EnvFilter, Layer, fmt, layer::SubscriberExt, util::SubscriberInitExt};

use serde::{Deserialize, Serialize};

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Pretty,
    Json,
}

/// Writes out buffered log lines (and exports the last spans) when
/// dropped: keep it alive until exit.
#[must_use = "dropping the guard stops logging"]
pub struct LogGuard(
    #[allow(dead_code)] Option<BatchGuard>,
    #[allow(dead_code)] Option<trace::TraceGuard>,
);

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("cannot start the log writer: {0}")]
    Writer(#[from] std::io::Error),
    #[error(transparent)]
    Trace(#[from] trace::TraceError),
}

/// Installs the global subscriber; when one is already installed (tests),
/// this is a no-op.
pub fn init(format: LogFormat) -> Result<LogGuard, TelemetryError> {
    if trace::configured() {
        return init_traced(format);
    }
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
    Ok(LogGuard(installed.is_ok().then_some(guard), None))
}

/// With traces exported, the log filter becomes the log layer's own: a
/// global `RUST_LOG` filter would also hide the (debug) spans from the
/// tracing layer.
fn init_traced(format: LogFormat) -> Result<LogGuard, TelemetryError> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, guard) = batched(std::io::stderr())?;
    let logs = match format {
        LogFormat::Json => fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .event_format(json::JsonLines)
            .with_writer(writer)
            .with_filter(filter)
            .boxed(),
        LogFormat::Pretty => fmt::layer()
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_writer(writer)
            .with_filter(filter)
            .boxed(),
    };
    let (spans, exporter) = trace::layer()?;
    let installed = tracing_subscriber::registry()
        .with(logs)
        .with(spans)
        .try_init();
    Ok(match installed {
        Ok(()) => LogGuard(Some(guard), Some(exporter)),
        Err(_) => LogGuard(None, None),
    })
}
