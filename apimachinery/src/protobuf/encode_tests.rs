//! The encoder: exact bytes for small objects, worked out by hand from kube's `generated.proto`
//! field numbers and the gogo marshalling rules, and round trips through the decoder.
#![allow(clippy::unwrap_used)]

use serde_json::json;

use super::*;
use crate::protobuf::{decode_message, decode_object};

/// `decode_object(encode_object(obj)) == obj`, and encoding the decoded object again gives the
/// same bytes.
fn round_trip(obj: Value) -> Vec<u8> {
    let bytes = encode_object(&obj).unwrap();
    let back = decode_object(&bytes).unwrap();
    assert_eq!(back, obj, "round trip of {}", obj["kind"]);
    assert_eq!(encode_object(&back).unwrap(), bytes);
    bytes
}

/// Bytes as written in the tests: groups of hex pairs and "quoted text".
fn wire(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

// --- byte-level --------------------------------------------------------------------------------

#[test]
fn config_map_bytes() {
    let got = encode_object(&json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "a", "namespace": "b"},
        "data": {"k": "v"},
    }))
    .unwrap();
    // Not written: ObjectMeta's deletionTimestamp (9) and deletionGracePeriodSeconds (10), nil
    // pointers, and its empty labels ... managedFields; ConfigMap's empty binaryData (3) and its
    // nil immutable (4).
    let want = wire(&[
        b"k8s\0",             // magic
        b"\x0a\x0f",          // Unknown.typeMeta (1), 15 bytes:
        b"\x0a\x02v1",        //   apiVersion (1)
        b"\x12\x09ConfigMap", //   kind (2)
        b"\x12\x1c",          // Unknown.raw (2), 28 bytes: the ConfigMap
        b"\x0a\x12",          //   metadata (1): ObjectMeta, 18 bytes
        b"\x0a\x01a",         //     name (1)
        b"\x12\x00",          //     generateName (2) "": a plain string, always written
        b"\x1a\x01b",         //     namespace (3)
        b"\x22\x00",          //     selfLink (4) ""
        b"\x2a\x00",          //     uid (5) ""
        b"\x32\x00",          //     resourceVersion (6) ""
        b"\x38\x00",          //     generation (7) 0
        b"\x42\x00",          //     creationTimestamp (8): zero Time, an empty message
        b"\x12\x06",          //   data (2): one map entry, 6 bytes
        b"\x0a\x01k",         //     key (1)
        b"\x12\x01v",         //     value (2)
        b"\x1a\x00",          // Unknown.contentEncoding (3) ""
        b"\x22\x00",          // Unknown.contentType (4) ""
    ]);
    assert_eq!(got, want);
    assert_eq!(
        decode_object(&got).unwrap(),
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "a", "namespace": "b"},
            "data": {"k": "v"},
        })
    );
}

#[test]
fn status_bytes() {
    let status = json!({
        "apiVersion": "v1",
        "kind": "Status",
        "metadata": {},
        "status": "Failure",
        "message": "gone",
        "reason": "NotFound",
        "details": {
            "name": "x",
            "kind": "pods",
            "causes": [{"reason": "R", "message": "m", "field": "f"}],
        },
        "code": 404,
    });
    let got = encode_object(&status).unwrap();
    let want = wire(&[
        b"k8s\0",            // magic
        b"\x0a\x0c",         // typeMeta (1), 12 bytes:
        b"\x0a\x02v1",       //   apiVersion (1)
        b"\x12\x06Status",   //   kind (2)
        b"\x12\x40",         // raw (2), 64 bytes: meta/v1 Status (v1 has none of its own)
        b"\x0a\x06",         //   metadata (1): ListMeta, 6 bytes
        b"\x0a\x00",         //     selfLink (1) ""
        b"\x12\x00",         //     resourceVersion (2) ""
        b"\x1a\x00",         //     continue (3) "" (remainingItemCount (4): nil)
        b"\x12\x07Failure",  //   status (2)
        b"\x1a\x04gone",     //   message (3)
        b"\x22\x08NotFound", //   reason (4)
        b"\x2a\x1a",         //   details (5): *StatusDetails, 26 bytes
        b"\x0a\x01x",        //     name (1)
        b"\x12\x00",         //     group (2) ""
        b"\x1a\x04pods",     //     kind (3)
        b"\x22\x09",         //     causes (4): one StatusCause, 9 bytes
        b"\x0a\x01R",        //       reason (1)
        b"\x12\x01m",        //       message (2)
        b"\x1a\x01f",        //       field (3)
        b"\x28\x00",         //     retryAfterSeconds (5) 0
        b"\x32\x00",         //     uid (6) ""
        b"\x30\x94\x03",     //   code (6): 404 = 0b11_0010100 -> 0x94 0x03
        b"\x1a\x00\x22\x00", // contentEncoding (3), contentType (4)
    ]);
    assert_eq!(got, want);
    // The decoder drops the zero strings again (omitempty), as Go's JSON encoder does.
    assert_eq!(decode_object(&got).unwrap(), status);
}

