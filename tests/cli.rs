//! The `kubox serve` command as a user runs it: default data dir, kubeconfig, Ctrl-C, restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

struct Running {
    child: Child,
    url: String,
    kubeconfig: String,
}

fn start(home: &std::path::Path, extra: &[&str]) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kubox"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(extra)
        .env("HOME", home)
        .env("XDG_DATA_HOME", home.join("data"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kubox starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let url = first.rsplit(' ').next().unwrap().to_string();
    let second = lines.next().unwrap().unwrap();
    let kubeconfig = second.rsplit(' ').next().unwrap().to_string();
    lines.next().unwrap().unwrap();
    // Keep draining stdout so the server never writes into a closed pipe.
    std::thread::spawn(move || lines.for_each(drop));
    Running {
        child,
        url,
        kubeconfig,
    }
}

/// The credentials of a kubeconfig: (CA PEM, client cert PEM, client key PEM, token).
fn credentials(kubeconfig: &str) -> (Option<String>, Option<(String, String)>, Option<String>) {
    use base64::Engine;
    let kc: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(kubeconfig).unwrap()).unwrap();
    let field = |v: &serde_yaml::Value| {
        v.as_str().map(|s| {
            String::from_utf8(base64::engine::general_purpose::STANDARD.decode(s).unwrap()).unwrap()
        })
    };
    let ca = field(&kc["clusters"][0]["cluster"]["certificate-authority-data"]);
    let user = &kc["users"][0]["user"];
    let cert = field(&user["client-certificate-data"]).zip(field(&user["client-key-data"]));
    let token = user["token"].as_str().map(str::to_string);
    (ca, cert, token)
}

/// One HTTP/1.1 request with `Connection: close`, trusting `kubeconfig`'s CA, with its
/// credentials when `authenticated`; returns (status line, body).
fn http_as(
    url: &str,
    kubeconfig: &str,
    authenticated: bool,
    method: &str,
    path: &str,
    body: &str,
) -> (String, String) {
    use rustls_pki_types::pem::PemObject;
    let (ca, mut cert, mut token) = credentials(kubeconfig);
    if !authenticated {
        (cert, token) = (None, None);
    }
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let (https, addr) = match url.strip_prefix("https://") {
        Some(a) => (true, a),
        None => (false, url.trim_start_matches("http://")),
    };
    let tcp = TcpStream::connect(addr).unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut out = String::new();
    if https {
        let mut roots = rustls::RootCertStore::empty();
        let ca = ca.expect("an https kubeconfig carries its CA");
        for c in rustls_pki_types::CertificateDer::pem_slice_iter(ca.as_bytes()) {
            roots.add(c.unwrap()).unwrap();
        }
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        let cfg = match cert {
            Some((c, k)) => builder
                .with_client_auth_cert(
                    rustls_pki_types::CertificateDer::pem_slice_iter(c.as_bytes())
                        .map(|c| c.unwrap())
                        .collect(),
                    rustls_pki_types::PrivateKeyDer::from_pem_slice(k.as_bytes()).unwrap(),
                )
                .unwrap(),
            None => builder.with_no_client_auth(),
        };
        let host = addr.rsplit_once(':').unwrap().0.to_string();
        let conn = rustls::ClientConnection::new(
            std::sync::Arc::new(cfg),
            rustls_pki_types::ServerName::try_from(host).unwrap(),
        )
        .unwrap();
        let mut s = rustls::StreamOwned::new(conn, tcp);
        s.write_all(request.as_bytes()).unwrap();
        // The server may close without close_notify; what was read is what counts.
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        out = String::from_utf8_lossy(&buf).into_owned();
    } else {
        let mut s = tcp;
        s.write_all(request.as_bytes()).unwrap();
        s.read_to_string(&mut out).unwrap();
    }
    let status = out.lines().next().unwrap_or_default().to_string();
    let body = out.split("\r\n\r\n").nth(1).unwrap_or_default().to_string();
    (status, body)
}

/// A request as the kubeconfig's user.
fn http(r: &Running, method: &str, path: &str, body: &str) -> (String, String) {
    http_as(&r.url, &r.kubeconfig, true, method, path, body)
}

