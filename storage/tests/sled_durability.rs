//! Sled-only behaviour: what survives a restart and a `kill -9`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Lines};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use kubox_storage::sled_store::{SledOptions, SledStore};
use kubox_storage::testing::crash::{large, op, CrashOp};
use kubox_storage::{CompactionPolicy, ListOptions, ManualClock, Revision, Store, StoreError};

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

async fn snapshot(s: &dyn Store) -> Vec<kubox_storage::KeyValue> {
    s.list("", ListOptions::default()).await.unwrap().items
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_data_revision_counter_compaction_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let (items, current, history) = {
        let s = SledStore::open(dir.path()).unwrap();
        for i in 0..10 {
            s.create(&format!("/k/{i}"), b(&format!("v{i}")))
                .await
                .unwrap();
        }
        s.update("/k/0", b("v0-2"), None).await.unwrap(); // 11
        s.update("/k/1", b("v1-2"), None).await.unwrap(); // 12
        s.delete("/k/2", None).await.unwrap(); // 13
        s.delete("/k/3", None).await.unwrap(); // 14
        s.create("/k/3", b("again")).await.unwrap(); // 15
        s.compact(13).await.unwrap();
        s.update("/k/3", b("again-2"), None).await.unwrap(); // 16
        s.delete("/k/4", None).await.unwrap(); // 17
        let mut w = s.watch("/", 14).await.unwrap();
        let mut history = Vec::new();
        for _ in 14..=17 {
            history.push(w.next().await.unwrap().unwrap());
        }
        let items = snapshot(&s).await;
        let current = s.current_revision().await.unwrap();
        s.close().await.unwrap();
        (items, current, history)
    };
    assert_eq!(current, 17);

    let s = SledStore::open(dir.path()).unwrap();
    assert_eq!(s.current_revision().await.unwrap(), 17);
    assert_eq!(s.compacted_revision().await.unwrap(), 13);
    assert_eq!(snapshot(&s).await, items);
    for gone in ["/k/2", "/k/4"] {
        assert!(
            matches!(s.get(gone, None).await, Err(StoreError::NotFound(_))),
            "{gone} came back"
        );
    }
    assert!(matches!(
        s.get("/k/0", Some(13)).await,
        Err(StoreError::Compacted {
            requested: 13,
            compact_revision: 13
        })
    ));
    assert_eq!(s.get("/k/4", Some(16)).await.unwrap().value, b("v4"));
    assert_eq!(s.get("/k/3", Some(15)).await.unwrap().value, b("again"));
    // The history above the compacted revision, prev values included, is replayed identically.
    let mut w = s.watch("/", 14).await.unwrap();
    for expected in &history {
        assert_eq!(&w.next().await.unwrap().unwrap(), expected);
    }
    // The revision counter and versions continue where they were.
    let kv = s.update("/k/0", b("v0-3"), Some(11)).await.unwrap();
    assert_eq!(
        (kv.mod_revision, kv.version, kv.create_revision),
        (18, 3, 1)
    );
    assert_eq!(w.next().await.unwrap().unwrap().revision(), 18);
    let recreated = s.create("/k/2", b("new")).await.unwrap();
    assert_eq!((recreated.version, recreated.create_revision), (1, 19));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_drop_without_close() {
    let dir = tempfile::tempdir().unwrap();
    let items = {
        let s = Arc::new(SledStore::open(dir.path()).unwrap());
        let tasks: Vec<_> = (0..8)
            .map(|t| {
                let s = s.clone();
                tokio::spawn(async move {
                    for i in 0..50 {
                        s.create(&format!("/d/{t}/{i}"), b("v")).await.unwrap();
                    }
                    s.delete(&format!("/d/{t}/0"), None).await.unwrap();
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        snapshot(&*s).await
    };
    assert_eq!(items.len(), 8 * 49);
    let s = SledStore::open(dir.path()).unwrap();
    assert_eq!(snapshot(&s).await, items);
    assert_eq!(s.current_revision().await.unwrap(), 8 * 51);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compacted_away_deletes_stay_deleted_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = SledStore::open(dir.path()).unwrap();
        for round in 0..3 {
            for i in 0..20 {
                s.create(&format!("/c/{i}"), b(&format!("r{round}")))
                    .await
                    .unwrap();
            }
            for i in 0..20 {
                if round == 2 && i % 2 == 0 {
                    continue;
                }
                s.delete(&format!("/c/{i}"), None).await.unwrap();
            }
            let current = s.current_revision().await.unwrap();
            s.compact(current).await.unwrap();
        }
        s.close().await.unwrap();
    }
    let s = SledStore::open(dir.path()).unwrap();
    let keys: Vec<String> = snapshot(&s)
        .await
        .iter()
        .map(|kv| kv.key.to_string())
        .collect();
    let expected: Vec<String> = {
        let mut k: Vec<String> = (0..20).step_by(2).map(|i| format!("/c/{i}")).collect();
        k.sort();
        k
    };
    assert_eq!(keys, expected);
    assert_eq!(
        s.compacted_revision().await.unwrap(),
        s.current_revision().await.unwrap()
    );
    for kv in snapshot(&s).await {
        assert_eq!(kv.value, b("r2"));
        assert_eq!(kv.version, 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_times_survive_restart_for_compaction_by_age() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::default();
    let opts = || SledOptions {
        clock: Arc::new(clock.clone()),
        ..SledOptions::default()
    };
    {
        let s = SledStore::open_with(dir.path(), opts()).unwrap();
        for i in 0..10 {
            s.create(&format!("/old/{i}"), b("v")).await.unwrap();
        }
        clock.advance(Duration::from_secs(600));
        for i in 0..10 {
            s.create(&format!("/new/{i}"), b("v")).await.unwrap();
        }
        s.close().await.unwrap();
    }
    clock.advance(Duration::from_secs(60));
    let s = SledStore::open_with(dir.path(), opts()).unwrap();
    let policy = CompactionPolicy {
        min_age: Duration::from_secs(300),
        min_revisions: 0,
        ..Default::default()
    };
    assert_eq!(s.compact_by_policy(policy).await.unwrap(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_cannot_be_opened_twice_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let first = SledStore::open(dir.path()).unwrap();
    first.create("/a", b("1")).await.unwrap();
    assert!(SledStore::open(dir.path()).is_err());
    first.close().await.unwrap();
    drop(first);
    let again = SledStore::open(dir.path()).unwrap();
    assert_eq!(again.get("/a", None).await.unwrap().value, b("1"));
}

/// One acknowledged write reported by the child.
struct Ack {
    task: usize,
    seq: usize,
    rev: Revision,
}

/// An `ack TASK SEQ REVISION` line of the crash writer.
fn parse_ack(line: &str) -> Option<Ack> {
    let mut parts = line.strip_prefix("ack ")?.split(' ');
    Some(Ack {
        task: parts.next()?.parse().ok()?,
        seq: parts.next()?.parse().ok()?,
        rev: parts.next()?.parse().ok()?,
    })
}

/// Start the crash writer on `dir` with `args` (first task, tasks, mode) and wait until it
/// says it is ready; its stdout's remaining lines come with it.
fn start_crash_writer(dir: &Path, args: &[&str]) -> (Child, Lines<BufReader<ChildStdout>>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sled_crash_writer"))
        .arg(dir)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = lines.next().expect("child printed nothing").unwrap();
    assert!(ready.starts_with("ready "), "{ready}");
    (child, lines)
}

/// The runtime a crash test reopens the store on.
fn crash_test_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Run the crash writer on `dir` with tasks `first..first + tasks` (in `mode`: `compact`,
/// `large`, see the writer), read `wanted` acks, SIGKILL it, and return every ack it printed
/// (including the ones still in the pipe).
fn run_and_kill(
    dir: &Path,
    first: usize,
    tasks: usize,
    wanted: usize,
    mode: Option<&str>,
) -> Vec<Ack> {
    let (first, tasks) = (first.to_string(), tasks.to_string());
    let mut args = vec![first.as_str(), tasks.as_str()];
    args.extend(mode);
    let (mut child, mut lines) = start_crash_writer(dir, &args);
    let mut acks = Vec::new();
    while acks.len() < wanted {
        let line = lines
            .next()
            .expect("child ended before it was killed")
            .unwrap();
        acks.push(parse_ack(&line).unwrap_or_else(|| panic!("bad line {line:?}")));
    }
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "the child must have been killed, not finished"
    );
    // Lines printed before the kill: all acknowledged. A line cut short by the kill is skipped.
    for line in lines.map_while(Result::ok) {
        if let Some(ack) = parse_ack(&line) {
            acks.push(ack);
        }
    }
    acks
}

/// The live keys after task `task` applied its first `count` writes (of the `large` mode's
/// values if `big`).
fn replay(task: usize, count: usize, big: bool) -> BTreeMap<String, String> {
    let mut state = BTreeMap::new();
    for seq in 0..count {
        match op(task, seq) {
            CrashOp::Create(k, v) | CrashOp::Update(k, v) => {
                state.insert(k, if big { large(&v) } else { v });
            }
            CrashOp::Delete(k) => {
                state.remove(&k);
            }
        }
    }
    state
}

/// Every acknowledged write is there; nothing deleted came back; at most the one in-flight write
/// per task may or may not have landed. The values are the `large` mode's if `big`.
async fn check_recovered(s: &SledStore, acks: &[Ack], tasks: std::ops::Range<usize>, big: bool) {
    let mut acked: HashMap<usize, usize> = HashMap::new();
    for a in acks {
        let n = acked.entry(a.task).or_default();
        assert_eq!(a.seq, *n, "task {} acknowledged out of order", a.task);
        *n += 1;
    }
    let current = s.current_revision().await.unwrap();
    let max_rev = acks.iter().map(|a| a.rev).max().unwrap_or(0);
    assert!(
        current >= max_rev,
        "revision went back from {max_rev} to {current}"
    );
    for task in tasks {
        let count = acked.get(&task).copied().unwrap_or(0);
        let expected = replay(task, count, big);
        let maybe = replay(task, count + 1, big);
        let in_flight = op(task, count);
        let listed = s
            .list(&format!("/crash/{task:03}/"), ListOptions::default())
            .await
            .unwrap();
        let actual: BTreeMap<String, String> = listed
            .items
            .iter()
            .map(|kv| {
                (
                    kv.key.to_string(),
                    String::from_utf8(kv.value.to_vec()).unwrap(),
                )
            })
            .collect();
        if actual != expected {
            assert_eq!(
                actual, maybe,
                "task {task}: {count} writes acknowledged, {in_flight:?} in flight"
            );
        }
    }
}

/// Writes made while syncs were deferred are durable once `end_deferred_syncs` returned: the
/// writer is killed as soon as it says so, with no later write (whose sync would cover them)
/// and long before sled's own periodic flush.
#[test]
fn writes_made_while_syncs_were_deferred_survive_sigkill_once_they_ended() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, mut lines) = start_crash_writer(dir.path(), &["0", "8", "deferred"]);
    let mut acks = Vec::new();
    loop {
        let line = lines.next().expect("child ended before it synced").unwrap();
        if line == "synced" {
            break;
        }
        acks.push(parse_ack(&line).unwrap_or_else(|| panic!("bad line {line:?}")));
    }
    child.kill().unwrap(); // SIGKILL
    assert!(
        !child.wait().unwrap().success(),
        "the child must have been killed, not finished"
    );
    assert_eq!(acks.len(), 8 * 50, "every deferred write acknowledged");
    let runtime = crash_test_runtime();
    runtime.block_on(async {
        let s = SledStore::open(dir.path()).unwrap();
        check_recovered(&s, &acks, 0..8, false).await;
        assert_eq!(
            s.current_revision().await.unwrap(),
            acks.iter().map(|a| a.rev).max().unwrap()
        );
    });
}

/// Values over sled's blob threshold (sled writes each to a file of its own, which its flush
/// never syncs): acknowledged ones come back after a SIGKILL, twice, through commit-log frames
/// of several such groups and the checkpoints (every 8 MiB of frames: every ~60 writes here)
/// that sync sled's blob files.
#[test]
fn acknowledged_writes_over_sleds_blob_size_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = crash_test_runtime();
    let first = run_and_kill(dir.path(), 0, 4, 150, Some("large"));
    runtime.block_on(async {
        let s = SledStore::open(dir.path()).unwrap();
        check_recovered(&s, &first, 0..4, true).await;
    });
    let second = run_and_kill(dir.path(), 4, 4, 150, Some("large"));
    runtime.block_on(async {
        let s = SledStore::open(dir.path()).unwrap();
        check_recovered(&s, &first, 0..4, true).await;
        check_recovered(&s, &second, 4..8, true).await;
    });
}

#[test]
fn acknowledged_writes_survive_sigkill_of_the_writer_process() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = crash_test_runtime();

    // Without compactions and checkpoints (each of which flushes sled), the writes are in the
    // commit log only when the process dies: the restart must write them back.
    let first = run_and_kill(dir.path(), 0, 8, 1500, None);
    assert!(first.len() >= 1500);
    runtime.block_on(async {
        let s = SledStore::open(dir.path()).unwrap();
        check_recovered(&s, &first, 0..8, false).await;
    });

    // A second crash on the recovered store: both generations of writes must hold.
    // With kills landing mid-compaction, and around the commit log's checkpoints (every 16 KiB
    // in this mode), after which it is reused from its start.
    let second = run_and_kill(dir.path(), 8, 8, 1500, Some("compact"));
    runtime.block_on(async {
        let s = SledStore::open(dir.path()).unwrap();
        check_recovered(&s, &first, 0..8, false).await;
        check_recovered(&s, &second, 8..16, false).await;
        let before = s.current_revision().await.unwrap();
        let kv = s.create("/after-crash", b("x")).await.unwrap();
        assert_eq!(kv.mod_revision, before + 1);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_inside_commit_groups_keeps_the_survivors_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (items, history, compacted) = {
        let s = Arc::new(SledStore::open(dir.path()).unwrap());
        let write_round = |round: usize| {
            let tasks: Vec<_> = (0..16)
                .map(|t| {
                    let s = s.clone();
                    tokio::spawn(async move {
                        let key = format!("/g/{t:02}");
                        match round {
                            0 => drop(s.create(&key, b("0")).await.unwrap()),
                            _ if round % 4 == t % 4 => drop(s.delete(&key, None).await),
                            _ => {
                                if s.update(&key, b(&round.to_string()), None).await.is_err() {
                                    s.create(&key, b(&round.to_string())).await.unwrap();
                                }
                            }
                        }
                    })
                })
                .collect::<Vec<_>>();
            async move {
                for t in tasks {
                    t.await.unwrap();
                }
            }
        };
        for round in 0..10 {
            write_round(round).await;
        }
        let mid = s.current_revision().await.unwrap() / 2 + 3;
        s.compact(mid).await.unwrap();
        for round in 10..14 {
            write_round(round).await;
        }
        let mut w = s.watch("/g/", mid + 1).await.unwrap();
        let current = s.current_revision().await.unwrap();
        let mut history = Vec::new();
        for _ in mid + 1..=current {
            history.push(w.next().await.unwrap().unwrap());
        }
        let items = snapshot(&*s).await;
        s.close().await.unwrap();
        (items, history, mid)
    };
    let s = SledStore::open(dir.path()).unwrap();
    assert_eq!(s.compacted_revision().await.unwrap(), compacted);
    assert_eq!(snapshot(&s).await, items);
    let mut w = s.watch("/g/", compacted + 1).await.unwrap();
    for expected in &history {
        assert_eq!(&w.next().await.unwrap().unwrap(), expected);
    }
}

/// A compaction spanning many steps (thousands of revisions, each step its own batch) leaves
/// exactly what one compaction would: the newest version of each key, deleted keys gone, and
/// the compacted revision, after a restart too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_compaction_in_steps_keeps_the_newest_versions_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (current, expected) = {
        let s = SledStore::open(dir.path()).unwrap();
        let mut expected = BTreeMap::new();
        for i in 0..50 {
            s.create(&format!("/s/{i:02}"), b("0")).await.unwrap();
        }
        for round in 1..=150 {
            for i in 0..50 {
                let key = format!("/s/{i:02}");
                s.update(&key, b(&round.to_string()), None).await.unwrap();
                expected.insert(key, round.to_string());
            }
        }
        for i in (0..50).step_by(5) {
            let key = format!("/s/{i:02}");
            s.delete(&key, None).await.unwrap();
            expected.remove(&key);
        }
        let current = s.current_revision().await.unwrap();
        assert!(current > 7_000, "{current}");
        s.compact(current).await.unwrap();
        assert_eq!(s.compacted_revision().await.unwrap(), current);
        s.close().await.unwrap();
        (current, expected)
    };
    let s = SledStore::open(dir.path()).unwrap();
    assert_eq!(s.compacted_revision().await.unwrap(), current);
    assert_eq!(s.current_revision().await.unwrap(), current);
    let got: BTreeMap<String, String> = snapshot(&s)
        .await
        .into_iter()
        .map(|kv| {
            (
                kv.key.to_string(),
                String::from_utf8(kv.value.to_vec()).unwrap(),
            )
        })
        .collect();
    assert_eq!(got, expected);
    let old = s
        .list(
            "/s/",
            ListOptions {
                revision: Some(current - 1),
                ..Default::default()
            },
        )
        .await;
    assert!(matches!(old, Err(StoreError::Compacted { .. })), "{old:?}");
}

/// Deferral ending while writers write (they commit themselves while it lasts, the committer
/// after): every write gets its own revision, the revisions are committed once each and in
/// order, and all of them are there after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deferral_ending_amid_writes_commits_each_write_once_in_order() {
    const TASKS: usize = 8;
    const WRITES: usize = 200;
    let dir = tempfile::tempdir().unwrap();
    let opts = SledOptions {
        defer_syncs: true,
        ..Default::default()
    };
    let s = Arc::new(SledStore::open_with(dir.path(), opts).unwrap());
    let mut watch = s.watch("/k/", 0).await.unwrap();
    let (halfway_tx, halfway_rx) = tokio::sync::oneshot::channel();
    let mut halfway_tx = Some(halfway_tx);
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let s = s.clone();
        let mut halfway = if t == 0 { halfway_tx.take() } else { None };
        tasks.push(tokio::spawn(async move {
            for i in 0..WRITES {
                s.create(&format!("/k/{t}/{i}"), b("v")).await.unwrap();
                if i == WRITES / 4 {
                    if let Some(tx) = halfway.take() {
                        tx.send(()).unwrap();
                    }
                }
            }
        }));
    }
    halfway_rx.await.unwrap();
    s.end_deferred_syncs().await.unwrap();
    for task in tasks {
        task.await.unwrap();
    }
    let total = (TASKS * WRITES) as i64;
    assert_eq!(s.current_revision().await.unwrap(), total);
    for rev in 1..=total {
        let event = watch.next().await.unwrap().unwrap();
        assert_eq!(event.revision(), rev, "events once each, in revision order");
    }
    drop(watch);
    s.close().await.unwrap();
    drop(s);
    let s = SledStore::open(dir.path()).unwrap();
    assert_eq!(s.current_revision().await.unwrap(), total);
    assert_eq!(s.count("/k/").await.unwrap(), TASKS * WRITES);
}
