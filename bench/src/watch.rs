//! Section 4: watch event delivery latency to many concurrent watchers.
//!
//! W watchers each hold one `GET …/configmaps?watch=true&resourceVersion=N` stream. Once all are
//! established, one writer creates E ConfigMaps at a fixed rate; each carries its send time
//! (`data.sentNanos`, nanoseconds on this process's monotonic clock) taken just before the POST.
//! Every watcher timestamps each frame as it arrives — before decoding it — and the latency is
//! arrival − send time, so it includes the create itself (commit, fsync for sled), fan-out,
//! per-watcher encoding, the socket and the client's own scheduling.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use memchr::memmem::Finder;
use tokio::sync::{mpsc, Semaphore};
use tokio::time::MissedTickBehavior;

use crate::http::{configmap, configmaps, ensure_namespace, nanos_since, Conn, H2Conn};
use crate::kubox::{process_cpu, Kubox, Storage};
use crate::limit::LimitServer;
use crate::startup::verdict;
use crate::stats::{ms, thousands, Summary, Table};
use crate::Result;

pub struct Options {
    /// Watcher counts to measure, each with its own namespace and writer.
    pub watchers: Vec<usize>,
    /// Objects written.
    pub events: u64,
    /// Writes per second.
    pub rate: f64,
    /// Watches share this many HTTP/2 connections (0: one HTTP/1.1 connection each).
    pub http2_connections: usize,
    /// Measure the watch limit server too, after kubox, for each watcher count.
    pub limit: bool,
}

/// Watch connections being set up at once.
const CONNECT_PARALLELISM: usize = 64;
/// Budget for opening every watch.
const OPEN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long after the last write a watcher keeps waiting for missing events.
const DRAIN_GRACE: Duration = Duration::from_secs(5);

pub async fn run(bin: &Path, storages: &[Storage], opts: &Options) -> Result<()> {
    println!("## 4. Watch delivery latency");
    let carried = match opts.http2_connections {
        0 => "one HTTP/1.1 connection each".to_string(),
        n => format!("streams of {n} HTTP/2 connection(s), round robin"),
    };
    println!(
        "  W watch streams on the ConfigMaps of one namespace ({carried}, from the\n  \
         resourceVersion of a fresh list). One writer then creates {} ConfigMaps at {}/s, each\n  \
         stamped with its send time. latency = arrival at a watcher − send time, over every\n  \
         (event, watcher) pair, so it includes the create's own commit; \"create\" is the writer's\n  \
         POST round trip. srv CPU/delivery = server CPU time during the run / events delivered;\n  \
         bench CPU/delivery the same of this process (the watchers and the writer), which shares\n  \
         the cores with the server.\n",
        thousands(opts.events),
        opts.rate
    );
    if opts.limit {
        println!(
            "  limit = a bare hyper + rustls server in its own process, run right after kubox with\n  \
             the same client: it answers each create with the bytes sent and hands one event line\n  \
             made of them to every open watch (no store, no validation). vs limit = kubox's\n  \
             answer→last p99 / the limit's, both of the same watcher count.\n"
        );
    }
    let mut table = Table::new(&[
        "storage",
        "watchers",
        "delivered",
        "p50",
        "p90",
        "p99",
        "max",
        "create p50",
        "create p99",
        "answer→last p50",
        "answer→last p99",
        "srv CPU/delivery",
        "bench CPU/delivery",
        "vs limit",
        "aim",
    ]);
    let row = |name: &str, watchers: usize, r: &Measured, vs: String, aim: String| {
        vec![
            name.to_string(),
            thousands(watchers as u64),
            format!(
                "{}/{}",
                thousands(r.latency.count as u64),
                thousands(r.expected)
            ),
            ms(r.latency.p50),
            ms(r.latency.p90),
            ms(r.latency.p99),
            ms(r.latency.max),
            ms(r.create.p50),
            ms(r.create.p99),
            ms(r.to_last.p50),
            ms(r.to_last.p99),
            ms(r.server_cpu_per_delivery),
            ms(r.bench_cpu_per_delivery),
            vs,
            aim,
        ]
    };
    for &storage in storages {
        let kubox = Kubox::start(bin, storage)?;
        let limit = match opts.limit {
            true => Some(LimitServer::start("--serve-watch-limit", &kubox, &[])?),
            false => None,
        };
        for &watchers in &opts.watchers {
            eprintln!("watch: {} with {watchers} watchers …", storage.name());
            let r = measure(kubox.addr(), kubox.pid(), watchers, opts).await?;
            let all_delivered = r.latency.count as u64 == r.expected;
            let aim = match aim(watchers) {
                Some((limit, text)) => verdict(r.to_last.p99 <= limit && all_delivered, text),
                None if all_delivered => String::new(),
                None => "MISSING EVENTS".to_string(),
            };
            let Some(limit) = &limit else {
                table.row(row(storage.name(), watchers, &r, String::new(), aim));
                continue;
            };
            eprintln!("watch: the limit with {watchers} watchers …");
            let l = measure(limit.addr(), limit.pid(), watchers, opts).await?;
            let vs = format!(
                "{:.2}×",
                r.to_last.p99.as_secs_f64() / l.to_last.p99.as_secs_f64().max(1e-9)
            );
            table.row(row(storage.name(), watchers, &r, vs, aim));
            let complete = l.latency.count as u64 == l.expected;
            let note = if complete { "" } else { "MISSING EVENTS" };
            table.row(row("limit", watchers, &l, String::new(), note.to_string()));
        }
    }
    table.print();
    Ok(())
}