#[test]
fn list_bytes() {
    let list = json!({
        "apiVersion": "v1",
        "kind": "ConfigMapList",
        "metadata": {"resourceVersion": "5", "continue": "c", "remainingItemCount": 2},
        "items": [{"metadata": {"name": "a"}}],
    });
    let got = encode_object(&list).unwrap();
    let want = wire(&[
        b"k8s\0",                 // magic
        b"\x0a\x13",              // typeMeta (1), 19 bytes:
        b"\x0a\x02v1",            //   apiVersion (1)
        b"\x12\x0dConfigMapList", //   kind (2)
        b"\x12\x21",              // raw (2), 33 bytes: ConfigMapList
        b"\x0a\x0a",              //   metadata (1): ListMeta, 10 bytes
        b"\x0a\x00",              //     selfLink (1) ""
        b"\x12\x015",             //     resourceVersion (2)
        b"\x1a\x01c",             //     continue (3)
        b"\x20\x02",              //     remainingItemCount (4): *int64, set
        b"\x12\x13",              //   items (2): a ConfigMap, 19 bytes (no apiVersion/kind)
        b"\x0a\x11",              //     metadata (1): ObjectMeta, 17 bytes
        b"\x0a\x01a",             //       name (1)
        b"\x12\x00\x1a\x00",      //       generateName (2), namespace (3) ""
        b"\x22\x00\x2a\x00",      //       selfLink (4), uid (5) ""
        b"\x32\x00",              //       resourceVersion (6) ""
        b"\x38\x00",              //       generation (7) 0
        b"\x42\x00",              //       creationTimestamp (8): zero Time
        b"\x1a\x00\x22\x00",      // contentEncoding (3), contentType (4)
    ]);
    assert_eq!(got, want);
    assert_eq!(
        decode_object(&got).unwrap()["metadata"],
        json!({"resourceVersion": "5", "continue": "c", "remainingItemCount": 2})
    );
}

#[test]
fn watch_frame_bytes() {
    let object = encode_object(&json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "a", "namespace": "b"},
        "data": {"k": "v"},
    }))
    .unwrap();
    assert_eq!(object.len(), 55);
    let got = encode_watch_event("ADDED", &object);
    let want = wire(&[
        b"\x00\x00\x00\x42", // frame length: 4 bytes big-endian, 66; then a meta/v1 WatchEvent
        b"\x0a\x05ADDED",    // type (1)   (the raw serializer: no magic, no envelope)
        b"\x12\x39",         // object (2): RawExtension, 57 bytes
        b"\x0a\x37",         //   raw (1): 55 bytes, the object with magic and envelope
        &object,
    ]);
    assert_eq!(got, want);
    // The embedded object decodes as any body does.
    let event = decode_message("k8s.io.apimachinery.pkg.apis.meta.v1.WatchEvent", &got[4..]);
    assert_eq!(
        event.unwrap(),
        json!({
            "type": "ADDED",
            "object": {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "a", "namespace": "b"},
                "data": {"k": "v"},
            },
        })
    );
}

#[test]
fn negative_int32_is_a_ten_byte_varint() {
    let got = encode_message(
        "k8s.io.apimachinery.pkg.apis.meta.v1.Status",
        &json!({"code": -1}),
    );
    let want = wire(&[
        b"\x0a\x06\x0a\x00\x12\x00\x1a\x00", // metadata (1): the zero ListMeta
        b"\x12\x00\x1a\x00\x22\x00",         // status (2), message (3), reason (4) ""
        // code (6) = -1: the int32 sign-extended to 64 bits, a 10-byte varint
        b"\x30\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
    ]);
    assert_eq!(got.unwrap(), want);
}

#[test]
fn repeated_scalars_are_not_packed_and_pointers_keep_zero() {
    let got = encode_message(
        "k8s.io.api.core.v1.PodSecurityContext",
        &json!({"runAsUser": 0, "supplementalGroups": [1, 2]}),
    );
    let want = [
        0x10, 0x00, // runAsUser (2): *int64 set to 0, written
        0x20, 0x01, // supplementalGroups (4): one key per element
        0x20, 0x02,
    ];
    assert_eq!(got.unwrap(), want);
}

#[test]
fn map_keys_sorted_and_nil_bytes_values() {
    let got = encode_message(
        "k8s.io.api.core.v1.Secret",
        &json!({"data": {"c": "", "b": "AQ==", "a": null}, "type": "Opaque"}),
    );
    let want = wire(&[
        b"\x0a\x10",                         // metadata (1): absent, the zero ObjectMeta
        b"\x0a\x00\x12\x00\x1a\x00\x22\x00", //   fields 1-4 ""
        b"\x2a\x00\x32\x00\x38\x00\x42\x00", //   uid, resourceVersion, generation, time
        b"\x12\x03\x0a\x01a",                // data (2) "a": a nil []byte, the key alone
        b"\x12\x06\x0a\x01b\x12\x01\x01",    // data "b" = [0x01]
        b"\x12\x05\x0a\x01c\x12\x00",        // data "c" = []byte{}: written, empty
        b"\x1a\x06Opaque",                   // type (3)
    ]);
    assert_eq!(got.unwrap(), want);
}

