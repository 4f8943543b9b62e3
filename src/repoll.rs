//! A future polled again at once when it wakes itself while being polled.
//!
//! An HTTP/1.1 connection's task wakes itself for every request with a body: hyper's
//! dispatcher and the handler reading the body share the task, so the handler asking for the
//! body (or the dispatcher handing it a chunk) wakes the task that is running. tokio treats a
//! task woken during its own poll as one that yielded: it goes to the back of the worker's
//! queue and an idle worker is woken to take it. On an otherwise idle server every create,
//! update or patch then wakes a second worker (a futex wake, an idle CPU brought up) and often
//! moves the connection to it, caches cold. [`Repoll`] keeps such a wake inside the poll: the
//! inner future is polled again at once instead, a few times at most, and only wakes from
//! elsewhere (the socket, a store commit, a timer) reach the task's waker.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

/// How many times one poll polls the inner future again after it woke itself; then the wake
/// goes to the task, which yields as tokio intends (hyper's dispatcher wakes itself to yield
/// after 16 pipelined requests; a spent cooperative budget does the same).
const MAX_REPOLLS: usize = 4;

/// Not being polled: a wake goes to the task.
const IDLE: u8 = 0;
/// Being polled, not woken yet.
const POLLING: u8 = 1;
/// Woken while being polled: poll again.
const WOKEN: u8 = 2;

/// `F`, whose wakes during its own poll are taken as "poll again now" (see the module).
pub struct Repoll<F> {
    inner: F,
    wakes: Arc<Wakes>,
    /// The waker `inner` is polled with, one for the future's life (so what it registers with
    /// stays registered: `Waker::will_wake` holds).
    waker: Waker,
    /// The task waker last put in `wakes.task`: a poll by the same task (every poll, in
    /// practice) compares with it and touches nothing shared.
    task: Option<Waker>,
}

struct Wakes {
    state: AtomicU8,
    /// The waker of the task polling [`Repoll`]; kept, not taken, by a wake, so a task that
    /// keeps its waker registers it once.
    task: Mutex<Option<Waker>>,
}

impl Wakes {
    fn wake_task(&self) {
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(w) = task.as_ref() {
            w.wake_by_ref();
        }
    }
}

impl Wake for Wakes {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        match self
            .state
            .compare_exchange(POLLING, WOKEN, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) | Err(WOKEN) => {}
            Err(_) => self.wake_task(),
        }
    }
}

impl<F: Future + Unpin> Repoll<F> {
    pub fn new(inner: F) -> Self {
        let wakes = Arc::new(Wakes {
            state: AtomicU8::new(IDLE),
            task: Mutex::new(None),
        });
        let waker = Waker::from(wakes.clone());
        Repoll {
            inner,
            wakes,
            waker,
            task: None,
        }
    }
}