/// The aim for the p99 from a write's answer to its arrival at the last watcher.
fn aim(watchers: usize) -> Option<(Duration, &'static str)> {
    match watchers {
        1000.. => Some((Duration::from_millis(5), "answer→last p99 ≤ 5 ms")),
        100.. => Some((Duration::from_millis(2), "answer→last p99 ≤ 2 ms")),
        _ => None,
    }
}

struct Measured {
    latency: Summary,
    create: Summary,
    /// Per event: from the writer's answer to its arrival at the last watcher (0 when every
    /// watcher had it before the answer).
    to_last: Summary,
    /// Watchers that were established × objects written.
    expected: u64,
    /// Server CPU time while writing and delivering, per delivered event.
    server_cpu_per_delivery: Duration,
    /// This process's CPU time over the same span, per delivered event.
    bench_cpu_per_delivery: Duration,
}

/// Watch `watchers` streams of the server at `addr` (process `pid`) while writing.
async fn measure(addr: SocketAddr, pid: u32, watchers: usize, opts: &Options) -> Result<Measured> {
    let namespace = format!("bench-watch-{watchers}");
    ensure_namespace(addr, &namespace).await?;
    let path = configmaps(&namespace);
    let mut writer = Conn::connect(addr).await?;
    let list = writer.json(Method::GET, &path, None).await?;
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .ok_or("list has no resourceVersion")?
        .to_string();
    // Server-side timeout too, so nothing outlives the run.
    let write_time = Duration::from_secs_f64(opts.events as f64 / opts.rate.max(0.001));
    let timeout = (OPEN_TIMEOUT + write_time + DRAIN_GRACE).as_secs() + 5;
    let watch_path = format!("{path}?watch=true&resourceVersion={rv}&timeoutSeconds={timeout}");

    let base = Instant::now();
    let deadline = tokio::time::Instant::now() + OPEN_TIMEOUT + write_time + DRAIN_GRACE;
    let (ready_tx, mut ready_rx) = mpsc::channel::<Result<()>>(watchers.max(1));
    let gate = Arc::new(Semaphore::new(CONNECT_PARALLELISM));
    let mut shared = Vec::with_capacity(opts.http2_connections);
    for _ in 0..opts.http2_connections {
        shared.push(H2Conn::connect(addr).await?);
    }
    let mut tasks = Vec::with_capacity(watchers);
    for i in 0..watchers {
        let (ready_tx, gate, watch_path) = (ready_tx.clone(), gate.clone(), watch_path.clone());
        let h2 = (!shared.is_empty()).then(|| shared[i % shared.len()].clone());
        let events = opts.events as usize;
        tasks.push(tokio::spawn(async move {
            let opened = async {
                let _permit = gate.acquire().await?;
                let (conn, resp) = match h2 {
                    Some(mut h2) => (None, h2.get(&watch_path).await?),
                    None => {
                        let mut conn = Conn::connect(addr).await?;
                        let resp = conn.send(Method::GET, &watch_path, None).await?;
                        (Some(conn), resp)
                    }
                };
                if resp.status() != StatusCode::OK {
                    return Err(format!("watch: {}", resp.status()).into());
                }
                Ok::<_, crate::Error>((conn, resp.into_body()))
            }
            .await;
            match opened {
                Ok((_conn, body)) => {
                    // Written through before the writer starts: the pages' first-touch faults
                    // (16 bytes an event) would otherwise land in the measured deliveries. Not
                    // zeros: a zeroed vector comes from the allocator untouched.
                    let mut latencies = vec![(u64::MAX, u64::MAX); events];
                    latencies.clear();
                    let _ = ready_tx.send(Ok(())).await;
                    receive(body, base, events, latencies, deadline).await
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e)).await;
                    Vec::new()
                }
            }
        }));
    }
    drop(ready_tx);
    let mut established = 0u64;
    let open_deadline = tokio::time::Instant::now() + OPEN_TIMEOUT;
    for _ in 0..watchers {
        match tokio::time::timeout_at(open_deadline, ready_rx.recv()).await {
            Ok(Some(Ok(()))) => established += 1,
            Ok(Some(Err(e))) => eprintln!("watch: a watcher failed to open: {e}"),
            Ok(None) | Err(_) => break,
        }
    }
    if established < watchers as u64 {
        eprintln!("watch: only {established} of {watchers} watchers established");
    }

    let (server_cpu0, bench_cpu0) = (process_cpu(pid)?, process_cpu(std::process::id())?);
    // The writer: a fixed rate, each object stamped with its send time.
    let mut create = Vec::with_capacity(opts.events as usize);
    // Send time → answer time, per event.
    let mut answered = std::collections::HashMap::with_capacity(opts.events as usize);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / opts.rate.max(0.001)));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    for seq in 0..opts.events {
        tick.tick().await;
        if tokio::time::Instant::now() >= deadline {
            break;
        }
        let sent = nanos_since(base);
        let body = configmap(
            &format!("w-{seq}"),
            &[("seq", seq.to_string()), ("sentNanos", sent.to_string())],
        );
        let (status, resp) = writer.call(Method::POST, &path, Some(body)).await?;
        if !status.is_success() {
            return Err(
                format!("watch writer: {status}: {}", String::from_utf8_lossy(&resp)).into(),
            );
        }
        let answer = nanos_since(base);
        create.push(answer - sent);
        answered.insert(sent, answer);
    }

    let mut latency = Vec::with_capacity(established as usize * create.len());
    // Send time → the latest arrival among the watchers.
    let mut last = std::collections::HashMap::with_capacity(create.len());
    for w in tasks {
        for (sent, arrived) in w.await? {
            latency.push(arrived.saturating_sub(sent));
            let at = last.entry(sent).or_insert(0u64);
            *at = (*at).max(arrived);
        }
    }
    let mut to_last: Vec<u64> = last
        .iter()
        .filter_map(|(sent, arrived)| Some(arrived.saturating_sub(*answered.get(sent)?)))
        .collect();
    let server_cpu = process_cpu(pid)?.saturating_sub(server_cpu0);
    let bench_cpu = process_cpu(std::process::id())?.saturating_sub(bench_cpu0);
    let delivered = latency.len().max(1) as u32;
    Ok(Measured {
        server_cpu_per_delivery: server_cpu / delivered,
        bench_cpu_per_delivery: bench_cpu / delivered,
        latency: Summary::of(&mut latency),
        create: Summary::of(&mut create),
        to_last: Summary::of(&mut to_last),
        expected: established * create.len() as u64,
    })
}