#[test]
fn times_and_micro_times() {
    let enc = |t: &str, v: Value| {
        encode_message(&format!("k8s.io.apimachinery.pkg.apis.meta.v1.{t}"), &v).unwrap()
    };
    // 2024-01-02T03:04:05Z = 1704164645 s = 0x6593_7e25 -> varint a5 fa cd ac 06.
    let seconds = [0x08, 0xa5, 0xfa, 0xcd, 0xac, 0x06];
    // Time: seconds (1), then nanos (2) always 0: ProtoTime drops them.
    let time = [&seconds[..], &[0x10, 0x00]].concat();
    assert_eq!(enc("Time", json!("2024-01-02T03:04:05Z")), time);
    assert_eq!(enc("Time", json!("2024-01-02T03:04:05.999Z")), time);
    assert_eq!(enc("Time", json!("2024-01-02T04:04:05+01:00")), time);
    // Go's zero time and null: nothing.
    assert_eq!(enc("Time", json!("0001-01-01T00:00:00Z")), Vec::<u8>::new());
    assert_eq!(enc("Time", Value::Null), Vec::<u8>::new());
    // MicroTime keeps microseconds: 123456000 ns -> varint 80 94 ef 3a.
    let micro = [&seconds[..], &[0x10, 0x80, 0x94, 0xef, 0x3a]].concat();
    assert_eq!(
        enc("MicroTime", json!("2024-01-02T03:04:05.123456Z")),
        micro
    );
    assert_eq!(
        enc("MicroTime", json!("2024-01-02T03:04:05.123456789Z")),
        micro
    );
    assert_eq!(enc("MicroTime", json!("2024-01-02T03:04:05Z")), time);
    // Before 1970: negative seconds, a 10-byte varint.
    assert_eq!(
        enc("Time", json!("1969-12-31T23:59:59Z")),
        [0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x10, 0x00]
    );
    for bad in [
        "",
        "2024-01-02",
        "2024-13-02T03:04:05Z",
        "2024-02-30T03:04:05Z",
        "2024-01-02 03:04:05Z",
    ] {
        assert!(
            matches!(
                encode_message("k8s.io.apimachinery.pkg.apis.meta.v1.Time", &json!(bad)),
                Err(ProtobufError::Malformed(_))
            ),
            "{bad}"
        );
    }
}

