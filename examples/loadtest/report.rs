//! The table of results and the ratios against the baseline.

use super::*;

pub(crate) struct Row {
    pub(crate) phase: &'static str,
    pub(crate) kind: &'static str,
    pub(crate) outcome: Outcome,
    pub(crate) cpu_us: f64,
    pub(crate) rss: f64,
}

pub(crate) fn print_header() {
    println!(
        "{:<6} {:<9} {:>10} {:>8} {:>9} {:>9} {:>9} {:>12} {:>8} {:>7}",
        "phase",
        "server",
        "req/s",
        "errors",
        "p50 µs",
        "p99 µs",
        "p99.9 µs",
        "cpu µs/chk",
        "RSS MiB",
        "round"
    );
}

pub(crate) fn print_row(r: &Row, round: usize) {
    println!(
        "{:<6} {:<9} {:>10.0} {:>8} {:>9} {:>9} {:>9} {:>12.1} {:>8.1} {:>7}",
        r.phase,
        r.kind,
        r.outcome.rps(),
        r.outcome.errors,
        r.outcome.quantile_us(0.50),
        r.outcome.quantile_us(0.99),
        r.outcome.quantile_us(0.999),
        r.cpu_us,
        r.rss,
        round
    );
}

pub(crate) fn print_ratio(phase: &str, rows: &[Row]) {
    let mean = |kind: &str, f: &dyn Fn(&Row) -> f64| {
        let v: Vec<f64> = rows.iter().filter(|r| r.kind == kind).map(f).collect();
        v.iter().sum::<f64>() / v.len().max(1) as f64
    };
    let rps = mean("sidecar", &|r| r.outcome.rps()) / mean("baseline", &|r| r.outcome.rps());
    let cpu = mean("sidecar", &|r| r.cpu_us) / mean("baseline", &|r| r.cpu_us);
    let p99 = mean("sidecar", &|r| r.outcome.quantile_us(0.99) as f64)
        / mean("baseline", &|r| r.outcome.quantile_us(0.99) as f64);
    println!(
        "{phase:<6} ratio sidecar/baseline: throughput {rps:.2}x, cpu per check {cpu:.2}x, p99 {p99:.2}x"
    );
}