/// Read one watch stream until `events` ADDED events arrived or the deadline; return each
/// event's send and arrival time in nanoseconds since `base`, into `latencies`. One timer for the whole read and
/// lines parsed where they arrived: the client's own cost per event stays small, as 1,000
/// watchers share the cores with the server.
async fn receive(
    mut body: Incoming,
    base: Instant,
    events: usize,
    mut latencies: Vec<(u64, u64)>,
    deadline: tokio::time::Instant,
) -> Vec<(u64, u64)> {
    let mut partial: Vec<u8> = Vec::new();
    let read = async {
        while latencies.len() < events {
            let frame = match body.frame().await {
                Some(Ok(frame)) => frame,
                _ => break,
            };
            let arrived = nanos_since(base);
            let Ok(data) = frame.into_data() else {
                continue;
            };
            let mut rest: &[u8] = &data;
            while let Some(end) = memchr::memchr(b'\n', rest) {
                let sent = if partial.is_empty() {
                    sent_nanos(&rest[..end])
                } else {
                    partial.extend_from_slice(&rest[..end]);
                    let sent = sent_nanos(&partial);
                    partial.clear();
                    sent
                };
                if let Some(sent) = sent {
                    latencies.push((sent, arrived));
                }
                rest = &rest[end + 1..];
            }
            partial.extend_from_slice(rest);
        }
    };
    let _ = tokio::time::timeout_at(deadline, read).await;
    latencies
}

/// The `data.sentNanos` of an ADDED event line.
pub(crate) fn sent_nanos(line: &[u8]) -> Option<u64> {
    // Byte searches keep the client's per-event cost small (1,000 watchers share its CPU with
    // the server); a full parse is the fallback if the server ever formats differently.
    static ADDED: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(br#""type":"ADDED""#));
    static SENT: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(br#""sentNanos":""#));
    let fast = || {
        if !line.starts_with(br#"{"type":"ADDED""#) && ADDED.find(line).is_none() {
            return None;
        }
        let at = SENT.find(line)? + SENT.needle().len();
        let digits = &line[at..at + memchr::memchr(b'"', &line[at..])?];
        std::str::from_utf8(digits).ok()?.parse().ok()
    };
    fast().or_else(|| {
        let v: serde_json::Value = serde_json::from_slice(line).ok()?;
        if v["type"] != "ADDED" {
            return None;
        }
        v["object"]["data"]["sentNanos"].as_str()?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::sent_nanos;

    #[test]
    fn finds_the_send_time_in_added_events_only() {
        let added = br#"{"type":"ADDED","object":{"data":{"seq":"1","sentNanos":"12345"}}}"#;
        assert_eq!(sent_nanos(added), Some(12345));
        let spaced = br#"{ "type": "ADDED", "object": {"data": {"sentNanos": "77"}}}"#;
        assert_eq!(sent_nanos(spaced), Some(77));
        let modified = br#"{"type":"MODIFIED","object":{"data":{"sentNanos":"5"}}}"#;
        assert_eq!(sent_nanos(modified), None);
        assert_eq!(sent_nanos(b"garbage"), None);
    }
}
