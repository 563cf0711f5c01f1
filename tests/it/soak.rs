//! Issue 17, item 4: a soak through a real Envoy. A `serve` process (the
//! binary) in RBAC mode behind Envoy (`envoy/envoy.yaml`), the echo
//! upstream behind both; requests at a fixed rate while an admin, through
//! the admin API, disables and re-enables users and removes and restores
//! their bindings.
//!
//! Every answer is checked against the state the admin had acknowledged
//! when the request was sent; a request during which a change was in
//! flight may get either answer, and nothing else. So a disable is refused
//! from the first request sent after its acknowledgement: that is the
//! bound. Every 200 carries the caller's identity to the upstream and
//! never the forged one sent with it. RSS is sampled as it goes. Each user
//! is allowed once before the clock starts ([`warm_up`]).
//!
//! CI runs it for 20 s at 200 requests/s. BENCHMARKS.md's figures:
//! `DISPATCH_SOAK_SECS=600 DISPATCH_SOAK_RATE=500 DISPATCH_SOAK_SAMPLE_SECS=60
//! cargo test --release --test it soak -- --nocapture`.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use dispatch_authz::{
    domain::{OrgName, RoleName, SubjectRef},
    policy::rbac::{Permission, Role, Scope},
    proto::admin::role_binding::Subject as BoundSubject,
    store::{
        Actor, BindingAdmin, OrgAdmin, RoleAdmin, RoleBinding, RoleKey, SqlStore, StoreLocation,
        UserAdmin, UserRef,
    },
};

use crate::common::{
    admin::{Admin, user_ref},
    programs::{self, Ports, Running},
    serve::{Launch, ServeProcess},
    upstream::{seen, spawn_upstream},
    *,
};

const USERS: usize = 200;
/// The users the admin changes; the others are allowed throughout.
const CHURNED: usize = 20;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map_or(default, |v| v.parse().unwrap())
}

fn user(i: usize) -> String {
    format!("user{i}")
}

/// Per user, what the admin last acknowledged, and a count of changes
/// begun or acknowledged: a request that saw the count move while it was
/// in flight was sent during a change.
#[derive(Default)]
struct State {
    /// `changes << 1 | denied`.
    word: AtomicU64,
}

impl State {
    fn read(&self) -> (u64, bool) {
        let w = self.word.load(Ordering::SeqCst);
        (w >> 1, w & 1 == 1)
    }

    fn begin(&self) {
        self.word.fetch_add(2, Ordering::SeqCst);
    }

    fn acknowledged(&self, denied: bool) {
        let (changes, _) = self.read();
        self.word
            .store(((changes + 1) << 1) | u64::from(denied), Ordering::SeqCst);
    }
}

#[derive(Default)]
struct Tally {
    allowed: AtomicU64,
    denied: AtomicU64,
    during_changes: AtomicU64,
    wrong: AtomicU64,
}

/// The store before the process starts: `root` (global admin), acme with
/// a developer role (`function:*`), and every user a member bound to it.
async fn prepare(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("dispatch-authz.toml");
    let options = Options {
        users_ttl_secs: 3600,
        authorization: r#"mode = "rbac""#.into(),
        ..Options::default()
    };
    std::fs::write(&path, config_toml(dir, &options)).unwrap();
    let location = StoreLocation::Sqlite(dir.join("users.db"));
    let store = SqlStore::open(&location, None).await.unwrap();
    let actor = Actor::local("soak");
    let acme = OrgName::parse("acme").unwrap();
    store.create_org(&actor, &acme).await.unwrap();
    let developer = Role {
        name: RoleName::parse("developer").unwrap(),
        scope: Scope::Org(acme.clone()),
        permissions: vec![Permission::parse("function:*").unwrap()],
    };
    store.create_role(&actor, &developer).await.unwrap();
    let subjects = std::iter::once("root".to_owned()).chain((0..USERS).map(user));
    for subject in subjects {
        let new = new_user(ISSUER_NAME, &subject, &subject);
        let added = store.add(&actor, new).await.unwrap();
        let id = UserRef::Id(added.id);
        if subject == "root" {
            store.bootstrap(&actor, &id).await.unwrap();
            continue;
        }
        store.add_member(&actor, &acme, &id, true).await.unwrap();
        let binding = RoleBinding {
            role: RoleKey::of(&developer),
            subject: SubjectRef::User(added.id),
        };
        store.bind_role(&actor, &binding).await.unwrap();
    }
    store.pool().close().await;
    path
}

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

/// The admin's changes, one every `every`, round the churned users: each
/// user in turn disabled, enabled, unbound, bound again. The count of each.
async fn churn(
    admin_addr: String,
    states: Arc<Vec<State>>,
    every: Duration,
    until: Instant,
) -> [u64; 4] {
    let mut admin = Admin::connect_to(&admin_addr, &token(&claims("root"))).await;
    let mut done = [0; 4];
    for step in 0.. {
        if Instant::now() >= until {
            break;
        }
        let (i, kind) = (step % CHURNED, (step / CHURNED) % 4);
        let who = user_ref(&user(i));
        let subject = || BoundSubject::User(who.clone());
        states[i].begin();
        let result = match kind {
            0 => admin.set_user_enabled(&who, false).await.map(drop),
            1 => admin.set_user_enabled(&who, true).await.map(drop),
            2 => admin.unbind("acme", "developer", subject()).await.map(drop),
            _ => admin.bind("acme", "developer", subject()).await.map(drop),
        };
        result.unwrap_or_else(|e| panic!("admin change {step} refused: {e:?}"));
        states[i].acknowledged(kind % 2 == 0);
        done[kind] += 1;
        tokio::time::sleep(every).await;
    }
    done
}

