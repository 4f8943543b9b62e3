//! StorageClasses, EndpointSlices, CertificateSigningRequests, ResourceQuotas and LimitRanges
//! validated as kube-apiserver 1.35 validates them: for each rule, an object kube refuses,
//! refused with kube's field paths, error types, values and messages (table-driven); valid
//! objects accepted; the update rules; and what these kinds' strategies and defaults do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use base64::Engine as _;
use common::*;
use serde_json::{json, Value};

/// The causes of a 422 as `field: message` lines, or the answer when it is not a 422.
fn causes(r: &Resp) -> Result<Vec<String>, String> {
    if r.status.as_u16() != 422 {
        return Err(format!("{}: {}", r.status, r.json()));
    }
    Ok(r.invalid_causes())
}

fn lines(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Each case POSTed to `path` (named `bad-<i>` unless it has a name) is refused with exactly
/// these causes.
async fn refused(h: &ServerHandle, path: &str, cases: Vec<(&str, Value, Vec<String>)>) {
    for (i, (what, mut obj, expected)) in cases.into_iter().enumerate() {
        if obj["metadata"]["name"].is_null() {
            obj["metadata"]["name"] = json!(format!("bad-{i}"));
        }
        let r = post_json(h, path, &obj).await;
        assert_eq!(causes(&r), Ok(expected), "{what}");
    }
}

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

const SUBDOMAIN: &str = r"a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const NAME_PART: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const LABEL_KEY: &str = "a valid label key must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')";
const LABEL_VALUE: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

// --- StorageClass ---------------------------------------------------------------------------

const STORAGE_CLASSES: &str = "/apis/storage.k8s.io/v1/storageclasses";

fn storage_class(fields: Value) -> Value {
    let mut sc = json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                        "metadata": {}});
    for (k, v) in fields.as_object().unwrap() {
        sc[k] = v.clone();
    }
    sc
}

