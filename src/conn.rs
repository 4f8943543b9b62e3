//! Connections: the accept loop and what bounds every connection and request on it before the
//! handler chain sees the request.
//!
//! kube-apiserver's limits, where it has them: 32 s to read a request's headers (on a kept-alive
//! HTTP/1.1 connection, also to start the next request), 90 s before an idle connection is
//! closed, 1 MiB of request line and headers, 1,000 streams per HTTP/2 connection, the request
//! body (3 MiB) read within the request deadline (60 s), the handler answering within it
//! (`504 Timeout` otherwise). Beyond kube-apiserver: a cap on the connections one client
//! address may hold, and an accept loop that backs off (and says so, once) when the process runs
//! out of file descriptors instead of spinning.
//!
//! A refused body keeps its stream open until the answer is sent, so that an HTTP/2 client
//! reads the `413` Status instead of a reset stream.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{Request, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::authn::Peer;
use crate::body::{error_response, Body};
use crate::chain::Chain;
use crate::status::ApiError;
use crate::tls::TlsServing;

/// Request bodies above this size are refused with 413 (kube-apiserver's limit).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// Bounds on every connection and on every request read from one.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Time for a TLS handshake.
    pub handshake_timeout: Duration,
    /// Time to read a request's line and headers; on a kept-alive HTTP/1.1 connection the clock
    /// runs from the previous answer (kube-apiserver: `ReadHeaderTimeout`, 32 s).
    pub header_read_timeout: Duration,
    /// A connection with no request in progress is closed after this long (kube-apiserver:
    /// `IdleTimeout`, 90 s).
    pub idle_timeout: Duration,
    /// Time for one request: to read its body and for the handler to answer (kube-apiserver's
    /// `--request-timeout`, 60 s). A watch's stream, once answered, is not bound by it.
    pub request_timeout: Duration,
    /// The most bytes of request line and headers (Go's `MaxHeaderBytes`, 1 MiB): beyond, a
    /// `431` Status.
    pub max_header_bytes: usize,
    /// The most connections one client address may hold open at once; more are closed as
    /// soon as they are accepted.
    pub max_connections_per_address: usize,
    /// The most streams at once on one HTTP/2 connection (kube-apiserver's
    /// `--http2-max-streams-per-connection`, 1,000).
    pub max_streams_per_connection: u32,
    /// How long shutdown waits for requests in progress before it ends their connections.
    pub shutdown_grace: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(32),
            idle_timeout: Duration::from_secs(90),
            request_timeout: Duration::from_secs(60),
            max_header_bytes: 1 << 20,
            max_connections_per_address: 4096,
            max_streams_per_connection: 1000,
            shutdown_grace: Duration::from_secs(3),
        }
    }
}

/// Open connections per client address.
#[derive(Default)]
struct AddressCounts(Mutex<HashMap<IpAddr, usize>>);

/// One counted connection; uncounted when dropped.
struct Counted {
    counts: Arc<AddressCounts>,
    ip: IpAddr,
}

impl AddressCounts {
    fn admit(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<Counted> {
        let mut counts = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = counts.entry(ip).or_default();
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Counted {
            counts: self.clone(),
            ip,
        })
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        let mut counts = self.counts.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = counts.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// Accept connections until `shutdown`, then drain them (within the grace period) and end what
/// is left. A connection's requests are served once `open` is true (a server still starting
/// completes TLS handshakes meanwhile); closed unserved should it never be.
pub async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsServing>,
    chain: Chain,
    limits: ConnectionLimits,
    mut shutdown: watch::Receiver<bool>,
    open: watch::Receiver<bool>,
) {
    let limits = Arc::new(limits);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let counts = Arc::new(AddressCounts::default());
    let mut connections = JoinSet::new();
    let mut backoff = Duration::ZERO;
    let mut refused_addresses = false;
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let (stream, addr) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors (or another passing failure): wait, as Go's
                        // http.Server does, 5 ms doubling up to 1 s; say so once per episode.
                        if backoff.is_zero() {
                            tracing::warn!(error = %e, "accepting connections failed; backing off");
                            backoff = Duration::from_millis(5);
                        } else {
                            backoff = (backoff * 2).min(Duration::from_secs(1));
                        }
                        tokio::select! {
                            _ = shutdown.changed() => break,
                            _ = tokio::time::sleep(backoff) => {}
                        }
                        continue;
                    }
                };
                if !backoff.is_zero() {
                    tracing::info!("accepting connections again");
                    backoff = Duration::ZERO;
                }
                let Some(counted) = counts.admit(addr.ip(), limits.max_connections_per_address) else {
                    if !refused_addresses {
                        tracing::warn!(address = %addr.ip(), max = limits.max_connections_per_address,
                            "a client address holds the most connections allowed; closing its new ones");
                        refused_addresses = true;
                    }
                    continue; // dropped: closed
                };
                let _ = stream.set_nodelay(true);
                let watcher = graceful.watcher();
                let chain = chain.clone();
                let tls = tls.clone();
                let limits = limits.clone();
                let mut open = open.clone();
                connections.spawn(async move {
                    let _counted = counted;
                    let Some(tls) = tls else {
                        let peer = Peer { addr, client_cert: None };
                        if open.wait_for(|o| *o).await.is_ok() {
                            serve_connection(stream, peer, chain, limits, watcher).await;
                        }
                        return;
                    };
                    let Ok(Ok(stream)) =
                        tokio::time::timeout(limits.handshake_timeout, tls.acceptor.accept(stream)).await
                    else {
                        return;
                    };
                    let client_cert = stream
                        .get_ref()
                        .1
                        .peer_certificates()
                        .filter(|c| !c.is_empty())
                        .map(|chain| Arc::new(tls.policy.check(chain)));
                    let peer = Peer { addr, client_cert };
                    // The handshake may come before the server is open (start-up's end).
                    if open.wait_for(|o| *o).await.is_ok() {
                        serve_connection(stream, peer, chain, limits, watcher).await;
                    }
                });
            }
        }
    }
    drop(listener);
    let grace = limits.shutdown_grace;
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            open = connections.len(),
            "requests still in progress after {grace:?}; closing their connections"
        );
    }
    connections.abort_all();
}