fn interrupt(mut r: Running) -> std::process::ExitStatus {
    let ok = Command::new("kill")
        .args(["-INT", &r.child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    r.child.wait().unwrap()
}

#[test]
fn serve_writes_a_kubeconfig_in_the_default_data_dir_and_exits_cleanly_on_ctrl_c() {
    let home = tempfile::tempdir().unwrap();
    let r = start(home.path(), &[]);
    assert!(
        r.kubeconfig
            .starts_with(home.path().join("data/kubox").to_str().unwrap()),
        "{}",
        r.kubeconfig
    );
    let kc = std::fs::read_to_string(&r.kubeconfig).unwrap();
    assert!(
        kc.contains(&r.url) && kc.contains("current-context: kubox"),
        "{kc}"
    );
    assert!(r.url.starts_with("https://"), "{}", r.url);
    let (status, body) = http(&r, "GET", "/version", "");
    assert!(status.contains("200"), "{status}");
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["minor"], "35", "{body}");
    assert!(
        body.contains("\n  \"minor\": \"35\","),
        "indented as kube's: {body}"
    );
    let (status, body) = http(&r, "POST", SSR, SSR_BODY);
    assert!(status.contains("201"), "{status}");
    assert!(body.contains("\"username\":\"kubernetes-admin\""), "{body}");
    assert!(body.contains("system:masters"), "{body}");
    assert!(interrupt(r).success());
}

const SSR: &str = "/apis/authentication.k8s.io/v1/selfsubjectreviews";
const SSR_BODY: &str = r#"{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}"#;

#[test]
fn the_ca_is_kept_across_restarts_so_an_old_kubeconfig_still_works() {
    let home = tempfile::tempdir().unwrap();
    let r = start(home.path(), &[]);
    let first = home.path().join("first-kubeconfig");
    std::fs::copy(&r.kubeconfig, &first).unwrap();
    let ca = credentials(&r.kubeconfig).0.unwrap();
    assert!(interrupt(r).success());
    let r = start(home.path(), &["--tls-san", "kubox.example"]);
    assert_eq!(credentials(&r.kubeconfig).0.unwrap(), ca);
    let (status, body) = http_as(&r.url, first.to_str().unwrap(), true, "POST", SSR, SSR_BODY);
    assert!(status.contains("201"), "{status} {body}");
    assert!(body.contains("kubernetes-admin"), "{body}");
    assert!(interrupt(r).success());
}

#[test]
fn without_credentials_a_request_is_anonymous_or_401_when_anonymous_auth_is_off() {
    let home = tempfile::tempdir().unwrap();
    let r = start(
        home.path(),
        &["--storage", "memory", "--authorization-mode", "AlwaysAllow"],
    );
    let (status, body) = http_as(&r.url, &r.kubeconfig, false, "POST", SSR, SSR_BODY);
    assert!(status.contains("201"), "{status}");
    assert!(body.contains("system:anonymous"), "{body}");
    assert!(interrupt(r).success());
    let r = start(
        home.path(),
        &["--storage", "memory", "--anonymous-auth=false"],
    );
    let (status, body) = http_as(&r.url, &r.kubeconfig, false, "GET", "/version", "");
    assert!(status.contains("401"), "{status}");
    assert!(body.contains("\"reason\":\"Unauthorized\""), "{body}");
    assert!(interrupt(r).success());
}

#[test]
fn insecure_http_serves_plain_http_and_the_kubeconfig_carries_an_admin_token() {
    let home = tempfile::tempdir().unwrap();
    let r = start(home.path(), &["--storage", "memory", "--insecure-http"]);
    assert!(r.url.starts_with("http://"), "{}", r.url);
    let (status, body) = http(&r, "POST", SSR, SSR_BODY);
    assert!(status.contains("201"), "{status}");
    assert!(body.contains("kubernetes-admin"), "{body}");
    assert!(interrupt(r).success());
}

#[test]
fn a_token_auth_file_authenticates_its_users() {
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("tokens.csv");
    std::fs::write(&file, "s3cret,alice,uid-1,\"dev,ops\"\n").unwrap();
    let r = start(
        home.path(),
        &[
            "--storage",
            "memory",
            "--insecure-http",
            "--token-auth-file",
            file.to_str().unwrap(),
        ],
    );
    // A kubeconfig of our own with alice's token.
    let kc = std::fs::read_to_string(&r.kubeconfig).unwrap();
    let token = credentials(&r.kubeconfig).2.unwrap();
    let alice = home.path().join("alice");
    std::fs::write(&alice, kc.replace(&token, "s3cret")).unwrap();
    let (status, body) = http_as(&r.url, alice.to_str().unwrap(), true, "POST", SSR, SSR_BODY);
    assert!(status.contains("201"), "{status}");
    assert!(body.contains("\"username\":\"alice\""), "{body}");
    assert!(
        body.contains("\"dev\",\"ops\",\"system:authenticated\""),
        "{body}"
    );
    std::fs::write(&alice, kc.replace(&token, "wrong")).unwrap();
    let (status, _) = http_as(&r.url, alice.to_str().unwrap(), true, "GET", "/version", "");
    assert!(status.contains("401"), "{status}");
    assert!(interrupt(r).success());
}

#[test]
fn a_client_ca_file_lets_in_certificates_of_an_external_ca() {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    };
    // A test harness's own CA and a client certificate it signs.
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::default();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "harness-ca");
    let ca_pem = ca_params.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, "robot");
    params
        .distinguished_name
        .push(DnType::OrganizationName, "harness");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let cert_pem = params.signed_by(&key, &issuer).unwrap().pem();

    let home = tempfile::tempdir().unwrap();
    let ca_file = home.path().join("client-ca.crt");
    std::fs::write(&ca_file, &ca_pem).unwrap();
    let r = start(
        home.path(),
        &[
            "--storage",
            "memory",
            "--client-ca-file",
            ca_file.to_str().unwrap(),
        ],
    );
    let server_ca = credentials(&r.kubeconfig).0.unwrap();
    let robot = home.path().join("robot");
    std::fs::write(
        &robot,
        kubox::kubeconfig::render(
            &r.url,
            Some(&server_ca),
            &kubox::kubeconfig::Credential::ClientCert {
                cert_pem,
                key_pem: key.serialize_pem(),
            },
        ),
    )
    .unwrap();
    let (status, body) = http_as(&r.url, robot.to_str().unwrap(), true, "POST", SSR, SSR_BODY);
    assert!(status.contains("201"), "{status} {body}");
    assert!(body.contains("\"username\":\"robot\""), "{body}");
    assert!(
        body.contains("\"harness\",\"system:authenticated\""),
        "{body}"
    );
    assert!(interrupt(r).success());
}

