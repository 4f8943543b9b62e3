//! Writes `assets/kubernetes.json.z` and `assets/structural.json.z`: the OpenAPI v3 component
//! schemas of every built-in kind kubox serves, generated from k8s-openapi's `schemars`
//! implementations (Kubernetes 1.35), with the patch-strategy extensions of kubox's
//! strategic-merge-patch table added.
//!
//! Run after bumping k8s-openapi, adding a kind or changing
//! `kubox-apimachinery`'s patch table (a test fails until then), with `KUBE_GO_SOURCES` naming a
//! directory that holds the Go sources of the same Kubernetes release's types, one folder per
//! repository (`api`, `apimachinery`, `apiextensions-apiserver`, `kube-aggregator`, e.g. each
//! repository's `v0.35.0` tag): they tell which fields hold a struct by value, not through a
//! pointer (k8s-openapi does not carry it), which kube's OpenAPI marks `default: {}`.
//!
//! ```text
//! KUBE_GO_SOURCES=/path/to/sources cargo run -p kubox-openapi --features generate --bin generate-schemas
//! ```
//!
//! Definitions are keyed by their OpenAPI names (`io.k8s.api.apps.v1.Deployment`) with
//! `#/components/schemas/...` references, as schemars writes them; each kind's definition also
//! carries `x-kubernetes-group-version-kind`. See `kubox_openapi::assets` for the format.
#![allow(clippy::expect_used)]

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{json, Value};

fn add<T: JsonSchema + k8s_openapi::Resource>(gen: &mut SchemaGenerator, kinds: &mut Vec<Value>) {
    let reference = gen.subschema_for::<T>();
    let name = reference
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.rsplit('/').next())
        .expect("a named definition")
        .to_string();
    kinds.push(json!([T::GROUP, T::VERSION, T::KIND, name]));
}

macro_rules! kinds {
    ($gen:expr, $kinds:expr, $($t:ty,)*) => {
        $( add::<$t>($gen, $kinds); )*
    };
}

