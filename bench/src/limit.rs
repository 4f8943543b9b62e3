//! Section `limit`: GET of one ConfigMap from kubox against "the limit" — a bare hyper (+ rustls)
//! server in its own process answering every request with the bytes and headers kubox answered,
//! over the same transport and certificate. Runs alternate (kubox, limit, kubox, limit) so both
//! see the same machine; the ratio of the rates is the figure, the load average beside it.
//!
//! The limit server is this binary run again with `--serve-limit DIR`: `DIR` holds the answer
//! (`body`, `headers`: one `name: value` per line), `addr`, and for TLS the serving certificate and
//! key kubox wrote into its data directory (`apiserver.crt`, `apiserver.key`).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::http::{configmap, configmaps, ensure_namespace, readyz_blocking, Conn};
use crate::kubox::{process_cpu, Kubox, Storage};
use crate::load::{drive, Op, Outcome};
use crate::startup::verdict;
use crate::stats::{ms, thousands, Table};
use crate::Result;

pub struct Options {
    pub clients: Vec<usize>,
    pub phase_time: Duration,
    pub max_ops: u64,
    pub runs: usize,
}

const NAMESPACE: &str = "bench-limit";

pub async fn run(bin: &Path, storage: Storage, opts: &Options) -> Result<()> {
    let transport = if crate::http::tls() {
        "TLS 1.3"
    } else {
        "plain HTTP"
    };
    println!("## GET against the limit ({transport}, HTTP/1.1 keep-alive, loopback)");
    println!(
        "  The same GET of one ConfigMap from kubox ({} storage) and from a bare hyper{} server\n  \
         answering kubox's bytes and headers, {} runs each, alternating; each run {:?} or {} requests.\n  \
         ratio = kubox req/s / limit req/s of the same run pair.\n",
        storage.name(),
        if crate::http::tls() { " + rustls" } else { "" },
        opts.runs,
        opts.phase_time,
        thousands(opts.max_ops)
    );
    let kubox = Kubox::start(bin, storage)?;
    let addr = kubox.addr();
    ensure_namespace(addr, NAMESPACE).await?;
    let path = format!("{}/limit", configmaps(NAMESPACE));
    let mut conn = Conn::connect(addr).await?;
    conn.call(
        Method::POST,
        &configmaps(NAMESPACE),
        Some(configmap("limit", &[])),
    )
    .await?;
    let resp = conn.send(Method::GET, &path, None).await?;
    let headers: String = resp
        .headers()
        .iter()
        .filter(|(n, _)| !matches!(n.as_str(), "date" | "content-length"))
        .filter_map(|(n, v)| Some(format!("{}: {}\n", n, v.to_str().ok()?)))
        .collect();
    let body = resp.into_body().collect().await?.to_bytes();

    let limit = LimitServer::start(
        "--serve-limit",
        &kubox,
        &[("body", &body), ("headers", headers.as_bytes())],
    )?;

    let mut table = Table::new(&[
        "clients",
        "run",
        "kubox req/s",
        "limit req/s",
        "ratio",
        "kubox p99",
        "limit p99",
        "kubox CPU/req",
        "limit CPU/req",
        "aim",
    ]);
    let mut medians = Vec::new();
    for &clients in &opts.clients {
        let mut ratios = Vec::new();
        for run in 1..=opts.runs {
            eprintln!("limit: {clients} clients, run {run} …");
            let (k, k_cpu) = phase(addr, kubox.pid(), clients, opts, &path).await?;
            let (l, l_cpu) = phase(limit.addr(), limit.pid(), clients, opts, &path).await?;
            let ratio = k.rate() / l.rate().max(1.0);
            ratios.push(ratio);
            table.row(vec![
                clients.to_string(),
                run.to_string(),
                thousands(k.rate() as u64),
                thousands(l.rate() as u64),
                format!("{ratio:.2}"),
                ms(k.latency.p99),
                ms(l.latency.p99),
                cpu_per_request(k_cpu, k.ok),
                cpu_per_request(l_cpu, l.ok),
                if clients > 1 {
                    verdict(ratio >= 0.8, "≥ 0.8× the limit")
                } else {
                    String::new()
                },
            ]);
        }
        medians.push((clients, median(&mut ratios)));
    }
    table.print();
    // One run moves by several per cent with the machine: the median of the runs is the figure.
    for (clients, m) in medians {
        println!(
            "  median ratio, {clients} clients, {} runs: {m:.2}",
            opts.runs
        );
    }
    Ok(())
}

/// Server CPU time per answered request, to a tenth of a microsecond.
fn cpu_per_request(cpu: Duration, requests: u64) -> String {
    format!("{:.1} µs", cpu.as_secs_f64() * 1e6 / requests.max(1) as f64)
}

/// The median of `v` (0 when empty).
fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

