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
//!
//! An h2 connection runs each request in a future hyper hands to its executor, a task of
//! its own under tokio's. A write's commit wakes the store's watchers (the controllers'
//! dispatcher) and its answer wakes the connection's task, two wakes from one poll: tokio
//! keeps one woken task for the running worker, and for the other wakes an idle one. With
//! [`SameTask`] as the connection's executor, a request runs in the connection's own task:
//! polled first right after the connection read what had arrived, then whenever it is woken.
//! One answered at once (a create, a GET of one object) costs no task and wakes no other
//! worker, its answer's wake of the connection being a wake of the running task, which
//! [`Repoll`] keeps; one whose body comes later, or that waits for a commit, is polled again
//! there when woken. Requests the connection read together are work for more than one
//! worker: the first runs there, the others get tasks of their own. A request that may keep
//! a CPU long (a list, a watch, a body over 64 KiB)
//! asks for a task of its own ([`apart_from_connection`]), so the streams sharing its
//! connection are not held behind it; what a connection still runs when it ends goes on in
//! tasks of its own.

use std::cell::Cell;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use futures::stream::{FuturesUnordered, StreamExt};

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
    /// What `inner` started while polled, run here (an h2 connection's requests).
    requests: Option<InConnection>,
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
            requests: None,
        }
    }

    /// `inner` with `started` as its executor: what it starts while polled runs in this
    /// future's task (see the module).
    pub fn with_requests(inner: F, started: SameTask) -> Self {
        Repoll {
            requests: Some(InConnection {
                started,
                running: FuturesUnordered::new(),
            }),
            ..Repoll::new(inner)
        }
    }
}

/// Poll `inner`, then the requests it runs.
fn poll_inner<F: Future + Unpin>(
    inner: &mut F,
    requests: Option<&mut InConnection>,
    cx: &mut Context<'_>,
) -> Poll<F::Output> {
    let Some(requests) = requests else {
        return Pin::new(inner).poll(cx);
    };
    requests.started.0.accepting.store(true, Ordering::Relaxed);
    let out = Pin::new(inner).poll(cx);
    requests.started.0.accepting.store(false, Ordering::Relaxed);
    requests.run(cx);
    out
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
            if let Poll::Ready(out) =
                poll_inner(&mut this.inner, this.requests.as_mut(), &mut inner_cx)
            {
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

/// A future a connection started (an h2 request's).
type Started = Pin<Box<dyn Future<Output = ()> + Send>>;

/// An h2 connection's executor: a request's future started while [`Repoll`] polls the
/// connection runs in the connection's task, polled there whenever it is woken, until it is
/// done or asks for a task of its own ([`apart_from_connection`]); one started at any other
/// time gets a task at once (see the module).
#[derive(Clone, Default)]
pub struct SameTask(Arc<Waiting>);

#[derive(Default)]
struct Waiting {
    /// The connection is being polled: what it starts waits here.
    accepting: AtomicBool,
    /// `futures` may hold something (read without the lock on every poll of a connection).
    queued: AtomicBool,
    futures: Mutex<Vec<Started>>,
}

impl Waiting {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Started>> {
        self.futures.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<F> hyper::rt::Executor<F> for SameTask
where
    F: Future<Output = ()> + Send + 'static,
{
    fn execute(&self, fut: F) {
        if self.0.accepting.load(Ordering::Relaxed) {
            self.0.lock().push(Box::pin(fut));
            self.0.queued.store(true, Ordering::Relaxed);
        } else {
            tokio::spawn(fut);
        }
    }
}

/// The requests a connection runs in its own task.
struct InConnection {
    started: SameTask,
    running: FuturesUnordered<Request>,
}

impl InConnection {
    /// Take what the connection started, and poll every request that was woken (`cx` is
    /// the connection's); one that asks for a task of its own gets one.
    fn run(&mut self, cx: &mut Context<'_>) {
        let queued = self.started.0.queued.load(Ordering::Relaxed);
        if !queued && self.running.is_empty() {
            // An HTTP/1.1 connection, or an h2 one with nothing running: nothing to do (and
            // no waker registered with the empty set on every poll).
            return;
        }
        self.started.0.queued.store(false, Ordering::Relaxed);
        let started = std::mem::take(&mut *self.started.0.lock());
        let mut started = started.into_iter();
        // Requests that arrived together are work for more than one worker: the first runs
        // here, the others get tasks (and an idle worker) of their own.
        if let Some(fut) = started.next() {
            self.running.push(Request(Some(fut)));
        }
        for fut in started {
            tokio::spawn(fut);
        }
        while let Poll::Ready(Some(apart)) = self.running.poll_next_unpin(cx) {
            if let Some(fut) = apart {
                tokio::spawn(fut);
            }
        }
    }
}

impl Drop for InConnection {
    /// The connection ended or was dropped: what it still runs goes on in tasks of its own,
    /// as it would have had it been given them at the start.
    fn drop(&mut self) {
        let started = std::mem::take(&mut *self.started.0.lock());
        let running = std::mem::take(&mut self.running);
        if started.is_empty() && running.is_empty() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let running = running.into_iter().filter_map(|r| r.0);
        for fut in started.into_iter().chain(running) {
            runtime.spawn(fut);
        }
    }
}

thread_local! {
    /// A request's future is being polled in its connection's task.
    static IN_CONNECTION: Cell<bool> = const { Cell::new(false) };
    /// ... and asked for a task of its own.
    static APART: Cell<bool> = const { Cell::new(false) };
}

/// A request run in its connection's task: ready with nothing when it is done (or panicked:
/// that ends the request only, as it would in a task), with itself when it asks for a task.
struct Request(Option<Started>);

impl Future for Request {
    type Output = Option<Started>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Started>> {
        let Some(fut) = self.0.as_mut() else {
            return Poll::Ready(None);
        };
        IN_CONNECTION.with(|c| c.set(true));
        let polled = std::panic::catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx)));
        IN_CONNECTION.with(|c| c.set(false));
        match polled {
            Ok(Poll::Pending) if APART.with(|a| a.replace(false)) => Poll::Ready(self.0.take()),
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(())) | Err(_) => {
                APART.with(|a| a.set(false));
                self.0 = None;
                Poll::Ready(None)
            }
        }
    }
}

