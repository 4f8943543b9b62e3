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
//! a CPU long (a list, a watch that starts with the collection's objects, a body over
//! 64 KiB) asks for a task of its own ([`apart_from_connection`]), so the streams sharing its
//! connection are not held behind it; what a connection still runs when it ends goes on in
//! tasks of its own.
//!
//! An h2 connection writes each DATA frame of 256 bytes or more on its own (h2 chains the
//! payload to the frame's head and writes them out before it takes the next frame), and
//! flushes after each: a TLS record and a `writev` per frame. A watch event sent to 1,000
//! watchers sharing the connection was 1,000 records and 1,000 system calls. With a [`Cork`]
//! the connection's byte stream gathers what is written while [`Repoll`] polls the connection
//! and takes a flush as done; once the connection has nothing more to do, `Repoll` polls it
//! once more with the cork out, and its final flush writes out everything at once (large TLS
//! records, one `writev`). What is gathered is bounded: past 64 KiB it is written out there and
//! then. A watch's events reach the connection's task as its watchers are woken there, so the
//! events of one update go out together.

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
    /// What `inner` started while polled, run here (an h2 connection's requests), and the
    /// cork shared with its byte stream.
    requests: Option<InConnection>,
}

/// Shared by [`Repoll`] and a connection's byte stream: while the cork is in, the stream may
/// gather what is written and put a flush off, saying so ([`Cork::owe`]); `Repoll` then ends
/// its poll with a pass with the cork out, whose flush writes it all (see the module).
#[derive(Clone, Default)]
pub struct Cork(Arc<CorkState>);

#[derive(Default)]
struct CorkState {
    /// `Repoll` is polling the connection, a pass with the cork out to come.
    inn: AtomicBool,
    /// The stream holds writes, or a flush it put off.
    owed: AtomicBool,
}

impl Cork {
    /// Whether writes may be gathered and flushes put off now.
    pub fn is_in(&self) -> bool {
        self.0.inn.load(Ordering::Relaxed)
    }

    /// The stream gathered a write or put a flush off: this poll ends with a flush.
    pub fn owe(&self) {
        self.0.owed.store(true, Ordering::Relaxed);
    }

    fn set(&self, inn: bool) {
        self.0.inn.store(inn, Ordering::Relaxed);
    }

    fn take_owed(&self) -> bool {
        self.0.owed.swap(false, Ordering::Relaxed)
    }
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

    /// The future polled.
    #[cfg(test)]
    pub(crate) fn inner(&self) -> &F {
        &self.inner
    }

    /// `inner` with `started` as its executor: what it starts while polled runs in this
    /// future's task; and with `cork` shared with its byte stream (see the module).
    pub fn with_requests(inner: F, started: SameTask, cork: Cork) -> Self {
        let mut repoll = Repoll::new(inner);
        started.0.lock().connection = Some(repoll.waker.clone());
        repoll.requests = Some(InConnection::new(started, cork, repoll.waker.clone()));
        repoll
    }
}

/// One pass with the cork in; when the stream owes a flush and nothing woke the poll
/// meanwhile, a pass with it out (see the module).
fn poll_passes<F: Future + Unpin>(
    inner: &mut F,
    requests: Option<&mut InConnection>,
    wakes: &Wakes,
    cx: &mut Context<'_>,
) -> Poll<F::Output> {
    let Some(requests) = requests else {
        return Pin::new(inner).poll(cx);
    };
    requests.cork.set(true);
    let polled = poll_inner(inner, requests, cx);
    requests.cork.set(false);
    if polled.is_pending()
        && wakes.state.load(Ordering::Acquire) == POLLING
        && requests.cork.take_owed()
    {
        return flush_pass(inner, requests, cx);
    }
    polled
}

/// Poll the requests that were woken, then `inner`, which writes what they sent, then the
/// requests it just read (their first poll right after the read).
fn poll_inner<F: Future + Unpin>(
    inner: &mut F,
    requests: &mut InConnection,
    cx: &mut Context<'_>,
) -> Poll<F::Output> {
    requests.run();
    let out = poll_accepting(inner, requests, cx);
    if requests.started.0.queued.load(Ordering::Relaxed) {
        requests.run();
    }
    out
}