fn main() {
    let mut gen = SchemaSettings::openapi3().into_generator();
    let mut kinds = Vec::new();
    kinds!(
        &mut gen,
        &mut kinds,
        k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration,
        k8s_openapi::api::admissionregistration::v1::ValidatingAdmissionPolicy,
        k8s_openapi::api::admissionregistration::v1::ValidatingAdmissionPolicyBinding,
        k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration,
        k8s_openapi::api::admissionregistration::v1alpha1::MutatingAdmissionPolicy,
        k8s_openapi::api::admissionregistration::v1alpha1::MutatingAdmissionPolicyBinding,
        k8s_openapi::api::admissionregistration::v1beta1::MutatingAdmissionPolicy,
        k8s_openapi::api::admissionregistration::v1beta1::MutatingAdmissionPolicyBinding,
        k8s_openapi::api::apiserverinternal::v1alpha1::StorageVersion,
        k8s_openapi::api::apps::v1::ControllerRevision,
        k8s_openapi::api::apps::v1::DaemonSet,
        k8s_openapi::api::apps::v1::Deployment,
        k8s_openapi::api::apps::v1::ReplicaSet,
        k8s_openapi::api::apps::v1::StatefulSet,
        k8s_openapi::api::authentication::v1::SelfSubjectReview,
        k8s_openapi::api::authentication::v1::TokenRequest,
        k8s_openapi::api::authentication::v1::TokenReview,
        k8s_openapi::api::authorization::v1::LocalSubjectAccessReview,
        k8s_openapi::api::authorization::v1::SelfSubjectAccessReview,
        k8s_openapi::api::authorization::v1::SelfSubjectRulesReview,
        k8s_openapi::api::authorization::v1::SubjectAccessReview,
        k8s_openapi::api::autoscaling::v1::HorizontalPodAutoscaler,
        k8s_openapi::api::autoscaling::v1::Scale,
        k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler,
        k8s_openapi::api::batch::v1::CronJob,
        k8s_openapi::api::batch::v1::Job,
        k8s_openapi::api::certificates::v1::CertificateSigningRequest,
        k8s_openapi::api::certificates::v1alpha1::ClusterTrustBundle,
        k8s_openapi::api::certificates::v1beta1::ClusterTrustBundle,
        k8s_openapi::api::certificates::v1beta1::PodCertificateRequest,
        k8s_openapi::api::coordination::v1::Lease,
        k8s_openapi::api::coordination::v1alpha2::LeaseCandidate,
        k8s_openapi::api::coordination::v1beta1::LeaseCandidate,
        k8s_openapi::api::core::v1::Binding,
        k8s_openapi::api::core::v1::ComponentStatus,
        k8s_openapi::api::core::v1::ConfigMap,
        k8s_openapi::api::core::v1::Endpoints,
        k8s_openapi::api::core::v1::Event,
        k8s_openapi::api::core::v1::LimitRange,
        k8s_openapi::api::core::v1::Namespace,
        k8s_openapi::api::core::v1::Node,
        k8s_openapi::api::core::v1::PersistentVolume,
        k8s_openapi::api::core::v1::PersistentVolumeClaim,
        k8s_openapi::api::core::v1::Pod,
        k8s_openapi::api::core::v1::PodTemplate,
        k8s_openapi::api::core::v1::ReplicationController,
        k8s_openapi::api::core::v1::ResourceQuota,
        k8s_openapi::api::core::v1::Secret,
        k8s_openapi::api::core::v1::Service,
        k8s_openapi::api::core::v1::ServiceAccount,
        k8s_openapi::api::discovery::v1::EndpointSlice,
        k8s_openapi::api::events::v1::Event,
        k8s_openapi::api::flowcontrol::v1::FlowSchema,
        k8s_openapi::api::flowcontrol::v1::PriorityLevelConfiguration,
        k8s_openapi::api::networking::v1::IPAddress,
        k8s_openapi::api::networking::v1::Ingress,
        k8s_openapi::api::networking::v1::IngressClass,
        k8s_openapi::api::networking::v1::NetworkPolicy,
        k8s_openapi::api::networking::v1::ServiceCIDR,
        k8s_openapi::api::networking::v1beta1::IPAddress,
        k8s_openapi::api::networking::v1beta1::ServiceCIDR,
        k8s_openapi::api::node::v1::RuntimeClass,
        k8s_openapi::api::policy::v1::Eviction,
        k8s_openapi::api::policy::v1::PodDisruptionBudget,
        k8s_openapi::api::rbac::v1::ClusterRole,
        k8s_openapi::api::rbac::v1::ClusterRoleBinding,
        k8s_openapi::api::rbac::v1::Role,
        k8s_openapi::api::rbac::v1::RoleBinding,
        k8s_openapi::api::resource::v1::DeviceClass,
        k8s_openapi::api::resource::v1::ResourceClaim,
        k8s_openapi::api::resource::v1::ResourceClaimTemplate,
        k8s_openapi::api::resource::v1::ResourceSlice,
        k8s_openapi::api::resource::v1alpha3::DeviceTaintRule,
        k8s_openapi::api::resource::v1beta1::DeviceClass,
        k8s_openapi::api::resource::v1beta1::ResourceClaim,
        k8s_openapi::api::resource::v1beta1::ResourceClaimTemplate,
        k8s_openapi::api::resource::v1beta1::ResourceSlice,
        k8s_openapi::api::resource::v1beta2::DeviceClass,
        k8s_openapi::api::resource::v1beta2::ResourceClaim,
        k8s_openapi::api::resource::v1beta2::ResourceClaimTemplate,
        k8s_openapi::api::resource::v1beta2::ResourceSlice,
        k8s_openapi::api::scheduling::v1::PriorityClass,
        k8s_openapi::api::scheduling::v1alpha1::Workload,
        k8s_openapi::api::storage::v1::CSIDriver,
        k8s_openapi::api::storage::v1::CSINode,
        k8s_openapi::api::storage::v1::CSIStorageCapacity,
        k8s_openapi::api::storage::v1::StorageClass,
        k8s_openapi::api::storage::v1::VolumeAttachment,
        k8s_openapi::api::storage::v1::VolumeAttributesClass,
        k8s_openapi::api::storage::v1beta1::VolumeAttributesClass,
        k8s_openapi::api::storagemigration::v1beta1::StorageVersionMigration,
        k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
        k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService,
    );
    // Custom resources' list kinds reference ListMeta (no built-in list kind is published);
    // Status and the discovery documents are encoded in their Go field order.
    {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
        gen.subschema_for::<meta::ListMeta>();
        gen.subschema_for::<meta::Status>();
        gen.subschema_for::<meta::APIResourceList>();
        gen.subschema_for::<meta::APIGroupList>();
        gen.subschema_for::<meta::APIGroup>();
        gen.subschema_for::<meta::APIVersions>();
        // What the operations read and answer besides the kinds.
        gen.subschema_for::<meta::Patch>();
        gen.subschema_for::<meta::DeleteOptions>();
        gen.subschema_for::<meta::WatchEvent<k8s_openapi::apimachinery::pkg::runtime::RawExtension>>();
    }
    let mut definitions = gen.take_definitions(true);
    for k in &kinds {
        let gvk = json!({"group": k[0], "kind": k[2], "version": k[1]});
        let name = k[3].as_str().expect("name");
        let def = definitions.get_mut(name).expect("definition of a kind");
        let list = def
            .as_object_mut()
            .expect("object schema")
            .entry("x-kubernetes-group-version-kind")
            .or_insert_with(|| json!([]));
        if let Some(a) = list.as_array_mut() {
            a.push(gvk);
        }
    }
    let kind_list: Vec<(String, String, String, String)> = kinds
        .iter()
        .map(|k| {
            let s = |i: usize| k[i].as_str().expect("string").to_string();
            (s(0), s(1), s(2), s(3))
        })
        .collect();
    kubox_openapi::assets::annotate_patch_strategies(&mut definitions, &kind_list);
    let sources = std::env::var_os("KUBE_GO_SOURCES")
        .expect("KUBE_GO_SOURCES: a directory holding the Go sources of the Kubernetes 1.35 types");
    let docs = GoDocs::read(std::path::Path::new(&sources), &definitions);
    for (name, def) in list_definitions(&docs, &kind_list, &definitions) {
        definitions.insert(name, def);
    }
    let parameters = option_parameters(&docs);
    let fields = go_fields(std::path::Path::new(&sources), &definitions);
    let by_value: Vec<(String, String)> = fields
        .iter()
        .filter(|f| f.by_value)
        .map(|f| (f.definition.clone(), f.json.clone()))
        .collect();
    kubox_openapi::assets::annotate_value_structs(&mut definitions, &by_value);
    let null_in_zero: Vec<(String, String)> = fields
        .iter()
        .filter(|f| f.null_in_zero)
        .map(|f| (f.definition.clone(), f.json.clone()))
        .collect();
    let doc = json!({
        "kubernetes": "1.35",
        "kinds": kinds,
        "definitions": definitions,
        "parameters": parameters,
    });
    let orders = go_orders(std::path::Path::new(&sources), &definitions);
    let zero_scalars: Vec<(String, String, Value)> = fields
        .iter()
        .filter_map(|f| {
            f.zero_scalar
                .clone()
                .map(|z| (f.definition.clone(), f.json.clone(), z))
        })
        .collect();
    let omit_empty: Vec<(String, String)> = fields
        .iter()
        .filter(|f| f.omit_empty)
        .map(|f| (f.definition.clone(), f.json.clone()))
        .collect();
    let mut structural = kubox_openapi::assets::structural_only(&doc);
    kubox_openapi::assets::annotate_marker(
        &mut structural,
        kubox_openapi::assets::NULL_IN_ZERO_VALUE,
        &null_in_zero,
    );
    kubox_openapi::assets::annotate_marker(
        &mut structural,
        kubox_openapi::assets::OMIT_EMPTY,
        &omit_empty,
    );
    kubox_openapi::assets::annotate_go_order(&mut structural, &orders);
    kubox_openapi::assets::annotate_zero_scalars(&mut structural, &zero_scalars);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets");
    for (file, d) in [
        ("kubernetes.json.z", &doc),
        ("structural.json.z", &structural),
    ] {
        let packed = kubox_openapi::assets::pack(d);
        std::fs::write(dir.join(file), &packed).expect("write asset");
        println!(
            "{file}: {} bytes of JSON, {} compressed",
            d.to_string().len(),
            packed.len()
        );
    }
    println!(
        "{} kinds, {} definitions",
        kinds.len(),
        doc["definitions"].as_object().map_or(0, |d| d.len()),
    );
}