impl<F: Future + Unpin> Future for Repoll<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        // Registered before polling: a wake from elsewhere that comes once the state is back
        // to IDLE finds this task's waker.
        if !this.task.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            let waker = cx.waker().clone();
            *this.wakes.task.lock().unwrap_or_else(|e| e.into_inner()) = Some(waker.clone());
            this.task = Some(waker);
        }
        let mut inner_cx = Context::from_waker(&this.waker);
        for _ in 0..=MAX_REPOLLS {
            this.wakes.state.store(POLLING, Ordering::Release);
            if let Poll::Ready(out) = Pin::new(&mut this.inner).poll(&mut inner_cx) {
                this.wakes.state.store(IDLE, Ordering::Release);
                return Poll::Ready(out);
            }
            if this
                .wakes
                .state
                .compare_exchange(POLLING, IDLE, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return Poll::Pending;
            }
        }
        // Still waking itself: let the task yield.
        this.wakes.state.store(IDLE, Ordering::Release);
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// A task waker that counts its wakes.
    #[derive(Default)]
    struct Counting(AtomicUsize);

    impl Wake for Counting {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Wakes itself during its first `self_wakes` polls, then is ready; counts its polls and
    /// keeps the last waker it was given.
    struct SelfWaking {
        self_wakes: usize,
        polls: usize,
        last: Option<Waker>,
    }

    impl SelfWaking {
        fn new(self_wakes: usize) -> Self {
            SelfWaking {
                self_wakes,
                polls: 0,
                last: None,
            }
        }
    }

    impl Future for SelfWaking {
        type Output = usize;

        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
            self.polls += 1;
            self.last = Some(cx.waker().clone());
            if self.polls > self.self_wakes {
                return Poll::Ready(self.polls);
            }
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }

    fn task() -> (Arc<Counting>, Waker) {
        let counting = Arc::new(Counting::default());
        let waker = Waker::from(counting.clone());
        (counting, waker)
    }

    #[test]
    fn a_future_that_wakes_itself_is_polled_again_in_the_same_poll() {
        let (count, waker) = task();
        let mut cx = Context::from_waker(&waker);
        let mut f = Repoll::new(SelfWaking::new(2));
        assert_eq!(Pin::new(&mut f).poll(&mut cx), Poll::Ready(3));
        assert_eq!(count.0.load(Ordering::SeqCst), 0, "the task was not woken");
    }

    #[test]
    fn a_future_that_keeps_waking_itself_yields_to_the_task() {
        let (count, waker) = task();
        let mut cx = Context::from_waker(&waker);
        let mut f = Repoll::new(SelfWaking::new(usize::MAX));
        assert!(Pin::new(&mut f).poll(&mut cx).is_pending());
        assert_eq!(f.inner.polls, MAX_REPOLLS + 1);
        assert_eq!(
            count.0.load(Ordering::SeqCst),
            1,
            "the task was woken to yield"
        );
    }

    #[test]
    fn a_wake_from_elsewhere_reaches_the_task() {
        let (count, waker) = task();
        let mut cx = Context::from_waker(&waker);
        // Pending the first time without waking itself: it waits for someone else, to whom
        // it gives its waker.
        let kept: Arc<std::sync::Mutex<Option<Waker>>> = Arc::default();
        let give = kept.clone();
        let mut polls = 0;
        let mut f = Repoll::new(std::future::poll_fn(move |cx| {
            polls += 1;
            if polls == 1 {
                *give.lock().unwrap() = Some(cx.waker().clone());
                return Poll::Pending;
            }
            Poll::Ready(polls)
        }));
        assert!(Pin::new(&mut f).poll(&mut cx).is_pending());
        assert_eq!(count.0.load(Ordering::SeqCst), 0);
        let other = kept.lock().unwrap().take().unwrap();
        std::thread::spawn(move || other.wake()).join().unwrap();
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "the task was woken");
        assert_eq!(Pin::new(&mut f).poll(&mut cx), Poll::Ready(2));
    }

    #[test]
    fn each_wake_from_elsewhere_reaches_the_task_that_polled_last() {
        let (first, first_waker) = task();
        let (second, second_waker) = task();
        let kept: Arc<std::sync::Mutex<Option<Waker>>> = Arc::default();
        let give = kept.clone();
        // Never ready; hands out its waker.
        let mut f = Repoll::new(std::future::poll_fn(move |cx| {
            *give.lock().unwrap() = Some(cx.waker().clone());
            Poll::<()>::Pending
        }));
        let wake = || kept.lock().unwrap().clone().unwrap().wake();
        for _ in 0..2 {
            assert!(Pin::new(&mut f)
                .poll(&mut Context::from_waker(&first_waker))
                .is_pending());
            wake();
        }
        assert_eq!(
            first.0.load(Ordering::SeqCst),
            2,
            "both wakes reached the task"
        );
        // Polled by another task: its waker replaces the first.
        assert!(Pin::new(&mut f)
            .poll(&mut Context::from_waker(&second_waker))
            .is_pending());
        wake();
        assert_eq!(first.0.load(Ordering::SeqCst), 2);
        assert_eq!(second.0.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn the_inner_future_keeps_one_waker_across_polls() {
        let (_count, waker) = task();
        let mut cx = Context::from_waker(&waker);
        let mut f = Repoll::new(SelfWaking::new(1));
        let first = f.waker.clone();
        assert!(Pin::new(&mut f).poll(&mut cx).is_ready());
        assert!(f.inner.last.as_ref().unwrap().will_wake(&first));
    }
}
