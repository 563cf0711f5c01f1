use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{INTERVAL, LIMIT, batched};

/// An output the test can read while the writer thread writes to it;
/// optionally slow, to make the buffer fill up.
#[derive(Clone, Default)]
struct Output {
    bytes: Arc<Mutex<Vec<u8>>>,
    delay: Duration,
}

impl Output {
    fn text(&self) -> String {
        String::from_utf8(self.bytes.lock().unwrap().clone()).unwrap()
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        std::thread::sleep(self.delay);
        self.bytes.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn every_line_of_concurrent_callers_arrives_whole_and_in_each_callers_order() {
    let output = Output::default();
    let (writer, guard) = batched(output.clone()).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let writer = writer.clone();
            std::thread::spawn(move || {
                for i in 0..20_000 {
                    let line = format!(
                        "{{\"thread\":{t},\"line\":{i},\"pad\":\"{}\"}}\n",
                        "x".repeat(i % 50)
                    );
                    (&writer).write_all(line.as_bytes()).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    drop(guard);
    let text = output.text();
    let mut next = [0usize; 4];
    for line in text.lines() {
        let value: serde_json::Value = serde_json::from_str(line).expect(line);
        let t = value["thread"].as_u64().unwrap() as usize;
        assert_eq!(value["line"].as_u64().unwrap() as usize, next[t], "{line}");
        next[t] += 1;
    }
    assert_eq!(next, [20_000; 4]);
}

#[test]
fn a_lone_line_is_written_within_the_interval_without_waiting_for_a_batch() {
    let output = Output::default();
    let (writer, _guard) = batched(output.clone()).unwrap();
    (&writer).write_all(b"one line\n").unwrap();
    let started = Instant::now();
    while output.text().is_empty() {
        assert!(
            started.elapsed() < 20 * INTERVAL,
            "the line never reached the output"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(output.text(), "one line\n");
}

#[test]
fn a_slow_output_makes_callers_wait_instead_of_losing_lines() {
    let output = Output {
        delay: Duration::from_millis(20),
        ..Output::default()
    };
    let (writer, guard) = batched(output.clone()).unwrap();
    let line = format!("{}\n", "y".repeat(1023));
    let lines = 3 * LIMIT / line.len();
    for _ in 0..lines {
        (&writer).write_all(line.as_bytes()).unwrap();
    }
    drop(guard);
    let text = output.text();
    assert_eq!(text.len(), lines * line.len());
    assert!(text.lines().all(|l| l.len() == 1023));
}

#[test]
fn writing_after_the_guard_is_gone_neither_blocks_nor_panics() {
    let output = Output::default();
    let (writer, guard) = batched(output.clone()).unwrap();
    (&writer).write_all(b"before\n").unwrap();
    drop(guard);
    (&writer).write_all(b"after\n").unwrap();
    assert_eq!(output.text(), "before\n");
}