/// What one connection is doing: requests in progress, bytes read, and since when it has
/// been idle or has been sending the head of a request.
struct Activity {
    in_progress: AtomicUsize,
    /// Bytes read from the client so far (after TLS).
    read: AtomicU64,
    /// The client speaks HTTP/2: its control frames (pings, window updates) arrive while it is
    /// idle, so only the idle bound applies (a stream's headers are one frame).
    h2: AtomicBool,
    /// A request ended since the last read: the next bytes begin a request line.
    next_line: AtomicBool,
    watch: Mutex<Watch>,
}

struct Watch {
    /// Since when no request has been in progress.
    idle_since: Instant,
    /// `read` when the last request ended: bytes beyond it belong to the next request's head.
    read_when_idle: u64,
    /// Since when the next request's head has been arriving (first seen).
    head_since: Option<Instant>,
}

/// Why the watchdog ends a connection.
enum Verdict {
    Busy,
    Fine,
    TooSlowHead,
    TooLongIdle,
}

impl Activity {
    fn begin(self: &Arc<Self>) -> InProgress {
        self.in_progress.fetch_add(1, Ordering::SeqCst);
        InProgress(self.clone())
    }

    /// Whether the connection may stay open: no request in progress, it may send the head of
    /// the next one for `header` at most, or send nothing for `idle` at most.
    fn judge(&self, header: Duration, idle: Duration) -> Verdict {
        if self.in_progress.load(Ordering::SeqCst) > 0 {
            return Verdict::Busy;
        }
        let now = Instant::now();
        let read = self.read.load(Ordering::SeqCst);
        let mut w = self.watch.lock().unwrap_or_else(|p| p.into_inner());
        if read > w.read_when_idle && !self.h2.load(Ordering::SeqCst) {
            let since = *w.head_since.get_or_insert(now);
            if now.duration_since(since) >= header {
                return Verdict::TooSlowHead;
            }
        } else if now.duration_since(w.idle_since) >= idle {
            return Verdict::TooLongIdle;
        }
        Verdict::Fine
    }
}

/// One request in progress; over when its answer has been sent (or abandoned).
struct InProgress(Arc<Activity>);

