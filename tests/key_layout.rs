//! Storage keys as kube-apiserver lays them out in etcd (`/registry/<resource>/<ns>/<name>`, its
//! exceptions, CRDs and APIServices under their group, custom resources under
//! `<group>/<plural>`), whatever the store; and a store written with kubox's former layout
//! moved to it at start.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use bytes::Bytes;
use common::{get, post_json, Server};
use kubox_storage::memory::MemoryStore;
use kubox_storage::DynStore;
use serde_json::{json, Value};

async fn created(h: &kubox::ServerHandle, path: &str, obj: Value) {
    let r = post_json(h, path, &obj).await;
    assert_eq!(
        r.status.as_u16(),
        201,
        "POST {path}: {}",
        String::from_utf8_lossy(&r.body)
    );
}

async fn keys(store: &DynStore) -> Vec<String> {
    store
        .list("/registry/", Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|kv| kv.key.to_string())
        .collect()
}

#[tokio::test]
async fn objects_are_stored_under_kube_apiservers_keys() {
    let store: DynStore = Arc::new(MemoryStore::new());
    let h = Server::builder()
        .store(store.clone())
        .start()
        .await
        .unwrap();
    created(
        &h,
        "/api/v1/namespaces/default/configmaps",
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}}),
    )
    .await;
    created(
        &h,
        "/api/v1/namespaces/default/replicationcontrollers",
        json!({"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "rc"},
               "spec": {"selector": {"a": "b"}, "template": {"metadata": {"labels": {"a": "b"}},
               "spec": {"containers": [{"name": "c", "image": "i"}]}}}}),
    )
    .await;
    created(
        &h,
        "/api/v1/namespaces/default/endpoints",
        json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "ep"}}),
    )
    .await;
    created(
        &h,
        "/api/v1/nodes",
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}}),
    )
    .await;
    created(
        &h,
        "/apis/networking.k8s.io/v1/namespaces/default/ingresses",
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "in"},
               "spec": {"defaultBackend": {"service": {"name": "s", "port": {"number": 80}}}}}),
    )
    .await;
    created(
        &h,
        "/apis/apps/v1/namespaces/default/deployments",
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
               "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata":
               {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}}),
    )
    .await;
    created(
        &h,
        "/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles",
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
               "metadata": {"name": "r"}, "rules": []}),
    )
    .await;
    created(
        &h,
        "/apis/events.k8s.io/v1/namespaces/default/events",
        json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "ev"},
               "eventTime": "2026-01-01T00:00:00.000000Z", "reportingController": "x/y",
               "reportingInstance": "i", "action": "A", "reason": "R", "type": "Normal",
               "regarding": {"kind": "Pod", "name": "p", "namespace": "default"}}),
    )
    .await;
    created(
        &h,
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
               "metadata": {"name": "widgets.example.com"},
               "spec": {"group": "example.com", "scope": "Namespaced",
                        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                        "versions": [{"name": "v1", "served": true, "storage": true,
                                      "schema": {"openAPIV3Schema": {"type": "object",
                                      "x-kubernetes-preserve-unknown-fields": true}}}]}}),
    )
    .await;
    created(
        &h,
        "/apis/example.com/v1/namespaces/default/widgets",
        json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}),
    )
    .await;
    let keys = keys(&store).await;
    for expected in [
        "/registry/configmaps/default/cm",
        "/registry/controllers/default/rc",
        "/registry/minions/n1",
        "/registry/ingress/default/in",
        "/registry/deployments/default/web",
        "/registry/roles/default/r",
        "/registry/events/default/ev",
        "/registry/namespaces/default",
        "/registry/services/specs/default/kubernetes",
        "/registry/services/endpoints/default/ep",
        "/registry/clusterroles/cluster-admin",
        "/registry/clusterrolebindings/cluster-admin",
        "/registry/priorityclasses/system-node-critical",
        "/registry/apiextensions.k8s.io/customresourcedefinitions/widgets.example.com",
        "/registry/apiregistration.k8s.io/apiservices/v1.apps",
        "/registry/example.com/widgets/default/w",
    ] {
        assert!(
            keys.iter().any(|k| k == expected),
            "no {expected} among {keys:#?}"
        );
    }
    // Nothing is left under the former `/registry/<group>/<resource>/` layout.
    for k in &keys {
        assert!(
            !k.starts_with("/registry/core/")
                && !k.starts_with("/registry/apps/")
                && !k.starts_with("/registry/rbac.authorization.k8s.io/"),
            "{k} is laid out the former way"
        );
    }
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_store_laid_out_the_former_way_is_moved_to_kubes_keys_at_start() {
    let store: DynStore = Arc::new(MemoryStore::new());
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "old", "namespace": "default",
                                 "uid": "00000000-0000-0000-0000-000000000001",
                                 "creationTimestamp": "2026-01-01T00:00:00Z"},
                    "data": {"kept": "yes"}});
    store
        .create(
            "/registry/core/configmaps/default/old",
            Bytes::from(serde_json::to_vec(&cm).unwrap()),
        )
        .await
        .unwrap();
    // A ClusterRole whose rules the RBAC index must serve after the move.
    let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                      "metadata": {"name": "former", "uid": "00000000-0000-0000-0000-000000000002",
                                   "creationTimestamp": "2026-01-01T00:00:00Z"},
                      "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]});
    store
        .create(
            "/registry/rbac.authorization.k8s.io/clusterroles/former",
            Bytes::from(serde_json::to_vec(&role).unwrap()),
        )
        .await
        .unwrap();
    let h = Server::builder()
        .store(store.clone())
        .start()
        .await
        .unwrap();
    let r = get(&h, "/api/v1/namespaces/default/configmaps/old").await;
    assert_eq!(
        r.status.as_u16(),
        200,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.json()["data"]["kept"], "yes");
    let r = get(&h, "/apis/rbac.authorization.k8s.io/v1/clusterroles/former").await;
    assert_eq!(
        r.status.as_u16(),
        200,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let keys = keys(&store).await;
    assert!(keys.iter().any(|k| k == "/registry/configmaps/default/old"));
    assert!(keys.iter().any(|k| k == "/registry/clusterroles/former"));
    assert!(
        !keys.iter().any(|k| k.starts_with("/registry/core/")
            || k.starts_with("/registry/rbac.authorization.k8s.io/")),
        "{keys:#?}"
    );
    h.shutdown().await.unwrap();
}