async fn phase(
    addr: SocketAddr,
    pid: u32,
    clients: usize,
    opts: &Options,
    path: &str,
) -> Result<(Outcome, Duration)> {
    let cpu0 = process_cpu(pid)?;
    let path = path.to_string();
    let out = drive(addr, clients, opts.max_ops, opts.phase_time, move |_| Op {
        method: Method::GET,
        path: path.clone(),
        body: None,
    })
    .await?;
    if out.errors > 0 {
        return Err(format!(
            "GET from {addr}: {} errors, first: {:?}",
            out.errors, out.first_error
        )
        .into());
    }
    Ok((out, process_cpu(pid)?.saturating_sub(cpu0)))
}

/// A limit server process: this binary run again with `mode` (`--serve-limit`,
/// `--serve-watch-limit`) and a directory of its own, both removed when dropped.
pub(crate) struct LimitServer {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl LimitServer {
    /// Start one in `mode` on a free loopback address, its directory holding kubox's serving
    /// certificate, the address and `files` (name, content); returns once it answers.
    pub(crate) fn start(mode: &str, kubox: &Kubox, files: &[(&str, &[u8])]) -> Result<LimitServer> {
        let dir = tempfile::Builder::new().prefix("kubox-limit-").tempdir()?;
        let pki = kubox.data_dir().join("pki");
        for f in ["apiserver.crt", "apiserver.key"] {
            std::fs::copy(pki.join(f), dir.path().join(f))?;
        }
        for (name, content) in files {
            std::fs::write(dir.path().join(name), content)?;
        }
        let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        std::fs::write(dir.path().join("addr"), addr.to_string())?;
        let mut command = Command::new(std::env::current_exe()?);
        command.arg(mode).arg(dir.path());
        if crate::http::tls() {
            command.arg("--tls");
        }
        let child = command.stdin(Stdio::null()).spawn()?;
        let server = LimitServer {
            child,
            addr,
            _dir: dir,
        };
        let started = Instant::now();
        while !readyz_blocking(addr) {
            if started.elapsed() > Duration::from_secs(10) {
                return Err("the limit server did not answer within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok(server)
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for LimitServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The answer the limit server gives to every request.
struct Answer {
    body: Bytes,
    headers: Vec<(http::HeaderName, http::HeaderValue)>,
}

/// Run the limit server (the `--serve-limit DIR` mode); returns only on error.
pub fn serve(dir: &Path, tls: bool) -> Result<()> {
    let read = |name: &str| -> Result<Vec<u8>> { Ok(std::fs::read(dir.join(name))?) };
    let headers = String::from_utf8(read("headers")?)?
        .lines()
        .filter_map(|l| {
            let (n, v) = l.split_once(": ")?;
            Some((n.parse().ok()?, v.parse().ok()?))
        })
        .collect();
    let answer = Arc::new(Answer {
        body: Bytes::from(read("body")?),
        headers,
    });
    serve_each(dir, tls, &[b"http/1.1"], move |io| {
        let answer = answer.clone();
        async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let answer = answer.clone();
                async move { Ok::<_, Infallible>(respond(&answer, req.uri().path())) }
            });
            let http = hyper::server::conn::http1::Builder::new();
            let _ = http.serve_connection(io, service).await;
        }
    })
}

/// What a limit server's connections run over: TLS or plain TCP.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

/// Serve the address in `dir`'s `addr` for ever, on a runtime of its own: each connection
/// accepted (through TLS when `tls`, with kubox's certificate in `dir`, offering `alpn`) goes to
/// `serve` on a task of its own. Returns only on error.
pub(crate) fn serve_each<F, Fut>(dir: &Path, tls: bool, alpn: &[&[u8]], serve: F) -> Result<()>
where
    F: Fn(TokioIo<Box<dyn Io>>) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let addr: SocketAddr = std::fs::read_to_string(dir.join("addr"))?.trim().parse()?;
    let acceptor = tls
        .then(|| acceptor(&dir.join("apiserver.crt"), &dir.join("apiserver.key"), alpn))
        .transpose()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        loop {
            let (tcp, _) = listener.accept().await?;
            let _ = tcp.set_nodelay(true);
            let (acceptor, serve) = (acceptor.clone(), serve.clone());
            tokio::spawn(async move {
                let io: Box<dyn Io> = match acceptor {
                    Some(acceptor) => match acceptor.accept(tcp).await {
                        Ok(stream) => Box::new(stream),
                        Err(_) => return,
                    },
                    None => Box::new(tcp),
                };
                serve(TokioIo::new(io)).await;
            });
        }
    })
}

fn respond(answer: &Answer, path: &str) -> Response<Full<Bytes>> {
    if path == "/readyz" {
        return Response::new(Full::new(Bytes::from_static(b"ok")));
    }
    let mut resp = Response::new(Full::new(answer.body.clone()));
    for (n, v) in &answer.headers {
        resp.headers_mut().append(n.clone(), v.clone());
    }
    resp
}

/// A TLS acceptor for kubox's serving certificate, offering `alpn`.
pub(crate) fn acceptor(
    cert: &Path,
    key: &Path,
    alpn: &[&[u8]],
) -> Result<tokio_rustls::TlsAcceptor> {
    use rustls_pki_types::pem::PemObject;
    let chain = rustls_pki_types::CertificateDer::pem_file_iter(cert)?
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let key = rustls_pki_types::PrivateKeyDer::from_pem_file(key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(cfg)))
}
