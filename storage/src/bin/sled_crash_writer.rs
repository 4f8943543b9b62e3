//! Test helper for `tests/sled_durability.rs`: opens a [`SledStore`] and runs the deterministic
//! crash write load of [`kubox_storage::testing::crash`], printing `ack TASK SEQ REVISION` on
//! stdout after each acknowledged write, until it is killed (or after 60 s / 200,000 writes per
//! task, so it never runs forever). With a fourth argument `compact`, a task also keeps
//! compacting to 20 revisions behind the current one, and the commit log is checkpointed every
//! [`SMALL_CHECKPOINT`] bytes (not every 8 MiB), so kills land mid-compaction and around
//! checkpoints too. With `deferred` instead, the store defers its syncs
//! ([`SledOptions::defer_syncs`]) while each task makes [`DEFERRED_WRITES`] writes, then ends the
//! deferral, prints `synced`, and waits to be killed (at most 60 s). With `large`, every value is
//! made larger than sled's blob threshold ([`large`]).
//!
//! Usage: `sled_crash_writer DIR FIRST_TASK TASKS [compact|deferred|large]`.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kubox_storage::sled_store::{SledOptions, SledStore};
use kubox_storage::testing::crash::{large, op, CrashOp};
use kubox_storage::Store;

type Error = Box<dyn std::error::Error + Send + Sync>;

const MAX_WRITES_PER_TASK: usize = 200_000;

/// The commit log's checkpoint size in `compact` mode.
const SMALL_CHECKPOINT: u64 = 16 * 1024;

/// How many writes each task makes while syncs are deferred, in `deferred` mode.
const DEFERRED_WRITES: usize = 50;

fn ack(line: std::fmt::Arguments<'_>) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    out.write_fmt(line)?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}

async fn run_task(
    store: Arc<SledStore>,
    task: usize,
    deadline: Instant,
    writes: usize,
    big: bool,
) -> Result<(), Error> {
    let value = |v: String| if big { large(&v) } else { v };
    for seq in 0..writes {
        if Instant::now() > deadline {
            break;
        }
        let rev = match op(task, seq) {
            CrashOp::Create(k, v) => store.create(&k, value(v).into()).await?.mod_revision,
            CrashOp::Update(k, v) => store.update(&k, value(v).into(), None).await?.mod_revision,
            CrashOp::Delete(k) => store.delete(&k, None).await?.1,
        };
        ack(format_args!("ack {task} {seq} {rev}"))?;
    }
    Ok(())
}

async fn run_compactor(store: Arc<SledStore>, deadline: Instant) -> Result<(), Error> {
    while Instant::now() < deadline {
        let target = store.current_revision().await? - 20;
        if target > store.compacted_revision().await? {
            store.compact(target).await?;
        } else {
            tokio::task::yield_now().await;
        }
    }
    Ok(())
}

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: sled_crash_writer DIR FIRST_TASK TASKS [compact|deferred|large]";
    let (dir, first, tasks) = match args.as_slice() {
        [dir, first, tasks, ..] => (
            dir.clone(),
            first.parse::<usize>()?,
            tasks.parse::<usize>()?,
        ),
        _ => return Err(usage.into()),
    };
    let compact = args.get(3).is_some_and(|a| a == "compact");
    let deferred = args.get(3).is_some_and(|a| a == "deferred");
    let big = args.get(3).is_some_and(|a| a == "large");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let opts = SledOptions {
            defer_syncs: deferred,
            commit_log_checkpoint: if compact {
                SMALL_CHECKPOINT
            } else {
                SledOptions::default().commit_log_checkpoint
            },
            ..Default::default()
        };
        let store = Arc::new(SledStore::open_with(&dir, opts)?);
        ack(format_args!("ready {}", store.current_revision().await?))?;
        let deadline = Instant::now() + Duration::from_secs(60);
        let writes = if deferred {
            DEFERRED_WRITES
        } else {
            MAX_WRITES_PER_TASK
        };
        let mut handles: Vec<_> = (first..first + tasks)
            .map(|t| tokio::spawn(run_task(store.clone(), t, deadline, writes, big)))
            .collect();
        if compact {
            handles.push(tokio::spawn(run_compactor(store.clone(), deadline)));
        }
        for h in handles {
            h.await??;
        }
        if deferred {
            store.end_deferred_syncs().await?;
            ack(format_args!("synced"))?;
            tokio::time::sleep_until(deadline.into()).await;
        }
        store.close().await?;
        Ok(())
    })
}
