//! `kubox-bench`: a load generator that prints a report on a release `kubox serve` process —
//! start-to-ready time, resident memory, request throughput/latency, and watch delivery latency.
//!
//! Run it with `cargo run --release -p kubox-bench` (add `-- --help` for the flags). It builds
//! the release `kubox` binary in its own target directory if needed, spawns it as a child process
//! per measurement, and sends traffic only to 127.0.0.1. Every loop is bounded by a request count
//! and a time limit. The report goes to stdout, progress to stderr.

mod admission;
mod apply;
mod chain;
mod crd;
mod discovery;
mod http;
mod instructions;
mod kubox;
mod limit;
mod load;
mod memory;
mod soak;
mod startup;
mod stats;
mod throughput;
mod watch;
mod watch_limit;
mod workloads;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};

use crate::kubox::Storage;

pub type Error = Box<dyn std::error::Error + Send + Sync>;
pub type Result<T> = std::result::Result<T, Error>;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Section {
    Startup,
    Memory,
    Throughput,
    Watch,
    /// GET from kubox against a bare hyper (+ rustls) server answering the same bytes.
    Limit,
    /// The secure handler chain's cost (not in the default report).
    Chain,
    /// Memory through a mixed load and after it (not in the default report).
    Soak,
    /// What one policy and one quota cost on the create path (not in the default report).
    Admission,
    /// Server-side apply against merge patch and update (not in the default report).
    Apply,
    /// CRD create to Established, and creates of a custom resource with 40 CEL rules (not in
    /// the default report).
    Crd,
    /// A 1,000-replica Deployment on simulated nodes to available, then idle CPU (not in the
    /// default report).
    Workloads,
    /// Instructions per create, counted by valgrind's callgrind (not in the default report).
    Instructions,
    /// What kubectl reads before its commands: `/openapi/v3`, a group/version's document,
    /// aggregated discovery, whole and revalidated (not in the default report).
    Discovery,
}

/// Load generator and performance report for kubox.
#[derive(Parser, Debug)]
#[command(name = "kubox-bench")]
struct Cli {
    /// Sections to run, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Section::Startup, Section::Memory, Section::Throughput, Section::Limit, Section::Watch])]
    sections: Vec<Section>,
    /// Storage backends to measure, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Storage::Sled, Storage::Memory])]
    storage: Vec<Storage>,

    /// Startup: timed runs per storage (median reported).
    #[arg(long, default_value_t = 15)]
    startup_runs: usize,

    /// Memory: ConfigMaps to create before the loaded RSS reading.
    #[arg(long, default_value_t = 100_000)]
    rss_objects: u64,
    /// Memory: concurrent connections creating them.
    #[arg(long, default_value_t = 64)]
    rss_clients: usize,

    /// Serve and measure over HTTPS (TLS 1.3, admin client certificate) instead of plain HTTP.
    #[arg(long)]
    tls: bool,

    /// Clients speak h2 (ALPN over TLS), one connection each, as kubectl and client-go do;
    /// else HTTP/1.1. Not for the limit section (its server speaks HTTP/1.1).
    #[arg(long)]
    http2: bool,

    /// Throughput: concurrent client counts, comma-separated (one connection each).
    #[arg(long, value_delimiter = ',', default_values_t = [1, 64])]
    clients: Vec<usize>,
    /// Throughput: seconds per measured phase (create, get, list).
    #[arg(long, default_value_t = 3.0)]
    phase_secs: f64,
    /// Throughput: cap on requests per phase.
    #[arg(long, default_value_t = 500_000)]
    max_ops: u64,
    /// Throughput: objects in the namespace that `list` reads.
    #[arg(long, default_value_t = 100)]
    list_size: u64,

    /// Watch: concurrent watch stream counts, comma-separated (the aim is for 1000).
    #[arg(long, value_delimiter = ',', default_values_t = [10, 1000])]
    watchers: Vec<usize>,
    /// Watch: objects written while they watch.
    #[arg(long, default_value_t = 200)]
    watch_events: u64,
    /// Watch: writes per second.
    #[arg(long, default_value_t = 40.0)]
    watch_rate: f64,
    /// Watch: carry the watches on this many HTTP/2 connections, round robin (as client-go
    /// multiplexes a process's watches on one); 0 = HTTP/1.1, one connection per watch.
    #[arg(long, default_value_t = 0)]
    watch_http2_connections: usize,
    /// Watch: after kubox, measure a bare hyper + rustls server delivering the same events (the
    /// limit), and print kubox's p99 against it.
    #[arg(long)]
    watch_limit: bool,

    /// Soak: seconds of mixed load.
    #[arg(long, default_value_t = 300.0)]
    soak_secs: f64,
    /// Soak: seconds of idle after the load.
    #[arg(long, default_value_t = 60.0)]
    soak_idle_secs: f64,
    /// Soak: names in the pool of ConfigMaps.
    #[arg(long, default_value_t = 31_000)]
    soak_names: u64,

