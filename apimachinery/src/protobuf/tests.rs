//! Hand-built protobuf bodies, written the way client-go's gogo marshaller writes them (every
//! non-pointer scalar present, even when zero).
#![allow(clippy::unwrap_used)]

use serde_json::json;

use super::*;

/// A tiny protobuf encoder.
#[derive(Default, Clone)]
struct Enc(Vec<u8>);

fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

impl Enc {
    fn new() -> Self {
        Enc::default()
    }
    fn key(mut self, tag: u32, wire: u8) -> Self {
        put_varint(&mut self.0, (u64::from(tag) << 3) | u64::from(wire));
        self
    }
    fn bytes(self, tag: u32, b: &[u8]) -> Self {
        let mut e = self.key(tag, 2);
        put_varint(&mut e.0, b.len() as u64);
        e.0.extend_from_slice(b);
        e
    }
    fn str(self, tag: u32, s: &str) -> Self {
        self.bytes(tag, s.as_bytes())
    }
    /// int32/int64/bool: negative values as 10-byte varints, as Go writes int32.
    fn int(self, tag: u32, v: i64) -> Self {
        let mut e = self.key(tag, 0);
        put_varint(&mut e.0, v as u64);
        e
    }
    fn double(self, tag: u32, v: f64) -> Self {
        let mut e = self.key(tag, 1);
        e.0.extend_from_slice(&v.to_bits().to_le_bytes());
        e
    }
    fn fixed32(self, tag: u32, v: u32) -> Self {
        let mut e = self.key(tag, 5);
        e.0.extend_from_slice(&v.to_le_bytes());
        e
    }
    fn msg(self, tag: u32, m: Enc) -> Self {
        self.bytes(tag, &m.0)
    }
    fn packed(self, tag: u32, values: &[i64]) -> Self {
        let mut inner = Vec::new();
        for v in values {
            put_varint(&mut inner, *v as u64);
        }
        self.bytes(tag, &inner)
    }
    /// A map entry {key = 1, value = 2 (string/bytes)}.
    fn entry(self, tag: u32, k: &str, v: &[u8]) -> Self {
        self.msg(tag, Enc::new().str(1, k).bytes(2, v))
    }
    /// A map entry whose value is a message.
    fn entry_msg(self, tag: u32, k: &str, v: Enc) -> Self {
        self.msg(tag, Enc::new().str(1, k).msg(2, v))
    }
    /// Unknown fields of every wire type.
    fn junk(self) -> Self {
        self.int(900, 7)
            .double(901, 1.5)
            .str(902, "ignored")
            .fixed32(903, 9)
            .msg(904, Enc::new().int(1, 1))
    }
}

fn envelope(api_version: &str, kind: &str, raw: Enc) -> Vec<u8> {
    let unknown = Enc::new()
        .msg(1, Enc::new().str(1, api_version).str(2, kind))
        .msg(2, raw)
        .str(3, "")
        .str(4, "");
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&unknown.0);
    out
}

/// ObjectMeta as gogo writes it: all non-pointer fields, zero or not.
fn meta(name: &str, namespace: &str, labels: &[(&str, &str)]) -> Enc {
    let mut m = Enc::new()
        .str(1, name)
        .str(2, "")
        .str(3, namespace)
        .str(4, "")
        .str(5, "")
        .str(6, "")
        .int(7, 0)
        .msg(8, Enc::new()); // zero Time: an empty message
    for (k, v) in labels {
        m = m.entry(11, k, v.as_bytes());
    }
    m
}

fn int_or_string_int(v: i64) -> Enc {
    Enc::new().int(1, 0).int(2, v).str(3, "")
}

fn int_or_string_str(s: &str) -> Enc {
    Enc::new().int(1, 1).int(2, 0).str(3, s)
}

fn quantity(s: &str) -> Enc {
    Enc::new().str(1, s)
}

#[test]
fn config_map_with_data_and_binary_data() {
    let raw = Enc::new()
        .msg(1, meta("x", "default", &[]))
        .entry(2, "a", b"b")
        .entry(2, "empty", b"")
        .entry(3, "bin", &[0, 1, 2, 255]);
    let got = decode_object(&envelope("v1", "ConfigMap", raw)).unwrap();
    assert_eq!(
        got,
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "x", "namespace": "default"},
            "data": {"a": "b", "empty": ""},
            "binaryData": {"bin": "AAEC/w=="},
        })
    );
}