#[test]
fn sled_data_survives_a_restart() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("state");
    let dir_s = dir.to_str().unwrap();
    let r = start(home.path(), &["--data-dir", dir_s]);
    let cm =
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"kept"},"data":{"k":"v"}}"#;
    let (status, _) = http(&r, "POST", "/api/v1/namespaces/default/configmaps", cm);
    assert!(status.contains("201"), "{status}");
    assert!(interrupt(r).success());
    let r = start(home.path(), &["--data-dir", dir_s]);
    let (status, body) = http(&r, "GET", "/api/v1/namespaces/default/configmaps/kept", "");
    assert!(status.contains("200"), "{status} {body}");
    assert!(body.contains("\"k\":\"v\""), "{body}");
    assert!(interrupt(r).success());
}

#[test]
fn memory_storage_starts_empty_every_time() {
    let home = tempfile::tempdir().unwrap();
    let r = start(home.path(), &["--storage", "memory"]);
    let cm = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"gone"}}"#;
    http(&r, "POST", "/api/v1/namespaces/default/configmaps", cm);
    assert!(interrupt(r).success());
    let r = start(home.path(), &["--storage", "memory"]);
    let (status, _) = http(&r, "GET", "/api/v1/namespaces/default/configmaps/gone", "");
    assert!(status.contains("404"), "{status}");
    assert!(interrupt(r).success());
}

