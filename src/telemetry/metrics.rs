//! Prometheus metrics, through the `metrics` facade: the modules record
//! with the functions here (one place for every name and label), the
//! operations listener renders them. Without an installed recorder each
//! call is a no-op.
//!
//! Names follow Prometheus' conventions: `dispatch_authz_` prefix, base
//! units, `_total` for counters. Label values are bounded sets (reasons
//! and cache names are constants, issuers and operations come from the
//! configuration or the code), so no series grows with traffic.

use std::{sync::OnceLock, time::Duration};

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const CHECKS: &str = "dispatch_authz_checks_total";
pub const CHECK_DURATION: &str = "dispatch_authz_check_duration_seconds";
pub const CACHE_LOOKUPS: &str = "dispatch_authz_cache_lookups_total";
pub const CACHE_ENTRIES: &str = "dispatch_authz_cache_entries";
pub const CACHE_EVICTIONS: &str = "dispatch_authz_cache_evictions_total";
pub const KEY_FETCHES: &str = "dispatch_authz_key_set_fetches_total";
pub const GITHUB_CALLS: &str = "dispatch_authz_github_api_calls_total";
pub const GITHUB_RATE_LIMIT_REMAINING: &str = "dispatch_authz_github_rate_limit_remaining";
pub const DATABASE_ERRORS: &str = "dispatch_authz_database_errors_total";
pub const ADMIN_WRITES: &str = "dispatch_authz_admin_writes_total";
pub const CONFIG_RELOADS: &str = "dispatch_authz_config_reloads_total";

/// Check latency buckets, in seconds: a cache hit takes microseconds, a
/// cold check milliseconds, and Envoy gives up at 0.25 s by default.
const CHECK_BUCKETS: &[f64] = &[
    0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1,
    0.25, 0.5, 1.0,
];

/// The process's recorder, installed on first use. One per process: every
/// server in it (tests run several) records into the same one.
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(CHECK_DURATION.into()), CHECK_BUCKETS)
            .expect("the bucket list is not empty")
            .build_recorder();
        let handle = recorder.handle();
        // Fails only when another recorder is installed (then ours renders
        // nothing new): not worth refusing to start over.
        let _ = metrics::set_global_recorder(recorder);
        describe();
        handle
    })
}

/// How often histogram samples are folded into their buckets. The
/// recorder keeps each sample until then (or until a scrape): without
/// this, a sidecar nobody scrapes grows by 8 bytes a check; every 5 s, the
/// samples held cost 1.5 MiB at 37,000 checks/s (BENCHMARKS.md).
pub const UPKEEP_INTERVAL: Duration = Duration::from_secs(1);

/// Folds samples into buckets every [`UPKEEP_INTERVAL`], for as long as
/// the returned future runs (the server's lifetime).
pub async fn upkeep() {
    let handle = handle();
    loop {
        tokio::time::sleep(UPKEEP_INTERVAL).await;
        handle.run_upkeep();
    }
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        CHECKS,
        "Checks answered, by decision, reason and subject kind"
    );
    describe_histogram!(CHECK_DURATION, Unit::Seconds, "Time to decide a check");
    describe_counter!(
        CACHE_LOOKUPS,
        "Cache lookups, by cache and result (hit or miss)"
    );
    describe_gauge!(
        CACHE_ENTRIES,
        "Entries held, by cache (read at each scrape)"
    );
    describe_counter!(
        CACHE_EVICTIONS,
        "Entries evicted to stay within capacity, by cache (not expiries or invalidations)"
    );
    describe_counter!(
        KEY_FETCHES,
        "Fetches of an issuer's key set, by issuer and result"
    );
    describe_counter!(GITHUB_CALLS, "GitHub API calls, by result");
    describe_gauge!(
        GITHUB_RATE_LIMIT_REMAINING,
        "GitHub API requests left in the current window, as GitHub last reported"
    );
    describe_counter!(
        DATABASE_ERRORS,
        "Failed database operations, by where they failed"
    );
    describe_counter!(ADMIN_WRITES, "Admin writes, by operation and result");
    describe_counter!(
        CONFIG_RELOADS,
        "Configuration reloads, by result (failed: the file was refused and the old one kept)"
    );
}

/// A decided check. `decision` is `allow`, `deny` (or, in dry-run,
/// `would_deny`).
pub fn check_decided(decision: &'static str, reason: &'static str, subject_kind: &'static str) {
    counter!(CHECKS, "decision" => decision, "reason" => reason, "subject_kind" => subject_kind)
        .increment(1);
}

pub fn check_duration(elapsed: Duration) {
    histogram!(CHECK_DURATION).record(elapsed.as_secs_f64());
}

pub fn cache_lookup(cache: &'static str, hit: bool) {
    let result = if hit { "hit" } else { "miss" };
    counter!(CACHE_LOOKUPS, "cache" => cache, "result" => result).increment(1);
}

pub fn cache_entries(cache: &'static str, entries: u64) {
    gauge!(CACHE_ENTRIES, "cache" => cache).set(entries as f64);
}

/// An entry pushed out by capacity: the cache is too small for the load.
pub fn cache_evicted(cache: &'static str) {
    counter!(CACHE_EVICTIONS, "cache" => cache).increment(1);
}

pub fn key_fetch(issuer: &str, ok: bool) {
    let result = if ok { "ok" } else { "failed" };
    counter!(KEY_FETCHES, "issuer" => issuer.to_owned(), "result" => result).increment(1);
}

/// `result`: `ok`, `refused` (an answer about the token), `rate_limited`,
/// `failed` (unreachable or garbage).
pub fn github_call(result: &'static str) {
    counter!(GITHUB_CALLS, "result" => result).increment(1);
}

pub fn github_rate_limit_remaining(remaining: u64) {
    gauge!(GITHUB_RATE_LIMIT_REMAINING).set(remaining as f64);
}

/// `at`: `check` (the check path) or `admin` (an admin write or read).
pub fn database_error(at: &'static str) {
    counter!(DATABASE_ERRORS, "at" => at).increment(1);
}

pub fn config_reload(ok: bool) {
    let result = if ok { "ok" } else { "failed" };
    counter!(CONFIG_RELOADS, "result" => result).increment(1);
}

pub fn admin_write(operation: &'static str, ok: bool) {
    let result = if ok { "ok" } else { "failed" };
    counter!(ADMIN_WRITES, "operation" => operation, "result" => result).increment(1);
}