#[test]
fn namespace() {
    let raw = Enc::new()
        .msg(1, meta("team-a", "", &[("env", "dev")]))
        .msg(2, Enc::new())
        .msg(3, Enc::new().str(1, ""));
    let got = decode_object(&envelope("v1", "Namespace", raw)).unwrap();
    assert_eq!(
        got,
        json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "team-a", "labels": {"env": "dev"}},
            "spec": {},
            "status": {},
        })
    );
    let text = serde_json::to_string(&got).unwrap();
    for junk in [
        "generateName",
        "uid",
        "selfLink",
        "generation",
        "creationTimestamp",
    ] {
        assert!(!text.contains(junk), "{junk} in {text}");
    }
}

fn deployment() -> Enc {
    let container = Enc::new()
        .str(1, "web")
        .str(2, "nginx:1.25")
        .msg(
            6,
            Enc::new()
                .str(1, "")
                .int(2, 0)
                .int(3, 80)
                .str(4, "TCP")
                .str(5, ""),
        )
        .msg(
            8,
            Enc::new().entry_msg(1, "cpu", quantity("500m")).entry_msg(
                2,
                "memory",
                quantity("64Mi"),
            ),
        )
        .str(13, "/dev/termination-log")
        .str(14, "IfNotPresent")
        .int(16, 0) // stdin false
        .int(18, 0); // tty false
    let pod_spec = Enc::new()
        .msg(2, container)
        .str(3, "Always")
        .int(4, 30) // terminationGracePeriodSeconds *int64
        .str(6, "ClusterFirst")
        .int(11, 0) // hostNetwork false
        .int(25, -5); // priority *int32, negative
    let template = Enc::new()
        .msg(1, meta("", "", &[("app", "web")]))
        .msg(2, pod_spec);
    let strategy = Enc::new().str(1, "RollingUpdate").msg(
        2,
        Enc::new()
            .msg(1, int_or_string_int(0))
            .msg(2, int_or_string_str("25%")),
    );
    let spec = Enc::new()
        .int(1, 2)
        .msg(2, Enc::new().entry(1, "app", b"web"))
        .msg(3, template)
        .msg(4, strategy)
        .int(5, 0) // minReadySeconds
        .int(7, 0); // paused
    let created = meta("web", "default", &[("app", "web")])
        .msg(8, Enc::new().int(1, 1_704_164_645).int(2, 0));
    Enc::new().msg(1, created).msg(2, spec).msg(3, Enc::new())
}

#[test]
fn deployment_with_replicas_template_ports_resources_and_int_or_string() {
    let got = decode_object(&envelope("apps/v1", "Deployment", deployment())).unwrap();
    assert_eq!(
        got,
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "web",
                "namespace": "default",
                "labels": {"app": "web"},
                "creationTimestamp": "2024-01-02T03:04:05Z",
            },
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "containers": [{
                            "name": "web",
                            "image": "nginx:1.25",
                            "ports": [{"containerPort": 80, "protocol": "TCP"}],
                            "resources": {
                                "limits": {"cpu": "500m"},
                                "requests": {"memory": "64Mi"},
                            },
                            "terminationMessagePath": "/dev/termination-log",
                            "imagePullPolicy": "IfNotPresent",
                        }],
                        "restartPolicy": "Always",
                        "terminationGracePeriodSeconds": 30,
                        "dnsPolicy": "ClusterFirst",
                        "priority": -5,
                    },
                },
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"},
                },
            },
            "status": {},
        })
    );
}

#[test]
fn pointer_zero_values_are_kept() {
    // replicas: 0 (a *int32) and revisionHistoryLimit: 0 survive; minReadySeconds: 0 does not.
    let spec = Enc::new().int(1, 0).int(5, 0).int(6, 0).msg(3, Enc::new());
    let raw = Enc::new().msg(1, meta("z", "ns", &[])).msg(2, spec);
    let got = decode_object(&envelope("apps/v1", "Deployment", raw)).unwrap();
    assert_eq!(
        got["spec"],
        json!({"replicas": 0, "revisionHistoryLimit": 0, "template": {}})
    );
}

#[test]
fn secret_data_is_base64() {
    let raw = Enc::new()
        .msg(1, meta("s", "default", &[]))
        .entry(2, "k", b"v")
        .entry(2, "bin", &[0xff, 0xfe])
        .str(3, "Opaque");
    let got = decode_object(&envelope("v1", "Secret", raw)).unwrap();
    assert_eq!(
        got,
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "s", "namespace": "default"},
            "data": {"k": "dg==", "bin": "//4="},
            "type": "Opaque",
        })
    );
}