/// `kubox snapshot save` through a running server's API (as its admin; anonymous is refused),
/// and `kubox serve --from-snapshot`: the new server holds the same objects at the same
/// resourceVersions (kubectl reads them), and refuses a data directory that holds a store.
#[test]
fn snapshot_save_and_serve_from_it() {
    let home = tempfile::tempdir().unwrap();
    let r = start(
        home.path(),
        &[
            "--storage",
            "memory",
            "--data-dir",
            home.path().join("a").to_str().unwrap(),
        ],
    );
    let cm =
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"seeded"},"data":{"k":"v"}}"#;
    let (status, body) = http(&r, "POST", "/api/v1/namespaces/default/configmaps", cm);
    assert!(status.contains("201"), "{status}");
    let created: serde_json::Value = serde_json::from_str(&body).unwrap();
    let rv = created["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let file = home.path().join("seed.snapshot");
    let save = Command::new(env!("CARGO_BIN_EXE_kubox"))
        .args([
            "snapshot",
            "save",
            file.to_str().unwrap(),
            "--kubeconfig",
            &r.kubeconfig,
        ])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&save.stdout);
    assert!(
        save.status.success(),
        "{said} {}",
        String::from_utf8_lossy(&save.stderr)
    );
    assert!(
        said.starts_with("saved ") && said.contains(" keys at revision "),
        "{said}"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // Without the admin's credentials: refused.
    let mut anonymous: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(&r.kubeconfig).unwrap()).unwrap();
    anonymous["users"][0]["user"] = serde_yaml::Value::Mapping(Default::default());
    let anon_path = home.path().join("anonymous.kubeconfig");
    std::fs::write(&anon_path, serde_yaml::to_string(&anonymous).unwrap()).unwrap();
    let refused = Command::new(env!("CARGO_BIN_EXE_kubox"))
        .args([
            "snapshot",
            "save",
            home.path().join("no").to_str().unwrap(),
            "--kubeconfig",
            anon_path.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && err.contains("403"), "{err}");
    assert!(!home.path().join("no").exists());
    assert!(interrupt(r).success());

    let b = start(
        home.path(),
        &[
            "--storage",
            "memory",
            "--data-dir",
            home.path().join("b").to_str().unwrap(),
            "--from-snapshot",
            file.to_str().unwrap(),
        ],
    );
    let got = Command::new("kubectl")
        .args([
            "--kubeconfig",
            &b.kubeconfig,
            "get",
            "configmap",
            "seeded",
            "-o",
            "jsonpath={.metadata.resourceVersion} {.data.k}",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&got.stdout),
        format!("{rv} v"),
        "{}",
        String::from_utf8_lossy(&got.stderr)
    );
    assert!(interrupt(b).success());

    // A sled data directory that already holds a store is not overwritten.
    let dir = home.path().join("c");
    let c = start(home.path(), &["--data-dir", dir.to_str().unwrap()]);
    assert!(interrupt(c).success());
    let out = Command::new(env!("CARGO_BIN_EXE_kubox"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            dir.to_str().unwrap(),
            "--from-snapshot",
            file.to_str().unwrap(),
        ])
        .env("HOME", home.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("already holds a store"),
        "{err}"
    );
}

