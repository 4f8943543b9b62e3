//! kubectl's typed `create` commands: kubectl 1.32 and later send built-in objects as Kubernetes
//! protobuf (`application/vnd.kubernetes.protobuf`) and take protobuf answers, older ones JSON. Every object must come
//! back intact, without the zero values gogo-protobuf puts on the wire (`generateName: ""`,
//! `stdin: false`, ...), and the same whichever encoding the client used.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use serde_json::{json, Value};

use kubox_conformance::{kubectl_binaries, Backend, Kubectl, Target};

/// Keys gogo-protobuf writes as zero values that kube-apiserver's JSON never shows.
const JUNK_KEYS: &[&str] = &[
    "generateName",
    "selfLink",
    "deletionGracePeriodSeconds",
    "stdin",
    "stdinOnce",
    "tty",
    "hostNetwork",
    "hostPID",
    "hostIPC",
    "hostPort",
    "hostIP",
    "nodePort",
    "minReadySeconds",
    "paused",
    "workingDir",
    "nodeName",
    "hostname",
    "subdomain",
    "automountServiceAccountToken",
    "immutable",
];

/// The bytes of the --from-file binary entry, and their base64.
const BINARY: &[u8] = &[0, 1, 2, 0xfe, 0xff];
const BINARY_BASE64: &str = "AAEC/v8=";

fn kubectl(version: &str, target: &Target) -> Kubectl {
    let (_, bin) = kubectl_binaries()
        .into_iter()
        .find(|(v, _)| v == version)
        .unwrap_or_else(|| {
            panic!("kubectl {version} is not installed (run scripts/install-tools)")
        });
    Kubectl::new(version, &bin, target)
}

/// Every create command of the scenario, in namespace `ns` (created here too).
fn create_all(k: &Kubectl, ns: &str, dir: &Path) {
    k.run(&["create", "namespace", ns]).success();
    let bin = dir.join("blob.bin");
    std::fs::write(&bin, BINARY).unwrap();
    let from_file = format!("--from-file=bin={}", bin.display());
    let sa_subject = format!("{ns}:robot");
    let commands: Vec<Vec<&str>> = vec![
        vec![
            "create",
            "configmap",
            "x",
            "--from-literal",
            "a=b",
            &from_file,
        ],
        vec!["create", "secret", "generic", "s", "--from-literal", "k=v"],
        vec![
            "create",
            "deployment",
            "web",
            "--image",
            "nginx:1.25",
            "--replicas",
            "2",
            "--port",
            "80",
        ],
        vec!["run", "pod1", "--image", "nginx", "--labels", "a=b"],
        vec!["create", "job", "j", "--image", "busybox"],
        vec!["create", "service", "clusterip", "svc", "--tcp", "80:8080"],
        vec!["create", "sa", "robot"],
        vec!["create", "role", "r", "--verb", "get", "--resource", "pods"],
        vec![
            "create",
            "rolebinding",
            "rb",
            "--role",
            "r",
            "--serviceaccount",
            &sa_subject,
            "--user",
            "alice",
        ],
        vec![
            "create",
            "pdb",
            "p",
            "--selector",
            "app=web",
            "--min-available",
            "0",
        ],
        vec!["create", "quota", "q", "--hard", "cpu=500m,pods=0"],
    ];
    for mut args in commands {
        args.extend(["-n", ns]);
        let out = k.run(&args).success().stdout;
        assert!(out.contains("created"), "{out}");
    }
}

/// `kubectl get -o json` of one object.
fn get(k: &Kubectl, ns: &str, what: &str) -> Value {
    k.run(&["get", what, "-n", ns, "-o", "json"])
        .success()
        .json()
}

/// Panic on a junk key or an empty string anywhere in an object (nulls too when `no_nulls`).
fn assert_clean(what: &str, value: &Value, path: &str, no_nulls: bool) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let here = format!("{path}.{k}");
                assert!(
                    !JUNK_KEYS.contains(&k.as_str()),
                    "{what}: zero-value field {here} = {v}"
                );
                assert!(v != &json!(""), "{what}: empty string at {here}");
                assert!(!(no_nulls && v.is_null()), "{what}: null at {here}");
                assert_clean(what, v, &here, no_nulls);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                assert_clean(what, v, &format!("{path}[{i}]"), no_nulls);
            }
        }
        _ => {}
    }
}