#[test]
fn unknown_fields_are_skipped() {
    let plain = Enc::new()
        .msg(1, meta("x", "default", &[]))
        .entry(2, "a", b"b");
    let noisy = Enc::new()
        .junk()
        .msg(1, meta("x", "default", &[]).junk())
        .junk()
        .entry(2, "a", b"b")
        .junk();
    let a = decode_object(&envelope("v1", "ConfigMap", plain)).unwrap();
    let b = decode_object(&envelope("v1", "ConfigMap", noisy)).unwrap();
    assert_eq!(a, b);
    // Unknown envelope fields too.
    let mut body = envelope("v1", "ConfigMap", Enc::new().msg(1, meta("x", "", &[])));
    body.extend_from_slice(&Enc::new().junk().0);
    assert_eq!(decode_object(&body).unwrap()["metadata"]["name"], "x");
}

#[test]
fn truncated_input_is_an_error_never_a_panic() {
    let body = envelope("apps/v1", "Deployment", deployment());
    assert!(decode_object(&body).is_ok());
    // Cut anywhere inside the raw object (field 2 of the envelope): always an error. (A cut at a
    // field boundary of the envelope itself is a shorter valid message.)
    let type_meta = Enc::new().msg(1, Enc::new().str(1, "apps/v1").str(2, "Deployment"));
    let raw_field = Enc::new().msg(2, deployment());
    let start = MAGIC.len() + type_meta.0.len();
    for len in start + 1..start + raw_field.0.len() {
        assert!(
            decode_object(&body[..len]).is_err(),
            "prefix of {len} bytes decoded"
        );
    }
    for len in 0..body.len() {
        let _ = decode_object(&body[..len]);
    }
    // A length that runs past the end of the input.
    let mut bad = MAGIC.to_vec();
    bad.extend_from_slice(&[0x12, 0x40, 0x0a]);
    assert_eq!(decode_object(&bad), Err(ProtobufError::Truncated));
}

#[test]
fn envelope_errors() {
    assert_eq!(
        decode_object(b"{\"kind\":\"Pod\"}"),
        Err(ProtobufError::MissingMagic)
    );
    assert!(matches!(
        decode_object(&envelope("v1", "Frobnicator", Enc::new())),
        Err(ProtobufError::UnknownKind { .. })
    ));
    assert!(matches!(
        decode_object(&envelope("nosuch.example.com/v1", "Pod", Enc::new())),
        Err(ProtobufError::UnknownKind { .. })
    ));
    assert!(matches!(
        decode_object(&envelope("", "", Enc::new())),
        Err(ProtobufError::MissingKind { .. })
    ));
    // Wrong wire type for a known field.
    let raw = Enc::new().int(1, 5);
    assert!(matches!(
        decode_object(&envelope("v1", "ConfigMap", raw)),
        Err(ProtobufError::Malformed(_))
    ));
    let e = decode_object(&envelope("v1", "Frobnicator", Enc::new())).unwrap_err();
    assert!(e.to_string().contains("Frobnicator"), "{e}");
}

#[test]
fn delete_options_in_any_group_decode_as_meta_v1() {
    let raw = Enc::new().int(1, 0).str(4, "Foreground").str(5, "All");
    for api_version in ["v1", "apps/v1", "meta.k8s.io/v1"] {
        let got = decode_object(&envelope(api_version, "DeleteOptions", raw.clone())).unwrap();
        assert_eq!(
            got,
            json!({
                "apiVersion": api_version,
                "kind": "DeleteOptions",
                "gracePeriodSeconds": 0,
                "propagationPolicy": "Foreground",
                "dryRun": ["All"],
            })
        );
    }
}

#[test]
fn scale_eviction_and_token_request() {
    let scale = Enc::new()
        .msg(1, meta("web", "default", &[]))
        .msg(2, Enc::new().int(1, 0))
        .msg(3, Enc::new().int(1, 2).str(2, ""));
    let got = decode_object(&envelope("autoscaling/v1", "Scale", scale)).unwrap();
    // ScaleSpec.replicas is a plain int32 with omitempty: Go's JSON drops 0 too; status.replicas
    // has no omitempty.
    assert_eq!(got["spec"], json!({}));
    assert_eq!(got["status"], json!({"replicas": 2}));

    let eviction = Enc::new()
        .msg(1, meta("pod1", "default", &[]))
        .msg(2, Enc::new().int(1, 0));
    let got = decode_object(&envelope("policy/v1", "Eviction", eviction)).unwrap();
    assert_eq!(got["deleteOptions"], json!({"gracePeriodSeconds": 0}));

    let token = Enc::new()
        .msg(1, meta("", "", &[]))
        .msg(2, Enc::new().str(1, "api").int(4, 3600));
    let got = decode_object(&envelope("authentication.k8s.io/v1", "TokenRequest", token)).unwrap();
    assert_eq!(
        got["spec"],
        json!({"audiences": ["api"], "expirationSeconds": 3600})
    );
}