#[test]
fn special_messages() {
    let enc = |t: &str, v: Value| encode_message(t, &v).unwrap();
    const IOS: &str = "k8s.io.apimachinery.pkg.util.intstr.IntOrString";
    // IntOrString: type (1), intVal (2), strVal (3), all three always.
    assert_eq!(
        enc(IOS, json!(8080)),
        [0x08, 0x00, 0x10, 0x90, 0x3f, 0x1a, 0x00]
    );
    assert_eq!(
        enc(IOS, json!("http")),
        [&[0x08, 0x01, 0x10, 0x00, 0x1a, 0x04][..], b"http"].concat()
    );
    // Quantity: the canonical string (Quantity.String()).
    const Q: &str = "k8s.io.apimachinery.pkg.api.resource.Quantity";
    assert_eq!(enc(Q, json!("100m")), [&[0x0a, 0x04][..], b"100m"].concat());
    assert_eq!(
        enc(Q, json!("1.5Gi")),
        [&[0x0a, 0x06][..], b"1536Mi"].concat()
    );
    assert_eq!(enc(Q, json!("0.5")), [&[0x0a, 0x04][..], b"500m"].concat());
    assert_eq!(enc(Q, json!(2)), [0x0a, 0x01, b'2']);
    assert_eq!(enc(Q, Value::Null), [0x0a, 0x01, b'0']);
    // Duration: nanoseconds. 90 s = 90_000_000_000 ns = 0x14_f46b_0400: in 7-bit groups
    // (low first) 0x00 0x08 0x2c 0x23 0x4f 0x02.
    const D: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.Duration";
    assert_eq!(
        enc(D, json!("1m30s")),
        [0x08, 0x80, 0x88, 0xac, 0xa3, 0xcf, 0x02]
    );
    // RawExtension: the compact JSON text; null is an empty message.
    const RAW: &str = "k8s.io.apimachinery.pkg.runtime.RawExtension";
    assert_eq!(
        enc(RAW, json!({"a": [1, true]})),
        [&[0x0a, 0x0e][..], br#"{"a":[1,true]}"#].concat()
    );
    assert_eq!(enc(RAW, Value::Null), Vec::<u8>::new());
    // A named []string (Verbs): the wrapper message, one item per string.
    assert_eq!(
        enc(
            "k8s.io.apimachinery.pkg.apis.meta.v1.Verbs",
            json!(["get", ""])
        ),
        [&[0x0a, 0x03][..], b"get", &[0x0a, 0x00]].concat()
    );
}

#[test]
fn json_schema_unions() {
    const V1: &str = "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.";
    let enc = |t: &str, v: Value| encode_message(&format!("{V1}{t}"), &v).unwrap();
    // OrBool {allows = 1, schema = 2}: false, and a schema (which sets allows).
    assert_eq!(enc("JSONSchemaPropsOrBool", json!(false)), [0x08, 0x00]);
    let schema = enc("JSONSchemaProps", json!({"type": "string"}));
    let want = [&[0x08, 0x01, 0x12, schema.len() as u8][..], &schema].concat();
    assert_eq!(
        enc("JSONSchemaPropsOrBool", json!({"type": "string"})),
        want
    );
    // OrArray {schema = 1, jSONSchemas = 2}.
    let one = [&[0x0a, schema.len() as u8][..], &schema].concat();
    assert_eq!(
        enc("JSONSchemaPropsOrArray", json!({"type": "string"})),
        one
    );
    let two = [&[0x12, schema.len() as u8][..], &schema].concat();
    assert_eq!(
        enc("JSONSchemaPropsOrArray", json!([{"type": "string"}])),
        two
    );
    // Any other JSON value leaves both unset, as Go's UnmarshalJSON does.
    assert_eq!(enc("JSONSchemaPropsOrArray", json!("x")), Vec::<u8>::new());
    // OrStringArray {schema = 1, property = 2}.
    assert_eq!(
        enc("JSONSchemaPropsOrStringArray", json!(["a", "b"])),
        [0x12, 0x01, b'a', 0x12, 0x01, b'b']
    );
    // The schema itself: every plain string and bool written, pointers only when set.
    assert_eq!(
        schema,
        wire(&[
            &[0x0a, 0x00],       // id (1)
            &[0x12, 0x00],       // $schema (2)  ($ref (3): *string, nil)
            &[0x22, 0x00],       // description (4)
            b"\x2a\x06string",   // type (5)
            &[0x32, 0x00],       // format (6)
            &[0x3a, 0x00],       // title (7)  (default (8), maximum (9): nil)
            &[0x50, 0x00],       // exclusiveMaximum (10) false
            &[0x60, 0x00],       // exclusiveMinimum (12) false
            &[0x7a, 0x00],       // pattern (15)
            &[0x90, 0x01, 0x00], // uniqueItems (18): key 18 << 3 = 144 = 0x90 0x01
            &[0xa8, 0x02, 0x00], // nullable (37)
            &[0xb8, 0x02, 0x00], // x-kubernetes-embedded-resource (39)
            &[0xc0, 0x02, 0x00], // x-kubernetes-int-or-string (40)
        ])
    );
    // A pointer set to its zero value is written: maximum (9) = 0.0 as fixed64.
    let with_max = enc("JSONSchemaProps", json!({"type": "string", "maximum": 0}));
    assert_eq!(&with_max[..18], &schema[..18]);
    assert_eq!(&with_max[18..27], &[0x49, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(
        &enc("JSONSchemaProps", json!({"maximum": 1.5}))[12..21],
        &[0x49, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f] // 1.5 = 0x3ff8_0000_0000_0000, little-endian
    );
}

// --- round trips --------------------------------------------------------------------------------

#[test]
fn pod_round_trip() {
    round_trip(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "web-0",
            "namespace": "default",
            "uid": "5f0c7a1e-0000-4000-8000-000000000001",
            "resourceVersion": "42",
            "generation": 3,
            "creationTimestamp": "2024-01-02T03:04:05Z",
            "deletionTimestamp": "2024-01-03T00:00:00Z",
            "deletionGracePeriodSeconds": 0,
            "labels": {"app": "web", "tier": "front"},
            "annotations": {"note": ""},
            "ownerReferences": [{
                "apiVersion": "apps/v1",
                "kind": "StatefulSet",
                "name": "web",
                "uid": "u1",
                "controller": true,
                "blockOwnerDeletion": false,
            }],
            "finalizers": ["a/b"],
            "managedFields": [{
                "manager": "kubectl",
                "operation": "Apply",
                "apiVersion": "v1",
                "time": "2024-01-02T03:04:05Z",
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}},
            }],
        },
        "spec": {
            "containers": [{
                "name": "app",
                "image": "nginx:1.27",
                "args": ["-g", "daemon off;"],
                "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"}],
                "env": [{"name": "A", "value": "1"}, {
                    "name": "B",
                    "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}},
                }],
                "resources": {
                    "limits": {"cpu": "500m", "memory": "128Mi"},
                    "requests": {"cpu": "250m", "memory": "64Mi"},
                },
                "livenessProbe": {
                    "httpGet": {"path": "/healthz", "port": "http", "scheme": "HTTP"},
                    "initialDelaySeconds": 3,
                    "timeoutSeconds": 1,
                    "periodSeconds": 10,
                    "successThreshold": 1,
                    "failureThreshold": 3,
                },
                "readinessProbe": {
                    "tcpSocket": {"port": 8080},
                    "timeoutSeconds": 1,
                    "periodSeconds": 10,
                    "successThreshold": 1,
                    "failureThreshold": 3,
                },
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
                "imagePullPolicy": "IfNotPresent",
                "securityContext": {"runAsUser": 0, "allowPrivilegeEscalation": false},
            }],
            "volumes": [{"name": "cfg", "configMap": {"name": "cfg", "defaultMode": 420}}],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "nodeName": "node-1",
            "securityContext": {"supplementalGroups": [1000, 2000]},
            "schedulerName": "default-scheduler",
            "tolerations": [{
                "key": "node.kubernetes.io/not-ready",
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": 300,
            }],
            "priority": 0,
            "enableServiceLinks": true,
        },
        "status": {
            "phase": "Running",
            "conditions": [{
                "type": "Ready",
                "status": "True",
                "lastTransitionTime": "2024-01-02T03:04:06Z",
            }],
            "podIP": "10.0.0.5",
            "podIPs": [{"ip": "10.0.0.5"}],
            "startTime": "2024-01-02T03:04:05Z",
            "containerStatuses": [{
                "name": "app",
                "state": {"running": {"startedAt": "2024-01-02T03:04:06Z"}},
                "lastState": {},
                "ready": true,
                "restartCount": 0,
                "image": "nginx:1.27",
                "imageID": "",
                "started": true,
            }],
            "qosClass": "Burstable",
        },
    }));
}