impl Drop for InProgress {
    fn drop(&mut self) {
        let mut w = self.0.watch.lock().unwrap_or_else(|p| p.into_inner());
        w.idle_since = Instant::now();
        w.read_when_idle = self.0.read.load(Ordering::SeqCst);
        w.head_since = None;
        self.0.next_line.store(true, Ordering::SeqCst);
        self.0.in_progress.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The longest request target the HTTP layer can represent (the `http` crate's URI limit).
/// kube-apiserver takes up to 1 MiB of request line and headers; a longer HTTP/1.1 target is
/// answered here, with a Status, since the request cannot reach the handlers.
pub const MAX_REQUEST_TARGET: usize = 65_534;

/// Where the request line of the HTTP/1.1 request being read stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Line {
    /// In the method token.
    Method,
    /// In the request target, this many bytes so far.
    Target(usize),
    /// Past the target (or not a request line): nothing to watch until the next request.
    Done,
}

impl Line {
    /// Follow `bytes`; true when the target has grown past [`MAX_REQUEST_TARGET`].
    fn follow(&mut self, bytes: &[u8]) -> bool {
        for &b in bytes {
            *self = match *self {
                Line::Done => return false,
                Line::Method if b.is_ascii_uppercase() => Line::Method,
                Line::Method if b == b' ' => Line::Target(0),
                Line::Method => Line::Done,
                Line::Target(_) if matches!(b, b' ' | b'\r' | b'\n') => Line::Done,
                Line::Target(n) if n + 1 > MAX_REQUEST_TARGET => return true,
                Line::Target(n) => Line::Target(n + 1),
            };
        }
        false
    }
}

/// The connection's byte stream, counting what is read into [`Activity::read`], and watching
/// each HTTP/1.1 request line: a target too long for the HTTP layer ends hyper's reading, and
/// the stream is handed back (`handoff`) to answer it with a Status. On an h2 connection, what
/// is written while the connection's task has its [`Cork`](crate::repoll::Cork) in is
/// gathered, and flushes wait for the pass with the cork out (see `repoll`).
struct Metered<I> {
    /// None once handed back.
    io: Option<I>,
    activity: Arc<Activity>,
    line: Line,
    handoff: Option<tokio::sync::oneshot::Sender<I>>,
    cork: crate::repoll::Cork,
    /// Writes gathered under the cork, of which `written` bytes are out.
    gathered: Vec<u8>,
    written: usize,
    /// Something was written since the last flush.
    unflushed: bool,
}

/// The most slices handed to the stream below in one write: 128 KiB in pieces, more than
/// rustls takes at once (64 KiB of records waiting to be sent).
const MAX_PIECES: usize = 64;

/// `bufs` cut into slices of at most [`crate::copy::PIECE`] bytes, as many as fit in `pieces`;
/// how many.
fn cut_into_pieces<'a>(
    bufs: &'a [std::io::IoSlice<'_>],
    pieces: &mut [std::io::IoSlice<'a>; MAX_PIECES],
) -> usize {
    let mut n = 0;
    for buf in bufs {
        for piece in buf.chunks(crate::copy::PIECE) {
            if n == MAX_PIECES {
                return n;
            }
            pieces[n] = std::io::IoSlice::new(piece);
            n += 1;
        }
    }
    n
}

/// The most bytes an h2 connection gathers under its cork before it writes them out.
const GATHER_BYTES: usize = 64 * 1024;

/// Room for gathering taken at once when a poll first writes (one allocation for an
/// answer's frames; released by the flush that writes them, so an idle h2 connection holds
/// none).
const GATHER_FIRST_BYTES: usize = 4 * 1024;

impl<I: tokio::io::AsyncWrite + Unpin> Metered<I> {
    /// Whether writes are gathered now: an h2 connection whose task has the cork in.
    fn gathers(&self) -> bool {
        self.cork.is_in() && self.activity.h2.load(Ordering::Relaxed)
    }

    /// Take `len` bytes of writes (`copy` puts them in) under the cork; none if they do not
    /// fit even when what was gathered is written out first.
    fn gather(
        &mut self,
        cx: &mut Context<'_>,
        len: usize,
        copy: impl FnOnce(&mut Vec<u8>),
    ) -> Poll<std::io::Result<bool>> {
        if self.gathered.len() + len > GATHER_BYTES {
            ready!(self.poll_write_gathered(cx))?;
            if len > GATHER_BYTES {
                return Poll::Ready(Ok(false));
            }
        }
        if self.gathered.capacity() == 0 {
            self.gathered.reserve(len.max(GATHER_FIRST_BYTES));
        }
        copy(&mut self.gathered);
        self.unflushed = true;
        self.cork.owe();
        Poll::Ready(Ok(true))
    }

    /// Write out what was gathered.
    fn poll_write_gathered(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let Some(io) = self.io.as_mut() else {
            return Poll::Ready(Err(handed_back()));
        };
        while self.written < self.gathered.len() {
            let rest = [std::io::IoSlice::new(&self.gathered[self.written..])];
            let n = ready!(poll_write_in_pieces(Pin::new(&mut *io), cx, &rest))?;
            if n == 0 {
                return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.gathered.clear();
        self.written = 0;
        Poll::Ready(Ok(()))
    }
}

/// Write `bufs` to `io`, when it takes slices, in slices of at most [`crate::copy::PIECE`]
/// bytes: rustls copies each record's plaintext one given slice at a time, and large copies
/// are slow on some processors (see `copy`).
fn poll_write_in_pieces<I: tokio::io::AsyncWrite + ?Sized>(
    io: Pin<&mut I>,
    cx: &mut Context<'_>,
    bufs: &[std::io::IoSlice<'_>],
) -> Poll<std::io::Result<usize>> {
    if !io.is_write_vectored() {
        let first = bufs
            .iter()
            .find(|b| !b.is_empty())
            .map_or(&[][..], |b| &b[..]);
        return io.poll_write(cx, first);
    }
    if bufs.iter().all(|b| b.len() <= crate::copy::PIECE) {
        return io.poll_write_vectored(cx, bufs);
    }
    let mut pieces = [std::io::IoSlice::new(&[]); MAX_PIECES];
    let n = cut_into_pieces(bufs, &mut pieces);
    io.poll_write_vectored(cx, &pieces[..n])
}

fn handed_back() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        "request target too long for the HTTP layer",
    )
}

impl<I: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Metered<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let Some(io) = self.io.as_mut() else {
            return Poll::Ready(Err(handed_back()));
        };
        let polled = Pin::new(io).poll_read(cx, buf);
        let n = buf.filled().len().saturating_sub(before);
        let total = self.activity.read.fetch_add(n as u64, Ordering::SeqCst);
        if total == 0 && buf.filled()[before..].starts_with(b"PRI * HTTP/2.0") {
            self.activity.h2.store(true, Ordering::SeqCst);
        }
        if n > 0 && !self.activity.h2.load(Ordering::SeqCst) {
            // A request ended: the next bytes begin the next request line.
            if self.activity.next_line.swap(false, Ordering::SeqCst) {
                self.line = Line::Method;
            }
            let mut line = self.line;
            let too_long = line.follow(&buf.filled()[before..]);
            self.line = line;
            if too_long {
                if let (Some(io), Some(tx)) = (self.io.take(), self.handoff.take()) {
                    let _ = tx.send(io);
                }
                return Poll::Ready(Err(handed_back()));
            }
        }
        polled
    }
}

