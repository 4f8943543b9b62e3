//! Section 3: request rate and latency over keep-alive HTTP/1.1 on loopback — create, get and
//! list of ConfigMaps, with 1 and many concurrent clients.

use std::path::Path;
use std::time::Duration;

use http::Method;

use crate::http::{configmap, configmaps, ensure_namespace};
use crate::kubox::{process_cpu, Kubox, Storage};
use crate::load::{drive, Op, Outcome};
use crate::startup::verdict;
use crate::stats::{ms, thousands, Table};
use crate::Result;

pub struct Options {
    /// Concurrent client counts to try (one connection each).
    pub clients: Vec<usize>,
    /// Length of each measured phase.
    pub phase_time: Duration,
    /// Cap on requests per phase.
    pub max_ops: u64,
    /// Objects in the listed namespace.
    pub list_size: u64,
}

const LIST_NAMESPACE: &str = "bench-list";

pub async fn run(bin: &Path, storages: &[Storage], opts: &Options) -> Result<()> {
    let transport = if crate::http::tls() {
        "over TLS 1.3"
    } else {
        "plain HTTP"
    };
    let protocol = if crate::http::http2() {
        "h2, one stream at a time"
    } else {
        "HTTP/1.1 keep-alive"
    };
    println!("## 3. Request throughput and latency ({protocol}, loopback, {transport})");
    println!(
        "  Closed loop: each client has one connection and sends its next request when the last\n  \
         answered. Each phase runs {:?} or {} requests, whichever ends first. create = POST of a\n  \
         new ~400 B ConfigMap; get = GET of one of the objects just created (scattered names);\n  \
         list = GET of a namespace holding {} ConfigMaps. One fresh server per storage.\n  \
         CPU/req = CPU time (user+sys, 10 ms ticks) of the server / of this bench in the phase,\n  \
         divided by requests: 1 s / srv CPU/req is what the server could do with one whole core.\n  \
         fsync = p50 of appending {FSYNC_BYTES} B to a file in the server's data directory and\n  \
         fdatasync-ing it ({FSYNC_SAMPLES} times, just before the phases): one sled create over one\n  \
         connection aims at a p50 within 2x that.\n",
        opts.phase_time,
        thousands(opts.max_ops),
        opts.list_size
    );
    let mut fsyncs = Vec::new();
    let mut table = Table::new(&[
        "storage",
        "clients",
        "op",
        "req/s",
        "p50",
        "p90",
        "p99",
        "srv CPU/req",
        "bench CPU/req",
        "errors",
        "aim",
    ]);
    for &storage in storages {
        let kubox = Kubox::start(bin, storage)?;
        let addr = kubox.addr();
        ensure_namespace(addr, LIST_NAMESPACE).await?;
        let list_path = configmaps(LIST_NAMESPACE);
        let seeded = drive(addr, 8, opts.list_size, Duration::from_secs(30), {
            let path = list_path.clone();
            move |i| Op {
                method: Method::POST,
                path: path.clone(),
                body: Some(configmap(&format!("item-{i}"), &[])),
            }
        })
        .await?;
        if seeded.ok != opts.list_size {
            return Err(format!(
                "seeding the list namespace: {} of {} created ({:?})",
                seeded.ok, opts.list_size, seeded.first_error
            )
            .into());
        }
        let fsync = if storage == Storage::Sled {
            let p50 = fsync_p50(&kubox.data_dir())?;
            fsyncs.push(p50);
            Some(p50)
        } else {
            None
        };
        for &clients in &opts.clients {
            eprintln!("throughput: {} with {clients} clients …", storage.name());
            let ns = format!("bench-c{clients}");
            ensure_namespace(addr, &ns).await?;
            let path = configmaps(&ns);

            let create = phase(&kubox, clients, opts, {
                let path = path.clone();
                move |i| Op {
                    method: Method::POST,
                    path: path.clone(),
                    body: Some(configmap(&format!("cm-{i}"), &[])),
                }
            })
            .await?;
            // Objects cm-0 .. cm-{created-1} exist when every create succeeded; GET only those.
            let created = create.out.ok.max(1);
            let get = phase(&kubox, clients, opts, {
                let path = path.clone();
                move |i| Op {
                    method: Method::GET,
                    path: format!("{path}/cm-{}", scatter(i, created)),
                    body: None,
                }
            })
            .await?;
            let list = phase(&kubox, clients, opts, {
                let path = list_path.clone();
                move |_| Op {
                    method: Method::GET,
                    path: path.clone(),
                    body: None,
                }
            })
            .await?;

            let many = clients > 1;
            let sled = storage == Storage::Sled;
            let create_aim = match (sled, many) {
                (true, true) => rate_aim(&create, 10_000.0, ">= 10,000/s"),
                (false, true) => rate_aim(&create, 20_000.0, ">= 20,000/s"),
                (false, false) => rate_aim(&create, 5_000.0, ">= 5,000/s"),
                (true, false) => fsync.map(|f| {
                    verdict(
                        create.out.latency.p50 <= f * 2,
                        &format!("p50 <= 2x fsync {}", ms(f)),
                    )
                }),
            };
            let get_aim = (many && sled)
                .then(|| rate_aim(&get, 30_000.0, ">= 30,000/s"))
                .flatten();
            let rows: [(&str, &Phase, Option<String>); 3] = [
                ("create", &create, create_aim),
                ("get", &get, get_aim),
                ("list", &list, None),
            ];
            for (op, ph, aim) in rows {
                let out = &ph.out;
                if let Some(e) = &out.first_error {
                    eprintln!(
                        "throughput: {} {op}: {} errors, first: {e}",
                        storage.name(),
                        out.errors
                    );
                }
                table.row(vec![
                    storage.name().to_string(),
                    clients.to_string(),
                    op.to_string(),
                    thousands(out.rate() as u64),
                    ms(out.latency.p50),
                    ms(out.latency.p90),
                    ms(out.latency.p99),
                    ms(ph.server_cpu / out.ok.max(1) as u32),
                    ms(ph.client_cpu / out.ok.max(1) as u32),
                    out.errors.to_string(),
                    aim.unwrap_or_default(),
                ]);
            }
        }
    }
    table.print();
    println!("  (list of {} objects per request)", opts.list_size);
    for f in fsyncs {
        println!("  (fsync in sled's data directory: p50 {})", ms(f));
    }
    Ok(())
}