#[test]
fn deployment_round_trip() {
    round_trip(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "generation": 1},
        "spec": {
            "replicas": 0,
            "selector": {
                "matchLabels": {"app": "web"},
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}],
            },
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": "nginx", "resources": {}}]},
            },
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": 1},
            },
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600,
        },
        "status": {
            "observedGeneration": 1,
            "conditions": [{
                "type": "Available",
                "status": "True",
                "lastUpdateTime": "2024-01-02T03:04:05Z",
                "lastTransitionTime": "2024-01-02T03:04:05Z",
                "reason": "MinimumReplicasAvailable",
                "message": "Deployment has minimum availability.",
            }],
        },
    }));
}

#[test]
fn service_round_trip() {
    round_trip(json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "ports": [
                {"name": "http", "protocol": "TCP", "port": 80, "targetPort": "http", "nodePort": 30080},
                {"name": "metrics", "protocol": "TCP", "port": 9090, "targetPort": 9090},
            ],
            "selector": {"app": "web"},
            "clusterIP": "10.96.0.10",
            "clusterIPs": ["10.96.0.10"],
            "type": "NodePort",
            "sessionAffinity": "None",
            "externalTrafficPolicy": "Cluster",
            "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack",
            "internalTrafficPolicy": "Cluster",
        },
        "status": {"loadBalancer": {}},
    }));
}

#[test]
fn config_map_and_secret_round_trip() {
    round_trip(json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cfg", "namespace": "default"},
        "data": {"a": "1", "empty": ""},
        "binaryData": {"bin": "AAEC/w==", "none": ""},
        "immutable": false,
    }));
    round_trip(json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s", "namespace": "default"},
        "data": {"password": "aHVudGVyMg==", "token": "AA=="},
        "type": "Opaque",
    }));
}

#[test]
fn crd_round_trip() {
    let schema = json!({
        "type": "object",
        "required": ["spec"],
        "properties": {
            "spec": {
                "type": "object",
                "description": "the spec",
                "properties": {
                    "replicas": {"type": "integer", "format": "int32", "minimum": 0, "maximum": 1500, "default": 1},
                    "ratio": {"type": "number", "multipleOf": 0.5, "exclusiveMaximum": true},
                    "mode": {"type": "string", "enum": ["a", "b", null], "pattern": "^[a-z]+$", "maxLength": 10},
                    "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 5, "x-kubernetes-list-type": "set"},
                    "pairs": {"type": "array", "items": [{"type": "string"}, {"type": "integer"}]},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "closed": {"type": "object", "additionalProperties": false},
                    "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                    "port": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]},
                    "example": {"type": "object", "example": {"k": [1, "two"]}, "nullable": true},
                },
                "dependencies": {"a": ["b", "c"], "d": {"required": ["e"]}},
                "x-kubernetes-validations": [{"rule": "self.replicas >= 0", "message": "non-negative"}],
            },
        },
    });
    round_trip(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com", "generation": 1},
        "spec": {
            "group": "example.com",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList", "shortNames": ["wd"]},
            "scope": "Namespaced",
            "versions": [{
                "name": "v1",
                "served": true,
                "storage": true,
                "schema": {"openAPIV3Schema": schema},
                "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}},
                "additionalPrinterColumns": [{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}],
            }],
            "conversion": {"strategy": "None"},
        },
        "status": {
            "conditions": [{"type": "Established", "status": "True", "lastTransitionTime": "2024-01-02T03:04:05Z", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"}],
            "acceptedNames": {"plural": "widgets", "kind": "Widget"},
            "storedVersions": ["v1"],
        },
    }));
}