/// Read every object back and check what came through.
fn check_all(k: &Kubectl, ns: &str, protobuf: bool) -> Vec<(String, Value)> {
    let mut objects = Vec::new();
    let mut fetch = |what: &str| -> Value {
        let v = get(k, ns, what);
        assert_clean(what, &v, "", protobuf);
        objects.push((what.to_string(), v.clone()));
        v
    };

    let n = k
        .run(&["get", "namespace", ns, "-o", "json"])
        .success()
        .json();
    assert_eq!(n["metadata"]["name"], ns);
    assert_clean("namespace", &n, "", protobuf);

    let cm = fetch("configmap/x");
    assert_eq!(cm["metadata"]["name"], "x");
    assert_eq!(cm["metadata"]["namespace"], ns);
    assert_eq!(cm["data"], json!({"a": "b"}));
    assert_eq!(cm["binaryData"], json!({"bin": BINARY_BASE64}));

    let s = fetch("secret/s");
    assert_eq!(s["data"], json!({"k": "dg=="}));
    assert_eq!(s["type"], "Opaque");

    let d = fetch("deployment/web");
    assert_eq!(d["metadata"]["labels"], json!({"app": "web"}));
    assert_eq!(d["spec"]["replicas"], 2);
    assert_eq!(
        d["spec"]["selector"],
        json!({"matchLabels": {"app": "web"}})
    );
    assert_eq!(d["spec"]["strategy"]["type"], "RollingUpdate");
    let t = &d["spec"]["template"];
    assert_eq!(t["metadata"]["labels"], json!({"app": "web"}));
    let c = &t["spec"]["containers"][0];
    assert_eq!(c["name"], "nginx");
    assert_eq!(c["image"], "nginx:1.25");
    assert_eq!(
        c["ports"],
        json!([{"containerPort": 80, "protocol": "TCP"}])
    );
    assert_eq!(c["resources"], json!({}));

    let p = fetch("pod/pod1");
    assert_eq!(p["metadata"]["labels"], json!({"a": "b"}));
    assert_eq!(p["spec"]["containers"][0]["name"], "pod1");
    assert_eq!(p["spec"]["containers"][0]["image"], "nginx");

    let j = fetch("job/j");
    let js = &j["spec"]["template"]["spec"];
    assert_eq!(js["containers"][0]["image"], "busybox");
    assert_eq!(js["restartPolicy"], "Never");

    let svc = fetch("service/svc");
    assert_eq!(svc["spec"]["type"], "ClusterIP");
    assert_eq!(svc["spec"]["selector"], json!({"app": "svc"}));
    assert_eq!(
        svc["spec"]["ports"],
        json!([{"name": "80-8080", "port": 80, "protocol": "TCP", "targetPort": 8080}])
    );

    let sa = fetch("serviceaccount/robot");
    assert_eq!(sa["metadata"]["name"], "robot");

    let r = fetch("role/r");
    assert_eq!(
        r["rules"],
        json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}])
    );

    let rb = fetch("rolebinding/rb");
    assert_eq!(
        rb["roleRef"],
        json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"})
    );
    let subjects = rb["subjects"].as_array().unwrap();
    assert!(
        subjects.contains(&json!({"kind": "ServiceAccount", "name": "robot", "namespace": ns})),
        "{subjects:?}"
    );
    assert!(
        subjects.contains(
            &json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"})
        ),
        "{subjects:?}"
    );

    // A zero that means something: minAvailable is a *IntOrString, so 0 survives.
    let pdb = fetch("pdb/p");
    assert_eq!(pdb["spec"]["minAvailable"], 0);
    assert_eq!(
        pdb["spec"]["selector"],
        json!({"matchLabels": {"app": "web"}})
    );

    let q = fetch("resourcequota/q");
    assert_eq!(q["spec"]["hard"], json!({"cpu": "500m", "pods": "0"}));
    objects
}

