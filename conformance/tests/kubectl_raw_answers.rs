//! What clients that read answers as text see, as on a cluster: `kubectl get --raw` discovery
//! in Go field order (the strings kubectl's own command tests grep for), `?pretty=true`
//! indentation in that order, and the same through `kubectl proxy` (metrics included); and the
//! everyday commands that depend on kube's strategies: `expose rc` and `get all -l` on a
//! ReplicationController made without labels, a Secret written with `stringData`; health
//! checks by kube's names.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::process::Stdio;

use kubox_conformance::{with_kubectl, Kubectl};

/// `GET path` over plain HTTP (what curl does against `kubectl proxy`): status line and body.
fn http_get(addr: &str, path: &str) -> (String, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.lines().next().unwrap_or_default().to_string();
    // Chunked bodies: the chunk sizes are on lines of their own; drop them.
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        let mut out = String::new();
        let mut rest = body;
        while let Some((size, tail)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 || tail.len() < n {
                break;
            }
            out.push_str(&tail[..n]);
            rest = tail[n..].trim_start_matches("\r\n");
        }
        out
    } else {
        body.to_string()
    };
    (status, body)
}

fn scenario(k: &Kubectl, ns: &str) {
    k.run(&["create", "namespace", ns]).success();
    // Discovery as kubectl's command tests grep it.
    let core = k.run(&["get", "--raw", "/api/v1"]).success().stdout;
    assert!(
        core.contains(concat!(
            r#"{"name":"configmaps","singularName":"configmap","namespaced":true,"kind":"ConfigMap","#,
            r#""verbs":["create","delete","deletecollection","get","list","patch","update","watch"],"#,
            r#""shortNames":["cm"],"storageVersionHash":"#
        )),
        "{core}"
    );
    let pods = &core[core.find(r#""name":"pods""#).unwrap()..];
    assert!(pods[..pods.find('}').unwrap()].contains(r#""categories":["all"]"#));

    k.run(&["create", "configmap", "m", "-n", ns, "--from-literal=a=b"])
        .success();
    let path = format!("/api/v1/namespaces/{ns}/configmaps/m");
    let pretty_head = "{\n  \"kind\": \"ConfigMap\",\n  \"apiVersion\": \"v1\",\n  \"metadata\": {\n    \"name\": \"m\",\n    \"namespace\": ";
    let pretty = k
        .run(&["get", "--raw", &format!("{path}?pretty=true")])
        .success()
        .stdout;
    assert!(pretty.starts_with(pretty_head), "{pretty}");

    // The same through `kubectl proxy`, read as curl reads it.
    let mut proxy = k
        .command(&["proxy", "--port=0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(proxy.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .rsplit(' ')
        .next()
        .unwrap_or_default()
        .to_string();
    assert!(addr.starts_with("127.0.0.1:"), "proxy said {line:?}");
    let (status, metrics) = http_get(&addr, "/metrics");
    let (pretty_status, through_proxy) = http_get(&addr, &format!("{path}?pretty=true"));
    let (_, curl) = http_get(&addr, &path);
    proxy.kill().unwrap();
    proxy.wait().unwrap();
    assert!(status.contains(" 200"), "{status}");
    assert!(
        metrics.contains("# TYPE apiserver_request_total counter"),
        "{metrics}"
    );
    assert!(pretty_status.contains(" 200"), "{pretty_status}");
    assert!(through_proxy.starts_with(pretty_head), "{through_proxy}");
    // curl's user agent alone asks for indentation, as kube-apiserver does.
    assert!(curl.starts_with(pretty_head), "{curl}");

    // Health checks by kube-apiserver's names (what kube's e2e health test requires, the
    // aggregator's included), and the system priority classes its scheduling bootstrap
    // creates.
    for (path, end) in [
        ("/healthz?verbose=1", "healthz check passed"),
        ("/livez?verbose=1", "livez check passed"),
        ("/readyz?verbose=1", "readyz check passed"),
    ] {
        let text = k.run(&["get", "--raw", path]).success().stdout;
        let lines: Vec<&str> = text.lines().collect();
        for check in [
            "[+]ping ok",
            "[+]etcd ok",
            "[+]poststarthook/generic-apiserver-start-informers ok",
            "[+]poststarthook/start-apiextensions-informers ok",
            "[+]poststarthook/start-apiextensions-controllers ok",
            "[+]poststarthook/crd-informer-synced ok",
            "[+]poststarthook/bootstrap-controller ok",
            "[+]poststarthook/scheduling/bootstrap-system-priority-classes ok",
            "[+]poststarthook/start-cluster-authentication-info-controller ok",
            "[+]poststarthook/rbac/bootstrap-roles ok",
            "[+]poststarthook/start-kube-aggregator-informers ok",
            "[+]poststarthook/apiservice-registration-controller ok",
            "[+]poststarthook/apiservice-status-local-available-controller ok",
            "[+]poststarthook/apiservice-status-remote-available-controller ok",
            "[+]poststarthook/apiservice-discovery-controller ok",
            "[+]poststarthook/kube-apiserver-autoregistration ok",
            "[+]autoregister-completion ok",
            end,
        ] {
            assert!(lines.contains(&check), "{path} lacks {check}:\n{text}");
        }
    }
    let one = k
        .run(&["get", "--raw", "/readyz/poststarthook/rbac/bootstrap-roles"])
        .success()
        .stdout;
    assert_eq!(one, "ok");
    let classes = k
        .run(&["get", "priorityclasses", "-o", "name"])
        .success()
        .stdout;
    for name in ["system-node-critical", "system-cluster-critical"] {
        assert!(
            classes
                .lines()
                .any(|l| l == format!("priorityclass.scheduling.k8s.io/{name}")),
            "{classes}"
        );
    }

    // A ReplicationController made without labels: its selector and labels come from the
    // template, so `expose` and `get all -l` find it.
    let rc = format!(
        "apiVersion: v1\nkind: ReplicationController\nmetadata:\n  name: web\n  namespace: {ns}\nspec:\n  replicas: 1\n  template:\n    metadata:\n      labels:\n        app: web\n    spec:\n      containers:\n      - name: c\n        image: nginx:1.27\n        ports:\n        - containerPort: 80\n"
    );
    k.run_stdin(&["create", "-f", "-"], &rc).success();
    k.run(&["expose", "rc", "web", "-n", ns, "--port=80"])
        .success();
    let svc = k
        .run(&["get", "service", "web", "-n", ns, "-o", "json"])
        .success()
        .json();
    assert_eq!(svc["spec"]["selector"], serde_json::json!({"app": "web"}));
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], 80);
    let all = k
        .run(&["get", "all", "-l", "app=web", "-n", ns, "-o", "name"])
        .success()
        .stdout;
    assert!(
        all.lines().any(|l| l == "replicationcontroller/web"),
        "{all}"
    );

    // Strings as Go's encoder writes them (HTML characters escaped) in every text answer —
    // an object, its pretty form, a list, a watch event — and read back as they were given.
    let script = "make && make install > log <done>";
    k.run(&[
        "create",
        "configmap",
        "html",
        "-n",
        ns,
        &format!("--from-literal=run={script}"),
    ])
    .success();
    let escaped = r#""run":"make \u0026\u0026 make install \u003e log \u003cdone\u003e""#;
    let cm_path = format!("/api/v1/namespaces/{ns}/configmaps/html");
    let list_path =
        format!("/api/v1/namespaces/{ns}/configmaps?fieldSelector=metadata.name%3Dhtml");
    for path in [
        cm_path.clone(),
        format!("{cm_path}?pretty=true"),
        list_path.clone(),
        format!("{list_path}&watch=true&timeoutSeconds=1"),
    ] {
        let text = k.run(&["get", "--raw", &path]).success().stdout;
        let text = text.replace("\"run\": \"", "\"run\":\"");
        assert!(text.contains(escaped), "{path}: {text}");
        assert!(!text.contains("&&"), "{path}: {text}");
    }
    let back = k
        .run(&[
            "get",
            "configmap",
            "html",
            "-n",
            ns,
            "-o",
            "jsonpath={.data.run}",
        ])
        .success()
        .stdout;
    assert_eq!(back, script);

    // A managedFields entry's fieldsV1 as structured-merge-diff writes it: a list's items by
    // their keys' values, port 80 before port 443 (a map of the key texts would put 443 first).
    k.run(&[
        "create",
        "service",
        "clusterip",
        "ports",
        "-n",
        ns,
        "--tcp=443:8443",
        "--tcp=80:8080",
    ])
    .success();
    let text = k
        .run(&[
            "get",
            "--raw",
            &format!("/api/v1/namespaces/{ns}/services/ports"),
        ])
        .success()
        .stdout;
    let at = |port: u16| {
        text.find(&format!(r#""k:{{\"port\":{port},\"protocol\":\"TCP\"}}""#))
            .unwrap_or_else(|| panic!("no key of port {port}: {text}"))
    };
    assert!(at(80) < at(443), "{text}");

    // stringData is merged into data and not kept.
    let secret = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n  namespace: {ns}\nstringData:\n  user: admin\ndata:\n  pass: c2VjcmV0\n"
    );
    k.run_stdin(&["create", "-f", "-"], &secret).success();
    let got = k
        .run(&["get", "secret", "s", "-n", ns, "-o", "json"])
        .success()
        .json();
    assert_eq!(
        got["data"],
        serde_json::json!({"pass": "c2VjcmV0", "user": "YWRtaW4="})
    );
    assert!(got.get("stringData").is_none(), "{got}");
}

#[test]
fn kubectl_1_27_reads_answers_as_text() {
    with_kubectl("1.27", scenario);
}

#[test]
fn kubectl_1_35_reads_answers_as_text() {
    with_kubectl("1.35", scenario);
}
