//! Time as the store (and the server) sees it: real, or driven by a test.
//!
//! Timers that wait for a moment of this clock (event expiry, for one) sleep on the runtime's
//! timer for real time, and also wait on [`Clock::changes`] so a test that moves a
//! [`ManualClock`] wakes them at once. [`SystemClock`] has no such signal and costs nothing.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

/// A source of wall-clock time.
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    /// Now.
    fn now(&self) -> SystemTime;

    /// A signal that fires whenever the clock is moved by hand (the receiver's value is the new
    /// time). `None` for clocks that only move with real time: for those, sleeping on the
    /// runtime's timer until the wanted moment is enough.
    fn changes(&self) -> Option<watch::Receiver<SystemTime>> {
        None
    }
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that only moves when a test moves it. Clones share one time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<watch::Sender<SystemTime>>,
}

impl ManualClock {
    /// A clock stopped at `start`.
    pub fn new(start: SystemTime) -> Self {
        ManualClock {
            now: Arc::new(watch::Sender::new(start)),
        }
    }

    /// Move the clock forward; everything waiting on [`Clock::changes`] wakes.
    pub fn advance(&self, by: Duration) {
        self.now.send_modify(|now| *now += by);
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000))
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.now.borrow()
    }

    fn changes(&self) -> Option<watch::Receiver<SystemTime>> {
        Some(self.now.subscribe())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[tokio::test]
    async fn manual_clock_signals_each_advance() {
        let clock = ManualClock::default();
        let start = clock.now();
        let mut rx = clock.changes().expect("a manual clock signals");
        let shared = clock.clone();
        shared.advance(Duration::from_secs(5));
        rx.changed().await.expect("sender alive");
        assert_eq!(*rx.borrow_and_update(), start + Duration::from_secs(5));
        assert_eq!(clock.now(), start + Duration::from_secs(5));
        assert!(SystemClock.changes().is_none());
    }
}
