//! Section 1: start-to-ready time of `kubox serve`, spawn → first `/readyz` 200.

use std::path::Path;
use std::time::Duration;

use crate::kubox::{Kubox, Storage};
use crate::stats::{median, ms, Table};
use crate::Result;

pub struct Options {
    /// Timed runs per storage (after one untimed warm-up run).
    pub runs: usize,
}

pub fn run(bin: &Path, storages: &[Storage], opts: &Options) -> Result<()> {
    println!("## 1. Start-to-ready time");
    println!(
        "  Spawn `kubox serve` (fresh temp data dir, free loopback port) and poll GET /readyz on a\n  \
         new connection every 200 µs until it answers 200. \"serving line\" is when the process\n  \
         printed \"kubox is serving…\" on stdout (its own readiness report). {} timed runs after\n  \
         1 warm-up run; the process is stopped with SIGINT between runs.\n",
        opts.runs
    );
    let mut table = Table::new(&[
        "storage",
        "ready median",
        "min",
        "max",
        "serving line median",
        "aim",
    ]);
    for &storage in storages {
        eprintln!("startup: {} …", storage.name());
        drop(Kubox::start(bin, storage)?); // warm-up: page cache, dynamic loader
        let mut ready = Vec::new();
        let mut line = Vec::new();
        for _ in 0..opts.runs.max(1) {
            let k = Kubox::start(bin, storage)?;
            ready.push(k.ready_after);
            if let Some(d) = k.serving_line_after {
                line.push(d);
            }
        }
        let med = median(&ready);
        table.row(vec![
            storage.name().to_string(),
            ms(med),
            ms(ready.iter().copied().min().unwrap_or_default()),
            ms(ready.iter().copied().max().unwrap_or_default()),
            if line.is_empty() {
                "-".to_string()
            } else {
                ms(median(&line))
            },
            verdict(med <= Duration::from_millis(14), "≤ 14 ms"),
        ]);
    }
    table.print();
    Ok(())
}

/// `ok (< 20 ms)` or `MISS (< 20 ms)`.
pub fn verdict(met: bool, aim: &str) -> String {
    format!("{} ({aim})", if met { "ok" } else { "MISS" })
}