/// The verdict on a phase's rate against a minimum.
fn rate_aim(ph: &Phase, min: f64, text: &str) -> Option<String> {
    Some(verdict(ph.out.rate() >= min, text))
}

/// The size of one write of the fsync probe: about one create's commit.
const FSYNC_BYTES: usize = 768;
const FSYNC_SAMPLES: usize = 400;

/// p50 of [`FSYNC_BYTES`] appended to a new file in `dir` and `fdatasync`ed, the file's own
/// creation synced first.
fn fsync_p50(dir: &Path) -> Result<Duration> {
    use std::io::Write;
    let path = dir.join("bench-fsync-probe");
    let mut file = std::fs::File::create(&path)?;
    file.sync_all()?;
    let record = [0x5a_u8; FSYNC_BYTES];
    let mut samples = Vec::with_capacity(FSYNC_SAMPLES);
    for _ in 0..FSYNC_SAMPLES {
        let start = std::time::Instant::now();
        file.write_all(&record)?;
        file.sync_data()?;
        samples.push(start.elapsed().as_nanos() as u64);
    }
    drop(file);
    std::fs::remove_file(&path)?;
    Ok(crate::stats::Summary::of(&mut samples).p50)
}

/// A measured phase: the load outcome plus the CPU time the server and the bench used in it.
struct Phase {
    out: Outcome,
    server_cpu: Duration,
    client_cpu: Duration,
}

async fn phase<F>(kubox: &Kubox, clients: usize, opts: &Options, make: F) -> Result<Phase>
where
    F: Fn(u64) -> Op + Send + Sync + 'static,
{
    let (server0, client0) = (kubox.cpu()?, process_cpu(std::process::id())?);
    let out = drive(kubox.addr(), clients, opts.max_ops, opts.phase_time, make).await?;
    let (server1, client1) = (kubox.cpu()?, process_cpu(std::process::id())?);
    Ok(Phase {
        out,
        server_cpu: server1.saturating_sub(server0),
        client_cpu: client1.saturating_sub(client0),
    })
}

/// Spread request `i` over `0..n` so consecutive GETs hit unrelated keys.
fn scatter(i: u64, n: u64) -> u64 {
    // A large odd multiplier visits residues in a scrambled order.
    i.wrapping_mul(0x9E37_79B9_7F4A_7C15) % n
}

#[cfg(test)]
mod tests {
    use super::scatter;

    #[test]
    fn scatter_stays_in_range() {
        for i in 0..1000 {
            assert!(scatter(i, 7) < 7);
        }
        assert_eq!(scatter(5, 1), 0);
    }
}