impl<I: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Metered<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        if this.gathers() {
            if ready!(this.gather(cx, buf.len(), |g| crate::copy::extend(g, buf)))? {
                return Poll::Ready(Ok(buf.len()));
            }
        } else if !this.gathered.is_empty() {
            ready!(this.poll_write_gathered(cx))?;
        }
        this.unflushed = true;
        match this.io.as_mut() {
            Some(io) if buf.len() > crate::copy::PIECE => {
                poll_write_in_pieces(Pin::new(io), cx, &[std::io::IoSlice::new(buf)])
            }
            Some(io) => Pin::new(io).poll_write(cx, buf),
            None => Poll::Ready(Err(handed_back())),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if this.gathers() {
            // Put off to the pass with the cork out.
            if this.unflushed {
                this.cork.owe();
            }
            return Poll::Ready(Ok(()));
        }
        ready!(this.poll_write_gathered(cx))?;
        let Some(io) = this.io.as_mut() else {
            return Poll::Ready(Err(handed_back()));
        };
        ready!(Pin::new(io).poll_flush(cx))?;
        this.unflushed = false;
        if this.gathered.capacity() > 0 {
            // Nothing stays with the connection between polls.
            this.gathered = Vec::new();
        }
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        ready!(self.poll_write_gathered(cx))?;
        match self.io.as_mut() {
            Some(io) => Pin::new(io).poll_shutdown(cx),
            None => Poll::Ready(Err(handed_back())),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.io.as_ref().is_some_and(|io| io.is_write_vectored())
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        if this.gathers() {
            let len = bufs.iter().map(|b| b.len()).sum();
            let copy = |g: &mut Vec<u8>| bufs.iter().for_each(|b| crate::copy::extend(g, b));
            if ready!(this.gather(cx, len, copy))? {
                return Poll::Ready(Ok(len));
            }
        } else if !this.gathered.is_empty() {
            ready!(this.poll_write_gathered(cx))?;
        }
        this.unflushed = true;
        match this.io.as_mut() {
            Some(io) => poll_write_in_pieces(Pin::new(io), cx, bufs),
            None => Poll::Ready(Err(handed_back())),
        }
    }
}

/// Answer a request whose target is too long for the HTTP layer: 414 with a Status, then close.
async fn answer_target_too_long<S>(mut io: S)
where
    S: tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::AsyncWriteExt;
    let err = ApiError::uri_too_long(MAX_REQUEST_TARGET);
    let body = crate::encoding::json_bytes(&err.to_status());
    let head = format!(
        "HTTP/1.1 414 URI Too Long\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let write = async {
        io.write_all(head.as_bytes()).await?;
        io.write_all(&body).await?;
        io.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), write).await;
}