#[test]
fn subject_access_review_extra_is_a_string_list() {
    let spec = Enc::new().str(3, "alice").str(4, "dev").entry_msg(
        5,
        "scopes",
        Enc::new().str(1, "a").str(1, "b"),
    );
    let raw = Enc::new().msg(1, meta("", "", &[])).msg(2, spec);
    let got = decode_object(&envelope(
        "authorization.k8s.io/v1",
        "SubjectAccessReview",
        raw,
    ))
    .unwrap();
    assert_eq!(
        got["spec"],
        json!({"user": "alice", "groups": ["dev"], "extra": {"scopes": ["a", "b"]}})
    );
}

#[test]
fn service_target_port() {
    let port = |target: Enc| {
        Enc::new()
            .str(1, "")
            .str(2, "TCP")
            .int(3, 80)
            .msg(4, target)
            .int(5, 0)
    };
    let raw = Enc::new().msg(1, meta("svc", "default", &[])).msg(
        2,
        Enc::new()
            .msg(1, port(int_or_string_int(8080)))
            .msg(1, port(int_or_string_int(0))),
    );
    let got = decode_object(&envelope("v1", "Service", raw)).unwrap();
    assert_eq!(
        got["spec"]["ports"],
        json!([
            {"protocol": "TCP", "port": 80, "targetPort": 8080},
            {"protocol": "TCP", "port": 80},
        ])
    );
}

#[test]
fn repeated_scalars_packed_and_unpacked() {
    let unpacked = Enc::new().str(1, "c").str(2, "In").int(3, 1).int(3, -2);
    let packed = Enc::new().str(1, "c").str(2, "In").packed(3, &[1, -2]);
    let name = "k8s.io.api.batch.v1.PodFailurePolicyOnExitCodesRequirement";
    let want = json!({"containerName": "c", "operator": "In", "values": [1, -2]});
    assert_eq!(decode_message(name, &unpacked.0).unwrap(), want);
    assert_eq!(decode_message(name, &packed.0).unwrap(), want);
}

