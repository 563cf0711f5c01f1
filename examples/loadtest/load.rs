//! Load generators: closed loop (fixed concurrency) and open loop (fixed
//! rate), each checking every answer.

use super::*;

#[derive(Default)]
pub(crate) struct Outcome {
    pub(crate) ok: u64,
    pub(crate) errors: u64,
    pub(crate) elapsed: Duration,
    pub(crate) latency: Option<Histogram<u64>>,
}

impl Outcome {
    pub(crate) fn rps(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }
    pub(crate) fn quantile_us(&self, q: f64) -> u64 {
        self.latency.as_ref().map_or(0, |h| h.value_at_quantile(q))
    }
}

pub(crate) fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).unwrap()
}

pub(crate) async fn channels(
    addr: &str,
    n: usize,
) -> anyhow::Result<Vec<AuthorizationClient<Channel>>> {
    let mut out = Vec::new();
    for _ in 0..n {
        let channel = Endpoint::from_shared(format!("http://{addr}"))?
            .tcp_nodelay(true)
            .connect()
            .await?;
        out.push(AuthorizationClient::new(channel));
    }
    Ok(out)
}

#[derive(Clone, Copy)]
pub(crate) enum Limit {
    Time(Duration),
    /// Exactly this many requests, each of `requests` once (warm-up).
    Count(usize),
}

/// Closed loop: `concurrency` tasks, each sending the next request as soon as
/// the previous answered, until the limit.
pub(crate) async fn closed_loop(
    clients: &[AuthorizationClient<Channel>],
    requests: Arc<Vec<CheckRequest>>,
    expect: i32,
    concurrency: usize,
    limit: Limit,
) -> Outcome {
    let next = Arc::new(AtomicUsize::new(0));
    let (deadline, count) = match limit {
        Limit::Time(d) => (Instant::now() + d, usize::MAX),
        Limit::Count(n) => (Instant::now() + Duration::from_secs(3600), n),
    };
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..concurrency {
        let mut client = clients[t % clients.len()].clone();
        let (requests, next) = (requests.clone(), next.clone());
        tasks.spawn(async move {
            let mut out = Outcome {
                latency: Some(histogram()),
                ..Default::default()
            };
            while Instant::now() < deadline {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= count {
                    break;
                }
                let i = n % requests.len();
                let sent = Instant::now();
                let answer = client.check(requests[i].clone()).await;
                let took = sent.elapsed().as_micros() as u64;
                match answer {
                    Ok(r) if r.get_ref().status.as_ref().map(|s| s.code) == Some(expect) => {
                        out.ok += 1;
                        out.latency.as_mut().unwrap().record(took.max(1)).ok();
                    }
                    _ => out.errors += 1,
                }
            }
            out
        });
    }
    merge(tasks, started).await
}

/// Open loop: one request every 1/rate s, each on its own task, so a slow
/// answer does not slow the sender (latency includes queueing).
pub(crate) async fn open_loop(
    clients: &[AuthorizationClient<Channel>],
    requests: Arc<Vec<CheckRequest>>,
    expect: i32,
    rate: u64,
    duration: Duration,
) -> Outcome {
    let total = ((rate as f64 * duration.as_secs_f64()) as usize).min(requests.len());
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    // Each task reports only its latency: a histogram per task would cost
    // the generator more than the request.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..total {
        ticker.tick().await;
        let mut client = clients[i % clients.len()].clone();
        let request = requests[i].clone();
        tasks.spawn(async move {
            let sent = Instant::now();
            match client.check(request).await {
                Ok(r) if r.get_ref().status.as_ref().map(|s| s.code) == Some(expect) => {
                    Some((sent.elapsed().as_micros() as u64).max(1))
                }
                _ => None,
            }
        });
    }
    let mut out = Outcome {
        latency: Some(histogram()),
        ..Default::default()
    };
    while let Some(result) = tasks.join_next().await {
        match result.ok().flatten() {
            Some(us) => {
                out.ok += 1;
                out.latency.as_mut().unwrap().record(us).ok();
            }
            None => out.errors += 1,
        }
    }
    out.elapsed = started.elapsed();
    out
}

pub(crate) async fn merge(mut tasks: tokio::task::JoinSet<Outcome>, started: Instant) -> Outcome {
    let mut total = Outcome {
        latency: Some(histogram()),
        ..Default::default()
    };
    while let Some(Ok(part)) = tasks.join_next().await {
        total.ok += part.ok;
        total.errors += part.errors;
        if let (Some(t), Some(p)) = (total.latency.as_mut(), part.latency.as_ref()) {
            t.add(p).ok();
        }
    }
    total.elapsed = started.elapsed();
    total
}