#[test]
fn pod_list_round_trip() {
    round_trip(json!({
        "apiVersion": "v1",
        "kind": "PodList",
        "metadata": {"resourceVersion": "100", "continue": "eyJ2IjoibWV0YS5rOHMuaW8vdjEifQ", "remainingItemCount": 0},
        "items": [
            {"metadata": {"name": "a", "namespace": "default"}, "spec": {"containers": [{"name": "c", "image": "i", "resources": {}}]}, "status": {}},
            {"metadata": {"name": "b", "namespace": "default"}, "spec": {"containers": [{"name": "c", "image": "i", "resources": {}}]}, "status": {"phase": "Pending"}},
        ],
    }));
}

#[test]
fn status_round_trip() {
    round_trip(json!({
        "apiVersion": "v1",
        "kind": "Status",
        "metadata": {},
        "status": "Failure",
        "message": "Pod \"x\" is invalid",
        "reason": "Invalid",
        "details": {
            "name": "x",
            "kind": "pods",
            "causes": [
                {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.containers"},
                {"reason": "FieldValueInvalid", "message": "bad"},
            ],
            "retryAfterSeconds": 1,
        },
        "code": 422,
    }));
}

#[test]
fn event_round_trip() {
    round_trip(json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "web.17a", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web", "uid": "u", "apiVersion": "v1", "resourceVersion": "1", "fieldPath": "spec.containers{app}"},
        "reason": "Started",
        "message": "Started container app",
        "source": {"component": "kubelet", "host": "node-1"},
        "firstTimestamp": "2024-01-02T03:04:05Z",
        "lastTimestamp": "2024-01-02T03:04:06Z",
        "count": 2,
        "type": "Normal",
        "eventTime": "2024-01-02T03:04:05.123456Z",
        "series": {"count": 2, "lastObservedTime": "2024-01-02T03:04:06.000001Z"},
        "action": "Start",
        "reportingComponent": "kubelet",
        "reportingInstance": "node-1",
    }));
    round_trip(json!({
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": "e", "namespace": "default"},
        "eventTime": "2024-01-02T03:04:05.000007Z",
        "reportingController": "k",
        "reportingInstance": "i",
        "action": "A",
        "reason": "R",
        "regarding": {"kind": "Pod", "name": "p"},
        "deprecatedSource": {},
    }));
}

#[test]
fn api_group_list_round_trip() {
    round_trip(json!({
        "apiVersion": "v1",
        "kind": "APIGroupList",
        "groups": [{
            "name": "apps",
            "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
            "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"},
        }],
    }));
}

// --- errors -------------------------------------------------------------------------------------

#[test]
fn table_and_custom_kinds_are_not_encodable() {
    // kube's Table is `+protobuf=false`: served in JSON only.
    let table = json!({
        "apiVersion": "meta.k8s.io/v1",
        "kind": "Table",
        "columnDefinitions": [{"name": "Name", "type": "string", "format": "name", "description": "", "priority": 0}],
        "rows": [{"cells": ["a"], "object": {"kind": "PartialObjectMetadata"}}],
    });
    assert!(!is_encodable("meta.k8s.io/v1", "Table"));
    assert!(matches!(
        encode_object(&table),
        Err(ProtobufError::UnknownKind { .. })
    ));
    assert!(!is_encodable("example.com/v1", "Widget"));
    assert!(matches!(
        encode_object(&json!({"apiVersion": "example.com/v1", "kind": "Widget"})),
        Err(ProtobufError::UnknownKind { .. })
    ));
    assert!(is_encodable("v1", "Pod"));
    assert!(is_encodable("v1", "PodList"));
    assert!(is_encodable("v1", "Status"));
    assert!(is_encodable("apps/v1", "Deployment"));
    assert!(is_encodable("meta.k8s.io/v1", "PartialObjectMetadataList"));
    assert!(matches!(
        encode_object(&json!({"metadata": {}})),
        Err(ProtobufError::MissingKind { .. })
    ));
    assert!(matches!(
        encode_message("k8s.io.api.core.v1.Nope", &json!({})),
        Err(ProtobufError::UnknownMessage(_))
    ));
}

