//! Section "soak": resident memory through a mixed load and after it. 64 clients create,
//! replace (PUT) and delete small ConfigMaps over a pool of names for a while, so the store
//! keeps a steady number of live objects and accumulates history; then the load stops and the
//! server idles. Reported: RSS before, its peak, at the end of the load, and after the idle
//! period — memory a server keeps after load is memory its users never get back.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http::Method;

use crate::http::{configmap, configmaps, ensure_namespace};
use crate::kubox::{Kubox, Storage};
use crate::load::{drive, Op};
use crate::startup::verdict;
use crate::stats::{mib, thousands, Table};
use crate::Result;

pub struct Options {
    /// Concurrent connections.
    pub clients: usize,
    /// How long the load runs.
    pub load_time: Duration,
    /// How long the server then idles before the last reading.
    pub idle_time: Duration,
    /// Names in the pool (the live objects at steady state are at most this many).
    pub names: u64,
}

const NAMESPACE: &str = "bench-soak";
const SETTLE: Duration = Duration::from_millis(500);

pub async fn run(bin: &Path, storages: &[Storage], opts: &Options) -> Result<()> {
    println!("## Soak: memory through a mixed load and after it");
    println!(
        "  {} clients for {:?}: each request picks the next name of a pool of {} and creates,\n  \
         replaces (PUT, 3 times in 5) or deletes it; then {:?} with no requests.\n  \
         before = idle RSS after start; peak = VmHWM; end = at the end of the load;\n  \
         after = after the idle period; disk = the data directory then.\n",
        opts.clients,
        opts.load_time,
        thousands(opts.names),
        opts.idle_time,
    );
    let mut table = Table::new(&[
        "storage",
        "requests",
        "req/s",
        "before",
        "peak",
        "end of load",
        "after idle",
        "kept",
        "disk",
        "aim",
    ]);
    for &storage in storages {
        eprintln!("soak: {} …", storage.name());
        let kubox = Kubox::start(bin, storage)?;
        tokio::time::sleep(SETTLE).await;
        let before = kubox.rss()?;
        ensure_namespace(kubox.addr(), NAMESPACE).await?;
        let path = Arc::new(configmaps(NAMESPACE));
        let names = opts.names.max(1);
        let out = drive(
            kubox.addr(),
            opts.clients,
            u64::MAX,
            opts.load_time,
            move |i| {
                let n = i % names;
                let name = format!("soak-{n}");
                // Per name, in turn: create, replace ×3, delete.
                match (i / names) % 5 {
                    0 => Op {
                        method: Method::POST,
                        path: path.to_string(),
                        body: Some(configmap(&name, &[])),
                    },
                    4 => Op {
                        method: Method::DELETE,
                        path: format!("{path}/{name}"),
                        body: None,
                    },
                    round => Op {
                        method: Method::PUT,
                        path: format!("{path}/{name}"),
                        body: Some(configmap(&name, &[("round", round.to_string())])),
                    },
                }
            },
        )
        .await?;
        let end = kubox.rss()?;
        tokio::time::sleep(opts.idle_time).await;
        let after = kubox.rss()?;
        let peak = kubox.peak_rss()?;
        table.row(vec![
            storage.name().to_string(),
            thousands(out.ok + out.errors),
            thousands(out.rate() as u64),
            mib(before),
            mib(peak),
            mib(end),
            mib(after),
            mib(after.saturating_sub(before)),
            mib(kubox.disk_bytes()),
            verdict(after < before + 64 * 1024 * 1024, "kept < 64 MiB"),
        ]);
    }
    table.print();
    Ok(())
}
