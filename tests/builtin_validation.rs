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
    let s = r.json();
    assert_eq!(s["reason"], "Invalid", "{s}");
    Ok(s["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{}: {}",
                c["field"].as_str().unwrap(),
                c["message"].as_str().unwrap()
            )
        })
        .collect())
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