#[test]
fn wrong_json_types_are_errors() {
    let cases = [
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": "x"}),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": 1}}),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "data": ["a"]}),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": 1}}),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "binaryData": {"a": "not base64!"}}),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "immutable": "yes"}),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"finalizers": "a"}}),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generation": 1.5}}),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"creationTimestamp": 5}}),
        json!({"apiVersion": "v1", "kind": "Status", "code": 4_294_967_296_i64}),
        json!({"apiVersion": "v1", "kind": "Service", "spec": {"ports": [{"targetPort": true}]}}),
        json!({"apiVersion": "v1", "kind": "Pod", "spec": {"activeDeadlineSeconds": "1"}}),
    ];
    for case in cases {
        let err = encode_object(&case).unwrap_err();
        assert!(matches!(err, ProtobufError::Malformed(_)), "{case}: {err}");
    }
    let err =
        encode_object(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": 1}}));
    assert_eq!(
        err.unwrap_err().to_string(),
        "unable to decode protobuf: invalid value for ObjectMeta.name: expected a string, got a number"
    );
}

#[test]
fn unknown_keys_are_ignored() {
    let plain =
        encode_object(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}));
    let extra = encode_object(&json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "a", "bogus": [1, 2]},
        "whatever": {"x": 1},
    }));
    assert_eq!(plain.unwrap(), extra.unwrap());
}

#[test]
fn nesting_is_bounded() {
    let mut schema = json!({"type": "string"});
    for _ in 0..200 {
        schema = json!({"type": "object", "properties": {"x": schema}});
    }
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "spec": {"versions": [{"name": "v1", "schema": {"openAPIV3Schema": schema}}]},
    });
    assert_eq!(encode_object(&crd), Err(ProtobufError::TooDeep));
}

// --- lookups and the writer ---------------------------------------------------------------------

#[test]
fn every_field_is_found_by_its_json_name() {
    for (index, msg) in schema::MESSAGES.iter().enumerate() {
        // Positions are stored in a byte.
        assert!(msg.fields.len() < 255, "{}", msg.name);
        let (fields, table) = FIELD_INDEX.of(index);
        for (pos, field) in msg.fields.iter().enumerate() {
            if !field.inline {
                assert_eq!(
                    find(fields, table, field.json),
                    Some(pos),
                    "{}.{}",
                    msg.name,
                    field.json
                );
            }
        }
        for unknown in ["", "apiVersion", "kind", "no such field"] {
            if msg.fields.iter().all(|f| f.inline || f.json != unknown) {
                assert_eq!(find(fields, table, unknown), None, "{}", msg.name);
            }
        }
    }
}

/// A RawExtension's bytes: raw (1) with the text.
fn raw_extension(text: &[u8]) -> Vec<u8> {
    let mut out = vec![0x0a];
    let mut n = text.len();
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
    out.extend_from_slice(text);
    out
}

