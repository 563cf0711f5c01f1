//! Bounds on the work that tokens never seen before can cause.
//!
//! A cached token costs a hash lookup; a new one costs a GitHub API call or
//! a database query. An attacker who sends a stream of fresh random tokens
//! would turn each into such a call: against GitHub that spends our rate
//! limit (every user then gets 503s) and CPU. So cold lookups are bounded in
//! rate (a token bucket) and in concurrency; beyond the bound a check gets a
//! 503 at once, without a call. Tokens seen before are served from the cache
//! and never wait here, so they keep working during a flood.
//!
//! A circuit breaker adds the outage case: after [`OUTAGES_TO_OPEN`]
//! consecutive failures of the provider, cold lookups are refused for
//! [`OPEN_FOR`], then tried again.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU32, Ordering},
    },
    time::{Duration, Instant},
};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Consecutive outages that open the circuit.
pub const OUTAGES_TO_OPEN: u32 = 5;
/// How long an open circuit refuses cold lookups.
pub const OPEN_FOR: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy)]
pub struct LimiterSettings {
    /// Sustained cold lookups per second (also the burst).
    pub per_second: u32,
    /// Cold lookups in flight at once.
    pub concurrent: u32,
}

pub struct ColdLimiter {
    settings: LimiterSettings,
    in_flight: Arc<Semaphore>,
    bucket: Mutex<Bucket>,
    outages: AtomicU32,
    open_until: Mutex<Option<Instant>>,
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Why a cold lookup may not happen now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    TooMany,
    CircuitOpen,
}

impl ColdLimiter {
    pub fn new(settings: LimiterSettings) -> Self {
        Self {
            in_flight: Arc::new(Semaphore::new(settings.concurrent as usize)),
            bucket: Mutex::new(Bucket {
                tokens: f64::from(settings.per_second),
                last: Instant::now(),
            }),
            settings,
            outages: AtomicU32::new(0),
            open_until: Mutex::new(None),
        }
    }

    /// A permit for one cold lookup, held until it finishes.
    pub fn try_acquire(&self) -> Result<OwnedSemaphorePermit, Refusal> {
        if self.is_open() {
            return Err(Refusal::CircuitOpen);
        }
        let permit = self
            .in_flight
            .clone()
            .try_acquire_owned()
            .map_err(|_| Refusal::TooMany)?;
        let mut bucket = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let rate = f64::from(self.settings.per_second);
        let refill = now.duration_since(bucket.last).as_secs_f64() * rate;
        bucket.tokens = (bucket.tokens + refill).min(rate);
        bucket.last = now;
        if bucket.tokens < 1.0 {
            return Err(Refusal::TooMany);
        }
        bucket.tokens -= 1.0;
        Ok(permit)
    }

    fn is_open(&self) -> bool {
        let mut open = self.open_until.lock().unwrap_or_else(|e| e.into_inner());
        match *open {
            Some(until) if Instant::now() < until => true,
            Some(_) => {
                // Half open: let lookups try again; one more outage re-opens.
                *open = None;
                self.outages.store(OUTAGES_TO_OPEN - 1, Ordering::Relaxed);
                false
            }
            None => false,
        }
    }

    /// The provider answered (yes or no).
    pub fn record_answer(&self) {
        self.outages.store(0, Ordering::Relaxed);
    }

    /// The provider could not answer.
    pub fn record_outage(&self) {
        if self.outages.fetch_add(1, Ordering::Relaxed) + 1 >= OUTAGES_TO_OPEN {
            *self.open_until.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(Instant::now() + OPEN_FOR);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_and_the_concurrency_are_bounded() {
        let limiter = ColdLimiter::new(LimiterSettings {
            per_second: 3,
            concurrent: 2,
        });
        let a = limiter.try_acquire().unwrap();
        let b = limiter.try_acquire().unwrap();
        assert_eq!(
            limiter.try_acquire().err(),
            Some(Refusal::TooMany),
            "two in flight"
        );
        drop((a, b));
        let _c = limiter.try_acquire().unwrap();
        assert_eq!(
            limiter.try_acquire().err(),
            Some(Refusal::TooMany),
            "three per second"
        );
    }

    #[test]
    fn outages_open_the_circuit_and_an_answer_closes_it() {
        let limiter = ColdLimiter::new(LimiterSettings {
            per_second: 100,
            concurrent: 10,
        });
        for _ in 0..OUTAGES_TO_OPEN - 1 {
            limiter.record_outage();
        }
        limiter.record_answer();
        limiter.record_outage();
        assert!(limiter.try_acquire().is_ok(), "not consecutive");
        for _ in 0..OUTAGES_TO_OPEN {
            limiter.record_outage();
        }
        assert_eq!(limiter.try_acquire().err(), Some(Refusal::CircuitOpen));
    }
}