/// Serve HTTP/1.1 or h2 on one connection; every request carries the connection's [`Peer`].
async fn serve_connection<S>(
    stream: S,
    peer: Peer,
    chain: Chain,
    limits: Arc<ConnectionLimits>,
    watcher: hyper_util::server::graceful::Watcher,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity {
        in_progress: AtomicUsize::new(0),
        read: AtomicU64::new(0),
        h2: AtomicBool::new(false),
        next_line: AtomicBool::new(false),
        watch: Mutex::new(Watch {
            idle_since: Instant::now(),
            read_when_idle: 0,
            head_since: None,
        }),
    });
    let (handoff, mut handed_back) = tokio::sync::oneshot::channel();
    let cork = crate::repoll::Cork::default();
    let io = TokioIo::new(Metered {
        io: Some(stream),
        activity: activity.clone(),
        line: Line::Method,
        handoff: Some(handoff),
        cork: cork.clone(),
        gathered: Vec::new(),
        written: 0,
        unflushed: false,
    });
    let hyper_svc = {
        let (activity, max_header_bytes) = (activity.clone(), limits.max_header_bytes);
        hyper::service::service_fn(move |req: Request<Incoming>| {
            let in_progress = activity.begin();
            // The chain is called by reference and the request's first steps run here: the
            // future holds only the answer to come.
            let answer = handle(&chain, &peer, max_header_bytes, req);
            async move {
                let Ok(resp) = answer.await;
                Ok::<_, std::convert::Infallible>(resp.map(|body| {
                    Body::new(Tracked {
                        body,
                        _keep: in_progress,
                    })
                }))
            }
        })
    };
    // An h2 request runs in this task until it asks for one of its own (see `repoll`).
    let same_task = crate::repoll::SameTask::default();
    let mut builder = hyper_util::server::conn::auto::Builder::new(same_task.clone());
    builder
        .http1()
        .timer(TokioTimer::new())
        // The watchdog below holds both the head of a request (header read timeout) and an
        // idle spell (idle timeout) to their bounds. hyper's own head timer would set and
        // clear a timer for every request (a clock read, an allocation and two trips to the
        // timer wheel's lock), bounding nothing the watchdog does not.
        .header_read_timeout(None)
        // Room for the largest head we answer with a Status (`max_header_bytes`) and then some;
        // beyond, hyper answers 431 itself.
        .max_buf_size(limits.max_header_bytes.saturating_mul(2).max(8192));
    // hyper's default bound on header fields (100) keeps their index on the stack; a larger
    // bound costs every request a heap allocation of that many slots.
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_streams_per_connection)
        .max_header_list_size(u32::try_from(limits.max_header_bytes * 2).unwrap_or(u32::MAX));
    let conn = builder
        .serve_connection_with_upgrades(io, hyper_svc)
        .into_owned();
    let conn = watcher.watch(conn);
    tokio::pin!(conn);
    // An HTTP/1.1 request with a body wakes its own task, and so does an h2 request's
    // answer (see `repoll`).
    let mut conn = crate::repoll::Repoll::with_requests(conn, same_task, cork);
    // Look a few times per bound: a head or an idle spell is cut within a quarter of its
    // bound past it.
    let tick = limits
        .header_read_timeout
        .min(limits.idle_timeout)
        .max(Duration::from_millis(20))
        / 4;
    // Looked at on every wake of the connection, polled only when due (`timer::Timer`).
    let mut watchdog = crate::timer::Timer::after(tick);
    loop {
        let served = std::future::poll_fn(|cx| {
            if Pin::new(&mut conn).poll(cx).is_ready() {
                Poll::Ready(true)
            } else if watchdog.fired(cx) {
                Poll::Ready(false)
            } else {
                Poll::Pending
            }
        })
        .await;
        if served {
            if let Ok(io) = handed_back.try_recv() {
                answer_target_too_long(io).await;
            }
            return;
        }
        match activity.judge(limits.header_read_timeout, limits.idle_timeout) {
            Verdict::Busy | Verdict::Fine => {}
            // Dropping the connection closes it.
            Verdict::TooSlowHead | Verdict::TooLongIdle => return,
        }
        watchdog.reset_after(tick);
    }
}

/// Hand the request to the chain, its body still unread ([`UnreadBody`]): the chain reads it
/// after authentication ([`ReadBody`]), so an unauthenticated client cannot make the server read
/// and hold 3 MiB; the chain's request deadline counts from when the request arrived
/// (`Received`).
fn handle(
    chain: &Chain,
    peer: &Peer,
    max_header_bytes: usize,
    req: Request<Incoming>,
) -> crate::chain::BoxFuture {
    let started = Instant::now();
    let (mut parts, body) = req.into_parts();
    let head = head_size(&parts);
    if head > max_header_bytes {
        let answer = error_response(&ApiError::header_fields_too_large(head, max_header_bytes));
        return Box::pin(std::future::ready(Ok(answer)));
    }
    parts.extensions.insert(peer.clone());
    parts.extensions.insert(crate::chain::Received(started));
    if !body.is_end_stream() {
        parts
            .extensions
            .insert(UnreadBody(Arc::new(Mutex::new(Some(body)))));
    }
    chain.handle(Request::from_parts(parts, Bytes::new()))
}

/// A request body over this many bytes is handled in a task of its own (see [`ReadBody`]).
const LARGE_BODY_BYTES: usize = 64 * 1024;

/// A request body not read yet (a request from the network); [`ReadBody`] reads it.
#[derive(Clone)]
pub struct UnreadBody(Arc<Mutex<Option<Incoming>>>);

/// The chain's step that reads a network request's body, after authentication: at most
/// 3 MiB (413 beyond, the refused body drained a little so a client that writes all of it
/// before reading gets the answer), within the request deadline the chain already runs under.
#[derive(Clone, Copy)]
pub struct ReadBody;

