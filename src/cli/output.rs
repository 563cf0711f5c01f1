//! What the CLI prints, the same whichever way a command ran (on the
//! database file, or through the admin API with `--server`): a table (a
//! list) or `key value` lines (one record) by default, JSON lines with
//! `--json`. Records are normalized first, so both ways agree: times are
//! ISO-8601, an absent value is `null` (never `""`), and a user's source is
//! `source` (the API's field is `issuer`).

use serde::Serialize;
use serde_json::{Map, Value};

/// `--json` or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
}

impl Format {
    pub fn json(json: bool) -> Self {
        if json { Self::Json } else { Self::Table }
    }
}

static FORMAT: std::sync::OnceLock<Format> = std::sync::OnceLock::new();

/// The process's output format, chosen once from `--json`.
pub fn set_format(format: Format) {
    let _ = FORMAT.set(format);
}

pub fn format() -> Format {
    FORMAT.get().copied().unwrap_or(Format::Table)
}

/// `item` as a normalized JSON object (or value).
pub fn record<T: Serialize>(item: &T) -> Value {
    normalize(serde_json::to_value(item).unwrap_or(Value::Null))
}

fn normalize(value: Value) -> Value {
    match value {
        Value::Object(fields) => Value::Object(
            fields
                .into_iter()
                .map(|(key, value)| {
                    let value = match (&value, key == "at" || key.ends_with("_at")) {
                        (Value::Number(n), true) => n
                            .as_i64()
                            .map_or(value.clone(), |secs| Value::String(timestamp(secs))),
                        _ => normalize(value),
                    };
                    let key = if key == "issuer" {
                        "source".into()
                    } else {
                        key
                    };
                    (key, value)
                })
                .collect::<Map<_, _>>(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(normalize).collect()),
        Value::String(s) if s.is_empty() => Value::Null,
        other => other,
    }
}

/// Seconds since the epoch as RFC 3339 (UTC).
pub fn timestamp(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| secs.to_string())
}

fn cell(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        Value::Bool(true) => "yes".into(),
        Value::Bool(false) => "no".into(),
        Value::Array(items) if items.iter().all(Value::is_string) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    }
}

/// One record: `key value` lines, or one JSON line.
pub fn one(format: Format, record: &Value) {
    match (format, record.as_object()) {
        (Format::Table, Some(fields)) => {
            let width = fields.keys().map(String::len).max().unwrap_or(0) + 2;
            for (key, value) in fields {
                println!("{key:<width$}{}", cell(value));
            }
        }
        (Format::Table, None) => println!("{}", cell(record)),
        (Format::Json, _) => println!("{record}"),
    }
}

/// Records: a table with `columns` (every field of the first record when
/// empty), or JSON lines.
pub fn many(format: Format, records: &[Value], columns: &[&str]) {
    if format == Format::Json {
        records.iter().for_each(|r| println!("{r}"));
        return;
    }
    let Some(first) = records.first().and_then(Value::as_object) else {
        return;
    };
    let columns: Vec<&str> = if columns.is_empty() {
        first.keys().map(String::as_str).collect()
    } else {
        columns.to_vec()
    };
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| columns.iter().map(|c| cell(&r[*c])).collect())
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            rows.iter()
                .map(|r| r[i].len())
                .chain([c.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(columns.iter().map(|c| c.to_uppercase()).collect());
    rows.into_iter().for_each(line);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn records_from_either_side_agree() {
        let from_api = record(&json!({
            "id": "u1", "issuer": "dev", "email": "", "created_at": 0, "roles": [{"name": ""}]
        }));
        assert_eq!(
            from_api,
            json!({
                "id": "u1", "source": "dev", "email": null,
                "created_at": "1970-01-01T00:00:00Z", "roles": [{"name": null}]
            })
        );
    }
}
