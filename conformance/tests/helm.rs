//! helm 4 against the server: a chart installed, upgraded to values that drop an annotation and
//! change a Service port (neither left behind), rolled back (both back), uninstalled.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use kubox_conformance::{kubectl_bin, Backend, Kubectl, Target};

fn helm_bin() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/bin/helm");
    assert!(
        p.exists(),
        "helm is not installed (run scripts/install-tools)"
    );
    p
}

fn helm(target: &Target, home: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(helm_bin())
        .args(args)
        .env("KUBECONFIG", &target.kubeconfig)
        .env("HOME", home)
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"))
        .output()
        .expect("helm runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn write_chart(dir: &Path) {
    std::fs::create_dir_all(dir.join("templates")).unwrap();
    std::fs::write(
        dir.join("Chart.yaml"),
        "apiVersion: v2\nname: web\nversion: 0.1.0\n",
    )
    .unwrap();
    std::fs::write(dir.join("values.yaml"), "port: 80\nannotate: true\n").unwrap();
    std::fs::write(
        dir.join("templates/service.yaml"),
        concat!(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n",
            "  {{- if .Values.annotate }}\n  annotations:\n    example.com/note: \"hello\"\n  {{- end }}\n",
            "spec:\n  selector:\n    app: web\n  ports:\n  - name: http\n    port: {{ .Values.port }}\n"
        ),
    )
    .unwrap();
}

#[test]
fn helm_install_upgrade_rollback_uninstall() {
    helm_scenario(Backend::Memory);
}

#[test]
fn helm_install_upgrade_rollback_uninstall_on_etcd() {
    helm_scenario(Backend::Etcd);
}

fn helm_scenario(backend: Backend) {
    let kubectl = kubectl_bin("1.35");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let target = rt.block_on(Target::start(backend));
    let k = Kubectl::new("1.35", &kubectl, &target);
    let ns = target.namespace.clone();
    k.run(&["create", "namespace", &ns]).success();
    let home = tempfile::tempdir().unwrap();
    let chart = home.path().join("web");
    write_chart(&chart);
    let chart = chart.to_str().unwrap().to_string();
    let service = || {
        k.run(&["get", "-n", &ns, "service", "web", "-o", "json"])
            .success()
            .json()
    };
    let ports = |svc: &serde_json::Value| -> Vec<i64> {
        svc["spec"]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["port"].as_i64().unwrap())
            .collect()
    };
    let note = |svc: &serde_json::Value| svc["metadata"]["annotations"]["example.com/note"].clone();

    let (ok, out) = helm(
        &target,
        home.path(),
        &["install", "rel", &chart, "-n", &ns, "--wait=false"],
    );
    assert!(ok, "install: {out}");
    let svc = service();
    assert_eq!(ports(&svc), vec![80], "{svc}");
    assert_eq!(note(&svc), "hello", "{svc}");

    let (ok, out) = helm(
        &target,
        home.path(),
        &[
            "upgrade",
            "rel",
            &chart,
            "-n",
            &ns,
            "--set",
            "port=8080,annotate=false",
        ],
    );
    assert!(ok, "upgrade: {out}");
    let svc = service();
    assert_eq!(ports(&svc), vec![8080], "the old port is gone: {svc}");
    assert!(
        note(&svc).is_null(),
        "the dropped annotation is gone: {svc}"
    );

    let (ok, out) = helm(&target, home.path(), &["rollback", "rel", "1", "-n", &ns]);
    assert!(ok, "rollback: {out}");
    let svc = service();
    assert_eq!(ports(&svc), vec![80], "{svc}");
    assert_eq!(note(&svc), "hello", "{svc}");

    let (ok, out) = helm(&target, home.path(), &["uninstall", "rel", "-n", &ns]);
    assert!(ok, "uninstall: {out}");
    let run = k.run(&["get", "-n", &ns, "service", "web"]).failure();
    assert!(run.stderr.contains("NotFound"), "{}", run.stderr);
    rt.block_on(target.stop());
}
