//! Memory per cached entry of the two moka caches on the check path, filled
//! with 100,000 entries shaped like the load harness's (BENCHMARKS.md).
//!
//!     cargo run --release --example cache_memory [-- ENTRIES]

use std::{sync::Arc, time::Duration};

use dispatch_authz::{
    domain::{IssuerName, Login, Principal, Subject, UserId},
    identity::VerifiedIdentity,
    store::User,
};
use moka::future::Cache;

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn principal(i: usize) -> Arc<Principal> {
    Arc::new(Principal {
        issuer: IssuerName::parse("load").unwrap(),
        subject: Subject::parse(&format!("u{i}")).unwrap(),
    })
}

fn report(what: &str, before: f64, entries: usize) -> f64 {
    let after = rss_mib();
    let per_entry = (after - before) * 1024.0 * 1024.0 / entries as f64;
    println!(
        "{what:<12} {entries} entries: {:>6.1} MiB, {per_entry:>5.0} bytes/entry",
        after - before
    );
    after
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let entries: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    let ttl = Duration::from_secs(3600);
    let start = rss_mib();

    let tokens: Cache<[u8; 32], Arc<VerifiedIdentity>> = Cache::builder()
        .max_capacity(entries as u64)
        .time_to_live(ttl)
        .build();
    for i in 0..entries {
        let mut digest = [0u8; 32];
        digest[..8].copy_from_slice(&(i as u64).to_le_bytes());
        let identity = VerifiedIdentity {
            principal: principal(i),
            login: None,
            login_is_authoritative: false,
            email: None,
            expires_at: u64::MAX,
            verified_at: 0,
            service_account: None,
            links: Box::default(),
        };
        tokens.insert(digest, Arc::new(identity)).await;
    }
    tokens.run_pending_tasks().await;
    let after_tokens = report("token cache", start, entries);

    let users: Cache<Arc<Principal>, Option<Arc<User>>> = Cache::builder()
        .max_capacity(entries as u64)
        .time_to_live(ttl)
        .build();
    for i in 0..entries {
        let p = principal(i);
        let user = User {
            id: UserId::new(),
            issuer: p.issuer.clone(),
            subject: p.subject.clone(),
            login: Login::parse(&format!("user{i}")).unwrap(),
            email: None,
            display_name: None,
            enabled: true,
            created_at: 0,
            updated_at: 0,
        };
        users.insert(p, Some(Arc::new(user))).await;
    }
    users.run_pending_tasks().await;
    report("user cache", after_tokens, entries);
    println!(
        "payload only: VerifiedIdentity {} B + Principal {} B, User {} B (plus their strings)",
        size_of::<VerifiedIdentity>(),
        size_of::<Principal>(),
        size_of::<User>()
    );
}
