//! `metadata.managedFields` as kubectl sees them (`get --show-managed-fields`): each kubectl
//! command writes as its own field manager (`kubectl-create`, `kubectl-label`, …), owns what it
//! added or changed, takes a changed field from whoever owned it, and `kubectl apply
//! --server-side` records an `Apply` entry for its manager.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kubox_conformance::{with_kubectl, Kubectl};
use serde_json::{json, Value};

fn entry<'a>(obj: &'a Value, manager: &str) -> &'a Value {
    obj["metadata"]["managedFields"]
        .as_array()
        .and_then(|a| a.iter().find(|e| e["manager"] == manager))
        .unwrap_or_else(|| panic!("no managedFields entry for {manager}: {obj}"))
}

fn managed_fields(k: &Kubectl, ns: &str) {
    k.run(&["create", "namespace", ns]).success();
    let cm = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: owned\n  namespace: {ns}\ndata:\n  a: \"1\"\n  b: \"2\"\n"
    );
    k.run_stdin(&["create", "-f", "-"], &cm).success();
    let get = || {
        k.run(&[
            "get",
            "-n",
            ns,
            "configmap",
            "owned",
            "-o",
            "json",
            "--show-managed-fields",
        ])
        .success()
        .json()
    };
    let obj = get();
    let created = entry(&obj, "kubectl-create");
    assert_eq!(created["operation"], "Update", "{created}");
    assert_eq!(created["apiVersion"], "v1", "{created}");
    assert_eq!(created["fieldsType"], "FieldsV1", "{created}");
    assert!(
        created["time"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{created}"
    );
    assert_eq!(
        created["fieldsV1"],
        json!({"f:data": {".": {}, "f:a": {}, "f:b": {}}}),
        "{created}"
    );
    // kubectl label owns the label it adds.
    k.run(&["label", "-n", ns, "configmap", "owned", "tier=web"])
        .success();
    // A merge patch by another manager takes data.a from kubectl-create.
    k.run(&[
        "patch",
        "-n",
        ns,
        "configmap",
        "owned",
        "--type=merge",
        "--field-manager=operator",
        "-p",
        r#"{"data":{"a":"9"}}"#,
    ])
    .success();
    let obj = get();
    assert_eq!(
        entry(&obj, "kubectl-label")["fieldsV1"],
        json!({"f:metadata": {"f:labels": {".": {}, "f:tier": {}}}}),
        "{obj}"
    );
    assert_eq!(
        entry(&obj, "operator")["fieldsV1"],
        json!({"f:data": {"f:a": {}}}),
        "{obj}"
    );
    assert_eq!(
        entry(&obj, "kubectl-create")["fieldsV1"],
        json!({"f:data": {".": {}, "f:b": {}}}),
        "{obj}"
    );
    // Server-side apply records an Apply entry with the applied fields.
    let applied = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\n  namespace: {ns}\ndata:\n  c: \"3\"\n"
    );
    k.run_stdin(
        &[
            "apply",
            "--server-side",
            "--field-manager",
            "alice",
            "-f",
            "-",
        ],
        &applied,
    )
    .success();
    let obj = k
        .run(&[
            "get",
            "-n",
            ns,
            "configmap",
            "applied",
            "-o",
            "json",
            "--show-managed-fields",
        ])
        .success()
        .json();
    let alice = entry(&obj, "alice");
    assert_eq!(alice["operation"], "Apply", "{alice}");
    assert_eq!(alice["fieldsV1"], json!({"f:data": {"f:c": {}}}), "{alice}");
    // Two appliers: bob changing alice's field is a conflict naming her field, until forced.
    let config = |manager_data: &str| {
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shared\n  namespace: {ns}\ndata:\n{manager_data}")
    };
    let apply = |manager: &str, data: &str, force: bool| {
        let mut args = vec![
            "apply",
            "--server-side",
            "--field-manager",
            manager,
            "-f",
            "-",
        ];
        if force {
            args.push("--force-conflicts");
        }
        k.run_stdin(&args, &config(data))
    };
    apply("alice", "  a: \"1\"\n  b: \"2\"\n", false).success();
    let run = apply("bob", "  a: \"9\"\n", false).failure();
    assert!(
        run.stderr
            .contains(r#"Apply failed with 1 conflict: conflict with "alice": .data.a"#),
        "{}",
        run.stderr
    );
    apply("bob", "  a: \"9\"\n", true).success();
    // alice stops applying a and b: b goes (nobody else owns it), a stays (bob's now).
    apply("alice", "  c: \"3\"\n", false).success();
    let shared = k
        .run(&[
            "get",
            "-n",
            ns,
            "configmap",
            "shared",
            "-o",
            "json",
            "--show-managed-fields",
        ])
        .success()
        .json();
    assert_eq!(shared["data"], json!({"a": "9", "c": "3"}), "{shared}");
    assert_eq!(
        entry(&shared, "bob")["fieldsV1"],
        json!({"f:data": {"f:a": {}}})
    );
    assert_eq!(
        entry(&shared, "alice")["fieldsV1"],
        json!({"f:data": {"f:c": {}}})
    );
    // Right after an apply, a server-side diff of the same configuration is clean.
    let same = config("  c: \"3\"\n");
    let diff = k.run_stdin(
        &[
            "diff",
            "--server-side",
            "--field-manager",
            "alice",
            "-f",
            "-",
        ],
        &same,
    );
    assert!(diff.ok, "diff not clean: {}{}", diff.stdout, diff.stderr);
    assert!(diff.stdout.trim().is_empty(), "{}", diff.stdout);
    // Client-side apply, then server-side apply of a configuration without one key: kubectl
    // migrates the client-side owner, and the key the new configuration drops goes.
    let migrating = |data: &str| {
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: migrated\n  namespace: {ns}\ndata:\n{data}")
    };
    k.run_stdin(
        &["apply", "-f", "-"],
        &migrating("  x: \"1\"\n  y: \"2\"\n"),
    )
    .success();
    k.run_stdin(
        &["apply", "--server-side", "-f", "-"],
        &migrating("  x: \"1\"\n"),
    )
    .success();
    let migrated = k
        .run(&["get", "-n", ns, "configmap", "migrated", "-o", "json"])
        .success()
        .json();
    assert_eq!(migrated["data"], json!({"x": "1"}), "{migrated}");
    // Without --show-managed-fields kubectl hides them, as on a cluster.
    let plain = k
        .run(&["get", "-n", ns, "configmap", "owned", "-o", "json"])
        .success()
        .json();
    assert!(plain["metadata"].get("managedFields").is_none(), "{plain}");
    // A create is compared with the Go zero value: the structs a Deployment holds by value
    // (strategy, template and its metadata and spec) and the containers list (null in it) get
    // no "." of their own; what the create added below them has theirs.
    k.run(&["create", "deployment", "web", "-n", ns, "--image", "nginx"])
        .success();
    let web = k
        .run(&[
            "get",
            "-n",
            ns,
            "deployment",
            "web",
            "-o",
            "json",
            "--show-managed-fields",
        ])
        .success()
        .json();
    let fields = &entry(&web, "kubectl-create")["fieldsV1"];
    let spec = &fields["f:spec"];
    assert_eq!(spec["f:selector"], json!({}), "{fields}");
    assert_eq!(fields["f:metadata"]["f:labels"]["."], json!({}), "{fields}");
    for (what, set) in [
        ("spec", spec),
        ("strategy", &spec["f:strategy"]),
        ("template", &spec["f:template"]),
        ("template metadata", &spec["f:template"]["f:metadata"]),
        ("template spec", &spec["f:template"]["f:spec"]),
        ("containers", &spec["f:template"]["f:spec"]["f:containers"]),
    ] {
        assert!(
            set.is_object() && set.get(".").is_none(),
            "{what}: {fields}"
        );
    }
    let container = &spec["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"nginx\"}"];
    assert_eq!(container["."], json!({}), "{fields}");
    assert_eq!(container["f:image"], json!({}), "{fields}");
}

fn run(version: &str) {
    with_kubectl(version, managed_fields);
}

#[test]
fn kubectl_1_35_sees_managed_fields() {
    run("1.35");
}

#[test]
fn kubectl_1_27_sees_managed_fields() {
    run("1.27");
}