/// Give the request being handled a task of its own if it runs in its connection's (see
/// the module): Pending once, then ready in that task. Elsewhere ready at once.
pub async fn apart_from_connection() {
    let mut asked = false;
    std::future::poll_fn(|_| {
        if asked || !IN_CONNECTION.with(Cell::get) {
            return Poll::Ready(());
        }
        asked = true;
        // No wake: the task it is given polls it first.
        APART.with(|a| a.set(true));
        Poll::Pending
    })
    .await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

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

    /// A connection that starts the next batch of `started` through `exec` on each poll,
    /// then stays pending; counts its polls.
    struct Starting {
        exec: SameTask,
        started: std::collections::VecDeque<Vec<Started>>,
        polls: Arc<AtomicUsize>,
    }

    impl Future for Starting {
        type Output = ();

        fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
            self.polls.fetch_add(1, Ordering::SeqCst);
            for fut in self.started.pop_front().unwrap_or_default() {
                hyper::rt::Executor::execute(&self.exec, fut);
            }
            Poll::Pending
        }
    }

    fn starting(batches: Vec<Vec<Started>>) -> (Repoll<Starting>, Arc<AtomicUsize>) {
        let exec = SameTask::default();
        let polls = Arc::new(AtomicUsize::new(0));
        let conn = Starting {
            exec: exec.clone(),
            started: batches.into(),
            polls: polls.clone(),
        };
        (Repoll::with_requests(conn, exec), polls)
    }

    /// The id of the task a future runs in, sent once it runs.
    fn task_id_of(
        apart: bool,
    ) -> (
        Started,
        tokio::sync::oneshot::Receiver<Option<tokio::task::Id>>,
    ) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let fut = async move {
            if apart {
                apart_from_connection().await;
            }
            let _ = tx.send(tokio::task::try_id());
        };
        (Box::pin(fut), rx)
    }

    #[test]
    fn a_request_answered_in_its_first_poll_runs_within_the_connections_poll() {
        let (count, waker) = task();
        let mut cx = Context::from_waker(&waker);
        let answered = Arc::new(AtomicUsize::new(0));
        let answer = answered.clone();
        // Its answer wakes the connection, as h2's stream does.
        let request: Started = Box::pin(std::future::poll_fn(move |cx| {
            answer.fetch_add(1, Ordering::SeqCst);
            cx.waker().wake_by_ref();
            Poll::Ready(())
        }));
        let (mut conn, polls) = starting(vec![vec![request]]);
        assert!(Pin::new(&mut conn).poll(&mut cx).is_pending());
        assert_eq!(answered.load(Ordering::SeqCst), 1, "answered in the poll");
        assert_eq!(
            polls.load(Ordering::SeqCst),
            2,
            "the connection was polled again for the answer"
        );
        assert_eq!(count.0.load(Ordering::SeqCst), 0, "nobody else was woken");
    }

    #[tokio::test]
    async fn a_request_answered_in_its_first_poll_has_no_task_of_its_own() {
        let (request, ran_in) = task_id_of(false);
        let (conn, _) = starting(vec![vec![request]]);
        let conn_task = tokio::spawn(async move {
            let mut conn = conn;
            std::future::poll_fn(|cx| {
                let _ = Pin::new(&mut conn).poll(cx);
                Poll::Ready(tokio::task::id())
            })
            .await
        });
        let conn_id = conn_task.await.unwrap();
        assert_eq!(ran_in.await.unwrap(), Some(conn_id));
    }

    /// Run `conn` in a task of its own until the returned sender is used or dropped; also
    /// returns that task's id and handle.
    async fn run_connection(
        conn: Repoll<Starting>,
    ) -> (
        tokio::sync::oneshot::Sender<()>,
        tokio::task::Id,
        tokio::task::JoinHandle<()>,
    ) {
        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (id_tx, id_rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let _ = id_tx.send(tokio::task::id());
            let mut conn = conn;
            std::future::poll_fn(|cx| {
                let _ = Pin::new(&mut conn).poll(cx);
                Pin::new(&mut stop_rx).poll(cx).map(|_| ())
            })
            .await
        });
        (stop_tx, id_rx.await.unwrap(), task)
    }

    /// A request that waits for `go`, then sends the id of the task it runs in.
    fn waiting() -> (
        Started,
        tokio::sync::oneshot::Sender<()>,
        tokio::sync::oneshot::Receiver<Option<tokio::task::Id>>,
    ) {
        let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let fut: Started = Box::pin(async move {
            let _ = go_rx.await;
            let _ = done_tx.send(tokio::task::try_id());
        });
        (fut, go_tx, done_rx)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_that_waits_goes_on_in_the_connections_task_when_woken() {
        let (request, go, done) = waiting();
        let (conn, _) = starting(vec![vec![request]]);
        let (stop, conn_id, task) = run_connection(conn).await;
        go.send(()).unwrap();
        assert_eq!(done.await.unwrap(), Some(conn_id));
        stop.send(()).unwrap();
        task.await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_that_runs_long_gets_a_task_of_its_own() {
        let (long, long_ran_in) = task_id_of(true);
        let (conn, _) = starting(vec![vec![long]]);
        let (stop, conn_id, task) = run_connection(conn).await;
        let ran_in = long_ran_in.await.unwrap().expect("in a task");
        assert_ne!(ran_in, conn_id);
        stop.send(()).unwrap();
        task.await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn what_a_connection_runs_when_it_ends_goes_on_in_a_task() {
        let (request, go, done) = waiting();
        let (conn, _) = starting(vec![vec![request]]);
        let (stop, conn_id, task) = run_connection(conn).await;
        // The connection's task ends (its future dropped) with the request still waiting.
        stop.send(()).unwrap();
        task.await.unwrap();
        go.send(()).unwrap();
        let ran_in = done.await.unwrap().expect("in a task");
        assert_ne!(ran_in, conn_id);
    }

    #[tokio::test]
    async fn what_is_started_outside_the_connections_poll_gets_a_task_at_once() {
        let exec = SameTask::default();
        let (request, ran_in) = task_id_of(false);
        hyper::rt::Executor::execute(&exec, request);
        assert!(ran_in.await.unwrap().is_some());
        // And a request runs at once where it is not polled in a connection.
        let (apart, ran_in) = task_id_of(true);
        let (count, waker) = task();
        let mut apart = apart;
        assert!(apart
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_ready());
        assert_eq!(count.0.load(Ordering::SeqCst), 0);
        assert_eq!(ran_in.await.unwrap(), None);
    }

    #[test]
    fn a_panic_in_a_first_poll_ends_that_request_only() {
        let (_count, waker) = task();
        let mut cx = Context::from_waker(&waker);
        let answered = Arc::new(AtomicUsize::new(0));
        let answer = answered.clone();
        let panics: Started = Box::pin(async { panic!("a request's bug") });
        let after: Started = Box::pin(async move {
            answer.fetch_add(1, Ordering::SeqCst);
        });
        let (mut conn, polls) = starting(vec![vec![panics], vec![after]]);
        assert!(Pin::new(&mut conn).poll(&mut cx).is_pending());
        assert_eq!(polls.load(Ordering::SeqCst), 1);
        // The connection goes on, and so does its next request.
        assert!(Pin::new(&mut conn).poll(&mut cx).is_pending());
        assert_eq!(answered.load(Ordering::SeqCst), 1);
        assert_eq!(polls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn of_requests_read_together_the_first_runs_in_the_connections_task() {
        let (requests, ran_in): (Vec<_>, Vec<_>) = (0..3).map(|_| task_id_of(false)).unzip();
        let (conn, _) = starting(vec![requests]);
        let (stop, conn_id, task) = run_connection(conn).await;
        let mut ids = Vec::new();
        for rx in ran_in {
            ids.push(rx.await.unwrap().expect("in a task"));
        }
        assert_eq!(ids[0], conn_id);
        assert!(ids[1..].iter().all(|id| *id != conn_id), "{ids:?}");
        stop.send(()).unwrap();
        task.await.unwrap();
    }
}