/// How the Go zero value of a definition holds one of its fields.
struct GoField {
    definition: String,
    json: String,
    /// A named type held by value (not through a pointer, slice or map).
    by_value: bool,
    /// A pointer, slice or map without `omitempty`: `null` in the zero value.
    null_in_zero: bool,
    /// `omitempty` on a slice, a map, or a scalar of a basic kind (or a local type of one):
    /// an empty value is dropped by a Go round trip.
    omit_empty: bool,
    /// A scalar of a basic kind (or a local type of one) held by value without `omitempty`:
    /// its zero (`0`, `""`, `false`) is written in the zero value of its struct.
    zero_scalar: Option<Value>,
}

/// Go's basic scalar types.
fn is_basic(ty: &str) -> bool {
    matches!(
        ty,
        "string"
            | "bool"
            | "byte"
            | "int"
            | "int8"
            | "int16"
            | "int32"
            | "int64"
            | "uint"
            | "uint8"
            | "uint16"
            | "uint32"
            | "uint64"
            | "float32"
            | "float64"
    )
}

/// The fields of the definitions as their Go sources declare them: `Name Type `json:"name..."``
/// (or an embedded `pkg.Type `json:"name"``), read from the Go sources of each definition's
/// package (`io.k8s.api.apps.v1.X` → `api/apps/v1/*.go`, `io.k8s.apimachinery.pkg.apis.meta.v1.X`
/// → `apimachinery/pkg/apis/meta/v1/*.go`). Which named types are structs is for the schema to
/// say ([`kubox_openapi::assets::annotate_value_structs`]).
fn go_fields(root: &std::path::Path, definitions: &serde_json::Map<String, Value>) -> Vec<GoField> {
    let field_re = regex::Regex::new(
        r#"^\s+(?:[A-Z]\w*\s+)?(\*|\[\]|map\[[^\]]*\])?([A-Za-z_][\w.\[\]*]*)\s+`[^`]*json:"([^",]+)((?:,[a-z]+)*)""#,
    )
    .expect("field pattern");
    let type_re = regex::Regex::new(r"^type\s+(\w+)\s+struct\s*\{").expect("type pattern");
    // `type Protocol string`, `type ResourceList map[ResourceName]resource.Quantity`.
    let alias_re = regex::Regex::new(r"^type\s+(\w+)\s+(\[\]|map\[)?(\w+)").expect("alias pattern");
    let mut by_package: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for name in definitions.keys() {
        if let Some((package, ty)) = name.rsplit_once('.') {
            by_package
                .entry(package.to_string())
                .or_default()
                .push(ty.to_string());
        }
    }
    let mut out = Vec::new();
    for (package, types) in by_package {
        let Some(rest) = package.strip_prefix("io.k8s.") else {
            continue;
        };
        let Some((repo, path)) = rest.split_once('.') else {
            continue;
        };
        let dir = root.join(repo).join(path.replace('.', "/"));
        let Ok(entries) = std::fs::read_dir(&dir) else {
            panic!("no Go sources for {package} in {}", dir.display());
        };
        let mut files: Vec<_> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.extension().is_some_and(|x| x == "go")
                    && !p.to_string_lossy().ends_with("_test.go")
            })
            .collect();
        files.sort();
        // Local named types whose values a Go round trip omits when empty.
        let mut emptiable: std::collections::HashSet<String> = Default::default();
        // Local named types of a basic scalar type, by name: the basic type.
        let mut scalar_aliases: std::collections::HashMap<String, String> = Default::default();
        for file in &files {
            let text = std::fs::read_to_string(file).expect("read Go source");
            for line in text.lines() {
                if let Some(c) = alias_re.captures(line) {
                    if c.get(2).is_some() || is_basic(&c[3]) {
                        emptiable.insert(c[1].to_string());
                    }
                    if c.get(2).is_none() && is_basic(&c[3]) {
                        scalar_aliases.insert(c[1].to_string(), c[3].to_string());
                    }
                }
            }
        }
        for file in files {
            let text = std::fs::read_to_string(&file).expect("read Go source");
            let mut current: Option<String> = None;
            for line in text.lines() {
                if let Some(c) = type_re.captures(line) {
                    current = Some(c[1].to_string()).filter(|t| types.contains(t));
                    continue;
                }
                if line.starts_with('}') {
                    current = None;
                    continue;
                }
                let Some(ty) = &current else { continue };
                let Some(c) = field_re.captures(line) else {
                    continue;
                };
                if &c[3] == "-" {
                    continue;
                }
                let indirect = c.get(1).is_some();
                let omitempty = c[4].split(',').any(|o| o == "omitempty" || o == "omitzero");
                let container = c
                    .get(1)
                    .is_some_and(|m| m.as_str() == "[]" || m.as_str().starts_with("map["));
                let named = &c[2];
                let basic = if is_basic(named) {
                    Some(named)
                } else {
                    scalar_aliases.get(named).map(String::as_str)
                };
                let zero_scalar = basic.filter(|_| !indirect && !omitempty).map(|b| match b {
                    "string" => json!(""),
                    "bool" => json!(false),
                    _ => json!(0),
                });
                out.push(GoField {
                    definition: format!("{package}.{ty}"),
                    json: c[3].to_string(),
                    by_value: !indirect,
                    null_in_zero: indirect && !omitempty,
                    omit_empty: omitempty
                        && (container
                            || (!indirect && (is_basic(named) || emptiable.contains(named)))),
                    zero_scalar,
                });
            }
        }
    }
    out
}

