//! The closed-loop load driver shared by the sections: `clients` tasks, each with its own
//! keep-alive connection, issue requests back to back until `max_ops` requests were issued in
//! total or `max_time` has passed, whichever comes first.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;

use crate::http::Conn;
use crate::stats::Summary;
use crate::Result;

/// One request to make: method, path, body.
pub struct Op {
    pub method: Method,
    pub path: String,
    pub body: Option<Bytes>,
}

/// What a run did.
pub struct Outcome {
    /// Requests that got a 2xx.
    pub ok: u64,
    /// Requests that got another status or failed.
    pub errors: u64,
    /// The first error seen, for the report.
    pub first_error: Option<String>,
    pub elapsed: Duration,
    pub latency: Summary,
}

impl Outcome {
    /// Successful requests per second.
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Run `make(i)` for i = 0, 1, 2, … across `clients` connections.
pub async fn drive<F>(
    addr: SocketAddr,
    clients: usize,
    max_ops: u64,
    max_time: Duration,
    make: F,
) -> Result<Outcome>
where
    F: Fn(u64) -> Op + Send + Sync + 'static,
{
    let make = Arc::new(make);
    let next = Arc::new(AtomicU64::new(0));
    // Connect everyone first so connection setup is not part of the measurement.
    let mut conns = Vec::with_capacity(clients);
    for _ in 0..clients.max(1) {
        conns.push(Conn::connect(addr).await?);
    }
    let start = Instant::now();
    let deadline = start + max_time;
    let mut tasks = Vec::new();
    for mut conn in conns {
        let make = make.clone();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0u64;
            let mut first_error = None;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= max_ops || Instant::now() >= deadline {
                    break;
                }
                let op = make(i);
                let t0 = Instant::now();
                match conn.call(op.method, &op.path, op.body).await {
                    Ok((status, _)) if status.is_success() => {
                        lat.push(t0.elapsed().as_nanos() as u64);
                    }
                    Ok((status, body)) => {
                        errors += 1;
                        first_error.get_or_insert_with(|| {
                            format!("{status}: {}", String::from_utf8_lossy(&body))
                        });
                    }
                    Err(e) => {
                        errors += 1;
                        first_error.get_or_insert_with(|| e.to_string());
                        // The connection is unusable after a transport error.
                        break;
                    }
                }
            }
            (lat, errors, first_error)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    for t in tasks {
        let (lat, e, fe) = t.await?;
        all.extend(lat);
        errors += e;
        if first_error.is_none() {
            first_error = fe;
        }
    }
    let elapsed = start.elapsed();
    Ok(Outcome {
        ok: all.len() as u64,
        errors,
        first_error,
        elapsed,
        latency: Summary::of(&mut all),
    })
}
