//! JSON log lines, written straight into the line buffer.
//!
//! Why not `tracing-subscriber`'s JSON format: it drives `serde_json`
//! through an adaptor that re-checks every fragment as UTF-8, and formats
//! each `%display` field into a `String` of its own first. The decision line
//! is written once per check, and that machinery was 12 % of a cache-hit
//! check's CPU (BENCHMARKS.md). This writes the same line shape (one object:
//! `timestamp`, `level`, the event's fields flattened, `target`, and `span`
//! / `spans` inside spans) with no allocation of its own.

use std::fmt::{self, Write};

use tracing::{Event, Subscriber, field::Field};
use tracing_subscriber::{
    fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields, format::Writer},
    registry::{LookupSpan, SpanRef},
};

/// The event formatter for `--log-format json` / `log_format = "json"`.
pub struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        writer.write_str("{\"timestamp\":\"")?;
        super::stamp::write_now(&mut writer)?;
        write!(writer, "\",\"level\":\"{}\"", meta.level())?;
        let mut fields = Fields {
            out: &mut writer,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        writer.write_str(",\"target\":")?;
        string(&mut writer, meta.target())?;
        let current = event
            .parent()
            .and_then(|id| ctx.span(id))
            .or_else(|| ctx.lookup_current());
        if let Some(current) = current {
            writer.write_str(",\"span\":")?;
            span::<S, N>(&mut writer, &current)?;
            writer.write_str(",\"spans\":[")?;
            for (i, s) in current.scope().from_root().enumerate() {
                if i > 0 {
                    writer.write_char(',')?;
                }
                span::<S, N>(&mut writer, &s)?;
            }
            writer.write_char(']')?;
        }
        writer.write_str("}\n")
    }
}

/// `{"name":..., <the span's fields>}`: the fields as the JSON field
/// formatter recorded them, an object's text.
fn span<S, N>(out: &mut Writer<'_>, span: &SpanRef<'_, S>) -> fmt::Result
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    out.write_str("{\"name\":")?;
    string(out, span.name())?;
    let extensions = span.extensions();
    if let Some(fields) = extensions.get::<FormattedFields<N>>() {
        let inner = fields.fields.trim();
        let inner = inner
            .strip_prefix('{')
            .and_then(|i| i.strip_suffix('}'))
            .unwrap_or_default();
        if !inner.trim().is_empty() {
            out.write_char(',')?;
            out.write_str(inner)?;
        }
    }
    out.write_char('}')
}

/// Writes each field as `,"name":value`.
struct Fields<'w, 'a> {
    out: &'w mut Writer<'a>,
    result: fmt::Result,
}

impl Fields<'_, '_> {
    fn field(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        if self.result.is_err() {
            return;
        }
        self.result = (|| {
            self.out.write_char(',')?;
            string(self.out, field.name())?;
            self.out.write_char(':')?;
            value(self.out)
        })();
    }
}

impl tracing::field::Visit for Fields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.field(field, |out| string(out, value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.field(field, |out| {
            out.write_char('"')?;
            write!(Escaped(&mut *out), "{value:?}")?;
            out.write_char('"')
        });
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.field(field, |out| write!(out, "{value}"));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.field(field, |out| write!(out, "{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.field(field, |out| write!(out, "{value}"));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if value.is_finite() {
            self.field(field, |out| write!(out, "{value}"));
        } else {
            self.field(field, |out| out.write_str("null"));
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.field(field, |out| {
            out.write_char('"')?;
            write!(Escaped(&mut *out), "{value}")?;
            out.write_char('"')
        });
    }
}

/// A JSON string: quoted, escaped.
fn string(out: &mut impl Write, value: &str) -> fmt::Result {
    out.write_char('"')?;
    Escaped(&mut *out).write_str(value)?;
    out.write_char('"')
}

/// Escapes what passes through it for the inside of a JSON string (RFC 8259
/// §7: the quote, the backslash and control characters).
struct Escaped<W>(W);

impl<W: Write> Write for Escaped<W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // Most values need no escape: one pass that the compiler can
        // vectorise, then a single write.
        if !s
            .bytes()
            .any(|b| b < 0x20 || b == b'"' || b == b'\\' || b == 0x7f)
        {
            return self.0.write_str(s);
        }
        let mut start = 0;
        for (i, b) in s.bytes().enumerate() {
            let escape = match b {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0..0x20 | 0x7f => "",
                _ => continue,
            };
            self.0.write_str(&s[start..i])?;
            if escape.is_empty() {
                write!(self.0, "\\u{b:04x}")?;
            } else {
                self.0.write_str(escape)?;
            }
            start = i + 1;
        }
        self.0.write_str(&s[start..])
    }
}

#[cfg(test)]
mod tests;