/// One request as user `i`, with a forged identity header beside its
/// token; checked against `states[i]` before and after.
async fn one(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    i: usize,
    states: &[State],
    tally: &Tally,
) {
    let before = states[i].read();
    let response = http
        .get(url)
        .header("authorization", token)
        .header("x-dispatch-user", "mallory")
        .send()
        .await;
    let after = states[i].read();
    let (status, body) = match response {
        Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
        Err(_) => (0, String::new()),
    };
    let wrong = || {
        tally.wrong.fetch_add(1, Ordering::SeqCst);
        eprintln!(
            "soak: {} got {status} ({before:?} → {after:?}): {body}",
            user(i)
        );
    };
    let expected_denied = (before == after).then_some(before.1);
    match (status, expected_denied) {
        (200, Some(true)) | (403, Some(false)) => return wrong(),
        (200, _) => {
            let echo: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            let identity = seen(&echo, "x-dispatch-user");
            if identity != Some(&vec![serde_json::json!(user(i))]) {
                return wrong();
            }
            tally.allowed.fetch_add(1, Ordering::SeqCst);
        }
        (403, _) => {
            tally.denied.fetch_add(1, Ordering::SeqCst);
        }
        _ => return wrong(),
    }
    if expected_denied.is_none() {
        tally.during_changes.fetch_add(1, Ordering::SeqCst);
    }
}

/// One allowed request per user before the clock starts. The soak is about
/// the steady state under churn; the cold start is not: a debug build's
/// first check of each of 200 users at 200/s on a busy 2-core machine
/// queued past Envoy's 250 ms and was answered 503 (failing closed, as it
/// should, but not what is measured here; seen once in a local CI-like
/// run). Cold checks are tested elsewhere (`pipeline`, `api`).
async fn warm_up(http: &reqwest::Client, url: &str, tokens: &[String]) {
    for (i, token) in tokens.iter().enumerate() {
        let mut statuses = Vec::new();
        for _ in 0..20 {
            let status = http
                .get(url)
                .header("authorization", token)
                .send()
                .await
                .map_or(0, |r| r.status().as_u16());
            if status == 200 {
                break;
            }
            statuses.push(status);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(statuses.len() < 20, "warm-up: {} got {statuses:?}", user(i));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_soak_through_envoy_answers_every_request_rightly_with_flat_memory() {
    let Some(envoy) = programs::require(programs::ENVOY) else {
        return;
    };
    let secs = setting("DISPATCH_SOAK_SECS", 20);
    let rate = setting("DISPATCH_SOAK_RATE", 200);
    let sample = Duration::from_secs(setting("DISPATCH_SOAK_SAMPLE_SECS", 5));
    let dir = tempfile::tempdir().unwrap();
    let config = prepare(dir.path()).await;
    let serve = ServeProcess::start(&config, Launch::default()).await;
    let pid = serve.child.id().unwrap();
    let (_upstream, upstream) = spawn_upstream().await;
    let sidecar = serve.addr.rsplit(':').next().unwrap().parse().unwrap();
    let proxy = Running::envoy(&envoy, "envoy.yaml", Ports { sidecar, upstream }).await;
    let url = proxy.url("/v1/function/f");
    let tokens: Arc<Vec<String>> = Arc::new(
        (0..USERS)
            .map(|i| bearer(&token(&claims(&user(i)))))
            .collect(),
    );
    let states: Arc<Vec<State>> = Arc::new((0..USERS).map(|_| State::default()).collect());
    let tally = Arc::new(Tally::default());
    let http = reqwest::Client::new();
    warm_up(&http, &url, &tokens).await;

    let started = Instant::now();
    let until = started + Duration::from_secs(secs);
    let admin = tokio::spawn(churn(
        serve.admin.clone(),
        states.clone(),
        Duration::from_millis(100),
        until,
    ));
    let mut rss = vec![rss_mib(pid)];
    let mut next_sample = started + sample;
    let mut requests = tokio::task::JoinSet::new();
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut sent = 0usize;
    while Instant::now() < until {
        ticker.tick().await;
        let (http, url, tokens, states, tally) = (
            http.clone(),
            url.clone(),
            tokens.clone(),
            states.clone(),
            tally.clone(),
        );
        let i = sent % USERS;
        requests.spawn(async move { one(&http, &url, &tokens[i], i, &states, &tally).await });
        sent += 1;
        if Instant::now() >= next_sample {
            rss.push(rss_mib(pid));
            next_sample += sample;
        }
        while requests.try_join_next().is_some() {}
    }
    while requests.join_next().await.is_some() {}
    let changes = admin.await.unwrap();
    rss.push(rss_mib(pid));
    let elapsed = started.elapsed().as_secs_f64();

    let get = |n: &AtomicU64| n.load(Ordering::SeqCst);
    let series: Vec<String> = rss.iter().map(|m| format!("{m:.1}")).collect();
    println!(
        "soak: {secs} s at {rate}/s: {sent} requests ({:.0}/s), {} allowed, {} denied \
         as expected, {} sent during a change, {} wrong; admin: {} disables, {} enables, \
         {} unbinds, {} binds; RSS MiB every {} s: {}",
        sent as f64 / elapsed,
        get(&tally.allowed),
        get(&tally.denied),
        get(&tally.during_changes),
        get(&tally.wrong),
        changes[0],
        changes[1],
        changes[2],
        changes[3],
        sample.as_secs(),
        series.join(" ")
    );
    assert_eq!(get(&tally.wrong), 0, "wrong answers: {}", proxy.log());
    assert_eq!(
        get(&tally.allowed) + get(&tally.denied),
        sent as u64,
        "every request answered"
    );
    assert!(
        changes.iter().all(|&n| n > 0),
        "every kind of change made: {changes:?}"
    );
    assert!(get(&tally.denied) > 0, "some refusals observed");
}
