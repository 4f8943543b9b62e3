//! A timer a busy future can look at on every poll for next to nothing.
//!
//! Polling a tokio `Sleep` registers the task's waker with it again: an atomic exchange on the
//! timer's state. A watch connection polls its timers (the watch's deadline, its bookmarks, the
//! connection's watchdog) on every event it sends, and with a thousand watchers that state is
//! out of cache each time. A [`Timer`] polls its `Sleep` only when it may have fired or when the
//! waker it was registered with is not the caller's; otherwise it reads the timer's state.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Waker};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

pub struct Timer {
    sleep: Pin<Box<Sleep>>,
    /// The waker the sleep holds, when it holds one (until it fires or is reset).
    registered: Option<Waker>,
}

impl Timer {
    /// A timer firing `after` from now (any duration: one past what `Instant` holds fires
    /// never, in effect). Needs a runtime with time enabled.
    pub fn after(after: Duration) -> Self {
        Timer {
            sleep: Box::pin(tokio::time::sleep_until(deadline_after(after))),
            registered: None,
        }
    }

    /// Has it fired? If not, `cx`'s waker is woken when it does.
    pub fn fired(&mut self, cx: &mut Context<'_>) -> bool {
        let held = self
            .registered
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()));
        if held && !self.sleep.is_elapsed() {
            return false;
        }
        // Outside the task's cooperative budget: a spent budget would answer Pending without
        // registering the waker (the sleep not even started), and this timer would then wait
        // for a wake that never comes.
        let fired = Pin::new(&mut tokio::task::unconstrained(self.sleep.as_mut()))
            .poll(cx)
            .is_ready();
        self.registered = (!fired).then(|| cx.waker().clone());
        fired
    }

    /// Fire `after` from now instead (also after it fired).
    pub fn reset_after(&mut self, after: Duration) {
        self.sleep.as_mut().reset(deadline_after(after));
        self.registered = None;
    }
}

/// Now plus `after`, or about thirty years from now where that overflows (as tokio's `sleep`).
fn deadline_after(after: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(after)
        .or_else(|| now.checked_add(Duration::from_secs(30 * 365 * 86_400)))
        .unwrap_or(now)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::sync::mpsc;
    use std::sync::{Arc, Mutex};
    use std::task::Wake;
    /// A waker that reports its wakes on a channel.
    struct Reporting(Mutex<mpsc::Sender<()>>);

    impl Wake for Reporting {
        fn wake(self: Arc<Self>) {
            let _ = self.0.lock().unwrap().send(());
        }
    }

    fn waker() -> (Waker, mpsc::Receiver<()>) {
        let (tx, rx) = mpsc::channel();
        (Waker::from(Arc::new(Reporting(Mutex::new(tx)))), rx)
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_time()
            .build()
            .unwrap()
    }

    const WAIT: Duration = Duration::from_secs(10);

    #[test]
    fn it_fires_and_wakes_the_last_waker_it_was_looked_at_with() {
        let rt = runtime();
        let _entered = rt.enter();
        let (first, first_woken) = waker();
        let (second, second_woken) = waker();
        let mut t = Timer::after(Duration::from_millis(30));
        for _ in 0..3 {
            assert!(!t.fired(&mut Context::from_waker(&first)));
        }
        // Another waker: registered with the sleep in place of the first.
        assert!(!t.fired(&mut Context::from_waker(&second)));
        second_woken.recv_timeout(WAIT).unwrap();
        assert!(
            first_woken.try_recv().is_err(),
            "the first waker was replaced"
        );
        assert!(t.fired(&mut Context::from_waker(&second)));
        assert!(t.fired(&mut Context::from_waker(&first)), "it stays fired");
    }

    #[test]
    fn a_reset_timer_fires_again() {
        let rt = runtime();
        let _entered = rt.enter();
        let (w, woken) = waker();
        let mut cx = Context::from_waker(&w);
        let mut t = Timer::after(Duration::from_millis(10));
        assert!(!t.fired(&mut cx));
        woken.recv_timeout(WAIT).unwrap();
        assert!(t.fired(&mut cx));
        t.reset_after(Duration::from_millis(20));
        assert!(!t.fired(&mut cx));
        woken.recv_timeout(WAIT).unwrap();
        assert!(t.fired(&mut cx));
        // Reset before it fires: not fired until the new deadline.
        t.reset_after(Duration::from_secs(3600));
        assert!(!t.fired(&mut cx));
        t.reset_after(Duration::from_millis(20));
        assert!(!t.fired(&mut cx));
        woken.recv_timeout(WAIT).unwrap();
        assert!(t.fired(&mut cx));
    }

    /// A task that spent its cooperative budget (a busy watch connection can) still gets its
    /// timer started and is woken when it fires.
    #[test]
    fn a_task_out_of_budget_still_starts_its_timer() {
        let rt = runtime();
        rt.block_on(async {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            for i in 0..1000 {
                tx.send(i).unwrap();
            }
            let mut t = Timer::after(Duration::from_millis(20));
            let mut looked = 0;
            let fired = std::future::poll_fn(|cx| {
                looked += 1;
                // Receive until the budget says no (tokio's is 128 a poll).
                while rx.poll_recv(cx).is_ready() {}
                if t.fired(cx) {
                    std::task::Poll::Ready(true)
                } else {
                    std::task::Poll::Pending
                }
            });
            assert!(tokio::time::timeout(WAIT, fired).await.unwrap());
            assert!(looked > 1);
        });
    }

    #[test]
    fn a_duration_past_what_an_instant_holds_is_a_timer_that_does_not_fire() {
        let rt = runtime();
        let _entered = rt.enter();
        let (w, _woken) = waker();
        let mut cx = Context::from_waker(&w);
        let mut t = Timer::after(Duration::MAX);
        assert!(!t.fired(&mut cx));
        t.reset_after(Duration::from_secs(u64::MAX));
        assert!(!t.fired(&mut cx));
    }
}
