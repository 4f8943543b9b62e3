//! RBAC through kubectl: create roles and bindings, ask the authorizer through a
//! SubjectAccessReview, `kubectl auth can-i` (and `--list`) as the admin the kubeconfig names.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kubox_conformance::{with_kubectl, Kubectl};

fn sar(user: &str, verb: &str, ns: &str) -> String {
    format!(
        "apiVersion: authorization.k8s.io/v1\nkind: SubjectAccessReview\nspec:\n  user: {user}\n  groups: [system:authenticated]\n  resourceAttributes:\n    namespace: {ns}\n    verb: {verb}\n    resource: pods\n"
    )
}

fn allowed(k: &Kubectl, user: &str, verb: &str, ns: &str) -> bool {
    let out = k
        .run_stdin(&["create", "-f", "-", "-o", "json"], &sar(user, verb, ns))
        .success()
        .json();
    out["status"]["allowed"] == true
}

fn scenario(k: &Kubectl, ns: &str) {
    k.run(&["create", "namespace", ns]).success();
    let user = format!("jane-{ns}");
    assert!(!allowed(k, &user, "get", ns), "nothing granted yet");

    k.run(&[
        "create",
        "role",
        "pod-reader",
        "-n",
        ns,
        "--verb=get,list",
        "--resource=pods",
    ])
    .success();
    k.run(&[
        "create",
        "rolebinding",
        "jane-reads",
        "-n",
        ns,
        "--role=pod-reader",
        &format!("--user={user}"),
    ])
    .success();
    assert!(allowed(k, &user, "get", ns));
    assert!(allowed(k, &user, "list", ns));
    assert!(!allowed(k, &user, "delete", ns));
    assert!(!allowed(k, &user, "get", "default"));

    let crb = format!("{user}-edit");
    k.run(&[
        "create",
        "clusterrolebinding",
        &crb,
        "--clusterrole=edit",
        &format!("--user={user}"),
    ])
    .success();
    assert!(allowed(k, &user, "delete", "default"));
    k.run(&["delete", "clusterrolebinding", &crb]).success();
    assert!(!allowed(k, &user, "delete", "default"));

    let role = k
        .run(&["get", "role", "pod-reader", "-n", ns, "-o", "json"])
        .success()
        .json();
    assert_eq!(
        role["rules"][0]["verbs"],
        serde_json::json!(["get", "list"])
    );

    // The kubeconfig's user is an administrator.
    let out = k
        .run(&["auth", "can-i", "create", "pods", "-n", ns])
        .success()
        .stdout;
    assert_eq!(out.trim(), "yes");
    let out = k
        .run(&["auth", "can-i", "--list", "-n", ns])
        .success()
        .stdout;
    assert!(out.contains("*.*"), "{out}");
    assert!(
        out.contains("selfsubjectaccessreviews.authorization.k8s.io"),
        "{out}"
    );

    let view = k
        .run(&["get", "clusterrole", "view", "-o", "json"])
        .success()
        .json();
    let rules = view["rules"].as_array().unwrap();
    assert!(
        rules
            .iter()
            .any(|r| r["resources"].as_array().unwrap().contains(&"pods".into())),
        "{view}"
    );
}

fn run(version: &str) {
    with_kubectl(version, scenario);
}

#[test]
fn kubectl_1_27_creates_roles_and_bindings_and_asks_can_i() {
    run("1.27");
}

#[test]
fn kubectl_1_33_creates_roles_and_bindings_and_asks_can_i() {
    run("1.33");
}

#[test]
fn kubectl_1_35_creates_roles_and_bindings_and_asks_can_i() {
    run("1.35");
}
