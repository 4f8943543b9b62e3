//! Authorization decision cost with 1,000 RoleBindings (plus the bootstrap policy):
//! `cargo bench -p kubox --bench authz`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use kubox::authn::UserInfo;
use kubox::authz::rbac::Rbac;
use kubox::authz::{Attributes, Authorizer};
use serde_json::{json, Value};

const BINDINGS: usize = 1_000;
const NAMESPACES: usize = 100;

fn objects() -> Vec<Value> {
    let mut objs = kubox::authz::policy::cluster_roles();
    objs.extend(kubox::authz::policy::cluster_role_bindings());
    objs.push(json!({"kind": "ClusterRole", "metadata": {"name": "worker"}, "rules": [
        {"verbs": ["get", "list", "watch"], "apiGroups": [""], "resources": ["pods", "pods/log", "services", "endpoints"]},
        {"verbs": ["create", "update", "patch", "delete"], "apiGroups": ["apps"], "resources": ["deployments", "deployments/scale"]},
        {"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["settings"]},
    ]}));
    for i in 0..BINDINGS {
        objs.push(json!({"kind": "RoleBinding",
            "metadata": {"name": format!("b{i}"), "namespace": format!("ns{}", i % NAMESPACES)},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "worker"},
            "subjects": [{"kind": "User", "name": format!("user{i}")}, {"kind": "Group", "name": format!("team{}", i % 50)}]}));
    }
    objs
}

fn user(name: &str, groups: &[&str]) -> UserInfo {
    UserInfo {
        username: name.to_string(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        ..Default::default()
    }
}

fn resource<'a>(
    u: &'a UserInfo,
    verb: &'a str,
    ns: &'a str,
    group: &'a str,
    res: &'a str,
) -> Attributes<'a> {
    Attributes {
        user: Some(u),
        verb,
        namespace: ns,
        api_group: group,
        resource: res,
        resource_request: true,
        ..Default::default()
    }
}

fn bench(c: &mut Criterion) {
    let objs = objects();
    let rbac = Rbac::from_objects(objs.clone());
    let alice = user("user500", &["system:authenticated", "team0"]);
    let stranger = user(
        "nobody",
        &["system:authenticated", "g1", "g2", "g3", "g4", "g5"],
    );

    let allowed = resource(&alice, "list", "ns0", "", "pods");
    assert!(rbac.authorize(&allowed).allowed());
    c.bench_function("authz/1000 bindings/allowed by a RoleBinding", |b| {
        b.iter(|| black_box(rbac.authorize(black_box(&allowed))))
    });
    let via_group = resource(&alice, "update", "ns50", "apps", "deployments");
    assert!(rbac.authorize(&via_group).allowed());
    c.bench_function("authz/1000 bindings/allowed through a group", |b| {
        b.iter(|| black_box(rbac.authorize(black_box(&via_group))))
    });
    let denied = resource(&stranger, "delete", "ns7", "", "secrets");
    assert!(!rbac.authorize(&denied).allowed());
    c.bench_function("authz/1000 bindings/denied (no binding applies)", |b| {
        b.iter(|| black_box(rbac.authorize(black_box(&denied))))
    });
    let discovery = Attributes {
        user: Some(&stranger),
        verb: "get",
        path: "/apis/apps/v1",
        ..Default::default()
    };
    assert!(rbac.authorize(&discovery).allowed());
    c.bench_function("authz/1000 bindings/non-resource discovery", |b| {
        b.iter(|| black_box(rbac.authorize(black_box(&discovery))))
    });
    c.bench_function("authz/1000 bindings/index rebuild from objects", |b| {
        b.iter(|| black_box(Rbac::from_objects(objs.clone())))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