impl crate::chain::Filter for ReadBody {
    fn call(
        &self,
        mut req: crate::chain::Req,
        next: &crate::chain::Next,
    ) -> crate::chain::BoxFuture {
        let unread = req
            .extensions_mut()
            .remove::<UnreadBody>()
            .and_then(|u| u.0.lock().ok().and_then(|mut b| b.take()));
        // Nothing to read (a GET, a body already read): passed on without a future of its own.
        let Some(mut body) = unread else {
            return next.oneshot(req);
        };
        let next = next.clone();
        Box::pin(async move {
            let (parts, _) = req.into_parts();
            let declared = body.size_hint().exact().unwrap_or(0);
            let read = if declared > MAX_BODY_BYTES as u64 {
                Err(ApiError::too_large(MAX_BODY_BYTES))
            } else {
                read_body(&mut body, MAX_BODY_BYTES).await
            };
            match read {
                Ok(bytes) => {
                    if bytes.len() > LARGE_BODY_BYTES {
                        // Decoding it may take a while: not in an h2 connection's task, where
                        // the streams sharing the connection would wait (`repoll`).
                        crate::repoll::apart_from_connection().await;
                    }
                    next.oneshot(Box::new(Request::from_parts(parts, bytes)))
                        .await
                }
                Err(e) => {
                    if e.code == http::StatusCode::PAYLOAD_TOO_LARGE
                        && declared <= DRAIN_BYTES as u64
                    {
                        // Read (and drop) a body somewhat over the limit, so that a client
                        // that writes all of it before it reads the answer gets to read the 413.
                        drain(&mut body, DRAIN_BYTES).await;
                    }
                    // The rest of the body stays unread but open until the answer is out.
                    Ok(keep_until_sent(error_response(&e), body))
                }
            }
        })
    }
}

/// Bytes of request line and headers, as they came.
fn head_size(parts: &http::request::Parts) -> usize {
    let uri = uri_len(&parts.uri);
    parts
        .headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .fold(uri + 16, usize::saturating_add)
}

/// The length of `uri` as written (its `Display`), without writing it.
fn uri_len(uri: &http::Uri) -> usize {
    uri.scheme_str().map_or(0, |s| s.len() + "://".len())
        + uri.authority().map_or(0, |a| a.as_str().len())
        + uri.path().len()
        + uri.query().map_or(0, |q| q.len() + 1)
}

/// Room taken for a body before its bytes come: its declared length up to this (a declared
/// length alone, its bytes held back, takes no more).
const BODY_FIRST_ROOM: usize = 64 * 1024;