/// The JSON field names of every struct type of the definitions' packages, in the order the Go
/// source declares them, with embedded `json:",inline"` structs spliced in where they are
/// embedded (`metav1.TypeMeta` is `kind`, `apiVersion`): the order Go's encoder writes them in.
fn go_orders(
    root: &std::path::Path,
    definitions: &serde_json::Map<String, Value>,
) -> Vec<(String, Vec<String>)> {
    enum Entry {
        Field(String),
        Inline(String),
    }
    let field_re = regex::Regex::new(r#"^\s+(?:[A-Z]\w*\s+)?(?:\*|\[\]|map\[[^\]]*\])?[A-Za-z_][\w.\[\]*]*\s+`[^`]*json:"([^",]+)"#)
        .expect("field pattern");
    let inline_re = regex::Regex::new(r#"^\s+\*?(?:\w+\.)?(\w+)\s+`[^`]*json:",inline"#)
        .expect("inline pattern");
    let type_re = regex::Regex::new(r"^type\s+(\w+)\s+struct\s*\{").expect("type pattern");
    let mut out = Vec::new();
    for (package, files) in package_sources(root, definitions) {
        let mut structs: std::collections::HashMap<String, Vec<Entry>> = Default::default();
        for file in files {
            let text = std::fs::read_to_string(&file).expect("read Go source");
            let mut current: Option<String> = None;
            for line in text.lines() {
                if let Some(c) = type_re.captures(line) {
                    current = Some(c[1].to_string());
                    structs.entry(c[1].to_string()).or_default();
                    continue;
                }
                if line.starts_with('}') {
                    current = None;
                    continue;
                }
                let Some(ty) = &current else { continue };
                let entry = if let Some(c) = inline_re.captures(line) {
                    Entry::Inline(c[1].to_string())
                } else if let Some(c) = field_re.captures(line) {
                    if &c[1] == "-" {
                        continue;
                    }
                    Entry::Field(c[1].to_string())
                } else {
                    continue;
                };
                structs.entry(ty.clone()).or_default().push(entry);
            }
        }
        fn resolve(
            ty: &str,
            structs: &std::collections::HashMap<String, Vec<Entry>>,
            depth: usize,
            out: &mut Vec<String>,
        ) {
            if ty == "TypeMeta" && !structs.contains_key(ty) {
                out.extend(["kind".to_string(), "apiVersion".to_string()]);
                return;
            }
            let Some(entries) = structs.get(ty).filter(|_| depth < 8) else {
                return;
            };
            for e in entries {
                match e {
                    Entry::Field(f) => out.push(f.clone()),
                    Entry::Inline(t) => resolve(t, structs, depth + 1, out),
                }
            }
        }
        for name in definitions.keys() {
            let Some((p, ty)) = name.rsplit_once('.') else {
                continue;
            };
            if p != package || !structs.contains_key(ty) {
                continue;
            }
            let mut order = Vec::new();
            resolve(ty, &structs, 0, &mut order);
            if !order.is_empty() {
                out.push((name.clone(), order));
            }
        }
    }
    out
}

/// The documented structs of the definitions' packages, as their Go sources declare them.
struct GoDocs {
    /// `package.Type` → (the type's doc comment, its fields: JSON name, Go type, doc comment).
    structs: std::collections::HashMap<String, (String, Vec<(String, String, String)>)>,
}

/// A Go doc comment as kube's OpenAPI generator publishes it: marker lines (`+…`) left out,
/// the lines of a paragraph joined by spaces, paragraphs by a blank line.
fn doc_text(lines: &[String]) -> String {
    let mut paragraphs: Vec<String> = vec![String::new()];
    for l in lines {
        let l = l.trim();
        if l.starts_with('+') {
            continue;
        }
        if l.is_empty() {
            if paragraphs.last().is_some_and(|p| !p.is_empty()) {
                paragraphs.push(String::new());
            }
            continue;
        }
        let p = paragraphs.last_mut().expect("one paragraph");
        if !p.is_empty() {
            p.push(' ');
        }
        p.push_str(l);
    }
    paragraphs.retain(|p| !p.is_empty());
    paragraphs.join("\n\n")
}

impl GoDocs {
    fn read(root: &std::path::Path, definitions: &serde_json::Map<String, Value>) -> GoDocs {
        let field_re = regex::Regex::new(
            r#"^\s+(?:[A-Z]\w*\s+)?((?:\*|\[\]|map\[[^\]]*\])?[A-Za-z_][\w.\[\]*]*)\s+`[^`]*json:"([^",]+)"#,
        )
        .expect("field pattern");
        let type_re = regex::Regex::new(r"^type\s+(\w+)\s+struct\s*\{").expect("type pattern");
        let mut structs = std::collections::HashMap::new();
        for (package, files) in package_sources(root, definitions) {
            for file in files {
                let text = std::fs::read_to_string(&file).expect("read Go source");
                let mut comment: Vec<String> = Vec::new();
                let mut current: Option<(String, String, Vec<(String, String, String)>)> = None;
                for line in text.lines() {
                    let t = line.trim();
                    if let Some(c) = t.strip_prefix("//") {
                        comment.push(c.strip_prefix(' ').unwrap_or(c).to_string());
                        continue;
                    }
                    if let Some(c) = type_re.captures(line) {
                        current = Some((c[1].to_string(), doc_text(&comment), Vec::new()));
                        comment.clear();
                        continue;
                    }
                    if line.starts_with('}') {
                        if let Some((name, doc, fields)) = current.take() {
                            structs.insert(format!("{package}.{name}"), (doc, fields));
                        }
                        comment.clear();
                        continue;
                    }
                    if let (Some(cur), Some(c)) = (current.as_mut(), field_re.captures(line)) {
                        if &c[2] != "-" {
                            cur.2
                                .push((c[2].to_string(), c[1].to_string(), doc_text(&comment)));
                        }
                    }
                    comment.clear();
                }
            }
        }
        GoDocs { structs }
    }
}

/// The list kind of every kind that has one (`io.k8s.api.core.v1.ServiceList`), as kube
/// publishes it: apiVersion and kind as the kind's, `metadata` a ListMeta, `items` the kind's
/// objects, with the descriptions of the Go list type.
fn list_definitions(
    docs: &GoDocs,
    kinds: &[(String, String, String, String)],
    definitions: &serde_json::Map<String, Value>,
) -> Vec<(String, Value)> {
    const REF: &str = "#/components/schemas/";
    let mut out = Vec::new();
    for (group, version, _kind, def) in kinds {
        let list = format!("{def}List");
        let Some((doc, fields)) = docs.structs.get(&list) else {
            continue;
        };
        if definitions.contains_key(&list) {
            continue;
        }
        let field_doc = |json: &str| {
            fields
                .iter()
                .find(|f| f.0 == json)
                .map(|f| f.2.clone())
                .unwrap_or_default()
        };
        let kind_props = &definitions[def.as_str()]["properties"];
        let list_kind = list.rsplit('.').next().unwrap_or_default();
        out.push((
            list.clone(),
            json!({
                "description": doc,
                "properties": {
                    "apiVersion": kind_props["apiVersion"],
                    "items": {
                        "description": field_doc("items"),
                        "items": {"$ref": format!("{REF}{def}")},
                        "type": "array",
                    },
                    "kind": kind_props["kind"],
                    "metadata": {
                        "allOf": [{"$ref": format!("{REF}io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta")}],
                        "description": field_doc("metadata"),
                    },
                },
                "required": ["items"],
                "type": "object",
                "x-kubernetes-group-version-kind": [{"group": group, "kind": list_kind, "version": version}],
            }),
        ));
    }
    out
}

/// The query parameters of the operations, from the option types' fields (`ListOptions`,
/// `DeleteOptions`, …): name → `{type, description}`, by option type.
fn option_parameters(docs: &GoDocs) -> Value {
    let mut out = serde_json::Map::new();
    let meta = [
        "ListOptions",
        "GetOptions",
        "DeleteOptions",
        "CreateOptions",
        "UpdateOptions",
        "PatchOptions",
    ]
    .map(|o| (o, "io.k8s.apimachinery.pkg.apis.meta.v1"));
    // The options of the subresources that take their own (logs, connections, proxies).
    let core = [
        "PodLogOptions",
        "PodExecOptions",
        "PodAttachOptions",
        "PodPortForwardOptions",
        "PodProxyOptions",
        "ServiceProxyOptions",
        "NodeProxyOptions",
    ]
    .map(|o| (o, "io.k8s.api.core.v1"));
    for (options, package) in meta.into_iter().chain(core) {
        let Some((_, fields)) = docs.structs.get(&format!("{package}.{options}")) else {
            continue;
        };
        let mut params = serde_json::Map::new();
        for (json_name, go_type, doc) in fields {
            // The query parameter types kube's installer gives Go field types (its
            // `typeToJSON`): slices are repeated scalars, times and enums strings; struct
            // fields are no parameters.
            let ty = match go_type.trim_start_matches('*') {
                "bool" => "boolean",
                "int64" | "int32" | "int" | "[]int32" => "integer",
                "string"
                | "[]string"
                | "ResourceVersionMatch"
                | "DeletionPropagation"
                | "metav1.Time" => "string",
                _ => continue,
            };
            params.insert(json_name.clone(), json!({"type": ty, "description": doc}));
        }
        out.insert(options.to_string(), Value::Object(params));
    }
    Value::Object(out)
}

/// The Go source files (tests left out, sorted) of each package the definitions come from
/// (`io.k8s.api.apps.v1.X` → `api/apps/v1/*.go`), by package; packages without sources are
/// left out.
fn package_sources(
    root: &std::path::Path,
    definitions: &serde_json::Map<String, Value>,
) -> Vec<(String, Vec<std::path::PathBuf>)> {
    let packages: std::collections::BTreeSet<String> = definitions
        .keys()
        .filter_map(|n| n.rsplit_once('.').map(|(p, _)| p.to_string()))
        .collect();
    let mut out = Vec::new();
    for package in packages {
        let Some((repo, path)) = package
            .strip_prefix("io.k8s.")
            .and_then(|r| r.split_once('.'))
        else {
            continue;
        };
        let dir = root.join(repo).join(path.replace('.', "/"));
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<_> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.extension().is_some_and(|x| x == "go")
                    && !p.to_string_lossy().ends_with("_test.go")
            })
            .collect();
        files.sort();
        out.push((package, files));
    }
    out
}