/// `inner` alone, the cork out: its flush writes what was gathered, and nothing is sent
/// meanwhile to be written frame by frame. A request it reads is polled in the next pass.
fn flush_pass<F: Future + Unpin>(
    inner: &mut F,
    requests: &InConnection,
    cx: &mut Context<'_>,
) -> Poll<F::Output> {
    let out = poll_accepting(inner, requests, cx);
    if requests.started.0.queued.load(Ordering::Relaxed) {
        cx.waker().wake_by_ref();
    }
    out
}

/// Poll `inner`, what it starts meanwhile waiting for [`InConnection::run`].
fn poll_accepting<F: Future + Unpin>(
    inner: &mut F,
    requests: &InConnection,
    cx: &mut Context<'_>,
) -> Poll<F::Output> {
    requests.started.0.accepting.store(true, Ordering::Relaxed);
    let out = Pin::new(inner).poll(cx);
    requests.started.0.accepting.store(false, Ordering::Relaxed);
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
            if let Poll::Ready(out) = poll_passes(
                &mut this.inner,
                this.requests.as_mut(),
                &this.wakes,
                &mut inner_cx,
            ) {
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
        // Still waking itself: let the task yield, its writes written.
        if let Some(requests) = this.requests.as_ref().filter(|r| r.cork.take_owed()) {
            if let Poll::Ready(out) = flush_pass(&mut this.inner, requests, &mut inner_cx) {
                this.wakes.state.store(IDLE, Ordering::Release);
                return Poll::Ready(out);
            }
        }
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
/// time gets a task at once. A request in a task of its own goes back to its connection's
/// when it says its long work is done ([`rejoin_connection`]). See the module.
#[derive(Clone, Default)]
pub struct SameTask(Arc<Waiting>);

#[derive(Default)]
struct Waiting {
    /// The connection is being polled: what it starts waits here.
    accepting: AtomicBool,
    /// `queue` may hold something (read without the lock on every poll of a connection).
    queued: AtomicBool,
    queue: Mutex<Queue>,
}

#[derive(Default)]
struct Queue {
    /// Started while the connection was polled.
    started: Vec<Started>,
    /// Back from tasks of their own.
    rejoining: Vec<Started>,
    /// The connection's waker, once it runs requests.
    connection: Option<Waker>,
    /// The connection ended: nothing rejoins it.
    closed: bool,
}

impl Waiting {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<F> hyper::rt::Executor<F> for SameTask
where
    F: Future<Output = ()> + Send + 'static,
{
    fn execute(&self, fut: F) {
        if self.0.accepting.load(Ordering::Relaxed) {
            self.0.lock().started.push(Box::pin(fut));
            self.0.queued.store(true, Ordering::Relaxed);
        } else {
            tokio::spawn(Away::new(Box::pin(fut), &self.0));
        }
    }
}

/// The requests a connection runs in its own task.
struct InConnection {
    started: SameTask,
    running: FuturesUnordered<Request>,
    /// Shared with the connection's byte stream, which gathers writes while it is in.
    cork: Cork,
    /// What `running` is polled with: notes a wake (of a request, or of the set itself when
    /// it yields) and passes it on to the connection.
    noted: Arc<Noted>,
    noted_waker: Waker,
}

/// How many times one run polls the requests again after they yielded: enough for each pass
/// of the connection to write thirty or so frames at once (one or two large TLS records), few
/// enough that the first of them leave while the rest are made (the client reads them
/// meanwhile).
const MAX_RUN_AGAIN: usize = 16;

/// A wake of the connection's requests, noted.
struct Noted {
    woken: AtomicBool,
    connection: Waker,
}

impl Wake for Noted {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Relaxed);
        self.connection.wake_by_ref();
    }
}

impl InConnection {
    fn new(started: SameTask, cork: Cork, connection: Waker) -> Self {
        let noted = Arc::new(Noted {
            woken: AtomicBool::new(false),
            connection,
        });
        InConnection {
            started,
            running: FuturesUnordered::new(),
            cork,
            noted_waker: Waker::from(noted.clone()),
            noted,
        }
    }

    /// Take what the connection started and what rejoins it, and poll every request that
    /// was woken; one that asks for a task of its own gets one.
    ///
    /// The set of requests yields once two of those it polls woke themselves, and an h2
    /// stream that sent a frame does: h2 grants it room for the next at once. With a
    /// watch event for each of a thousand streams that is a yield (and a pass of the
    /// connection, which writes what was sent so far) every two streams. Polled again here
    /// while it was woken ([`MAX_RUN_AGAIN`] times at most), some thirty streams send
    /// theirs between two passes of the connection.
    fn run(&mut self) {
        let queued = self.started.0.queued.load(Ordering::Relaxed);
        if !queued && self.running.is_empty() {
            // An HTTP/1.1 connection, or an h2 one with nothing running: nothing to do (and
            // no waker registered with the empty set on every poll).
            return;
        }
        if queued {
            self.started.0.queued.store(false, Ordering::Relaxed);
            let (started, rejoining) = {
                let mut queue = self.started.0.lock();
                (
                    std::mem::take(&mut queue.started),
                    std::mem::take(&mut queue.rejoining),
                )
            };
            for fut in rejoining {
                self.running.push(Request(Some(fut)));
            }
            let mut started = started.into_iter();
            // Requests that arrived together are work for more than one worker: the first
            // runs here, the others get tasks (and an idle worker) of their own.
            if let Some(fut) = started.next() {
                self.running.push(Request(Some(fut)));
            }
            for fut in started {
                tokio::spawn(Away::new(fut, &self.started.0));
            }
        }
        let mut cx = Context::from_waker(&self.noted_waker);
        let mut again = self.running.len().min(MAX_RUN_AGAIN);
        loop {
            self.noted.woken.store(false, Ordering::Relaxed);
            match self.running.poll_next_unpin(&mut cx) {
                Poll::Ready(Some(apart)) => {
                    if let Some(fut) = apart {
                        tokio::spawn(Away::new(fut, &self.started.0));
                    }
                }
                Poll::Pending if again > 0 && self.noted.woken.load(Ordering::Relaxed) => {
                    again -= 1;
                }
                Poll::Ready(None) | Poll::Pending => break,
            }
        }
    }
}

impl Drop for InConnection {
    /// The connection ended or was dropped: what it still runs goes on in tasks of its own,
    /// as it would have had it been given them at the start.
    fn drop(&mut self) {
        let (started, rejoining) = {
            let mut queue = self.started.0.lock();
            queue.closed = true;
            queue.connection = None;
            (
                std::mem::take(&mut queue.started),
                std::mem::take(&mut queue.rejoining),
            )
        };
        let running = std::mem::take(&mut self.running);
        if started.is_empty() && rejoining.is_empty() && running.is_empty() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let running = running.into_iter().filter_map(|r| r.0);
        for fut in started.into_iter().chain(rejoining).chain(running) {
            runtime.spawn(fut);
        }
    }
}

thread_local! {
    /// A request's future is being polled in its connection's task.
    static IN_CONNECTION: Cell<bool> = const { Cell::new(false) };
    /// ... and asked for a task of its own.
    static APART: Cell<bool> = const { Cell::new(false) };
    /// A request's future is being polled in a task of its own ([`Away`]).
    static AWAY: Cell<bool> = const { Cell::new(false) };
    /// ... and asked to go back to its connection's.
    static REJOIN: Cell<bool> = const { Cell::new(false) };
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

/// A request of an h2 connection in a task of its own: it goes back to the connection's task
/// when it asks to ([`rejoin_connection`]) and the connection is still there.
struct Away {
    fut: Option<Started>,
    home: std::sync::Weak<Waiting>,
}

impl Away {
    fn new(fut: Started, home: &Arc<Waiting>) -> Self {
        Away {
            fut: Some(fut),
            home: Arc::downgrade(home),
        }
    }

    /// Hand `fut` to its connection's task; false when the connection is gone.
    fn rejoin(&mut self) -> bool {
        let Some(home) = self.home.upgrade() else {
            return false;
        };
        let mut queue = home.lock();
        let Some(connection) = queue.connection.clone().filter(|_| !queue.closed) else {
            return false;
        };
        if let Some(fut) = self.fut.take() {
            queue.rejoining.push(fut);
        }
        home.queued.store(true, Ordering::Relaxed);
        drop(queue);
        connection.wake();
        true
    }
}

impl Future for Away {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let Some(fut) = self.fut.as_mut() else {
            return Poll::Ready(());
        };
        AWAY.with(|a| a.set(true));
        let polled = fut.as_mut().poll(cx);
        AWAY.with(|a| a.set(false));
        let rejoin = REJOIN.with(|r| r.replace(false));
        match polled {
            Poll::Ready(()) => {
                self.fut = None;
                Poll::Ready(())
            }
            Poll::Pending if rejoin && self.rejoin() => Poll::Ready(()),
            Poll::Pending => Poll::Pending,
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

/// The request being polled has done its long work and now waits (a watch between its
/// events): if it runs in a task of its own, it goes back to its h2 connection's task once
/// this poll ends Pending, where the events of one update to the watchers sharing the
/// connection go out together (see the module). Elsewhere nothing.
pub fn rejoin_connection() {
    if AWAY.with(Cell::get) {
        REJOIN.with(|r| r.set(true));
    }
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

    /// A connection that owes a flush in the polls listed in `owes` and wakes itself in
    /// those in `wakes` (numbered from 0); returns the record of whether each poll had the
    /// cork in.
    fn corked(
        owes: &'static [usize],
        wakes: &'static [usize],
    ) -> (
        Repoll<impl Future<Output = ()> + Unpin>,
        Arc<Mutex<Vec<bool>>>,
    ) {
        let cork = Cork::default();
        let seen: Arc<Mutex<Vec<bool>>> = Arc::default();
        let (c, record) = (cork.clone(), seen.clone());
        let conn = std::future::poll_fn(move |cx| {
            let mut record = record.lock().unwrap();
            let n = record.len();
            record.push(c.is_in());
            if owes.contains(&n) || (owes.contains(&usize::MAX) && c.is_in()) {
                c.owe();
            }
            if wakes.contains(&n) || wakes.contains(&usize::MAX) {
                cx.waker().wake_by_ref();
            }
            Poll::Pending
        });
        (Repoll::with_requests(conn, SameTask::default(), cork), seen)
    }

    #[test]
    fn a_poll_that_owes_a_flush_ends_with_a_pass_with_the_cork_out() {
        let (count, waker) = task();
        let mut cx = Context::from_waker(&waker);
        let (mut conn, seen) = corked(&[0], &[]);
        assert!(Pin::new(&mut conn).poll(&mut cx).is_pending());
        assert_eq!(*seen.lock().unwrap(), [true, false]);
        // Nothing owed: one pass.
        assert!(Pin::new(&mut conn).poll(&mut cx).is_pending());
        assert_eq!(*seen.lock().unwrap(), [true, false, true]);
        assert_eq!(count.0.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn the_pass_with_the_cork_out_waits_until_the_connection_stops_waking_itself() {
        let (_, waker) = task();
        let mut cx = Context::from_waker(&waker);
        let (mut conn, seen) = corked(&[0], &[0, 1]);
        assert!(Pin::new(&mut conn).poll(&mut cx).is_pending());
        assert_eq!(*seen.lock().unwrap(), [true, true, true, false]);
    }

    #[test]
    fn a_connection_that_keeps_waking_itself_writes_out_before_it_yields() {
        let (count, waker) = task();
        let mut cx = Context::from_waker(&waker);
        let (mut conn, seen) = corked(&[usize::MAX], &[usize::MAX]);
        assert!(Pin::new(&mut conn).poll(&mut cx).is_pending());
        let mut expected = vec![true; MAX_REPOLLS + 1];
        expected.push(false);
        assert_eq!(*seen.lock().unwrap(), expected);
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
        (Repoll::with_requests(conn, exec, Cork::default()), polls)
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

    /// A request that goes apart at once and says in which task it runs, then waits for
    /// `ask`; then, in one poll, waits for `go`, asks to rejoin its connection and says in
    /// which task it runs; once `go` comes, says in which task it runs once more.
    #[allow(clippy::type_complexity)]
    fn rejoining() -> (
        Started,
        tokio::sync::oneshot::Sender<()>,
        tokio::sync::oneshot::Sender<()>,
        tokio::sync::mpsc::UnboundedReceiver<Option<tokio::task::Id>>,
    ) {
        let (ask_tx, ask_rx) = tokio::sync::oneshot::channel::<()>();
        let (go_tx, mut go_rx) = tokio::sync::oneshot::channel::<()>();
        let (ran_tx, ran_rx) = tokio::sync::mpsc::unbounded_channel();
        let fut: Started = Box::pin(async move {
            apart_from_connection().await;
            let _ = ran_tx.send(tokio::task::try_id());
            let _ = ask_rx.await;
            let mut asked = false;
            std::future::poll_fn(|cx| {
                let go = Pin::new(&mut go_rx).poll(cx);
                if go.is_pending() && !std::mem::replace(&mut asked, true) {
                    rejoin_connection();
                    let _ = ran_tx.send(tokio::task::try_id());
                }
                go
            })
            .await
            .ok();
            let _ = ran_tx.send(tokio::task::try_id());
        });
        (fut, ask_tx, go_tx, ran_rx)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_in_a_task_of_its_own_rejoins_its_connection_when_it_asks() {
        let (request, ask, go, mut ran_in) = rejoining();
        let (conn, _) = starting(vec![vec![request]]);
        let (stop, conn_id, task) = run_connection(conn).await;
        let apart = ran_in.recv().await.unwrap().expect("in a task");
        assert_ne!(apart, conn_id);
        ask.send(()).unwrap();
        assert_eq!(
            ran_in.recv().await.unwrap(),
            Some(apart),
            "asked in its task"
        );
        // Woken where it now runs: the connection's task.
        go.send(()).unwrap();
        assert_eq!(ran_in.recv().await.unwrap(), Some(conn_id));
        stop.send(()).unwrap();
        task.await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_whose_connection_ended_stays_in_its_own_task() {
        let (request, ask, go, mut ran_in) = rejoining();
        let (conn, _) = starting(vec![vec![request]]);
        // Kept beyond the connection: the connection's queue outlives it.
        let exec = conn.inner.exec.clone();
        let (stop, conn_id, task) = run_connection(conn).await;
        let apart = ran_in.recv().await.unwrap().expect("in a task");
        assert_ne!(apart, conn_id);
        stop.send(()).unwrap();
        task.await.unwrap();
        ask.send(()).unwrap();
        assert_eq!(ran_in.recv().await.unwrap(), Some(apart));
        go.send(()).unwrap();
        assert_eq!(ran_in.recv().await.unwrap(), Some(apart));
        assert!(exec.0.lock().rejoining.is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_started_with_others_rejoins_its_connection_when_it_asks() {
        let (first, first_ran_in) = task_id_of(false);
        let (tx, mut ran_in) = tokio::sync::mpsc::unbounded_channel();
        let (go_tx, mut go_rx) = tokio::sync::oneshot::channel::<()>();
        let second: Started = Box::pin(async move {
            let mut asked = false;
            std::future::poll_fn(|cx| {
                let go = Pin::new(&mut go_rx).poll(cx);
                if go.is_pending() && !std::mem::replace(&mut asked, true) {
                    rejoin_connection();
                    let _ = tx.send(tokio::task::try_id());
                }
                go
            })
            .await
            .ok();
            let _ = tx.send(tokio::task::try_id());
        });
        let (conn, _) = starting(vec![vec![first, second]]);
        let (stop, conn_id, task) = run_connection(conn).await;
        assert_eq!(first_ran_in.await.unwrap(), Some(conn_id));
        assert_ne!(ran_in.recv().await.unwrap(), Some(conn_id));
        go_tx.send(()).unwrap();
        assert_eq!(ran_in.recv().await.unwrap(), Some(conn_id));
        stop.send(()).unwrap();
        task.await.unwrap();
    }

    /// A connection's requests: `n` that wake themselves in their first poll (as h2 streams
    /// that each sent a frame), counting their polls.
    fn self_waking_requests(n: usize) -> (InConnection, Arc<AtomicUsize>, Arc<Counting>) {
        let (count, waker) = task();
        let conn = InConnection::new(SameTask::default(), Cork::default(), waker);
        let polls = Arc::new(AtomicUsize::new(0));
        for _ in 0..n {
            let polls = polls.clone();
            let mut first = true;
            conn.running
                .push(Request(Some(Box::pin(std::future::poll_fn(move |cx| {
                    polls.fetch_add(1, Ordering::SeqCst);
                    if std::mem::take(&mut first) {
                        cx.waker().wake_by_ref();
                    }
                    Poll::<()>::Pending
                })))));
        }
        (conn, polls, count)
    }

    #[test]
    fn every_woken_request_is_polled_in_one_run_though_each_wakes_itself() {
        let (mut conn, polls, _) = self_waking_requests(20);
        conn.run();
        assert_eq!(polls.load(Ordering::SeqCst), 40);
    }

    #[test]
    fn a_run_polls_a_bounded_number_of_requests_and_the_connection_goes_on() {
        let (mut conn, polls, count) = self_waking_requests(1000);
        conn.run();
        let first = polls.load(Ordering::SeqCst);
        assert!(first <= 2 * (MAX_RUN_AGAIN + 1), "{first}");
        assert!(
            count.0.load(Ordering::SeqCst) > 0,
            "the connection was woken"
        );
        for _ in 0..1000 {
            conn.run();
        }
        assert_eq!(polls.load(Ordering::SeqCst), 2000);
    }
}