/// The body, at most `limit` bytes, gathered (a copy of its own: the frames share hyper's read
/// buffer) in room for its declared length, up to [`BODY_FIRST_ROOM`] at first, in pieces
/// (see `copy`).
async fn read_body(body: &mut Incoming, limit: usize) -> Result<Bytes, ApiError> {
    let declared = body.size_hint().exact().unwrap_or(0);
    let mut buf = BytesMut::with_capacity(declared.min(BODY_FIRST_ROOM as u64) as usize);
    while let Some(frame) = body.frame().await {
        let frame = frame
            .map_err(|e| ApiError::bad_request(format!("error reading the request body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > limit {
                return Err(ApiError::too_large(limit));
            }
            crate::copy::extend(&mut buf, &data);
        }
    }
    Ok(buf.freeze())
}

/// How much of a refused body is read and dropped before the 413 (see `handle`).
const DRAIN_BYTES: usize = 2 * MAX_BODY_BYTES;

/// Read and drop the body, at most `limit` bytes.
async fn drain(body: &mut Incoming, limit: usize) {
    let mut seen = 0usize;
    while let Some(Ok(frame)) = body.frame().await {
        if let Ok(data) = frame.into_data() {
            seen += data.len();
            if seen > limit {
                return;
            }
        }
    }
}

/// `resp`, holding `body` open until it has been sent.
fn keep_until_sent(resp: Response<Body>, body: Incoming) -> Response<Body> {
    resp.map(|b| {
        Body::new(Tracked {
            body: b,
            _keep: body,
        })
    })
}

/// A response body that holds something (a request in progress, an unread request body)
/// until it is done with.
struct Tracked<K> {
    body: Body,
    _keep: K,
}

impl<K: Unpin> HttpBody for Tracked<K> {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::copy::PIECE;
    use crate::repoll::{Cork, Repoll, SameTask};
    use std::task::{Wake, Waker};
    use tokio::io::AsyncWrite;

    /// A byte stream that records each write and flush; full (Pending, the waker kept) while
    /// `full` is set.
    #[derive(Default, Clone)]
    struct Recorder(Arc<Mutex<Recorded>>);

    #[derive(Default)]
    struct Recorded {
        writes: Vec<Vec<u8>>,
        flushes: usize,
        full: bool,
        waker: Option<Waker>,
        /// The stream takes slices (as TLS and TCP streams do); their lengths, write by write.
        vectored: bool,
        slices: Vec<Vec<usize>>,
    }

    impl AsyncWrite for Recorder {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            let mut r = self.0.lock().unwrap();
            if r.full {
                r.waker = Some(cx.waker().clone());
                return Poll::Pending;
            }
            r.writes.push(buf.to_vec());
            Poll::Ready(Ok(buf.len()))
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            self.0.lock().unwrap().flushes += 1;
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn is_write_vectored(&self) -> bool {
            self.0.lock().unwrap().vectored
        }

        fn poll_write_vectored(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            bufs: &[std::io::IoSlice<'_>],
        ) -> Poll<std::io::Result<usize>> {
            let mut r = self.0.lock().unwrap();
            assert!(r.vectored);
            if r.full {
                r.waker = Some(cx.waker().clone());
                return Poll::Pending;
            }
            r.writes
                .push(bufs.iter().flat_map(|b| b.iter().copied()).collect());
            r.slices.push(bufs.iter().map(|b| b.len()).collect());
            Poll::Ready(Ok(bufs.iter().map(|b| b.len()).sum()))
        }
    }

    fn metered(h2: bool, cork: &Cork, io: Recorder) -> Metered<Recorder> {
        let activity = Arc::new(Activity {
            in_progress: AtomicUsize::new(0),
            read: AtomicU64::new(0),
            h2: AtomicBool::new(h2),
            next_line: AtomicBool::new(false),
            watch: Mutex::new(Watch {
                idle_since: Instant::now(),
                read_when_idle: 0,
                head_since: None,
            }),
        });
        let (handoff, _) = tokio::sync::oneshot::channel();
        Metered {
            io: Some(io),
            activity,
            line: Line::Method,
            handoff: Some(handoff),
            cork: cork.clone(),
            gathered: Vec::new(),
            written: 0,
            unflushed: false,
        }
    }

    /// A connection as h2 drives its stream: each poll writes the frames queued for it, each
    /// followed by a flush, and ends with a flush.
    struct Writing {
        io: Metered<Recorder>,
        queued: Arc<Mutex<Vec<Vec<u8>>>>,
    }

    impl Future for Writing {
        type Output = ();

        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            let frames = std::mem::take(&mut *self.queued.lock().unwrap());
            let mut frames = frames.into_iter();
            while let Some(frame) = frames.next() {
                match Pin::new(&mut self.io).poll_write(cx, &frame) {
                    Poll::Ready(n) => assert_eq!(n.unwrap(), frame.len()),
                    Poll::Pending => {
                        // Not taken: queued again, first.
                        let mut rest: Vec<_> = std::iter::once(frame).chain(frames).collect();
                        let mut q = self.queued.lock().unwrap();
                        rest.append(&mut q);
                        *q = rest;
                        return Poll::Pending;
                    }
                }
                let _ = Pin::new(&mut self.io).poll_flush(cx);
            }
            let _ = Pin::new(&mut self.io).poll_flush(cx);
            Poll::Pending
        }
    }

    struct Nothing;

    impl Wake for Nothing {
        fn wake(self: Arc<Self>) {}
    }

    /// A connection's task with `frames` queued for its stream, and the stream's record.
    fn connection(h2: bool, frames: Vec<Vec<u8>>) -> (Repoll<Writing>, Recorder) {
        let cork = Cork::default();
        let io = Recorder::default();
        let writing = Writing {
            io: metered(h2, &cork, io.clone()),
            queued: Arc::new(Mutex::new(frames)),
        };
        (
            Repoll::with_requests(writing, SameTask::default(), cork),
            io,
        )
    }

    /// A connection whose stream takes slices, with `frames` queued.
    fn connection_taking_slices(h2: bool, frames: Vec<Vec<u8>>) -> (Repoll<Writing>, Recorder) {
        let (conn, io) = connection(h2, frames);
        io.0.lock().unwrap().vectored = true;
        (conn, io)
    }

    /// Poll the connection's task once; it has nothing more to do after.
    fn poll_once(conn: &mut Repoll<Writing>) {
        let waker = Waker::from(Arc::new(Nothing));
        assert!(Pin::new(conn)
            .poll(&mut Context::from_waker(&waker))
            .is_pending());
    }

    /// `frames` queued, then one poll of the connection's task; what the stream was given.
    fn one_poll(h2: bool, frames: Vec<Vec<u8>>) -> Recorded {
        let (mut conn, io) = connection(h2, frames);
        poll_once(&mut conn);
        let recorded = std::mem::take(&mut *io.0.lock().unwrap());
        recorded
    }

    fn frames(n: usize, len: usize) -> Vec<Vec<u8>> {
        (0..n).map(|i| vec![i as u8; len]).collect()
    }

    #[test]
    fn an_h2_connection_keeps_no_room_for_gathering_between_polls() {
        // An answer's few frames.
        let (mut conn, io) = connection(true, frames(3, 500));
        poll_once(&mut conn);
        assert_eq!(io.0.lock().unwrap().writes.len(), 1);
        assert_eq!(conn.inner().io.gathered.capacity(), 0);
    }

    #[test]
    fn an_h2_connection_writes_what_one_poll_wrote_at_once_and_flushes_once() {
        let sent = frames(100, 500);
        let r = one_poll(true, sent.clone());
        assert_eq!(r.writes, vec![sent.concat()]);
        assert_eq!(r.flushes, 1);
    }

    #[test]
    fn an_http1_connection_writes_and_flushes_as_it_is_told() {
        let sent = frames(10, 500);
        let r = one_poll(false, sent.clone());
        assert_eq!(r.writes, sent);
        assert_eq!(r.flushes, 11);
    }

    #[test]
    fn an_h2_connection_writes_out_what_it_gathered_past_its_bound() {
        // 300 frames of 500 bytes: 131 fit in 64 KiB.
        let sent = frames(300, 500);
        let r = one_poll(true, sent.clone());
        let per_write = GATHER_BYTES / 500;
        let lens: Vec<usize> = r.writes.iter().map(Vec::len).collect();
        assert_eq!(
            lens,
            vec![
                per_write * 500,
                per_write * 500,
                (300 - 2 * per_write) * 500
            ]
        );
        assert_eq!(r.writes.concat(), sent.concat());
        assert_eq!(r.flushes, 1);
    }

    #[test]
    fn an_h2_write_larger_than_the_bound_follows_what_was_gathered() {
        let sent = vec![vec![1; 100], vec![2; GATHER_BYTES + 1], vec![3; 100]];
        let r = one_poll(true, sent.clone());
        assert_eq!(r.writes, sent);
        assert_eq!(r.flushes, 1);
    }

    #[test]
    fn what_goes_to_a_stream_taking_slices_goes_in_small_pieces() {
        for (h2, sent) in [
            (true, frames(300, 500)),
            (
                true,
                vec![vec![1; 100], vec![2; GATHER_BYTES + 1], vec![3; 100]],
            ),
            (false, vec![vec![4; 100 * 1024], vec![5; PIECE + 1]]),
        ] {
            let (mut conn, io) = connection_taking_slices(h2, sent.clone());
            poll_once(&mut conn);
            let r = io.0.lock().unwrap();
            assert_eq!(r.writes.concat(), sent.concat(), "h2: {h2}");
            let slices: Vec<usize> = r.slices.concat();
            assert_eq!(slices.iter().sum::<usize>(), sent.concat().len());
            assert!(
                slices.iter().all(|&len| len <= PIECE),
                "h2: {h2}; slices {slices:?}"
            );
            assert!(r.slices.iter().all(|w| w.len() <= MAX_PIECES));
        }
    }

    #[test]
    fn pieces_are_cut_in_order_up_to_their_bound() {
        let bufs: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i; PIECE * 2 + 7]).collect();
        let slices: Vec<std::io::IoSlice<'_>> =
            bufs.iter().map(|b| std::io::IoSlice::new(b)).collect();
        let mut pieces = [std::io::IoSlice::new(&[]); MAX_PIECES];
        let n = cut_into_pieces(&slices, &mut pieces);
        assert_eq!(n, MAX_PIECES);
        let cut: Vec<u8> = pieces.iter().flat_map(|p| p.iter().copied()).collect();
        let whole = bufs.concat();
        assert_eq!(cut, whole[..cut.len()]);
        // Each buffer: two full pieces and its last 7 bytes.
        let lens: Vec<usize> = pieces[..6].iter().map(|p| p.len()).collect();
        assert_eq!(lens, [PIECE, PIECE, 7, PIECE, PIECE, 7]);
    }

    #[test]
    fn an_h2_connection_with_nothing_written_does_not_flush() {
        let r = one_poll(true, Vec::new());
        assert!(r.writes.is_empty());
        // The connection's own flush with the cork in is put off and nothing is owed.
        assert_eq!(r.flushes, 0);
    }

    #[test]
    fn gathered_writes_wait_for_a_full_stream_and_keep_their_order() {
        let (mut conn, io) = connection(true, frames(200, 500));
        io.0.lock().unwrap().full = true;
        poll_once(&mut conn);
        assert!(io.0.lock().unwrap().writes.is_empty());
        assert!(
            !conn.inner().queued.lock().unwrap().is_empty(),
            "past the bound, a full stream holds the writer back"
        );
        let stream_waker = io.0.lock().unwrap().waker.take();
        assert!(stream_waker.is_some(), "the full stream will wake the task");
        io.0.lock().unwrap().full = false;
        poll_once(&mut conn);
        let r = io.0.lock().unwrap();
        assert_eq!(r.writes.concat(), frames(200, 500).concat());
    }

    #[test]
    fn uri_len_is_the_written_length() {
        for uri in [
            "/",
            "/api/v1/namespaces/default/pods?watch=1&labelSelector=a%3Db",
            "/api?",
            "*",
            "https://127.0.0.1:6443/apis",
            "http://example.com",
            "example.com:80",
        ] {
            let parsed: http::Uri = uri.parse().unwrap();
            assert_eq!(super::uri_len(&parsed), parsed.to_string().len(), "{uri}");
        }
    }
}