#[test]
fn raw_extension_fields_v1_and_micro_time() {
    let entry = Enc::new()
        .str(1, "kubectl")
        .str(2, "Update")
        .str(3, "v1")
        .msg(4, Enc::new().int(1, 1_704_164_645))
        .str(6, "FieldsV1")
        .msg(7, Enc::new().bytes(1, br#"{"f:data":{".":{}}}"#));
    let with_fields = meta("cr", "default", &[]).msg(17, entry);
    let raw = Enc::new()
        .msg(1, with_fields)
        .msg(2, Enc::new().bytes(1, br#"{"spec":{"x":1}}"#))
        .int(3, 4);
    let got = decode_object(&envelope("apps/v1", "ControllerRevision", raw)).unwrap();
    assert_eq!(got["data"], json!({"spec": {"x": 1}}));
    assert_eq!(got["revision"], 4);
    assert_eq!(
        got["metadata"]["managedFields"],
        json!([{
            "manager": "kubectl",
            "operation": "Update",
            "apiVersion": "v1",
            "time": "2024-01-02T03:04:05Z",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": {".": {}}},
        }])
    );

    let lease = Enc::new().msg(1, meta("l", "kube-system", &[])).msg(
        2,
        Enc::new()
            .str(1, "me")
            .int(2, 15)
            .msg(4, Enc::new().int(1, 1_704_164_645).int(2, 123_456_789))
            .int(5, 0),
    );
    let got = decode_object(&envelope("coordination.k8s.io/v1", "Lease", lease)).unwrap();
    assert_eq!(
        got["spec"],
        json!({
            "holderIdentity": "me",
            "leaseDurationSeconds": 15,
            "renewTime": "2024-01-02T03:04:05.123456Z",
            "leaseTransitions": 0,
        })
    );
}

#[test]
fn invalid_embedded_json_is_an_error() {
    let raw = Enc::new()
        .msg(1, meta("cr", "default", &[]))
        .msg(2, Enc::new().bytes(1, b"{not json"));
    assert!(matches!(
        decode_object(&envelope("apps/v1", "ControllerRevision", raw)),
        Err(ProtobufError::InvalidJson { .. })
    ));
}

#[test]
fn json_schema_unions_and_doubles() {
    let props = Enc::new()
        .str(5, "object")
        .double(9, 10.0)
        .double(11, 0.5)
        .msg(30, Enc::new().int(1, 0)) // additionalProperties: false
        .entry_msg(
            29,
            "n",
            Enc::new()
                .str(5, "integer")
                .msg(8, Enc::new().bytes(1, b"3")), // default: 3
        );
    let got = decode_message(
        "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps",
        &props.0,
    )
    .unwrap();
    assert_eq!(
        got,
        json!({
            "type": "object",
            "maximum": 10,
            "minimum": 0.5,
            "additionalProperties": false,
            "properties": {"n": {"type": "integer", "default": 3}},
        })
    );
}

#[test]
fn durations_print_like_go() {
    let cases = [
        (0, "0s"),
        (1, "1ns"),
        (1_500, "1.5µs"),
        (500_000_000, "500ms"),
        (1_500_000_000, "1.5s"),
        (30_000_000_000, "30s"),
        (90_000_000_000, "1m30s"),
        (3_600_000_000_000, "1h0m0s"),
        (-3_723_000_000_000, "-1h2m3s"),
    ];
    for (nanos, want) in cases {
        assert_eq!(format_duration(nanos), want);
    }
    let got = decode_message(
        "k8s.io.apimachinery.pkg.apis.meta.v1.Duration",
        &Enc::new().int(1, 30_000_000_000).0,
    )
    .unwrap();
    assert_eq!(got, json!("30s"));
}

#[test]
fn times_print_like_go() {
    assert_eq!(format_time(0, 0, false), "1970-01-01T00:00:00Z");
    assert_eq!(format_time(951_782_400, 0, false), "2000-02-29T00:00:00Z");
    assert_eq!(format_time(-1, 0, false), "1969-12-31T23:59:59Z");
    assert_eq!(
        format_time(1_704_164_645, 999_999_999, false),
        "2024-01-02T03:04:05Z"
    );
    assert_eq!(
        format_time(1_704_164_645, 1_000, true),
        "2024-01-02T03:04:05.000001Z"
    );
    // Go's zero time and an empty message are null (omitted from objects).
    let time = "k8s.io.apimachinery.pkg.apis.meta.v1.Time";
    assert_eq!(decode_message(time, &[]).unwrap(), Value::Null);
    assert_eq!(
        decode_message(time, &Enc::new().int(1, GO_ZERO_TIME).0).unwrap(),
        Value::Null
    );
}

#[test]
fn message_type_lookup() {
    assert_eq!(message_type("v1", "Pod"), Some("k8s.io.api.core.v1.Pod"));
    assert_eq!(
        message_type("rbac.authorization.k8s.io/v1", "RoleBinding"),
        Some("k8s.io.api.rbac.v1.RoleBinding")
    );
    assert_eq!(
        message_type("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
        Some("k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition")
    );
    assert_eq!(
        message_type("apiregistration.k8s.io/v1", "APIService"),
        Some("k8s.io.kube_aggregator.pkg.apis.apiregistration.v1.APIService")
    );
    assert_eq!(
        message_type("batch/v1", "CronJob"),
        Some("k8s.io.api.batch.v1.CronJob")
    );
    assert_eq!(message_type("v1", "NoSuchKind"), None);
}

#[test]
fn table_is_consistent() {
    let messages = schema::MESSAGES;
    for pair in messages.windows(2) {
        assert!(
            pair[0].name < pair[1].name,
            "{} / {}",
            pair[0].name,
            pair[1].name
        );
    }
    for pair in schema::GROUPS.windows(2) {
        assert!(pair[0].0 < pair[1].0);
    }
    for m in messages {
        for pair in m.fields.windows(2) {
            assert!(pair[0].tag < pair[1].tag, "{}", m.name);
        }
        for f in m.fields {
            if let Kind::Message(i) = f.kind {
                assert!(usize::from(i) < messages.len(), "{}", m.name);
            }
            assert!(f.inline || !f.json.is_empty(), "{}", m.name);
        }
    }
}
