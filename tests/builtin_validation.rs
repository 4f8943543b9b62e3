//! Built-in kinds validated as kube-apiserver validates them: for each rule, an object kube
//! refuses, refused with kube's field paths, error types, values and messages (table-driven),
//! and valid objects accepted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::{json, Value};

/// The causes of a 422 as `field: message` lines, or the answer when it is not a 422.
fn causes(r: &Resp) -> Result<Vec<String>, String> {
    if r.status.as_u16() != 422 {
        return Err(format!("{}: {}", r.status, r.json()));
    }
    Ok(r.invalid_causes())
}

fn service(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec})
}

const SERVICES: &str = "/api/v1/namespaces/default/services";

#[tokio::test]
async fn services_are_validated_as_kube_validates_them() {
    let h = server().await;
    // Accepted.
    for (name, spec) in [
        (
            "plain",
            json!({"selector": {"app": "a"}, "ports": [{"port": 80}]}),
        ),
        (
            "named",
            json!({"ports": [{"name": "http", "port": 80, "targetPort": "web"},
                                   {"name": "dns", "port": 53, "protocol": "UDP"},
                                   {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]}),
        ),
        ("headless", json!({"clusterIP": "None"})),
        (
            "external",
            json!({"type": "ExternalName", "externalName": "db.example.com."}),
        ),
        (
            "lb",
            json!({"type": "LoadBalancer", "ports": [{"port": 443}],
                      "loadBalancerSourceRanges": ["10.0.0.0/8"], "externalTrafficPolicy": "Local"}),
        ),
        (
            "sticky",
            json!({"ports": [{"port": 80}], "sessionAffinity": "ClientIP"}),
        ),
    ] {
        let r = post_json(&h, SERVICES, &service(name, spec)).await;
        assert_eq!(r.status.as_u16(), 201, "{name}: {}", r.json());
    }
    let cases: Vec<(&str, Value, Vec<&str>)> = vec![
        ("no ports", json!({"selector": {"app": "a"}}), vec!["spec.ports: Required value"]),
        ("unnamed second port", json!({"ports": [{"name": "a", "port": 80}, {"port": 81}]}),
         vec!["spec.ports[1].name: Required value"]),
        ("duplicate port names", json!({"ports": [{"name": "a", "port": 80}, {"name": "a", "port": 81}]}),
         vec![r#"spec.ports[1].name: Duplicate value: "a""#]),
        ("bad port name", json!({"ports": [{"name": "Web", "port": 80}]}),
         vec![r#"spec.ports[0].name: Invalid value: "Web": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"#]),
        ("port zero", json!({"ports": [{"port": 0}]}),
         vec!["spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive",
              "spec.ports[0].targetPort: Invalid value: 0: must be between 1 and 65535, inclusive"]),
        ("port too big", json!({"ports": [{"port": 80, "targetPort": 70000}]}),
         vec!["spec.ports[0].targetPort: Invalid value: 70000: must be between 1 and 65535, inclusive"]),
        ("protocol", json!({"ports": [{"port": 80, "protocol": "HTTP"}]}),
         vec![r#"spec.ports[0].protocol: Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP""#]),
        ("target port name", json!({"ports": [{"port": 80, "targetPort": "http_port-"}]}),
         vec![r#"spec.ports[0].targetPort: Invalid value: "http_port-": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"#,
              r#"spec.ports[0].targetPort: Invalid value: "http_port-": must not begin or end with a hyphen"#]),
        ("duplicate port", json!({"ports": [{"name": "a", "port": 80}, {"name": "b", "port": 80}]}),
         vec![r#"spec.ports[1]: Duplicate value: {"Name":"","Protocol":"TCP","AppProtocol":null,"Port":80,"TargetPort":0,"NodePort":0}"#]),
        ("node port on ClusterIP", json!({"ports": [{"port": 80, "nodePort": 30080}]}),
         vec!["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"]),
        ("type", json!({"type": "Balanced", "ports": [{"port": 80}]}),
         vec![r#"spec.type: Unsupported value: "Balanced": supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort""#]),
        ("external name missing", json!({"type": "ExternalName"}),
         vec!["spec.externalName: Required value"]),
        ("external name invalid", json!({"type": "ExternalName", "externalName": "Db_1"}),
         vec![r#"spec.externalName: Invalid value: "Db_1": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"#]),
        ("cluster IPs mismatch", json!({"clusterIP": "10.96.0.50", "clusterIPs": ["10.96.0.51"], "ports": [{"port": 80}]}),
         vec![r#"spec.clusterIPs: Invalid value: ["10.96.0.51"]: first value must match `clusterIP`"#]),
        ("cluster IP not an IP", json!({"clusterIP": "ten", "ports": [{"port": 80}]}),
         vec![r#"spec.clusterIPs[0]: Invalid value: "ten": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"#]),
        ("ip family", json!({"ipFamilies": ["IPv5"], "ports": [{"port": 80}]}),
         vec![r#"spec.ipFamilies[0]: Unsupported value: "IPv5": supported values: "IPv4", "IPv6""#]),
        ("source ranges on ClusterIP", json!({"ports": [{"port": 80}], "loadBalancerSourceRanges": ["10.0.0.0/33"]}),
         vec!["spec.LoadBalancerSourceRanges: Forbidden: may only be used when `type` is 'LoadBalancer'",
              r#"spec.LoadBalancerSourceRanges[0]: Invalid value: "10.0.0.0/33": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"#]),
        ("external traffic policy", json!({"ports": [{"port": 80}], "externalTrafficPolicy": "Local"}),
         vec![r#"spec.externalTrafficPolicy: Invalid value: "Local": may only be set for externally-accessible services"#]),
        ("session affinity", json!({"ports": [{"port": 80}], "sessionAffinity": "Sticky"}),
         vec![r#"spec.sessionAffinity: Unsupported value: "Sticky": supported values: "ClientIP", "None""#]),
        ("affinity timeout", json!({"ports": [{"port": 80}], "sessionAffinity": "ClientIP",
                                    "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 90000}}}),
         vec!["spec.sessionAffinityConfig.clientIP.timeoutSeconds: Invalid value: 90000: must be greater than 0 and less than 86400"]),
        ("external IP", json!({"ports": [{"port": 80}], "externalIPs": ["127.0.0.1"]}),
         vec![r#"spec.externalIPs[0]: Invalid value: "127.0.0.1": may not be in the loopback range (127.0.0.0/8, ::1/128)"#]),
        ("load balancer class on ClusterIP", json!({"ports": [{"port": 80}], "loadBalancerClass": "example.com/lb"}),
         vec!["spec.loadBalancerClass: Forbidden: may only be used when `type` is 'LoadBalancer'"]),
        ("internal traffic policy", json!({"ports": [{"port": 80}], "internalTrafficPolicy": "Nearby"}),
         vec![r#"spec.internalTrafficPolicy: Unsupported value: "Nearby": supported values: "Cluster", "Local""#]),
        ("traffic distribution", json!({"ports": [{"port": 80}], "trafficDistribution": "Anywhere"}),
         vec![r#"spec.trafficDistribution: Unsupported value: "Anywhere": supported values: "PreferClose", "PreferSameZone", "PreferSameNode""#]),
        ("selector", json!({"ports": [{"port": 80}], "selector": {"app": "a b"}}),
         vec![r#"spec.selector: Invalid value: "a b": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"#]),
    ];
    for (i, (what, spec, expected)) in cases.into_iter().enumerate() {
        let r = post_json(&h, SERVICES, &service(&format!("bad-{i}"), spec)).await;
        assert_eq!(
            causes(&r),
            Ok(expected.iter().map(|s| s.to_string()).collect()),
            "{what}"
        );
    }
    // Updates: the cluster IP may not change; a load balancer's class may not change.
    let plain = get(&h, &format!("{SERVICES}/plain")).await.json();
    let mut changed = plain.clone();
    changed["spec"]["clusterIP"] = json!("10.96.7.7");
    changed["spec"]["clusterIPs"] = json!(["10.96.7.7"]);
    let r = put_json(&h, &format!("{SERVICES}/plain"), &changed).await;
    assert_eq!(
        causes(&r),
        Ok(vec![
            r#"spec.clusterIPs[0]: Invalid value: ["10.96.7.7"]: may not change once set"#
                .to_string()
        ])
    );
    // Leaving the cluster IP out keeps it.
    let mut omitted = plain.clone();
    omitted["spec"].as_object_mut().unwrap().remove("clusterIP");
    omitted["spec"]
        .as_object_mut()
        .unwrap()
        .remove("clusterIPs");
    omitted["metadata"]["labels"] = json!({"x": "y"});
    let r = put_json(&h, &format!("{SERVICES}/plain"), &omitted).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.json());
    assert_eq!(r.json()["spec"]["clusterIP"], plain["spec"]["clusterIP"]);
}

fn pod_template(labels: Value, restart: Option<&str>) -> Value {
    let mut spec = json!({"containers": [{"name": "c", "image": "nginx:1.27"}]});
    if let Some(r) = restart {
        spec["restartPolicy"] = json!(r);
    }
    json!({"metadata": {"labels": labels}, "spec": spec})
}

fn workload(kind: &str, name: &str, spec: Value) -> Value {
    let api_version = if matches!(kind, "Job" | "CronJob") {
        "batch/v1"
    } else {
        "apps/v1"
    };
    json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": name}, "spec": spec})
}

fn collection(kind: &str) -> String {
    let (group, plural) = match kind {
        "Deployment" => ("apps", "deployments"),
        "ReplicaSet" => ("apps", "replicasets"),
        "StatefulSet" => ("apps", "statefulsets"),
        "DaemonSet" => ("apps", "daemonsets"),
        "Job" => ("batch", "jobs"),
        _ => ("batch", "cronjobs"),
    };
    format!("/apis/{group}/v1/namespaces/default/{plural}")
}

#[tokio::test]
async fn workloads_are_validated_as_kube_validates_them() {
    let h = server().await;
    let app = json!({"app": "w"});
    let sel = json!({"matchLabels": {"app": "w"}});
    let tmpl = pod_template(app.clone(), None);
    let job_tmpl = pod_template(json!({}), Some("Never"));
    // Accepted, defaults and all.
    for (kind, spec) in [
        ("Deployment", json!({"selector": sel, "template": tmpl})),
        ("ReplicaSet", json!({"selector": sel, "template": tmpl})),
        (
            "StatefulSet",
            json!({"selector": sel, "template": tmpl, "serviceName": "w"}),
        ),
        ("DaemonSet", json!({"selector": sel, "template": tmpl})),
        ("Job", json!({"template": job_tmpl})),
        (
            "CronJob",
            json!({"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": job_tmpl}}}),
        ),
    ] {
        let r = post_json(&h, &collection(kind), &workload(kind, "ok", spec)).await;
        assert_eq!(r.status.as_u16(), 201, "{kind}: {}", r.json());
    }
    let cases: Vec<(&str, Value, Vec<&str>)> = vec![
        ("Deployment", json!({"replicas": -1, "selector": sel, "template": tmpl}),
         vec!["spec.replicas: Invalid value: -1: must be greater than or equal to 0"]),
        ("Deployment", json!({"template": tmpl}),
         vec!["spec.selector: Required value",
              r#"spec.template.metadata.labels: Invalid value: {"app":"w"}: `selector` does not match template `labels`"#]),
        ("Deployment", json!({"selector": {"matchLabels": {"app": "x"}}, "template": tmpl}),
         vec![r#"spec.template.metadata.labels: Invalid value: {"app":"w"}: `selector` does not match template `labels`"#]),
        ("Deployment", json!({"selector": {}, "template": tmpl}),
         vec!["spec.selector: Invalid value: {}: empty selector is invalid for deployment"]),
        ("Deployment", json!({"selector": sel, "template": pod_template(app.clone(), Some("Never"))}),
         vec![r#"spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always""#]),
        ("Deployment", json!({"selector": sel, "template": tmpl, "strategy": {"type": "Recreate", "rollingUpdate": {"maxSurge": 1}}}),
         vec!["spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'"]),
        ("Deployment", json!({"selector": sel, "template": tmpl, "strategy": {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}}}),
         vec![r#"spec.strategy.rollingUpdate.maxUnavailable: Invalid value: "0%": may not be 0 when `maxSurge` is 0"#]),
        ("Deployment", json!({"selector": sel, "template": tmpl, "strategy": {"rollingUpdate": {"maxSurge": "x", "maxUnavailable": "150%"}}}),
         vec![r#"spec.strategy.rollingUpdate.maxSurge: Invalid value: "x": a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"#,
              r#"spec.strategy.rollingUpdate.maxUnavailable: Invalid value: "150%": must not be greater than 100%"#]),
        ("Deployment", json!({"selector": sel, "template": tmpl, "minReadySeconds": 700}),
         vec!["spec.progressDeadlineSeconds: Invalid value: 600: must be greater than minReadySeconds"]),
        ("Deployment", json!({"selector": sel, "template": pod_template(app.clone(), None), "revisionHistoryLimit": -2}),
         vec!["spec.revisionHistoryLimit: Invalid value: -2: must be greater than or equal to 0"]),
        ("ReplicaSet", json!({"selector": {}, "template": tmpl}),
         vec!["spec.selector: Invalid value: {}: empty selector is invalid for deployment"]),
        ("StatefulSet", json!({"selector": sel, "template": tmpl, "serviceName": "Web_1"}),
         vec![r#"spec.serviceName: Invalid value: "Web_1": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"#]),
        ("StatefulSet", json!({"selector": sel, "template": tmpl, "podManagementPolicy": "Random"}),
         vec![r#"spec.podManagementPolicy: Invalid value: "Random": must be 'OrderedReady' or 'Parallel'"#]),
        ("StatefulSet", json!({"selector": sel, "template": tmpl, "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Keep"}}),
         vec![r#"spec.persistentVolumeClaimRetentionPolicy.whenDeleted: Unsupported value: "Keep": supported values: "Retain", "Delete""#]),
        ("DaemonSet", json!({"template": tmpl}),
         vec![r#"spec.template.metadata.labels: Invalid value: {"app":"w"}: `selector` does not match template `labels`"#]),
        ("DaemonSet", json!({"selector": sel, "template": tmpl, "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 1}}}),
         vec!["spec.updateStrategy.rollingUpdate.maxSurge: Invalid value: 1: may not be set when maxUnavailable is non-zero"]),
        ("Job", json!({"template": pod_template(json!({}), None)}),
         vec![r#"spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never""#]),
        ("Job", json!({"template": job_tmpl, "parallelism": -1, "backoffLimit": -1}),
         vec!["spec.parallelism: Invalid value: -1: must be greater than or equal to 0",
              "spec.backoffLimit: Invalid value: -1: must be greater than or equal to 0"]),
        ("Job", json!({"template": job_tmpl, "completionMode": "Sometimes"}),
         vec![r#"spec.completionMode: Unsupported value: "Sometimes": supported values: "NonIndexed", "Indexed""#]),
        ("CronJob", json!({"schedule": "foo", "jobTemplate": {"spec": {"template": job_tmpl}}}),
         vec![r#"spec.schedule: Invalid value: "foo": expected exactly 5 fields, found 1: [foo]"#]),
        ("CronJob", json!({"schedule": "TZ=UTC 0 * * * *", "jobTemplate": {"spec": {"template": job_tmpl}}}),
         vec![r#"spec.schedule: Invalid value: "TZ=UTC 0 * * * *": cannot use TZ or CRON_TZ in schedule, use timeZone field instead"#]),
        ("CronJob", json!({"schedule": "0 * * * *", "concurrencyPolicy": "Sometimes", "jobTemplate": {"spec": {"template": job_tmpl}}}),
         vec![r#"spec.concurrencyPolicy: Unsupported value: "Sometimes": supported values: "Allow", "Forbid", "Replace""#]),
        ("CronJob", json!({"schedule": "0 * * * *", "timeZone": "Local", "jobTemplate": {"spec": {"template": job_tmpl}}}),
         vec![r#"spec.timeZone: Invalid value: "Local": timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones"#]),
        ("CronJob", json!({"schedule": "0 * * * *", "jobTemplate": {"spec": {"template": pod_template(json!({}), Some("Always"))}}}),
         vec![r#"spec.jobTemplate.spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never""#]),
    ];
    for (i, (kind, spec, expected)) in cases.into_iter().enumerate() {
        let r = post_json(
            &h,
            &collection(kind),
            &workload(kind, &format!("bad-{i}"), spec),
        )
        .await;
        assert_eq!(
            causes(&r),
            Ok(expected.iter().map(|s| s.to_string()).collect()),
            "case {i} ({kind})"
        );
    }
    let long = "c".repeat(53);
    let r = post_json(
        &h,
        &collection("CronJob"),
        &workload(
            "CronJob",
            &long,
            json!({"schedule": "0 * * * *", "jobTemplate": {"spec": {"template": job_tmpl}}}),
        ),
    )
    .await;
    assert_eq!(
        causes(&r),
        Ok(vec![format!(
            "metadata.name: Invalid value: \"{long}\": must be no more than 52 characters"
        )])
    );
    // Updates.
    let path = |kind: &str| format!("{}/ok", collection(kind));
    let mut d = get(&h, &path("Deployment")).await.json();
    d["spec"]["selector"] = json!({"matchLabels": {"app": "w", "tier": "x"}});
    d["spec"]["template"]["metadata"]["labels"]["tier"] = json!("x");
    assert_eq!(
        causes(&put_json(&h, &path("Deployment"), &d).await),
        Ok(vec![r#"spec.selector: Invalid value: {"matchLabels":{"app":"w","tier":"x"}}: field is immutable"#.to_string()])
    );
    let mut s = get(&h, &path("StatefulSet")).await.json();
    s["spec"]["serviceName"] = json!("other");
    assert_eq!(
        causes(&put_json(&h, &path("StatefulSet"), &s).await),
        Ok(vec!["spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden".to_string()])
    );
    s = get(&h, &path("StatefulSet")).await.json();
    s["spec"]["replicas"] = json!(3);
    assert_eq!(
        put_json(&h, &path("StatefulSet"), &s).await.status.as_u16(),
        200
    );
    let mut j = get(&h, &path("Job")).await.json();
    j["spec"]["template"]["spec"]["containers"][0]["image"] = json!("busybox:1");
    let r = put_json(&h, &path("Job"), &j).await;
    let c = causes(&r).unwrap();
    assert_eq!(c.len(), 1, "{c:?}");
    assert!(
        c[0].starts_with("spec.template: Invalid value: {")
            && c[0].ends_with("}: field is immutable"),
        "{c:?}"
    );
    let mut cj = get(&h, &path("CronJob")).await.json();
    cj["spec"]["schedule"] = json!("@daily");
    assert_eq!(
        put_json(&h, &path("CronJob"), &cj).await.status.as_u16(),
        200
    );
}

/// `pods/resize`: only CPU and memory of the containers change, the QoS class may not; the rest
/// of the request is ignored.
#[tokio::test]
async fn pods_are_resized_through_their_resize_subresource() {
    let h = server().await;
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "r", "labels": {"a": "1"}},
        "spec": {"containers": [{"name": "c", "image": "nginx:1.27",
            "resources": {"requests": {"cpu": "100m", "memory": "64Mi", "ephemeral-storage": "1Gi"}}}]}});
    let r = post_json(&h, "/api/v1/namespaces/default/pods", &pod).await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.json());
    assert_eq!(r.json()["status"]["qosClass"], "Burstable");
    let resize = "/api/v1/namespaces/default/pods/r/resize";
    assert_eq!(get(&h, resize).await.json()["kind"], "Pod");
    let merge = "application/strategic-merge-patch+json";
    let r = patch(&h, resize, merge,
        r#"{"metadata": {"labels": {"a": "2"}}, "spec": {"containers": [{"name": "c", "image": "busybox:1", "resources": {"requests": {"cpu": "250m"}}}]}}"#).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.json());
    let p = r.json();
    assert_eq!(
        p["spec"]["containers"][0]["resources"]["requests"]["cpu"],
        "250m"
    );
    assert_eq!(
        p["spec"]["containers"][0]["image"], "nginx:1.27",
        "only resources change"
    );
    assert_eq!(p["metadata"]["labels"]["a"], "1", "labels are not resized");
    let cases: Vec<(&str, Vec<&str>)> = vec![
        (r#"{"spec": {"containers": [{"name": "c", "resources": {"limits": {"cpu": "250m", "memory": "64Mi"}, "requests": {"cpu": "250m", "memory": "64Mi", "ephemeral-storage": "1Gi"}}}]}}"#,
         vec![r#"spec: Invalid value: "Burstable": Pod QOS Class may not change as a result of resizing"#]),
        (r#"{"spec": {"containers": [{"name": "c", "resources": {"requests": {"ephemeral-storage": "2Gi"}}}]}}"#,
         vec!["spec: Forbidden: only cpu and memory resources are mutable"]),
        (r#"{"spec": {"containers": [{"name": "c", "resources": {"requests": {"memory": null}}}]}}"#,
         vec!["spec.containers[0].resources.requests: Forbidden: resource requests cannot be removed"]),
    ];
    for (body, expected) in cases {
        let r = patch(&h, resize, merge, body).await;
        assert_eq!(
            causes(&r),
            Ok(expected.iter().map(|s| s.to_string()).collect()),
            "{body}"
        );
    }
}

/// A pod's spec changes through the pod only where kube allows it (images, deadlines, added
/// tolerations); its metadata may change.
#[tokio::test]
async fn pod_updates_change_only_what_kube_allows() {
    let h = server().await;
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "u"},
        "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}});
    assert_eq!(
        post_json(&h, "/api/v1/namespaces/default/pods", &pod)
            .await
            .status
            .as_u16(),
        201
    );
    let path = "/api/v1/namespaces/default/pods/u";
    let mut p = get(&h, path).await.json();
    p["spec"]["containers"][0]["image"] = json!("nginx:1.28");
    p["metadata"]["labels"] = json!({"x": "y"});
    p["spec"]["tolerations"] = json!([{"key": "k", "operator": "Exists"}]);
    let r = put_json(&h, path, &p).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.json());
    let mut p = r.json();
    p["spec"]["containers"][0]["env"] = json!([{"name": "A", "value": "1"}]);
    let c = causes(&put_json(&h, path, &p).await).unwrap();
    assert_eq!(c.len(), 1, "{c:?}");
    assert!(
        c[0].starts_with("spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n"),
        "{c:?}"
    );
    let mut p = get(&h, path).await.json();
    p["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "d", "image": "busybox:1"}));
    assert_eq!(
        causes(&put_json(&h, path, &p).await),
        Ok(vec![
            "spec.containers: Forbidden: pod updates may not add or remove containers".to_string()
        ])
    );
}

#[tokio::test]
async fn pod_specs_are_validated_as_kube_validates_them() {
    let h = server().await;
    let pods = "/api/v1/namespaces/default/pods";
    let pod = |name: &str, spec: Value| json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec});
    let c = |extra: Value| {
        let mut c = json!({"name": "c", "image": "nginx:1.27"});
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };
    let ok = pod(
        "ok",
        json!({
        "volumes": [{"name": "data", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "x"}}],
        "initContainers": [{"name": "init", "image": "busybox:1"}],
        "containers": [c(json!({"ports": [{"name": "http", "containerPort": 80}, {"containerPort": 53, "protocol": "UDP"}],
            "env": [{"name": "1 odd.name", "value": "x"}, {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
            "volumeMounts": [{"name": "data", "mountPath": "/data"}, {"name": "cfg", "mountPath": "/cfg"}],
            "resources": {"requests": {"cpu": "100m"}, "limits": {"cpu": "1"}},
            "livenessProbe": {"httpGet": {"path": "/", "port": "http"}}}))]}),
    );
    let r = post_json(&h, pods, &ok).await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.json());
    let cases: Vec<(&str, Value, Vec<&str>)> = vec![
        ("no containers", json!({"containers": []}), vec!["spec.containers: Required value"]),
        ("container name", json!({"containers": [{"name": "Web", "image": "i:1"}]}),
         vec![r#"spec.containers[0].name: Invalid value: "Web": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"#]),
        ("duplicate containers", json!({"containers": [c(json!({})), c(json!({}))]}),
         vec![r#"spec.containers[1].name: Duplicate value: "c""#]),
        ("init container named like a container", json!({"containers": [c(json!({}))], "initContainers": [c(json!({}))]}),
         vec![r#"spec.initContainers[0].name: Duplicate value: "c""#]),
        ("ports", json!({"containers": [c(json!({"ports": [{"containerPort": 70000}, {"name": "http", "containerPort": 80, "protocol": "tcp"}, {"name": "http", "containerPort": 81}]}))]}),
         vec!["spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
              r#"spec.containers[0].ports[1].protocol: Unsupported value: "tcp": supported values: "SCTP", "TCP", "UDP""#,
              r#"spec.containers[0].ports[2].name: Duplicate value: "http""#]),
        ("port name", json!({"containers": [c(json!({"ports": [{"name": "web_port", "containerPort": 80}]}))]}),
         vec![r#"spec.containers[0].ports[0].name: Invalid value: "web_port": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"#]),
        ("env", json!({"containers": [c(json!({"env": [{"name": "A=B"}, {"name": "C", "value": "x", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}, {"name": "D", "valueFrom": {}}]}))]}),
         vec![r#"spec.containers[0].env[0].name: Invalid value: "A=B": a valid environment variable name must consist only of printable ASCII characters other than '='"#,
              r#"spec.containers[0].env[1].valueFrom: Invalid value: "": may not be specified when `value` is not empty"#,
              r#"spec.containers[0].env[2].valueFrom: Invalid value: "": must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef`, `secretKeyRef` or `fileKeyRef`"#]),
        ("requests over limits", json!({"containers": [c(json!({"resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}}))]}),
         vec![r#"spec.containers[0].resources.requests: Invalid value: "2": must be less than or equal to cpu limit of 1"#]),
        ("volumes", json!({"volumes": [{"name": "v", "emptyDir": {}, "configMap": {"name": "x"}}, {"name": "w", "emptyDir": {}}, {"name": "w", "emptyDir": {}}],
                          "containers": [c(json!({"volumeMounts": [{"name": "nope", "mountPath": "/a"}, {"name": "w", "mountPath": "/a"}]}))]}),
         vec!["spec.volumes[0].configMap: Forbidden: may not specify more than 1 volume type",
              r#"spec.volumes[2].name: Duplicate value: "w""#,
              r#"spec.containers[0].volumeMounts[0].name: Not found: "nope""#,
              r#"spec.containers[0].volumeMounts[1].mountPath: Invalid value: "/a": must be unique"#]),
        ("probes", json!({"containers": [c(json!({"livenessProbe": {"successThreshold": 2, "exec": {"command": ["true"]}},
                                                   "readinessProbe": {"exec": {"command": ["true"]}, "tcpSocket": {"port": 80}}}))]}),
         vec!["spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1",
              "spec.containers[0].readinessProbe.tcpSocket: Forbidden: may not specify more than 1 handler type"]),
        ("pull policy", json!({"containers": [c(json!({"imagePullPolicy": "always"}))]}),
         vec![r#"spec.containers[0].imagePullPolicy: Unsupported value: "always": supported values: "Always", "IfNotPresent", "Never""#]),
        ("restart and dns policies", json!({"containers": [c(json!({}))], "restartPolicy": "Sometimes", "dnsPolicy": "Cluster"}),
         vec![r#"spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never""#,
              r#"spec.dnsPolicy: Unsupported value: "Cluster": supported values: "ClusterFirstWithHostNet", "ClusterFirst", "Default", "None""#]),
        ("deadline and hostname", json!({"containers": [c(json!({}))], "activeDeadlineSeconds": 0, "hostname": "a.b"}),
         vec!["spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, inclusive",
              r#"spec.hostname: Invalid value: "a.b": must not contain dots"#]),
        ("host ports", json!({"containers": [c(json!({"ports": [{"containerPort": 80, "hostPort": 8080}]})),
                                             {"name": "d", "image": "i:1", "ports": [{"containerPort": 81, "hostPort": 8080}]}]}),
         vec![r#"spec.containers[1].ports[0].hostPort: Duplicate value: "TCP//8080""#]),
    ];
    for (i, (what, spec, expected)) in cases.into_iter().enumerate() {
        let r = post_json(&h, pods, &pod(&format!("bad-{i}"), spec)).await;
        assert_eq!(
            causes(&r),
            Ok(expected.iter().map(|s| s.to_string()).collect()),
            "{what}"
        );
    }
    // A workload's pod template is checked at its own path.
    let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}},
            "spec": {"containers": [c(json!({"ports": [{"containerPort": 0}]}))]}}}});
    let r = post_json(&h, "/apis/apps/v1/namespaces/default/deployments", &d).await;
    assert_eq!(
        causes(&r),
        Ok(vec![
            "spec.template.spec.containers[0].ports[0].containerPort: Required value".to_string()
        ])
    );
}

#[tokio::test]
async fn more_kinds_are_validated_as_kube_validates_them() {
    let h = server().await;
    let ns = "/apis/{g}/namespaces/default/{r}";
    let at = |g: &str, r: &str, namespaced: bool| {
        if namespaced {
            ns.replace("{g}", g).replace("{r}", r)
        } else {
            format!("/apis/{g}/{r}")
        }
    };
    let target = json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "d"});
    let backend = json!({"service": {"name": "web", "port": {"number": 80}}});
    // (path, object, expected causes; empty = accepted)
    let cases: Vec<(String, Value, Vec<&str>)> = vec![
        (at("autoscaling/v2", "horizontalpodautoscalers", true),
         json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "ok"},
                "spec": {"scaleTargetRef": target, "maxReplicas": 3}}), vec![]),
        (at("autoscaling/v2", "horizontalpodautoscalers", true),
         json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "h1"},
                "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment"}}}),
         vec!["spec.maxReplicas: Invalid value: 0: must be greater than 0",
              "spec.maxReplicas: Invalid value: 0: must be greater than or equal to `minReplicas`",
              "spec.scaleTargetRef.name: Required value"]),
        (at("autoscaling/v2", "horizontalpodautoscalers", true),
         json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "h2"},
                "spec": {"scaleTargetRef": target, "maxReplicas": 3, "metrics": [{"type": "Memory"}]}}),
         vec![r#"spec.metrics[0].type: Unsupported value: "Memory": supported values: "ContainerResource", "External", "Object", "Pods", "Resource""#,
              r#"spec.metrics[0].type: Unsupported value: "Memory": supported values: "ContainerResource", "External", "Object", "Pods", "Resource""#]),
        (at("policy/v1", "poddisruptionbudgets", true),
         json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "p1"},
                "spec": {"minAvailable": 1, "maxUnavailable": "50%", "selector": {"matchLabels": {"app": "x"}}}}),
         vec![r#"spec: Invalid value: {"MinAvailable":1,"Selector":{"matchLabels":{"app":"x"}},"MaxUnavailable":"50%","UnhealthyPodEvictionPolicy":null}: minAvailable and maxUnavailable cannot be both set"#]),
        (at("policy/v1", "poddisruptionbudgets", true),
         json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "p2"},
                "spec": {"minAvailable": "150%", "unhealthyPodEvictionPolicy": "Never"}}),
         vec![r#"spec.minAvailable: Invalid value: "150%": must not be greater than 100%"#,
              r#"spec.unhealthyPodEvictionPolicy: Unsupported value: "Never": supported values: "AlwaysAllow", "IfHealthyBudget""#]),
        (at("networking.k8s.io/v1", "ingresses", true),
         json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "ok"},
                "spec": {"rules": [{"host": "*.example.com", "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]}}]}}), vec![]),
        (at("networking.k8s.io/v1", "ingresses", true),
         json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "i1"}, "spec": {}}),
         vec!["spec: Invalid value: null: either `defaultBackend` or `rules` must be specified"]),
        (at("networking.k8s.io/v1", "ingresses", true),
         json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "i2"},
                "spec": {"rules": [{"host": "10.0.0.1", "http": {"paths": [
                    {"path": "api", "pathType": "Prefix", "backend": backend},
                    {"path": "/", "pathType": "Regex", "backend": {"service": {"name": "web"}}}]}}]}}),
         vec![r#"spec.rules[0].host: Invalid value: "10.0.0.1": must be a DNS name, not an IP address"#,
              r#"spec.rules[0].http.paths[0].path: Invalid value: "api": must be an absolute path"#,
              r#"spec.rules[0].http.paths[1].pathType: Unsupported value: "Regex": supported values: "Exact", "ImplementationSpecific", "Prefix""#,
              "spec.rules[0].http.paths[1].backend: Required value: port name or number is required"]),
        (at("networking.k8s.io/v1", "ingressclasses", false),
         json!({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": {"name": "c1"},
                "spec": {"controller": "nginx"}}),
         vec![r#"spec.controller: Invalid value: "nginx": must be a domain-prefixed path (such as "acme.io/foo")"#]),
        (at("networking.k8s.io/v1", "networkpolicies", true),
         json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "n1"},
                "spec": {"podSelector": {}, "policyTypes": ["ingress"],
                         "ingress": [{"ports": [{"port": 8080, "endPort": 80}],
                                      "from": [{"ipBlock": {"cidr": "10.0.0.0/16", "except": ["10.1.0.0/24"]}}, {}]}]}}),
         vec!["spec.ingress[0].ports[0].endPort: Invalid value: 8080: must be greater than or equal to `port`",
              r#"spec.ingress[0].from[0].ipBlock.except[0]: Invalid value: "10.1.0.0/24": must be a strict subset of `cidr`"#,
              "spec.ingress[0].from[1]: Required value: must specify a peer",
              r#"spec.policyTypes[0]: Unsupported value: "ingress": supported values: "Ingress", "Egress""#]),
        (at("scheduling.k8s.io/v1", "priorityclasses", false),
         json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "huge"}, "value": 2000000000}),
         vec!["value: Forbidden: maximum allowed value of a user defined priority is 1000000000"]),
        (at("scheduling.k8s.io/v1", "priorityclasses", false),
         json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "system-mine"}, "value": 10}),
         vec!["metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system use only. error: system-mine is not a known system priority class"]),
        (at("coordination.k8s.io/v1", "leases", true),
         json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l1"},
                "spec": {"leaseDurationSeconds": 0}}),
         vec!["spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"]),
    ];
    for (path, obj, expected) in cases {
        let r = post_json(&h, &path, &obj).await;
        if expected.is_empty() {
            assert_eq!(r.status.as_u16(), 201, "{path}: {}", r.json());
        } else {
            assert_eq!(
                causes(&r),
                Ok(expected.iter().map(|s| s.to_string()).collect()),
                "{path} {}",
                obj["metadata"]["name"]
            );
        }
    }
    // A PriorityClass's value may not change.
    let pc = json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "p"}, "value": 10});
    let path = at("scheduling.k8s.io/v1", "priorityclasses", false);
    assert_eq!(post_json(&h, &path, &pc).await.status.as_u16(), 201);
    let mut changed = get(&h, &format!("{path}/p")).await.json();
    changed["value"] = json!(11);
    assert_eq!(
        causes(&put_json(&h, &format!("{path}/p"), &changed).await),
        Ok(vec![
            "value: Forbidden: may not be changed in an update.".to_string()
        ])
    );
}

#[tokio::test]
async fn rbac_objects_are_validated_as_kube_validates_them() {
    let h = server().await;
    let roles = "/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles";
    let bindings = "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings";
    let cluster_bindings = "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings";
    let role = |name: &str, rules: Value| json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": name}, "rules": rules});
    assert_eq!(
        post_json(
            &h,
            roles,
            &role(
                "ok",
                json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}])
            )
        )
        .await
        .status
        .as_u16(),
        201
    );
    assert_eq!(
        causes(&post_json(&h, roles, &role("r1", json!([{"resources": ["pods"]}, {"nonResourceURLs": ["/healthz"], "verbs": ["get"]}]))).await),
        Ok(vec![
            "rules[0].verbs: Required value: verbs must contain at least one value".to_string(),
            "rules[0].apiGroups: Required value: resource rules must supply at least one api group".to_string(),
            r#"rules[1].nonResourceURLs: Invalid value: ["/healthz"]: namespaced rules cannot apply to non-resource URLs"#.to_string(),
        ])
    );
    let binding = |kind: &str, name: &str, role_kind: &str, subjects: Value| {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind,
        "metadata": {"name": name}, "roleRef": {"kind": role_kind, "name": "ok"}, "subjects": subjects})
    };
    // Groups left out are defaulted, as kube defaults them.
    let r = post_json(&h, bindings, &binding("RoleBinding", "ok", "Role", json!([{"kind": "User", "name": "jane"}, {"kind": "ServiceAccount", "name": "default"}]))).await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.json());
    assert_eq!(r.json()["roleRef"]["apiGroup"], "rbac.authorization.k8s.io");
    assert_eq!(
        r.json()["subjects"][0]["apiGroup"],
        "rbac.authorization.k8s.io"
    );
    assert_eq!(
        causes(&post_json(&h, bindings, &binding("RoleBinding", "b1", "Roles", json!([{"kind": "user", "name": "x"}]))).await),
        Ok(vec![
            r#"roleRef.kind: Unsupported value: "Roles": supported values: "Role", "ClusterRole""#.to_string(),
            r#"subjects[0].kind: Unsupported value: "user": supported values: "ServiceAccount", "User", "Group""#.to_string(),
        ])
    );
    assert_eq!(
        causes(
            &post_json(
                &h,
                cluster_bindings,
                &binding(
                    "ClusterRoleBinding",
                    "b2",
                    "ClusterRole",
                    json!([{"kind": "ServiceAccount", "name": "default"}])
                )
            )
            .await
        ),
        Ok(vec!["subjects[0].namespace: Required value".to_string()])
    );
    let mut changed = get(&h, &format!("{bindings}/ok")).await.json();
    changed["roleRef"]["name"] = json!("other");
    assert_eq!(
        causes(&put_json(&h, &format!("{bindings}/ok"), &changed).await),
        Ok(vec![r#"roleRef: Invalid value: {"APIGroup":"rbac.authorization.k8s.io","Kind":"Role","Name":"other"}: cannot change roleRef"#.to_string()])
    );
}