#[test]
fn raw_json_is_written_as_serde_json_writes_it() {
    let every_ascii: String = (0u8..0x80).map(char::from).collect();
    let mut values = vec![
        json!(null),
        json!(true),
        json!(false),
        json!(0),
        json!(7),
        json!(-1),
        json!(i64::MIN),
        json!(i64::MAX),
        json!(u64::MAX),
        json!(1.5),
        json!(-0.0),
        json!(1e300),
        json!(0.1),
        json!(""),
        json!("plain"),
        json!(every_ascii),
        json!("é ✓ 😀 \u{7f} \u{2028}"),
        json!([]),
        json!({}),
        json!([[], {}, [1, [2, [3]]], {"a": {}}]),
        json!({"f:metadata": {"f:labels": {".": {}, "f:app": {}}},
               "f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {".": {}, "f:image": {}}}}}),
        json!({"": 1, "a\"b": "c\\d", "tab\there": ["\n", "\r", "\u{8}", "\u{c}", "\u{1}"]}),
    ];
    // Each character to escape at every position of strings around the 8-byte words.
    for len in 0..20 {
        for at in 0..len {
            for special in ['"', '\\', '\n', '\u{0}', '\u{1f}'] {
                let text: String = (0..len)
                    .map(|i| if i == at { special } else { 'x' })
                    .collect();
                values.push(json!(text));
            }
        }
        values.push(json!("y".repeat(len)));
    }
    for v in values {
        let got = encode_message("k8s.io.apimachinery.pkg.runtime.RawExtension", &v).unwrap();
        let want = if v.is_null() {
            vec![]
        } else {
            raw_extension(&serde_json::to_vec(&v).unwrap())
        };
        assert_eq!(got, want, "{v}");
    }
}

#[test]
fn canonical_quantities_are_recognised_as_they_print() {
    // The empty number too.
    let numbers = "0 1 5 10 12 100 999 1000 1001 1010 1100 1024 1536 2048 3000 3072 10000 123000 \
                   123456789 1234567890 01 1.5 0.5 -1 +1 .5 1e3";
    let numbers = numbers.split_whitespace().chain([""]);
    let suffixes = [
        "", "n", "u", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "e3",
        "E3", "x", " ",
    ];
    for number in numbers {
        for suffix in suffixes {
            let text = format!("{number}{suffix}");
            let printed = match crate::quantity::Quantity::parse(&text) {
                Some(q) => q.to_string(),
                None => text.clone(),
            };
            assert_eq!(canonical_quantity(&text), printed, "{text}");
            if is_canonical_quantity(&text) {
                assert_eq!(printed, text);
            }
        }
    }
}

#[test]
fn writer_grows_backwards() {
    // A buffer of one byte grows again and again. Each write comes before the earlier ones:
    // the last pair first.
    let mut w = Back::with_capacity(1);
    for i in 0..1000u32 {
        w.varint(u64::from(i));
        w.put(b"ab");
    }
    let mut want = Vec::new();
    for i in (0..1000u32).rev() {
        want.extend_from_slice(b"ab");
        let mut n = i;
        while n >= 0x80 {
            want.push((n as u8) | 0x80);
            n >>= 7;
        }
        want.push(n as u8);
    }
    assert_eq!(w.finish(), want);
}

// --- Go formats ---------------------------------------------------------------------------------

#[test]
fn durations_parse_like_go() {
    let cases = [
        ("0", 0),
        ("0s", 0),
        ("1ns", 1),
        ("1.5s", 1_500_000_000),
        ("1h30m", 5_400_000_000_000),
        ("1h0m0s", 3_600_000_000_000),
        ("-1m", -60_000_000_000),
        ("+2s", 2_000_000_000),
        ("300ms", 300_000_000),
        ("2us", 2_000),
        ("2\u{b5}s", 2_000),
        ("2\u{3bc}s", 2_000),
        (".5s", 500_000_000),
        ("1.s", 1_000_000_000),
        ("1m30.25s", 90_250_000_000),
        ("2562047h47m16.854775807s", i64::MAX),
        ("-2562047h47m16.854775808s", i64::MIN),
    ];
    for (text, nanos) in cases {
        assert_eq!(parse_duration(text), Some(nanos), "{text}");
    }
    for bad in [
        "",
        "1",
        "s",
        ".s",
        "1x",
        "1.5",
        "-",
        "2562047h47m16.854775808s",
        "1s2",
    ] {
        assert_eq!(parse_duration(bad), None, "{bad}");
    }
}

#[test]
fn times_parse_like_go() {
    assert_eq!(parse_time("1970-01-01T00:00:00Z"), Some((0, 0)));
    assert_eq!(
        parse_time("2000-02-29T12:00:00.5+05:30"),
        Some((951_825_600 - 19_800, 500_000_000))
    );
    assert_eq!(parse_time("0001-01-01T00:00:00Z"), Some((GO_ZERO_TIME, 0)));
    assert_eq!(
        parse_time("9999-12-31T23:59:59Z"),
        Some((253_402_300_799, 0))
    );
    assert_eq!(parse_time("2023-02-29T00:00:00Z"), None);
    assert_eq!(parse_time("2024-01-01T24:00:00Z"), None);
    assert_eq!(parse_time("2024-01-01T00:00:00"), None);
    assert_eq!(parse_time("2024-01-01T00:00:00.Z"), None);
    assert_eq!(parse_time("2024-0a-01T00:00:00Z"), None);
    assert_eq!(parse_time("+024-01-01T00:00:00Z"), None);
    assert_eq!(parse_time("2024-01-01T00:00:0 Z"), None);
}

/// A managedFields entry's FieldsV1 bytes are structured-merge-diff's text: ports by number
/// (80 before 443, which a map's byte order puts first), HTML characters escaped.
#[test]
fn fields_v1_bytes_are_in_structured_merge_diffs_order() {
    let bytes = encode_object(&json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "s", "managedFields": [{
            "manager": "m",
            "operation": "Update",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:metadata": {"f:annotations": {"f:a<b": {}}}, "f:spec": {"f:ports": {
                "k:{\"port\":443,\"protocol\":\"TCP\"}": {".": {}},
                "k:{\"port\":80,\"protocol\":\"TCP\"}": {".": {}},
            }}},
        }]},
    }))
    .unwrap();
    let text = concat!(
        r#"{"f:metadata":{"f:annotations":{"f:a\u003cb":{}}},"f:spec":{"f:ports":{"#,
        r#""k:{\"port\":80,\"protocol\":\"TCP\"}":{".":{}},"#,
        r#""k:{\"port\":443,\"protocol\":\"TCP\"}":{".":{}}}}}"#
    );
    assert!(
        bytes.windows(text.len()).any(|w| w == text.as_bytes()),
        "{}",
        String::from_utf8_lossy(&bytes)
    );
}