#[tokio::test]
async fn storage_classes_are_validated_as_kube_validates_them() {
    let h = server().await;
    for (name, fields) in [
        ("plain", json!({"provisioner": "example.com/p"})),
        // The provisioner is checked lower-cased.
        ("upper", json!({"provisioner": "Example.COM/Disk"})),
        (
            "full",
            json!({"provisioner": "kubernetes.io/no-provisioner",
                   "parameters": {"type": "ssd", "empty": ""}, "reclaimPolicy": "Retain",
                   "volumeBindingMode": "WaitForFirstConsumer", "allowVolumeExpansion": true,
                   "mountOptions": ["anything goes", "--"],
                   "allowedTopologies": [
                       {"matchLabelExpressions": [{"key": "topology.kubernetes.io/zone", "values": ["a", "b"]},
                                                  {"key": "rack", "values": ["1"]}]},
                       {"matchLabelExpressions": [{"key": "topology.kubernetes.io/zone", "values": ["c"]}]}]}),
        ),
    ] {
        let mut sc = storage_class(fields);
        sc["metadata"]["name"] = json!(name);
        let r = post_json(&h, STORAGE_CLASSES, &sc).await;
        assert_eq!(r.status.as_u16(), 201, "{name}: {}", r.json());
    }
    // v1 defaults.
    let got = get(&h, &format!("{STORAGE_CLASSES}/plain")).await.json();
    assert_eq!(got["reclaimPolicy"], "Delete", "{got}");
    assert_eq!(got["volumeBindingMode"], "Immediate", "{got}");

    let many: serde_json::Map<String, Value> =
        (0..513).map(|i| (format!("k{i}"), json!("v"))).collect();
    let topo = |terms: Value| json!({"provisioner": "example.com/p", "allowedTopologies": terms});
    let cases: Vec<(&str, Value, Vec<String>)> = vec![
        (
            "no provisioner",
            json!({}),
            lines(&["provisioner: Required value"]),
        ),
        (
            "provisioner with two slashes",
            json!({"provisioner": "a/b/c"}),
            vec![format!(
                r#"provisioner: Invalid value: "a/b/c": {LABEL_KEY}"#
            )],
        ),
        (
            "provisioner reported lower-cased",
            json!({"provisioner": "Example.com/-P"}),
            vec![format!(
                r#"provisioner: Invalid value: "example.com/-p": {NAME_PART}"#
            )],
        ),
        (
            "empty parameter key",
            json!({"provisioner": "example.com/p", "parameters": {"": "x"}}),
            lines(&[r#"parameters: Invalid value: "": field can not be empty."#]),
        ),
        (
            "too many parameters",
            json!({"provisioner": "example.com/p", "parameters": many}),
            lines(&["parameters: Too long: may not be more than 512 bytes"]),
        ),
        (
            "parameters too big",
            json!({"provisioner": "example.com/p", "parameters": {"k": "x".repeat(262144)}}),
            lines(&["parameters: Too long: may not be more than 262144 bytes"]),
        ),
        (
            "reclaim policy",
            json!({"provisioner": "example.com/p", "reclaimPolicy": "Recycle"}),
            lines(&[
                r#"reclaimPolicy: Unsupported value: "Recycle": supported values: "Delete", "Retain""#,
            ]),
        ),
        (
            "binding mode",
            json!({"provisioner": "example.com/p", "volumeBindingMode": "Later"}),
            lines(&[
                r#"volumeBindingMode: Unsupported value: "Later": supported values: "Immediate", "WaitForFirstConsumer""#,
            ]),
        ),
        (
            "empty binding mode",
            json!({"provisioner": "example.com/p", "volumeBindingMode": ""}),
            lines(&[
                r#"volumeBindingMode: Unsupported value: "": supported values: "Immediate", "WaitForFirstConsumer""#,
            ]),
        ),
        (
            "topology without values",
            topo(json!([{"matchLabelExpressions": [{"key": "zone", "values": []}]}])),
            lines(&["allowedTopologies[0].matchLabelExpressions[0].values: Required value"]),
        ),
        (
            "topology value repeated",
            topo(json!([{"matchLabelExpressions": [{"key": "zone", "values": ["a", "b", "a"]}]}])),
            lines(&[
                r#"allowedTopologies[0].matchLabelExpressions[0].values[2]: Duplicate value: "a""#,
            ]),
        ),
        (
            "topology key",
            topo(json!([{"matchLabelExpressions": [{"key": "a b", "values": ["x"]}]}])),
            vec![format!(
                r#"allowedTopologies[0].matchLabelExpressions[0].key: Invalid value: "a b": {NAME_PART}"#
            )],
        ),
        (
            "topology key repeated in a term",
            topo(
                json!([{"matchLabelExpressions": [{"key": "zone", "values": ["a"]},
                                                   {"key": "zone", "values": ["b"]}]}]),
            ),
            lines(&[
                r#"allowedTopologies[0].matchLabelExpressions[1].key: Duplicate value: "zone""#,
            ]),
        ),
        (
            "topology term repeated (values in another order)",
            topo(
                json!([{"matchLabelExpressions": [{"key": "zone", "values": ["a", "b"]}]},
                        {"matchLabelExpressions": [{"key": "zone", "values": ["b", "a"]}]}]),
            ),
            lines(&[r#"allowedTopologies[1].matchLabelExpressions: Duplicate value: """#]),
        ),
        (
            // kube compares each term with one empty placeholder per term, then with the
            // earlier terms: two empty terms give two, then three, duplicates.
            "empty topology terms",
            topo(json!([{"matchLabelExpressions": []}, {}])),
            lines(&[
                r#"allowedTopologies[0].matchLabelExpressions: Duplicate value: """#,
                r#"allowedTopologies[0].matchLabelExpressions: Duplicate value: """#,
                r#"allowedTopologies[1].matchLabelExpressions: Duplicate value: """#,
                r#"allowedTopologies[1].matchLabelExpressions: Duplicate value: """#,
                r#"allowedTopologies[1].matchLabelExpressions: Duplicate value: """#,
            ]),
        ),
    ];
    let cases = cases
        .into_iter()
        .map(|(w, f, e)| (w, storage_class(f), e))
        .collect();
    refused(&h, STORAGE_CLASSES, cases).await;
}

#[tokio::test]
async fn storage_class_updates_may_not_change_provisioner_parameters_policy_or_binding_mode() {
    let h = server().await;
    let mut sc = storage_class(json!({"provisioner": "example.com/p", "parameters": {"a": "1"}}));
    sc["metadata"]["name"] = json!("fast");
    assert_eq!(post_json(&h, STORAGE_CLASSES, &sc).await.status, 201);
    let mut bare = storage_class(json!({"provisioner": "example.com/p"}));
    bare["metadata"]["name"] = json!("bare");
    assert_eq!(post_json(&h, STORAGE_CLASSES, &bare).await.status, 201);
    let path = format!("{STORAGE_CLASSES}/fast");
    let live = get(&h, &path).await.json();
    let cases: Vec<(&str, &str, Value, &str)> = vec![
        (
            "provisioner",
            "fast",
            json!("example.com/q"),
            "provisioner: Forbidden: updates to provisioner are forbidden.",
        ),
        (
            "parameters",
            "fast",
            json!({"a": "2"}),
            "parameters: Forbidden: updates to parameters are forbidden.",
        ),
        (
            "reclaimPolicy",
            "fast",
            json!("Retain"),
            "reclaimPolicy: Forbidden: updates to reclaimPolicy are forbidden.",
        ),
        (
            "volumeBindingMode",
            "fast",
            json!("WaitForFirstConsumer"),
            r#"volumeBindingMode: Invalid value: "WaitForFirstConsumer": field is immutable"#,
        ),
        (
            "parameters",
            "bare",
            json!({"a": "1"}),
            "parameters: Forbidden: updates to parameters are forbidden.",
        ),
    ];
    for (field, name, value, expected) in cases {
        let path = format!("{STORAGE_CLASSES}/{name}");
        let mut changed = get(&h, &path).await.json();
        changed[field] = value;
        let r = put_json(&h, &path, &changed).await;
        assert_eq!(causes(&r), Ok(lines(&[expected])), "{field} of {name}");
    }
    // Labels and the unvalidated fields may change.
    let mut changed = live.clone();
    changed["metadata"]["labels"] = json!({"tier": "gold"});
    changed["allowVolumeExpansion"] = json!(true);
    changed["mountOptions"] = json!(["ro"]);
    let r = put_json(&h, &path, &changed).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.json());
}

// --- EndpointSlice --------------------------------------------------------------------------

const SLICES: &str = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices";

fn slice(fields: Value) -> Value {
    let mut s = json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                       "metadata": {}});
    for (k, v) in fields.as_object().unwrap() {
        s[k] = v.clone();
    }
    s
}

fn ipv4(endpoints: Value) -> Value {
    json!({"addressType": "IPv4", "endpoints": endpoints})
}

#[tokio::test]
async fn endpoint_slices_are_validated_as_kube_validates_them() {
    let h = server().await;
    for (name, fields) in [
        (
            "web",
            json!({"addressType": "IPv4",
                   "endpoints": [{"addresses": ["10.1.2.3"], "nodeName": "node-1", "hostname": "pod-1",
                                  "zone": "anything", "conditions": {"ready": true},
                                  "targetRef": {"kind": "Pod", "name": "p"},
                                  "hints": {"forZones": [{"name": "zone-a"}, {"name": ""}]},
                                  "deprecatedTopology": {"kubernetes.io/hostname": "node-1"}}],
                   "ports": [{"name": "http", "port": 80, "protocol": "TCP", "appProtocol": "kubernetes.io/h2c"},
                             {"port": 53, "protocol": "UDP"}]}),
        ),
        (
            "v6",
            json!({"addressType": "IPv6", "endpoints": [{"addresses": ["2001:db8::1"]}]}),
        ),
        (
            "names",
            json!({"addressType": "FQDN", "endpoints": [{"addresses": ["db.example.com."]}]}),
        ),
        // The legacy parser takes leading zeros.
        ("zeros", ipv4(json!([{"addresses": ["010.001.002.003"]}]))),
        ("empty", json!({"addressType": "IPv4", "endpoints": []})),
    ] {
        let mut s = slice(fields);
        s["metadata"]["name"] = json!(name);
        let r = post_json(&h, SLICES, &s).await;
        assert_eq!(r.status.as_u16(), 201, "{name}: {}", r.json());
    }
    let web = get(&h, &format!("{SLICES}/web")).await.json();
    assert_eq!(web["metadata"]["generation"], 1, "{web}");
    // v1 defaults: an unnamed port is named "", a port's protocol is TCP.
    assert_eq!(web["ports"][1]["name"], "", "{web}");
    assert_eq!(web["ports"][1]["protocol"], "UDP", "{web}");
    // v1 never stores deprecatedTopology.
    assert!(
        web["endpoints"][0].get("deprecatedTopology").is_none(),
        "{web}"
    );
    let mut unnamed = slice(json!({"addressType": "IPv4", "ports": [{"port": 80}]}));
    unnamed["metadata"]["name"] = json!("unnamed");
    let r = post_json(&h, SLICES, &unnamed).await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.json());
    assert_eq!(
        r.json()["ports"],
        json!([{"name": "", "port": 80, "protocol": "TCP"}])
    );

    let a = |addrs: Value| ipv4(json!([{"addresses": addrs}]));
    let hundred_and_one: Vec<String> = (1..=101)
        .map(|i| format!("10.0.0.{}", i % 250 + 1))
        .collect();
    let long_label = "a".repeat(64);
    let fqdn = |addr: &str| json!({"addressType": "FQDN", "endpoints": [{"addresses": [addr]}]});
    let zones: Vec<Value> = (0..9).map(|i| json!({"name": format!("z{i}")})).collect();
    let with = |extra: Value| {
        let mut ep = json!({"addresses": ["10.0.0.1"]});
        for (k, v) in extra.as_object().unwrap() {
            ep[k] = v.clone();
        }
        ipv4(json!([ep]))
    };
    let port = |p: Value| json!({"addressType": "IPv4", "ports": [p]});
    let cases: Vec<(&str, Value, Vec<String>)> = vec![
        (
            "no address type",
            json!({"addressType": ""}),
            lines(&["addressType: Required value"]),
        ),
        (
            "removed address type",
            json!({"addressType": "IP"}),
            lines(&[
                r#"addressType: Unsupported value: "IP": supported values: "FQDN", "IPv4", "IPv6""#,
            ]),
        ),
        (
            "too many endpoints (none checked)",
            ipv4(Value::Array(vec![json!({"addresses": []}); 1001])),
            lines(&["endpoints: Too many: 1001: must have at most 1000 items"]),
        ),
        (
            "no addresses",
            a(json!([])),
            lines(&["endpoints[0].addresses: Required value: must contain at least 1 address"]),
        ),
        (
            "too many addresses",
            a(json!(hundred_and_one)),
            lines(&["endpoints[0].addresses: Too many: 101: must have at most 100 items"]),
        ),
        (
            "not an IP",
            a(json!(["10.0.0.1", "ten"])),
            lines(&[
                r#"endpoints[0].addresses[1]: Invalid value: "ten": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"#,
            ]),
        ),
        (
            "unspecified",
            a(json!(["0.0.0.0"])),
            lines(&[
                r#"endpoints[0].addresses[0]: Invalid value: "0.0.0.0": may not be unspecified (0.0.0.0)"#,
            ]),
        ),
        (
            "link-local",
            a(json!(["169.254.169.254"])),
            lines(&[
                r#"endpoints[0].addresses[0]: Invalid value: "169.254.169.254": may not be in the link-local range (169.254.0.0/16, fe80::/10)"#,
            ]),
        ),
        (
            "link-local multicast",
            a(json!(["224.0.0.5"])),
            lines(&[
                r#"endpoints[0].addresses[0]: Invalid value: "224.0.0.5": may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"#,
            ]),
        ),
        (
            "IPv6 link-local",
            json!({"addressType": "IPv6", "endpoints": [{"addresses": ["fe80::1"]}]}),
            lines(&[
                r#"endpoints[0].addresses[0]: Invalid value: "fe80::1": may not be in the link-local range (169.254.0.0/16, fe80::/10)"#,
            ]),
        ),
        (
            "empty name",
            fqdn(""),
            lines(&["endpoints[0].addresses[0]: Required value"]),
        ),
        (
            "name not a subdomain",
            fqdn("Db.example.com"),
            vec![format!(
                r#"endpoints[0].addresses[0]: Invalid value: "Db.example.com": {SUBDOMAIN}"#
            )],
        ),
        (
            "name of one segment",
            fqdn("localhost."),
            lines(&[
                r#"endpoints[0].addresses[0]: Invalid value: "localhost": should be a domain with at least two segments separated by dots"#,
            ]),
        ),
        (
            "name with a long label",
            fqdn(&format!("{long_label}.example.com")),
            vec![format!(
                r#"endpoints[0].addresses[0]: Invalid value: "{long_label}": must be no more than 63 characters"#
            )],
        ),
        (
            "node name",
            with(json!({"nodeName": "Node_1"})),
            vec![format!(
                r#"endpoints[0].nodeName: Invalid value: "Node_1": {SUBDOMAIN}"#
            )],
        ),
        (
            "hostname",
            with(json!({"hostname": "pod.one"})),
            lines(&[r#"endpoints[0].hostname: Invalid value: "pod.one": must not contain dots"#]),
        ),
        (
            "too many zone hints",
            with(json!({"hints": {"forZones": zones}})),
            lines(&["endpoints[0].hints.forZones: Too many: 9: must have at most 8 items"]),
        ),
        (
            "zone hints",
            with(json!({"hints": {"forZones": [{"name": "a"}, {"name": "a"}, {"name": "a b"}]}})),
            vec![
                r#"endpoints[0].hints.forZones[1].name: Duplicate value: "a""#.to_string(),
                format!(
                    r#"endpoints[0].hints.forZones[2].name: Invalid value: "a b": {LABEL_VALUE}"#
                ),
            ],
        ),
        (
            "port name",
            port(json!({"name": "HTTP", "port": 80})),
            vec![format!(r#"ports[0].name: Invalid value: "HTTP": {LABEL}"#)],
        ),
        (
            "two unnamed ports",
            json!({"addressType": "IPv4", "ports": [{"port": 80}, {"port": 81}]}),
            lines(&[r#"ports[1].name: Duplicate value: """#]),
        ),
        (
            "port protocol",
            port(json!({"port": 80, "protocol": "HTTP"})),
            lines(&[
                r#"ports[0].protocol: Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP""#,
            ]),
        ),
        (
            "app protocol",
            port(json!({"port": 80, "appProtocol": "-http"})),
            vec![format!(
                r#"ports[0].appProtocol: Invalid value: "-http": {NAME_PART}"#
            )],
        ),
        (
            "too many ports (none checked)",
            json!({"addressType": "IPv4", "ports": vec![json!({"port": 1}); 20001]}),
            lines(&["ports: Too many: 20001: must have at most 20000 items"]),
        ),
    ];
    let cases = cases
        .into_iter()
        .map(|(w, f, e)| (w, slice(f), e))
        .collect();
    refused(&h, SLICES, cases).await;
    // An address of the other family (kube's wording; the path is a reconstruction).
    let mut wrong = slice(a(json!(["2001:db8::1"])));
    wrong["metadata"]["name"] = json!("wrong-family");
    let got = causes(&post_json(&h, SLICES, &wrong).await).unwrap();
    assert!(
        got.len() == 1
            && got[0].ends_with(r#"Invalid value: "2001:db8::1": must be an IPv4 address"#),
        "{got:?}"
    );
}

#[tokio::test]
async fn endpoint_slice_updates_keep_the_address_type_and_count_label_changes() {
    let h = server().await;
    let mut s = slice(ipv4(json!([{"addresses": ["10.0.0.1"]}])));
    s["metadata"]["name"] = json!("s");
    assert_eq!(post_json(&h, SLICES, &s).await.status, 201);
    let path = format!("{SLICES}/s");
    // The endpoints did not change, so they are not validated again: only the type is refused.
    let mut changed = get(&h, &path).await.json();
    changed["addressType"] = json!("IPv6");
    assert_eq!(
        causes(&put_json(&h, &path, &changed).await),
        Ok(lines(&[
            r#"addressType: Invalid value: "IPv6": field is immutable"#
        ]))
    );
    // A label change is a new generation, as a change of the endpoints is.
    let mut labelled = get(&h, &path).await.json();
    labelled["metadata"]["labels"] = json!({"kubernetes.io/service-name": "web"});
    let r = put_json(&h, &path, &labelled).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.json());
    assert_eq!(r.json()["metadata"]["generation"], 2);
    let mut moved = r.json();
    moved["endpoints"] = json!([{"addresses": ["10.0.0.2"],
                                 "deprecatedTopology": {"kubernetes.io/hostname": "node-9"}}]);
    let r = put_json(&h, &path, &moved).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.json());
    let got = r.json();
    assert_eq!(got["metadata"]["generation"], 3);
    // Dropped; the old object never named node-9, so it does not become the node name.
    assert_eq!(
        got["endpoints"],
        json!([{"addresses": ["10.0.0.2"]}]),
        "{got}"
    );
    // Changed endpoints are validated.
    let mut bad = got.clone();
    bad["endpoints"] = json!([{"addresses": ["169.254.0.1"]}]);
    assert_eq!(
        causes(&put_json(&h, &path, &bad).await),
        Ok(lines(&[
            r#"endpoints[0].addresses[0]: Invalid value: "169.254.0.1": may not be in the link-local range (169.254.0.0/16, fe80::/10)"#
        ]))
    );
    // A loopback address (kube refuses it) is accepted with a warning: it is how a Service
    // reaches a process on the machine kubox runs on.
    let mut local = got.clone();
    local["endpoints"] = json!([{"addresses": ["127.0.0.1"]}]);
    let r = put_json(&h, &path, &local).await;
    assert_eq!(r.status.as_u16(), 200);
    let warning = r.headers["warning"].to_str().unwrap();
    assert!(
        warning.contains("127.0.0.1: a loopback address, accepted by kubox"),
        "{warning}"
    );
}

// --- CertificateSigningRequest --------------------------------------------------------------

const CSRS: &str = "/apis/certificates.k8s.io/v1/certificatesigningrequests";

/// A PKCS#10 request signed by its own (P-256) key.
const CSR_PEM: &str = "-----BEGIN CERTIFICATE REQUEST-----
MIHQMHcCAQAwFTETMBEGA1UEAwwKa3Vib3gtdGVzdDBZMBMGByqGSM49AgEGCCqG
SM49AwEHA0IABJeTs2OLoY4XzhySqgzsY0JVfgnhSmV8QtZFbcf45X2ZpQGY8vqg
npQJYWaJBYcS3rRtyDZMpCTLbal3Xg3z8/GgADAKBggqhkjOPQQDAgNJADBGAiEA
8nQO0h+9I/+nxG49Hnof33dBHo4L8Ds+k6qNHEcVRMgCIQDElWJrZLNMM8HwS1wp
ofEDCCv4AARPSUPCRrSmIAnn5A==
-----END CERTIFICATE REQUEST-----
";

/// A self-signed certificate for the same key.
const CERT_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBgTCCASegAwIBAgIUevYcN9xPsn6dNs20TsTrJp5h3nUwCgYIKoZIzj0EAwIw
FTETMBEGA1UEAwwKa3Vib3gtdGVzdDAgFw0yNjEyMDUwNjU3MjFaGA8yMTI2MTEx
MTA2NTcyMVowFTETMBEGA1UEAwwKa3Vib3gtdGVzdDBZMBMGByqGSM49AgEGCCqG
SM49AwEHA0IABJeTs2OLoY4XzhySqgzsY0JVfgnhSmV8QtZFbcf45X2ZpQGY8vqg
npQJYWaJBYcS3rRtyDZMpCTLbal3Xg3z8/GjUzBRMB0GA1UdDgQWBBQE3odFQES3
9uuVuTuHqaDjkIv6ezAfBgNVHSMEGDAWgBQE3odFQES39uuVuTuHqaDjkIv6ezAP
BgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0gAMEUCIQC13uWwQRB4QjeG/F3V
JB1zk6tw5gAeiXdS+hg62AAL0QIgQQgZCo8kPpE3xVpjn1VvmOrdIWnm24TXEr9h
loS3dco=
-----END CERTIFICATE-----
";

fn csr(name: &str, spec: Value) -> Value {
    let mut full = json!({"request": b64(CSR_PEM), "signerName": "example.com/signer",
                          "usages": ["client auth"]});
    for (k, v) in spec.as_object().unwrap() {
        full[k] = v.clone();
    }
    json!({"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
           "metadata": {"name": name}, "spec": full})
}

#[tokio::test]
async fn certificate_signing_requests_are_validated_as_kube_validates_them() {
    let h = server().await;
    // Any name a path can carry; every known usage; the shortest expiration allowed; status
    // on create is dropped (so it is never validated then).
    let mut ok = csr(
        "Node:CSR_1",
        json!({"usages": ["digital signature", "key encipherment", "server auth", "s/mime"],
               "signerName": "kubernetes.io/kube-apiserver-client", "expirationSeconds": 600}),
    );
    ok["status"] = json!({"conditions": [{"type": "Approved", "status": "Maybe"}],
                          "certificate": b64("junk")});
    let r = post_json(&h, CSRS, &ok).await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.json());
    assert!(
        r.json()["status"].get("certificate").is_none(),
        "{}",
        r.json()
    );

    let not_pem = b64("hello");
    let unterminated = b64("-----BEGIN CERTIFICATE REQUEST-----\n");
    let long_domain = [
        "a".repeat(63),
        "b".repeat(63),
        "c".repeat(63),
        "d".repeat(63),
    ]
    .join(".");
    let all_usages = r#""any", "cert sign", "client auth", "code signing", "content commitment", "crl sign", "data encipherment", "decipher only", "digital signature", "email protection", "encipher only", "ipsec end system", "ipsec tunnel", "ipsec user", "key agreement", "key encipherment", "microsoft sgc", "netscape sgc", "ocsp signing", "s/mime", "server auth", "signing", "timestamping""#;
    let signer = |name: &str| json!({"signerName": name});
    let cases: Vec<(&str, Value, Vec<String>)> = vec![
        (
            "request not PEM",
            json!({"request": not_pem}),
            vec![format!(r#"spec.request: Invalid value: "{not_pem}": PEM block type must be CERTIFICATE REQUEST"#)],
        ),
        (
            "request a PEM block without its end",
            json!({"request": unterminated}),
            vec![format!(r#"spec.request: Invalid value: "{unterminated}": PEM block type must be CERTIFICATE REQUEST"#)],
        ),
        (
            "request a certificate",
            json!({"request": b64(CERT_PEM)}),
            vec![format!(r#"spec.request: Invalid value: "{}": PEM block type must be CERTIFICATE REQUEST"#, b64(CERT_PEM))],
        ),
        ("no usages", json!({"usages": []}), lines(&["spec.usages: Required value"])),
        (
            "unknown usage",
            json!({"usages": ["client auth", "flying"]}),
            vec![format!(r#"spec.usages[1]: Unsupported value: "flying": supported values: {all_usages}"#)],
        ),
        (
            "repeated usage",
            json!({"usages": ["client auth", "server auth", "client auth"]}),
            lines(&[r#"spec.usages[2]: Duplicate value: "client auth""#]),
        ),
        (
            "legacy signer",
            signer("kubernetes.io/legacy-unknown"),
            lines(&[r#"spec.signerName: Invalid value: "kubernetes.io/legacy-unknown": the legacy signerName is not allowed via this API version"#]),
        ),
        ("no signer", signer(""), lines(&["spec.signerName: Required value"])),
        (
            "signer without a path",
            signer("example.com"),
            lines(&[r#"spec.signerName: Invalid value: "example.com": must be a fully qualified domain and path of the form 'example.com/signer-name'"#]),
        ),
        (
            "signer with two slashes",
            signer("example.com/a/b"),
            lines(&[r#"spec.signerName: Invalid value: "example.com/a/b": must be a fully qualified domain and path of the form 'example.com/signer-name'"#]),
        ),
        (
            "signer domain label",
            signer("Example.com/x"),
            vec![format!(r#"spec.signerName: Invalid value: "Example.com": validating label "Example": {LABEL}"#)],
        ),
        (
            "signer domain of one label",
            signer("example/x"),
            lines(&[r#"spec.signerName: Invalid value: "example": should be a domain with at least two segments separated by dots"#]),
        ),
        (
            "signer with an empty path",
            signer("example.com/"),
            vec![format!(r#"spec.signerName: Invalid value: "": validating label "": {SUBDOMAIN}"#)],
        ),
        (
            "signer path label",
            signer("example.com/x..y"),
            vec![format!(r#"spec.signerName: Invalid value: "x..y": validating label "": {SUBDOMAIN}"#)],
        ),
        (
            "signer domain too long",
            signer(&format!("{long_domain}/x")),
            lines(&["spec.signerName: Too long: may not be more than 253 bytes"]),
        ),
        (
            "short expiration",
            json!({"expirationSeconds": 599}),
            lines(&["spec.expirationSeconds: Invalid value: 599: may not specify a duration less than 600 seconds (10 minutes)"]),
        ),
    ];
    let cases = cases
        .into_iter()
        .enumerate()
        .map(|(i, (w, spec, e))| (w, csr(&format!("bad-{i}"), spec), e))
        .collect();
    refused(&h, CSRS, cases).await;
}

#[tokio::test]
async fn certificate_signing_request_updates_follow_kubes_rules_per_endpoint() {
    let h = server().await;
    assert_eq!(post_json(&h, CSRS, &csr("c", json!({}))).await.status, 201);
    let path = format!("{CSRS}/c");
    let status_path = format!("{path}/status");
    let approval_path = format!("{path}/approval");
    // Conditions written through /status.
    let cond = |t: &str, s: &str| json!({"type": t, "status": s});
    let cases: Vec<(&str, Value, Vec<String>)> = vec![
        (
            "Failed not True",
            json!({"conditions": [cond("Failed", "False")]}),
            lines(&[
                r#"status.conditions[0].status: Unsupported value: "False": supported values: "True""#,
            ]),
        ),
        (
            "custom condition status",
            json!({"conditions": [cond("Custom", "Maybe")]}),
            lines(&[
                r#"status.conditions[0].status: Unsupported value: "Maybe": supported values: "False", "True", "Unknown""#,
            ]),
        ),
        (
            "condition without a type",
            json!({"conditions": [cond("", "True")]}),
            lines(&["status.conditions[0].type: Required value"]),
        ),
        (
            "condition without a status",
            json!({"conditions": [cond("Custom", "")]}),
            lines(&["status.conditions[0].status: Required value"]),
        ),
        (
            "repeated condition type",
            json!({"conditions": [cond("Custom", "True"), cond("Custom", "False")]}),
            lines(&[r#"status.conditions[1].type: Duplicate value: "Custom""#]),
        ),
        (
            "approval through /status",
            json!({"conditions": [cond("Approved", "True")]}),
            lines(&[
                r#"status.conditions: Forbidden: updates may not add a condition of type "Approved""#,
            ]),
        ),
        (
            "approved and denied",
            json!({"conditions": [cond("Approved", "True"), cond("Denied", "True")]}),
            lines(&[
                r#"status.conditions: Invalid value: "Denied": Approved and Denied conditions are mutually exclusive"#,
                r#"status.conditions: Forbidden: updates may not add a condition of type "Approved""#,
                r#"status.conditions: Forbidden: updates may not add a condition of type "Denied""#,
            ]),
        ),
        (
            "certificate not PEM",
            json!({"certificate": b64("junk")}),
            lines(&[
                r#"status.certificate: Invalid value: "<certificate data>": must contain at least one CERTIFICATE PEM block"#,
            ]),
        ),
        (
            "certificate of another block type",
            json!({"certificate": b64(CSR_PEM)}),
            lines(&[
                r#"status.certificate: Invalid value: "<certificate data>": only CERTIFICATE PEM blocks are allowed, found "CERTIFICATE REQUEST""#,
            ]),
        ),
        (
            "certificate with headers",
            json!({"certificate": b64(&CERT_PEM.replacen("-----\n", "-----\nProc-Type: 4,ENCRYPTED\n\n", 1))}),
            lines(&[
                r#"status.certificate: Invalid value: "<certificate data>": no PEM block headers are permitted"#,
            ]),
        ),
    ];
    for (what, status, expected) in cases {
        let mut obj = get(&h, &path).await.json();
        obj["status"] = status;
        let r = put_json(&h, &status_path, &obj).await;
        assert_eq!(causes(&r), Ok(expected), "{what}");
    }
    // The main resource changes neither spec nor status.
    let mut main = get(&h, &path).await.json();
    main["spec"]["usages"] = json!(["server auth"]);
    main["status"] = json!({"certificate": b64(CERT_PEM)});
    main["metadata"]["labels"] = json!({"x": "y"});
    let r = put_json(&h, &path, &main).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.json());
    let got = r.json();
    assert_eq!(got["spec"]["usages"], json!(["client auth"]), "{got}");
    assert!(got["status"].get("certificate").is_none(), "{got}");
    assert_eq!(got["metadata"]["labels"], json!({"x": "y"}));

    // Approve, then issue.
    let mut approve = get(&h, &path).await.json();
    approve["status"] =
        json!({"conditions": [{"type": "Approved", "status": "True", "reason": "Ok"}]});
    let r = put_json(&h, &approval_path, &approve).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.json());
    let approved = r.json();
    assert!(approved["status"]["conditions"][0]["lastUpdateTime"].is_string());
    assert!(approved["status"]["conditions"][0]["lastTransitionTime"].is_string());
    // /status keeps the approval as it was, and takes the certificate.
    let mut issue = approved.clone();
    issue["status"]["conditions"][0]["reason"] = json!("Changed");
    issue["status"]["certificate"] = json!(b64(CERT_PEM));
    let r = put_json(&h, &status_path, &issue).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.json());
    let issued = r.json();
    assert_eq!(
        issued["status"]["conditions"],
        approved["status"]["conditions"]
    );
    assert_eq!(issued["status"]["certificate"], json!(b64(CERT_PEM)));
    // The certificate is set once; conditions are never removed, through any endpoint.
    let mut reissue = issued.clone();
    reissue["status"]["certificate"] = json!(b64(&format!("{CERT_PEM}# again\n")));
    assert_eq!(
        causes(&put_json(&h, &status_path, &reissue).await),
        Ok(lines(&[
            "status.certificate: Forbidden: updates may not modify existing certificate content"
        ]))
    );
    for at in [&status_path, &approval_path] {
        let mut removed = issued.clone();
        removed["status"]["conditions"] = json!([]);
        assert_eq!(
            causes(&put_json(&h, at, &removed).await),
            Ok(lines(&[
                r#"status.conditions: Forbidden: updates may not remove a condition of type "Approved""#
            ])),
            "{at}"
        );
    }
    let mut deny = issued.clone();
    deny["status"]["conditions"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "Denied", "status": "True"}));
    assert_eq!(
        causes(&put_json(&h, &approval_path, &deny).await),
        Ok(lines(&[
            r#"status.conditions: Invalid value: "Denied": Approved and Denied conditions are mutually exclusive"#
        ]))
    );
}

// --- ResourceQuota --------------------------------------------------------------------------

const QUOTAS: &str = "/api/v1/namespaces/default/resourcequotas";

fn quota(spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {}, "spec": spec})
}

#[tokio::test]
async fn resource_quotas_are_validated_as_kube_validates_them() {
    let h = server().await;
    for (name, spec) in [
        (
            "compute",
            json!({"hard": {"pods": "10", "requests.cpu": "1.5", "limits.memory": "2Gi",
                            "count/deployments.apps": "2", "example.com/gpu": "4",
                            "hugepages-2Mi": "1Gi", "requests.storage": "10Gi",
                            "services.loadbalancers": "0"}}),
        ),
        (
            "best-effort",
            json!({"hard": {"pods": "5"}, "scopes": ["BestEffort"]}),
        ),
        (
            "scoped",
            json!({"hard": {"pods": "5", "cpu": "2"}, "scopes": ["NotBestEffort", "NotTerminating"],
                   "scopeSelector": {"matchExpressions": [
                       {"scopeName": "PriorityClass", "operator": "In", "values": ["high"]},
                       {"scopeName": "CrossNamespacePodAffinity", "operator": "Exists"}]}}),
        ),
        (
            "volumes",
            json!({"hard": {"persistentvolumeclaims": "3", "requests.storage": "5Gi"},
                   "scopes": ["VolumeAttributesClass"]}),
        ),
    ] {
        let mut q = quota(spec);
        q["metadata"]["name"] = json!(name);
        let r = post_json(&h, QUOTAS, &q).await;
        assert_eq!(r.status.as_u16(), 201, "{name}: {}", r.json());
    }
    let hard = |m: Value| json!({"hard": m});
    let sel = |exprs: Value, hard: Value| json!({"hard": hard, "scopeSelector": {"matchExpressions": exprs}});
    let cases: Vec<(&str, Value, Vec<String>)> = vec![
        (
            "unknown resource",
            hard(json!({"foo": "1"})),
            lines(&[
                r#"spec.hard[foo]: Invalid value: "foo": must be a standard resource type or fully qualified"#,
                r#"spec.hard[foo]: Invalid value: "foo": must be a standard resource for quota"#,
            ]),
        ),
        (
            "storage is not a quota resource",
            hard(json!({"storage": "1Gi"})),
            lines(&[r#"spec.hard[storage]: Invalid value: "storage": must be a standard resource for quota"#]),
        ),
        (
            "resource name",
            hard(json!({"a/b/c": "1"})),
            vec![format!(r#"spec.hard[a/b/c]: Invalid value: "a/b/c": {LABEL_KEY}"#)],
        ),
        (
            "negative",
            hard(json!({"cpu": "-1"})),
            lines(&[r#"spec.hard[cpu]: Invalid value: "-1": must be greater than or equal to 0"#]),
        ),
        (
            "fractional count",
            hard(json!({"pods": "1.5"})),
            lines(&[r#"spec.hard[pods]: Invalid value: "1500m": must be an integer"#]),
        ),
        (
            "fractional extended resource",
            hard(json!({"example.com/gpu": "500m"})),
            lines(&[r#"spec.hard[example.com/gpu]: Invalid value: "500m": must be an integer"#]),
        ),
        (
            "negative fraction",
            hard(json!({"services": "-1.5"})),
            lines(&[
                r#"spec.hard[services]: Invalid value: "-1500m": must be greater than or equal to 0"#,
                r#"spec.hard[services]: Invalid value: "-1500m": must be an integer"#,
            ]),
        ),
        (
            "unknown scope",
            json!({"scopes": ["Foo"]}),
            lines(&[r#"spec.scopes: Invalid value: ["Foo"]: unsupported scope"#]),
        ),
        (
            "scope not for the resource",
            json!({"hard": {"cpu": "1", "pods": "2"}, "scopes": ["BestEffort"]}),
            lines(&[r#"spec.scopes: Invalid value: ["BestEffort"]: unsupported scope applied to resource"#]),
        ),
        (
            "conflicting scopes",
            json!({"hard": {"pods": "2"}, "scopes": ["BestEffort", "NotBestEffort", "Terminating", "NotTerminating"]}),
            lines(&[
                r#"spec.scopes: Invalid value: ["BestEffort","NotBestEffort","Terminating","NotTerminating"]: conflicting scopes"#,
                r#"spec.scopes: Invalid value: ["BestEffort","NotBestEffort","Terminating","NotTerminating"]: conflicting scopes"#,
            ]),
        ),
        (
            "selector scope",
            sel(json!([{"scopeName": "Foo", "operator": "Exists"}]), json!({})),
            lines(&[r#"spec.scopeSelector.matchExpressions.scopeName: Invalid value: "Foo": unsupported scope"#]),
        ),
        (
            "selector scope not for the resource",
            sel(json!([{"scopeName": "BestEffort", "operator": "Exists"}]), json!({"cpu": "1"})),
            lines(&[r#"spec.scopeSelector.matchExpressions: Invalid value: {"MatchExpressions":[{"ScopeName":"BestEffort","Operator":"Exists","Values":null}]}: unsupported scope applied to resource"#]),
        ),
        (
            "selector operator for a pod scope",
            sel(json!([{"scopeName": "Terminating", "operator": "In", "values": ["x"]}]), json!({})),
            lines(&[r#"spec.scopeSelector.matchExpressions.operator: Invalid value: "In": must be 'Exists' when scope is any of ResourceQuotaScopeTerminating, ResourceQuotaScopeNotTerminating, ResourceQuotaScopeBestEffort, ResourceQuotaScopeNotBestEffort or ResourceQuotaScopeCrossNamespacePodAffinity"#]),
        ),
        (
            "selector In without values",
            sel(json!([{"scopeName": "PriorityClass", "operator": "NotIn"}]), json!({})),
            lines(&["spec.scopeSelector.matchExpressions.values: Required value: must be at least one value when `operator` is 'In' or 'NotIn' for scope selector"]),
        ),
        (
            "selector Exists with values",
            sel(json!([{"scopeName": "PriorityClass", "operator": "Exists", "values": ["a"]}]), json!({})),
            lines(&[r#"spec.scopeSelector.matchExpressions.values: Invalid value: ["a"]: must be no value when `operator` is 'Exist' or 'DoesNotExist' for scope selector"#]),
        ),
        (
            "selector operator",
            sel(json!([{"scopeName": "PriorityClass", "operator": "Equals", "values": ["a"]}]), json!({})),
            lines(&[r#"spec.scopeSelector.matchExpressions.operator: Invalid value: "Equals": not a valid selector operator"#]),
        ),
        (
            "selector conflicting scopes",
            sel(json!([{"scopeName": "BestEffort", "operator": "Exists"},
                       {"scopeName": "NotBestEffort", "operator": "Exists"}]), json!({})),
            lines(&["spec.scopeSelector.matchExpressions: Invalid value: null: conflicting scopes"]),
        ),
    ];
    let cases = cases
        .into_iter()
        .map(|(w, s, e)| (w, quota(s), e))
        .collect();
    refused(&h, QUOTAS, cases).await;
}

#[tokio::test]
async fn resource_quota_scopes_are_immutable_and_status_is_validated() {
    let h = server().await;
    let mut q =
        quota(json!({"hard": {"pods": "3"}, "scopes": ["NotBestEffort", "NotTerminating"]}));
    q["metadata"]["name"] = json!("q");
    assert_eq!(post_json(&h, QUOTAS, &q).await.status, 201);
    let path = format!("{QUOTAS}/q");
    for (scopes, expected) in [
        (
            json!(["NotTerminating"]),
            r#"spec.scopes: Invalid value: ["NotTerminating"]: field is immutable"#,
        ),
        (
            Value::Null,
            "spec.scopes: Invalid value: null: field is immutable",
        ),
    ] {
        let mut changed = get(&h, &path).await.json();
        changed["spec"]["scopes"] = scopes;
        assert_eq!(
            causes(&put_json(&h, &path, &changed).await),
            Ok(lines(&[expected]))
        );
    }
    // The same set in another order, and a new selector, are not changes of scope.
    let mut reordered = get(&h, &path).await.json();
    reordered["spec"]["scopes"] = json!(["NotTerminating", "NotBestEffort"]);
    reordered["spec"]["scopeSelector"] = json!({"matchExpressions": [
        {"scopeName": "PriorityClass", "operator": "In", "values": ["low"]}]});
    let r = put_json(&h, &path, &reordered).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.json());
    // Status: the same rules over status.hard, then status.used.
    let mut status = r.json();
    status["status"] = json!({"hard": {"foo": "1"}, "used": {"pods": "-1"}});
    assert_eq!(
        causes(&put_json(&h, &format!("{path}/status"), &status).await),
        Ok(lines(&[
            r#"status.hard[foo]: Invalid value: "foo": must be a standard resource type or fully qualified"#,
            r#"status.hard[foo]: Invalid value: "foo": must be a standard resource for quota"#,
            r#"status.used[pods]: Invalid value: "-1": must be greater than or equal to 0"#,
        ]))
    );
}

// --- LimitRange -----------------------------------------------------------------------------

const LIMIT_RANGES: &str = "/api/v1/namespaces/default/limitranges";

fn limit_range(items: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "LimitRange", "metadata": {}, "spec": {"limits": items}})
}

#[tokio::test]
async fn limit_ranges_are_validated_as_kube_validates_them() {
    let h = server().await;
    let mut ok = limit_range(json!([
        {"type": "Container", "max": {"cpu": "2", "example.com/gpu": "1"},
         "min": {"cpu": "100m", "memory": "64Mi"}, "maxLimitRequestRatio": {"cpu": "20"}},
        {"type": "Pod", "max": {"memory": "4Gi", "hugepages-2Mi": "1Gi", "ephemeral-storage": "1Gi"}},
        {"type": "PersistentVolumeClaim", "min": {"storage": "1Gi"}},
        {"type": "example.com/custom", "max": {"example.com/thing": "1"}},
    ]));
    ok["metadata"]["name"] = json!("ok");
    let r = post_json(&h, LIMIT_RANGES, &ok).await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.json());

    let item = |i: Value| limit_range(json!([i]));
    let cases: Vec<(&str, Value, Vec<String>)> = vec![
        (
            "type",
            item(json!({"type": "Node"})),
            lines(&[r#"spec.limits[0].type: Invalid value: "Node": must be a standard limit type or fully qualified"#]),
        ),
        (
            "type name",
            item(json!({"type": "a b"})),
            vec![format!(r#"spec.limits[0].type: Invalid value: "a b": {NAME_PART}"#)],
        ),
        (
            "repeated type",
            limit_range(json!([{"type": "Pod"}, {"type": "Pod"}])),
            lines(&[r#"spec.limits[1].type: Duplicate value: "Pod""#]),
        ),
        (
            "unknown resource",
            item(json!({"type": "Pod", "max": {"foo": "1"}})),
            lines(&[
                r#"spec.limits[0].max[foo]: Invalid value: "foo": must be a standard resource type or fully qualified"#,
                r#"spec.limits[0].max[foo]: Invalid value: "foo": must be a standard resource for containers"#,
            ]),
        ),
        (
            "not a container resource",
            item(json!({"type": "Pod", "min": {"pods": "1"}})),
            lines(&[r#"spec.limits[0].min[pods]: Invalid value: "pods": must be a standard resource for containers"#]),
        ),
        (
            "not an extended resource",
            item(json!({"type": "Pod", "max": {"requests.example.com/x": "1"}})),
            lines(&[r#"spec.limits[0].max[requests.example.com/x]: Invalid value: "requests.example.com/x": doesn't follow extended resource name standard"#]),
        ),
        (
            // Container items are defaulted first: the bad name is also in default and
            // defaultRequest.
            "unknown container resource",
            item(json!({"type": "Container", "max": {"foo": "1"}})),
            lines(&[
                r#"spec.limits[0].max[foo]: Invalid value: "foo": must be a standard resource type or fully qualified"#,
                r#"spec.limits[0].max[foo]: Invalid value: "foo": must be a standard resource for containers"#,
                r#"spec.limits[0].default[foo]: Invalid value: "foo": must be a standard resource type or fully qualified"#,
                r#"spec.limits[0].default[foo]: Invalid value: "foo": must be a standard resource for containers"#,
                r#"spec.limits[0].defaultRequest[foo]: Invalid value: "foo": must be a standard resource type or fully qualified"#,
                r#"spec.limits[0].defaultRequest[foo]: Invalid value: "foo": must be a standard resource for containers"#,
            ]),
        ),
        (
            "defaults for pods",
            item(json!({"type": "Pod", "default": {"cpu": "1"}, "defaultRequest": {"cpu": "1"}})),
            lines(&[
                "spec.limits[0].default: Forbidden: may not be specified when `type` is 'Pod'",
                "spec.limits[0].defaultRequest: Forbidden: may not be specified when `type` is 'Pod'",
            ]),
        ),
        (
            "claims without storage",
            item(json!({"type": "PersistentVolumeClaim", "max": {"cpu": "1"}})),
            lines(&["spec.limits[0].limits: Required value: either minimum or maximum storage value is required, but neither was provided"]),
        ),
        (
            "min over max",
            item(json!({"type": "Pod", "min": {"cpu": "2"}, "max": {"cpu": "1"}})),
            lines(&[r#"spec.limits[0].min[cpu]: Invalid value: "2": min value 2 is greater than max value 1"#]),
        ),
        (
            "min over default",
            item(json!({"type": "Container", "min": {"cpu": "2"}, "default": {"cpu": "1"}})),
            lines(&[
                r#"spec.limits[0].defaultRequest[cpu]: Invalid value: "1": min value 2 is greater than default request value 1"#,
                r#"spec.limits[0].default[cpu]: Invalid value: "2": min value 2 is greater than default value 1"#,
            ]),
        ),
        (
            "default over max",
            item(json!({"type": "Container", "max": {"memory": "1Gi"}, "default": {"memory": "2Gi"}})),
            lines(&[
                r#"spec.limits[0].defaultRequest[memory]: Invalid value: "2Gi": default request value 2Gi is greater than max value 1Gi"#,
                r#"spec.limits[0].default[memory]: Invalid value: "1Gi": default value 2Gi is greater than max value 1Gi"#,
            ]),
        ),
        (
            "default request over default",
            item(json!({"type": "Container", "default": {"cpu": "500m"}, "defaultRequest": {"cpu": "1"}})),
            lines(&[r#"spec.limits[0].defaultRequest[cpu]: Invalid value: "1": default request value 1 is greater than default limit value 500m"#]),
        ),
        (
            "ratio under one",
            item(json!({"type": "Pod", "maxLimitRequestRatio": {"cpu": "500m"}})),
            lines(&[r#"spec.limits[0].maxLimitRequestRatio[cpu]: Invalid value: "500m": ratio 500m is less than 1"#]),
        ),
        (
            "ratio over max/min",
            item(json!({"type": "Pod", "min": {"cpu": "1"}, "max": {"cpu": "2"}, "maxLimitRequestRatio": {"cpu": "3"}})),
            lines(&[r#"spec.limits[0].maxLimitRequestRatio[cpu]: Invalid value: "3": ratio 3 is greater than max/min = 2.000000"#]),
        ),
        (
            "extended resources do not overcommit",
            item(json!({"type": "Container", "default": {"example.com/gpu": "2"}, "defaultRequest": {"example.com/gpu": "1"}})),
            lines(&[r#"spec.limits[0].defaultRequest[example.com/gpu]: Invalid value: "1": default value 2 must equal to defaultRequest value 1 in example.com/gpu"#]),
        ),
        (
            "huge pages do not overcommit",
            item(json!({"type": "Container", "default": {"hugepages-2Mi": "4Mi"}, "defaultRequest": {"hugepages-2Mi": "2Mi"}})),
            lines(&[r#"spec.limits[0].defaultRequest[hugepages-2Mi]: Invalid value: "2Mi": default value 4Mi must equal to defaultRequest value 2Mi in hugepages-2Mi"#]),
        ),
    ];
    refused(&h, LIMIT_RANGES, cases).await;
}

#[tokio::test]
async fn limit_ranges_get_kubes_container_defaults_a_name_and_put_creates_them() {
    let h = server().await;
    // No name: kube's strategy names it.
    let r = post_json(
        &h,
        LIMIT_RANGES,
        &limit_range(json!([{"type": "Container", "max": {"cpu": "2"},
                              "min": {"cpu": "100m", "memory": "64Mi"}}])),
    )
    .await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.json());
    let got = r.json();
    let name = got["metadata"]["name"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(name).is_ok(), "{got}");
    // default ← max; defaultRequest ← default, then min.
    let item = &got["spec"]["limits"][0];
    assert_eq!(item["default"], json!({"cpu": "2"}), "{got}");
    assert_eq!(
        item["defaultRequest"],
        json!({"cpu": "2", "memory": "64Mi"}),
        "{got}"
    );
    // A Pod item is not defaulted.
    let mut pod = limit_range(json!([{"type": "Pod", "max": {"cpu": "2"}}]));
    pod["metadata"]["name"] = json!("pods");
    let r = put_json(&h, &format!("{LIMIT_RANGES}/pods"), &pod).await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.json());
    assert!(
        r.json()["spec"]["limits"][0].get("default").is_none(),
        "{}",
        r.json()
    );
    // An update is validated as a create is.
    let mut bad = r.json();
    bad["spec"]["limits"][0]["min"] = json!({"cpu": "3"});
    assert_eq!(
        causes(&put_json(&h, &format!("{LIMIT_RANGES}/pods"), &bad).await),
        Ok(lines(&[
            r#"spec.limits[0].min[cpu]: Invalid value: "3": min value 3 is greater than max value 2"#
        ]))
    );
}