/// `kubox serve --faults FILE --record FILE` driven by the official Python client and kubectl:
/// the Python client sees the injected 500 as the Status it is and creates again; kubectl
/// (matched by its user agent) retries an injected 503 with Retry-After and gets the object; `/kubox/v1/faults`
/// reports both rules fired once; the record file holds every request as a JSON line with kube's
/// verb, the user, the client's user agent and the code.
#[test]
fn faults_and_record_files_through_python_and_kubectl() {
    let home = tempfile::tempdir().unwrap();
    let faults = home.path().join("faults.yaml");
    std::fs::write(
        &faults,
        "seed: 1\nrules:\n\
         - match: {verb: create, resource: configmaps}\n  action: {status: {code: 500, message: injected by the test}}\n  times: 1\n\
         - match: {verb: get, resource: configmaps, name: from-python, userAgent: kubectl}\n  action: {status: {code: 503, retryAfterSeconds: 1}}\n  times: 1\n",
    )
    .unwrap();
    let record = home.path().join("requests.jsonl");
    let r = start(
        home.path(),
        &[
            "--storage",
            "memory",
            "--data-dir",
            home.path().join("d").to_str().unwrap(),
            "--faults",
            faults.to_str().unwrap(),
            "--record",
            record.to_str().unwrap(),
        ],
    );
    let python_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/python");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("conformance/python/faults_and_record.py");
    let py = Command::new("python3")
        .arg(&script)
        .env("PYTHONPATH", &python_path)
        .env("KUBECONFIG", &r.kubeconfig)
        .output()
        .unwrap();
    assert!(
        py.status.success(),
        "{}",
        String::from_utf8_lossy(&py.stderr)
    );
    let seen: serde_json::Value = serde_json::from_slice(&py.stdout).unwrap();
    assert_eq!(
        (seen["first"].as_i64(), seen["first_reason"].as_str()),
        (Some(500), Some("InternalError"))
    );
    assert_eq!(seen["read"], serde_json::json!({"k": "v"}));
    let got = Command::new("kubectl")
        .args([
            "--kubeconfig",
            &r.kubeconfig,
            "get",
            "configmap",
            "from-python",
            "-o",
            "jsonpath={.data.k}",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&got.stdout),
        "v",
        "{}",
        String::from_utf8_lossy(&got.stderr)
    );
    let report = Command::new("kubectl")
        .args([
            "--kubeconfig",
            &r.kubeconfig,
            "get",
            "--raw",
            "/kubox/v1/faults",
        ])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
    let fired: Vec<i64> = report["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["fired"].as_i64().unwrap())
        .collect();
    assert_eq!(fired, [1, 1]);
    assert!(interrupt(r).success());
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&record)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let of = |verb: &str, name: &str| -> Vec<(i64, String)> {
        lines
            .iter()
            .filter(|l| {
                l["verb"] == verb
                    && l["resource"] == "configmaps"
                    && (name.is_empty() || l["name"] == name)
            })
            .map(|l| {
                (
                    l["code"].as_i64().unwrap(),
                    l["userAgent"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    };
    let creates = of("create", "");
    assert_eq!(creates.iter().map(|c| c.0).collect::<Vec<_>>(), [500, 201]);
    assert!(
        creates
            .iter()
            .all(|c| c.1.starts_with("OpenAPI-Generator/")),
        "{creates:?}"
    );
    let gets: Vec<i64> = of("get", "from-python").iter().map(|g| g.0).collect();
    // Python's read, then kubectl's injected 503 and its retry.
    assert_eq!(gets, [200, 503, 200]);
    assert!(
        lines.iter().all(|l| l["user"] == "kubernetes-admin"),
        "{lines:?}"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&record).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

/// `kubox serve --nodes 2 --pod-run-time 1h`: the nodes are registered before the server says
/// it is up, and a pod that runs to completion is still running an hour's job (the flag reached
/// the kubelets); kubectl waits for it through its watch.
#[test]
fn serve_with_simulated_nodes_runs_pods_for_the_pod_run_time() {
    let home = tempfile::tempdir().unwrap();
    let r = start(
        home.path(),
        &[
            "--storage",
            "memory",
            "--nodes",
            "2",
            "--pod-run-time",
            "1h",
            "--terminated-pod-gc-threshold",
            "5",
            "--max-endpoints-per-slice",
            "50",
        ],
    );
    let (status, body) = http(&r, "GET", "/api/v1/nodes", "");
    assert!(status.contains("200"), "{status}");
    let nodes: serde_json::Value = serde_json::from_str(&body).unwrap();
    let names: Vec<&str> = nodes["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["kubox-node-0", "kubox-node-1"]);
    let pod = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"batch"},
        "spec":{"restartPolicy":"Never","containers":[{"name":"c","image":"busybox"}]}}"#;
    let (status, _) = http(&r, "POST", "/api/v1/namespaces/default/pods", pod);
    assert!(status.contains("201"), "{status}");
    let kubeconfig = std::path::PathBuf::from(&r.kubeconfig);
    let run = |args: &[&str]| {
        let out = Command::new("kubectl")
            .args(args)
            .env("KUBECONFIG", &kubeconfig)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    run(&[
        "wait",
        "--for=condition=Ready",
        "pod/batch",
        "--timeout=60s",
    ]);
    let phase = run(&["get", "pod", "batch", "-o", "jsonpath={.status.phase}"]);
    assert_eq!(phase, "Running");
    assert!(interrupt(r).success());
}

/// `link/startup.ld` (written by `scripts/order-startup`, given to the linker of every release
/// build on Linux) is a script the linker takes: a comment, then one output section of input
/// section patterns inserted before `.text`. A malformed line would break `scripts/serve`'s
/// build, which the test suite (debug builds) never links with it.
#[test]
fn the_start_up_link_script_is_well_formed() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("link/startup.ld");
    let text = std::fs::read_to_string(&path).unwrap();
    let body = text
        .strip_prefix("/*")
        .and_then(|t| t.split_once("*/"))
        .map(|(_, rest)| rest.trim())
        .expect("starts with a comment");
    let inner = body
        .strip_prefix("SECTIONS\n{\n  .text.kubox_startup :\n  {\n")
        .and_then(|b| b.strip_suffix("\n  }\n}\nINSERT BEFORE .text;"))
        .expect("one output section, inserted before .text");
    let name = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_$.*".contains(&b))
    };
    let mut count = 0;
    for line in inner.lines() {
        let patterns = line
            .strip_prefix("    *(.text.")
            .and_then(|l| l.strip_suffix(')'))
            .and_then(|l| l.split_once(" .text.unlikely."))
            .unwrap_or_else(|| panic!("not a pattern line: {line:?}"));
        assert_eq!(patterns.0, patterns.1, "{line}");
        assert!(name(patterns.0), "{line}");
        count += 1;
    }
    assert!(count > 1000, "only {count} functions listed");
}
