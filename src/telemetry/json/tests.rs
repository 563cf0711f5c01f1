use std::sync::{Arc, Mutex};

use serde_json::Value;
use tracing::{info, info_span, warn};
use tracing_subscriber::fmt::MakeWriter;

use super::*;

/// Captures what a subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Self;
    fn make_writer(&'a self) -> Self {
        self.clone()
    }
}

impl Captured {
    fn lines(&self) -> Vec<Value> {
        let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }
}

/// Events with awkward values, inside and outside spans.
fn events() {
    let hostile = "a\"b\\c\nd\re\tf\u{1}g\u{7f}h é ✓ \u{1F600}";
    info!(
        decision = "allow",
        status = 403u64,
        delta = -3i64,
        ok = true,
        ratio = 0.5,
        "decision"
    );
    info!(path = hostile, shown = %hostile, debugged = ?hostile, "hostile");
    let outer = info_span!("outer", request_id = "r-1", n = 7);
    let _outer = outer.enter();
    let inner = info_span!("inner", quote = "\"");
    let _inner = inner.enter();
    warn!(error = %std::io::Error::other("disk \"full\""), "inside");
    let empty = info_span!("empty");
    let _empty = empty.enter();
    info!("no fields");
}

fn capture(json_lines: bool) -> Vec<Value> {
    let out = Captured::default();
    let builder = tracing_subscriber::fmt()
        .with_writer(out.clone())
        .json()
        .flatten_event(true)
        .with_current_span(true);
    if json_lines {
        tracing::subscriber::with_default(builder.event_format(JsonLines).finish(), events);
    } else {
        tracing::subscriber::with_default(builder.finish(), events);
    }
    out.lines()
}

/// The line shape consumers parse stays the one `tracing-subscriber`'s own
/// JSON format writes: every value equal, timestamps aside.
#[test]
fn lines_equal_tracing_subscribers_json_but_for_the_timestamp() {
    let ours = capture(true);
    let theirs = capture(false);
    assert_eq!(ours.len(), 4);
    assert_eq!(ours.len(), theirs.len());
    for (mut a, mut b) in ours.into_iter().zip(theirs) {
        let stamp = a["timestamp"].as_str().unwrap().to_owned();
        assert!(stamp.ends_with('Z') && stamp.len() >= 20, "{stamp}");
        a.as_object_mut().unwrap().remove("timestamp");
        b.as_object_mut().unwrap().remove("timestamp");
        assert_eq!(a, b);
    }
}

#[test]
fn strings_are_escaped_and_round_trip() {
    let lines = capture(true);
    let hostile = "a\"b\\c\nd\re\tf\u{1}g\u{7f}h é ✓ \u{1F600}";
    assert_eq!(lines[1]["path"], hostile);
    assert_eq!(lines[1]["shown"], hostile);
    assert_eq!(lines[0]["status"], 403);
    assert_eq!(lines[0]["delta"], -3);
    assert_eq!(lines[0]["ok"], true);
    assert_eq!(lines[2]["span"]["name"], "inner");
    assert_eq!(lines[2]["spans"][0]["request_id"], "r-1");
}