/// Strip what differs between two creations of the same objects.
fn comparable(mut v: Value) -> Value {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(map) => {
                map.retain(|k, v| {
                    !v.is_null()
                        && !matches!(
                            k.as_str(),
                            "uid"
                                | "resourceVersion"
                                | "creationTimestamp"
                                | "managedFields"
                                | "namespace"
                                | "clusterIP"
                                | "clusterIPs"
                        )
                });
                // A Job's generated selector and labels carry its uid.
                for (k, v) in map.iter_mut() {
                    if k.ends_with("controller-uid") {
                        *v = Value::String("<uid>".into());
                    }
                }
                map.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            // The ServiceAccount admission plugin names the token volume with a random suffix.
            Value::String(s) if s.starts_with("kube-api-access-") => {
                *s = "kube-api-access-".to_string();
            }
            _ => {}
        }
    }
    strip(&mut v);
    if let Some(subjects) = v.get_mut("subjects").and_then(Value::as_array_mut) {
        subjects.iter_mut().for_each(|s| {
            if let Some(m) = s.as_object_mut() {
                m.remove("namespace");
            }
        });
    }
    v
}

fn scenario(version: &str, protobuf: bool) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let target = rt.block_on(Target::start(Backend::Memory));
    let dir = tempfile::tempdir().unwrap();
    let k = kubectl(version, &target);
    let ns = &target.namespace;
    create_all(&k, ns, dir.path());
    // Prove which encoding the client used.
    let run = k
        .run(&["create", "configmap", "probe", "-n", ns, "-v=8"])
        .success();
    let sent_protobuf = run
        .stderr
        .lines()
        .any(|l| l.contains("Content-Type: application/vnd.kubernetes.protobuf"));
    assert_eq!(sent_protobuf, protobuf, "{}", run.stderr);
    // And which one kubox answered in: protobuf to a client that prefers it.
    let answer: Vec<&str> = run
        .stderr
        .lines()
        .skip_while(|l| !l.contains("\"Response\"") && !l.contains("Response Headers"))
        .take_while(|l| !l.trim_start().starts_with('>'))
        .collect();
    let answered_protobuf = answer
        .iter()
        .any(|l| l.contains("Content-Type: application/vnd.kubernetes.protobuf"));
    assert_eq!(answered_protobuf, protobuf, "{}", run.stderr);
    assert!(
        run.stdout.contains("configmap/probe created"),
        "{}",
        run.stdout
    );
    check_all(&k, ns, protobuf);
    rt.block_on(target.stop());
}

#[test]
fn kubectl_1_35_creates_in_protobuf() {
    scenario("1.35", true);
}

#[test]
fn kubectl_1_33_creates_in_protobuf() {
    scenario("1.33", true);
}

#[test]
fn kubectl_1_27_creates_in_json() {
    scenario("1.27", false);
}

/// The same commands through kubectl 1.27 (JSON) and 1.35 (protobuf) give the same objects.
#[test]
fn protobuf_and_json_creates_agree() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let target = rt.block_on(Target::start(Backend::Memory));
    let dir = tempfile::tempdir().unwrap();
    let json_ns = format!("{}-json", target.namespace);
    let pb_ns = format!("{}-pb", target.namespace);
    let old = kubectl("1.27", &target);
    let new = kubectl("1.35", &target);
    create_all(&old, &json_ns, dir.path());
    create_all(&new, &pb_ns, dir.path());
    let from_json = check_all(&old, &json_ns, false);
    let from_pb = check_all(&new, &pb_ns, true);
    for ((what, a), (_, b)) in from_json.into_iter().zip(from_pb) {
        assert_eq!(
            comparable(a),
            comparable(b),
            "{what} differs between JSON (kubectl 1.27) and protobuf (kubectl 1.35)"
        );
    }
    rt.block_on(target.stop());
}
