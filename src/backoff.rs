//! Retry pacing for background loops (informers, controllers, compaction): exponential backoff
//! with jitter, and a log line per change of state (first failure, recovery), never one per
//! retry.

use std::fmt::Display;
use std::time::Duration;

use rand::Rng;

/// The pacing of one loop's retries.
#[derive(Debug)]
pub struct Backoff {
    what: &'static str,
    min: Duration,
    max: Duration,
    next: Duration,
    failures: u64,
}

impl Backoff {
    /// Retries of `what` (named in the log), waiting from `min` up to `max`.
    pub fn new(what: &'static str, min: Duration, max: Duration) -> Self {
        Backoff {
            what,
            min,
            max,
            next: min,
            failures: 0,
        }
    }

    /// The usual pacing: 100 ms doubling up to 30 s.
    pub fn standard(what: &'static str) -> Self {
        Self::new(what, Duration::from_millis(100), Duration::from_secs(30))
    }

    /// A failure: how long to wait before the next try (the current step, ±20 %, then the step
    /// doubles up to the maximum). Only the first failure of a run is logged as a warning.
    pub fn failed(&mut self, error: &dyn Display) -> Duration {
        self.failures += 1;
        if self.failures == 1 {
            tracing::warn!(%error, "{} failed; retrying with backoff", self.what);
        } else {
            tracing::debug!(%error, failures = self.failures, "{} failed again", self.what);
        }
        let step = self.next;
        self.next = (self.next * 2).min(self.max);
        let jitter = rand::rng().random_range(0.8..1.2);
        step.mul_f64(jitter)
    }

    /// A success: the next failure waits the shortest time again; a recovery is logged once.
    pub fn succeeded(&mut self) {
        if self.failures > 0 {
            tracing::info!(failures = self.failures, "{} works again", self.what);
        }
        self.failures = 0;
        self.next = self.min;
    }

    /// Failures since the last success.
    pub fn failures(&self) -> u64 {
        self.failures
    }
}

/// Wait `d`, or less if `shutdown` says so first. Returns false on shutdown.
pub async fn wait(d: Duration, shutdown: &mut tokio::sync::watch::Receiver<bool>) -> bool {
    if *shutdown.borrow() {
        return false;
    }
    tokio::select! {
        _ = shutdown.changed() => false,
        _ = tokio::time::sleep(d) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_with_jitter_up_to_the_maximum_and_reset_on_success() {
        let mut b = Backoff::new(
            "test",
            Duration::from_millis(100),
            Duration::from_millis(800),
        );
        let waits: Vec<Duration> = (0..6).map(|_| b.failed(&"boom")).collect();
        for (w, step) in waits.iter().zip([100, 200, 400, 800, 800, 800]) {
            let step = Duration::from_millis(step);
            assert!(
                *w >= step.mul_f64(0.8) && *w <= step.mul_f64(1.2),
                "{w:?} for {step:?}"
            );
        }
        assert_eq!(b.failures(), 6);
        b.succeeded();
        assert_eq!(b.failures(), 0);
        assert!(b.failed(&"boom") <= Duration::from_millis(120));
    }
}