    /// The kubox binary to run (default: `kubox` beside this executable, built first).
    #[arg(long)]
    kubox_bin: Option<PathBuf>,
    /// Do not run `cargo build` for kubox; use the binary that is there.
    #[arg(long)]
    no_build: bool,
    /// Worker threads of the load generator's runtime (default: all cores).
    #[arg(long)]
    client_threads: Option<usize>,
    /// Memory: bytes of JSON per ConfigMap.
    #[arg(long, default_value_t = 400)]
    rss_object_bytes: usize,
    /// Limit: runs per client count (kubox and the limit server alternate).
    #[arg(long, default_value_t = 2)]
    limit_runs: usize,
    /// Instructions: sequential creates in the counted run.
    #[arg(long, default_value_t = 1000)]
    instructions_creates: u64,
    /// Instructions: simulated node counts, comma-separated, each a configuration (0: none).
    #[arg(long, value_delimiter = ',', default_values_t = [0, 3])]
    instructions_nodes: Vec<usize>,
    /// Instructions: keep each run's callgrind profile in this directory (read it with
    /// `callgrind_annotate --inclusive=yes FILE`).
    #[arg(long)]
    instructions_keep: Option<PathBuf>,
    /// Instructions: what each counted create makes, a small ConfigMap or a Pod of the size
    /// a Deployment's template gives one (a container with ports, env, resources, probes,
    /// mounts; a volume), comma-separated, each a configuration.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [instructions::Kind::Configmap])]
    instructions_kind: Vec<instructions::Kind>,
    /// Discovery: timed GETs per row.
    #[arg(long, default_value_t = 200)]
    discovery_gets: usize,
    /// Run as the limit server of the `limit` section, answering from this directory.
    #[arg(long, hide = true)]
    serve_limit: Option<PathBuf>,
    /// Run as the watch section's limit server, its address and certificate in this directory.
    #[arg(long, hide = true)]
    serve_watch_limit: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Run as a limit server (these return only on error).
    let served = match (&cli.serve_limit, &cli.serve_watch_limit) {
        (Some(dir), _) => Some(("limit server", limit::serve(dir, cli.tls))),
        (None, Some(dir)) => Some(("watch limit server", watch_limit::serve(dir, cli.tls))),
        (None, None) => None,
    };
    if let Some((server, outcome)) = served {
        return match outcome {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("kubox-bench {server}: {e}");
                ExitCode::FAILURE
            }
        };
    }
    http::use_tls(cli.tls);
    http::use_http2(cli.http2);
    let threads = cli.client_threads.unwrap_or_else(cores).max(1);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("kubox-bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli, threads)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kubox-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli, threads: usize) -> Result<()> {
    let bin = kubox::locate(cli.kubox_bin.clone(), !cli.no_build)?;
    let began = Instant::now();
    print_header(&bin, threads);
    let storages = &cli.storage;
    for section in &cli.sections {
        match section {
            Section::Startup => startup::run(
                &bin,
                storages,
                &startup::Options {
                    runs: cli.startup_runs,
                },
            )?,
            Section::Memory => {
                memory::run(
                    &bin,
                    storages,
                    &memory::Options {
                        objects: cli.rss_objects,
                        object_bytes: cli.rss_object_bytes,
                        clients: cli.rss_clients,
                        max_time: Duration::from_secs(120),
                    },
                )
                .await?
            }
            Section::Throughput => {
                throughput::run(
                    &bin,
                    storages,
                    &throughput::Options {
                        clients: cli.clients.clone(),
                        phase_time: Duration::from_secs_f64(cli.phase_secs.clamp(0.1, 60.0)),
                        max_ops: cli.max_ops,
                        list_size: cli.list_size,
                    },
                )
                .await?
            }
            Section::Watch => {
                watch::run(
                    &bin,
                    storages,
                    &watch::Options {
                        watchers: cli.watchers.clone(),
                        events: cli.watch_events,
                        rate: cli.watch_rate.clamp(0.1, 10_000.0),
                        http2_connections: cli.watch_http2_connections,
                        limit: cli.watch_limit,
                    },
                )
                .await?
            }
            Section::Limit if cli.http2 => {
                return Err("the limit section speaks HTTP/1.1 only: leave out --http2".into());
            }
            Section::Limit => {
                limit::run(
                    &bin,
                    storages.first().copied().unwrap_or(Storage::Memory),
                    &limit::Options {
                        clients: cli.clients.clone(),
                        phase_time: Duration::from_secs_f64(cli.phase_secs.clamp(0.1, 60.0)),
                        max_ops: cli.max_ops,
                        runs: cli.limit_runs.max(1),
                    },
                )
                .await?
            }
            Section::Soak => {
                soak::run(
                    &bin,
                    storages,
                    &soak::Options {
                        clients: cli.rss_clients,
                        load_time: Duration::from_secs_f64(cli.soak_secs.clamp(1.0, 3600.0)),
                        idle_time: Duration::from_secs_f64(cli.soak_idle_secs.clamp(0.0, 3600.0)),
                        names: cli.soak_names,
                    },
                )
                .await?
            }
            Section::Apply => {
                apply::run(
                    &bin,
                    storages.first().copied().unwrap_or(Storage::Memory),
                    &apply::Options {
                        clients: cli.clients.iter().copied().max().unwrap_or(64),
                        phase_time: Duration::from_secs_f64(cli.phase_secs.clamp(0.1, 60.0)),
                    },
                )
                .await?
            }
            Section::Admission => {
                admission::run(
                    &bin,
                    storages.first().copied().unwrap_or(Storage::Memory),
                    &admission::Options {
                        clients: cli.clients.iter().copied().max().unwrap_or(64),
                        phase_time: Duration::from_secs_f64(cli.phase_secs.clamp(0.1, 60.0)),
                        max_ops: cli.max_ops,
                        runs: 2,
                    },
                )
                .await?
            }
            Section::Workloads => {
                workloads::run(
                    &bin,
                    storages,
                    &workloads::Options {
                        replicas: 1000,
                        nodes: 10,
                        idle: Duration::from_secs(10),
                    },
                )
                .await?
            }
            Section::Instructions => {
                instructions::run(
                    &bin,
                    storages,
                    &instructions::Options {
                        creates: cli.instructions_creates.max(1),
                        nodes: cli.instructions_nodes.clone(),
                        keep: cli.instructions_keep.clone(),
                        kinds: cli.instructions_kind.clone(),
                    },
                )
                .await?
            }
            Section::Discovery => {
                discovery::run(
                    &bin,
                    storages.first().copied().unwrap_or(Storage::Memory),
                    &discovery::Options {
                        gets: cli.discovery_gets.max(1),
                        crds: 20,
                    },
                )
                .await?
            }
            Section::Crd => {
                crd::run(
                    &bin,
                    storages.first().copied().unwrap_or(Storage::Memory),
                    &crd::Options {
                        clients: cli.clients.iter().copied().max().unwrap_or(64),
                        phase_time: Duration::from_secs_f64(cli.phase_secs.clamp(0.1, 60.0)),
                        max_ops: cli.max_ops,
                        crds: 15,
                    },
                )
                .await?
            }
            Section::Chain => {
                chain::run(
                    &bin,
                    storages.first().copied().unwrap_or(Storage::Memory),
                    &chain::Options {
                        clients: cli.clients.iter().copied().max().unwrap_or(64),
                        phase_time: Duration::from_secs_f64(cli.phase_secs.clamp(0.1, 60.0)),
                        max_ops: cli.max_ops,
                        runs: 2,
                        bindings: 1000,
                    },
                )
                .await?
            }
        }
        println!(
            "  (load average after this section: {})\n",
            stats::loadavg()
        );
    }
    println!("Report finished in {:.0} s.", began.elapsed().as_secs_f64());
    Ok(())
}

fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// GB/s of 16 KiB copies (`copy_within`, glibc's `memmove`) to a destination 16 bytes past the
/// source's offset in its page, and 1 KiB past it.
fn copy_probe() -> (f64, f64) {
    const LEN: usize = 16 * 1024;
    const ROUNDS: usize = 2_000;
    let mut buf = vec![1u8; 3 * LEN + 2 * 4096];
    let base = (4096 - buf.as_ptr() as usize % 4096) % 4096;
    let mut rate = |dst_offset: usize| {
        let dst = base + 2 * LEN + dst_offset;
        let started = Instant::now();
        for _ in 0..ROUNDS {
            buf.copy_within(base..base + LEN, dst);
            std::hint::black_box(&mut buf);
        }
        (LEN * ROUNDS) as f64 / started.elapsed().as_nanos().max(1) as f64
    };
    let shared = rate(16);
    let apart = rate(1024);
    (shared, apart)
}

fn print_header(bin: &std::path::Path, threads: usize) {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".to_string());
    println!("# kubox performance report");
    println!();
    println!(
        "  server:  {} (release build, child process)",
        bin.display()
    );
    println!("  machine: {} cores, {cpu}", cores());
    let (shared, apart) = copy_probe();
    println!(
        "  copies of 16 KiB: {shared:.1} GB/s at a shared page offset, {apart:.1} GB/s 1 KiB apart\n  \
         (far apart: glibc's `rep movsb` on some AMD processors; kubox copies in 2 KiB pieces)"
    );
    println!(
        "  NOTE: the load generator ({threads} runtime threads) and the server share these cores,\n  \
         so every rate below is a lower bound for the server alone: the client's own HTTP and\n  \
         JSON work takes CPU the server would otherwise have. Loopback only (127.0.0.1).\n  \
         Load average before the run: {} (anything above ~0 means other processes compete\n  \
         for the same cores and the figures are pessimistic).",
        stats::loadavg()
    );
    println!();
}
