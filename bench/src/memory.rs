//! Section 2: resident memory of the kubox process, idle and holding many ConfigMaps.

use std::path::Path;
use std::time::Duration;

use http::Method;

use crate::http::{configmap, configmaps, ensure_namespace};
use crate::kubox::{Kubox, Storage};
use crate::load::{drive, Op};
use crate::startup::verdict;
use crate::stats::{mib, thousands, Table};
use crate::Result;

pub struct Options {
    /// ConfigMaps to create.
    pub objects: u64,
    /// Bytes of JSON per ConfigMap (at least the ~400 of the plain one).
    pub object_bytes: usize,
    /// Concurrent connections creating them.
    pub clients: usize,
    /// Give up creating after this long.
    pub max_time: Duration,
}

const NAMESPACE: &str = "bench-rss";
/// Let the process settle (allocator, background tasks) before reading VmRSS.
const SETTLE: Duration = Duration::from_millis(500);

pub async fn run(bin: &Path, storages: &[Storage], opts: &Options) -> Result<()> {
    println!("## 2. Resident memory (VmRSS of the kubox process)");
    println!(
        "  idle: {SETTLE:?} after /readyz answered 200. loaded: after creating {} ConfigMaps (~{} B\n  \
         of JSON each) in one namespace over {} connections, then {SETTLE:?} of rest.\n  \
         peak = VmHWM. RSS/object = (loaded - idle) / created. idle anon = RssAnon: the idle\n  \
         RSS without the executable's pages mapped from the page cache.\n",
        thousands(opts.objects),
        opts.object_bytes.max(configmap("cm-0", &[]).len()),
        opts.clients,
    );
    let mut table = Table::new(&[
        "storage",
        "idle RSS",
        "idle anon",
        "created",
        "create/s",
        "loaded RSS",
        "peak RSS",
        "RSS/object",
        "on disk",
        "aim idle",
    ]);
    for &storage in storages {
        eprintln!(
            "memory: {} (creating {} ConfigMaps) …",
            storage.name(),
            thousands(opts.objects)
        );
        let kubox = Kubox::start(bin, storage)?;
        tokio::time::sleep(SETTLE).await;
        let idle = kubox.rss()?;
        let idle_anon = kubox.rss_anon()?;
        ensure_namespace(kubox.addr(), NAMESPACE).await?;
        let path = configmaps(NAMESPACE);
        // `"pad":"…"` brings each object to the size asked for.
        let pad = opts
            .object_bytes
            .saturating_sub(configmap("cm-0", &[]).len() + 9);
        let pad = "x".repeat(pad);
        let out = drive(
            kubox.addr(),
            opts.clients,
            opts.objects,
            opts.max_time,
            move |i| Op {
                method: Method::POST,
                path: path.clone(),
                body: Some(configmap(&format!("cm-{i}"), &[("pad", pad.clone())])),
            },
        )
        .await?;
        if let Some(e) = &out.first_error {
            eprintln!("memory: {} errors, first: {e}", out.errors);
        }
        tokio::time::sleep(SETTLE).await;
        let loaded = kubox.rss()?;
        let per_object = loaded.saturating_sub(idle) / out.ok.max(1);
        table.row(vec![
            storage.name().to_string(),
            mib(idle),
            mib(idle_anon),
            thousands(out.ok),
            thousands(out.rate() as u64),
            mib(loaded),
            mib(kubox.peak_rss()?),
            format!("{per_object} B"),
            match storage {
                Storage::Sled => mib(kubox.disk_usage()),
                Storage::Memory | Storage::Etcd | Storage::Etcd3 => "-".to_string(),
            },
            verdict(idle <= 16 * 1024 * 1024, "≤ 16 MiB"),
        ]);
    }
    table.print();
    Ok(())
}
