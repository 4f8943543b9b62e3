//! The operations kube-apiserver publishes for the served resources, as its installer makes
//! them and its OpenAPI builder names them: which paths exist (collections, items, every
//! subresource, the lists across namespaces and the deprecated `watch/` paths), each
//! operation's id (`listCoreV1NamespacedPod`, `connectCoreV1GetNamespacedPodExec`…), tag,
//! description, media types, parameters (path, query from the option types, body) and
//! responses. Parameters every operation of a path shares are the path's own, as kube's
//! builder aggregates them. `/openapi/v2` (JSON and protobuf) and `/openapi/v3` render it.

use crate::registry::{ResourceInfo, Snapshot, SubresourceInfo};

/// One parameter of an operation or a path.
#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    pub name: String,
    /// `path`, `query` or `body`.
    pub location: &'static str,
    pub description: String,
    /// The type of a path or query parameter.
    pub ty: &'static str,
    /// The definition a body parameter holds.
    pub schema: Option<String>,
    pub required: bool,
}

/// What a response holds.
#[derive(Clone, Debug, PartialEq)]
pub enum Returns {
    /// A definition.
    Definition(String),
    /// Text (logs, connections).
    Text,
}

/// One operation.
#[derive(Clone, Debug)]
pub struct Operation {
    /// `get`, `put`, `post`, `delete`, `patch`, `head`, `options`.
    pub method: &'static str,
    pub id: String,
    pub tag: String,
    /// `x-kubernetes-action`.
    pub action: &'static str,
    pub description: String,
    pub consumes: &'static [&'static str],
    pub produces: Vec<&'static str>,
    /// The parameters not shared by every operation of the path, by name.
    pub params: Vec<Param>,
    /// Status code, description, what it holds.
    pub responses: Vec<(u16, &'static str, Option<Returns>)>,
    /// `x-kubernetes-group-version-kind`: group, version, kind.
    pub gvk: (String, String, String),
}

/// One path and its operations.
#[derive(Clone, Debug)]
pub struct PathItem {
    pub path: String,
    /// The parameters every operation of the path has (by name).
    pub params: Vec<Param>,
    pub ops: Vec<Operation>,
}

const META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1";
const PRETTY: &str = "If 'true', then the output is pretty printed. Defaults to 'false' unless the user-agent indicates a browser or command-line HTTP tool (curl and wget).";
const NAMESPACE: &str = "object name and auth scope, such as for teams and projects";
const ANY: &[&str] = &["*/*"];
const PATCHES: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
];
const CUSTOM_PATCHES: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/apply-patch+yaml",
];
/// What `watch` and `deletecollection` leave out of the list options.
const WATCH_ONLY: &[&str] = &["watch", "allowWatchBookmarks"];

/// kube's `ToValidOperationID`: letters and underscores kept (digits after the first
/// character), anything else dropped and the next letter capitalised.
fn operation_word(s: &str, capitalize_first: bool) -> String {
    let mut out = String::new();
    let mut capitalize = capitalize_first;
    for (i, c) in s.chars().enumerate() {
        if c.is_alphabetic() || c == '_' || (i != 0 && c.is_ascii_digit()) {
            if capitalize {
                out.extend(c.to_uppercase());
                capitalize = false;
            } else {
                out.push(c);
            }
        } else {
            capitalize = true;
        }
    }
    out
}

/// The verbs kube's OpenAPI builder finds at the start of an operation name (the shortest
/// that matches): the group and version go after it.
const VERBS: &[&str] = &[
    "get", "log", "read", "replace", "patch", "delete", "watch", "connect", "proxy", "list",
    "create",
];

/// The published id and tag of installer operation `op` in group/version.
fn id_and_tag(op: &str, group: &str, version: &str) -> (String, String) {
    let group = if group.is_empty() {
        "core"
    } else {
        group.trim_end_matches(".k8s.io")
    };
    let tag = format!(
        "{}_{}",
        operation_word(group, false),
        operation_word(version, false)
    );
    let verb = VERBS
        .iter()
        .filter(|v| op.starts_with(**v))
        .min_by_key(|v| v.len())
        .copied()
        .unwrap_or_default();
    let id = format!(
        "{verb}{}{}{}",
        operation_word(group, true),
        operation_word(version, true),
        operation_word(&op[verb.len()..], true)
    );
    (id, tag)
}

/// kube's `GetArticleForNoun` with spaces around: none for plurals.
fn article(noun: &str) -> &'static str {
    if noun.ends_with('s') && !noun.ends_with("ss") {
        " "
    } else if noun
        .chars()
        .next()
        .is_some_and(|c| "aeiouAEIOU".contains(c))
    {
        " an "
    } else {
        " a "
    }
}

fn title(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

fn path_param(name: &str, description: &str) -> Param {
    Param {
        name: name.to_string(),
        location: "path",
        description: description.to_string(),
        ty: "string",
        schema: None,
        required: true,
    }
}

fn body(definition: &str, required: bool) -> Param {
    Param {
        name: "body".to_string(),
        location: "body",
        description: String::new(),
        ty: "",
        schema: Some(definition.to_string()),
        required,
    }
}

/// The query parameters of option type `options`, but `except`.
fn query(options: &str, except: &[&str]) -> Vec<Param> {
    kubox_openapi::Schemas::builtin()
        .parameters_of(options)
        .into_iter()
        .filter(|(name, _)| !except.contains(name))
        .map(|(name, p)| Param {
            name: name.to_string(),
            location: "query",
            description: p["description"].as_str().unwrap_or_default().to_string(),
            ty: match p["type"].as_str() {
                Some("boolean") => "boolean",
                Some("integer") => "integer",
                _ => "string",
            },
            schema: None,
            required: false,
        })
        .collect()
}

fn pretty() -> Param {
    Param {
        name: "pretty".to_string(),
        location: "query",
        description: PRETTY.to_string(),
        ty: "string",
        schema: None,
        required: false,
    }
}

/// Operations of one resource as the installer makes them, before the parameters are shared.
struct Builder<'a> {
    r: &'a ResourceInfo,
    custom: bool,
    routes: Vec<(String, Operation, Vec<Param>)>,
}

impl Builder<'_> {
    fn media(&self, streams: bool) -> Vec<&'static str> {
        let mut m = vec!["application/json", "application/yaml"];
        if !self.custom {
            m.push("application/vnd.kubernetes.protobuf");
        }
        if streams {
            m.push("application/json;stream=watch");
            if !self.custom {
                m.push("application/vnd.kubernetes.protobuf;stream=watch");
            }
        }
        m
    }

    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        path: String,
        method: &'static str,
        op: String,
        action: &'static str,
        description: String,
        params: Vec<Param>,
        responses: Vec<(u16, &'static str, Option<Returns>)>,
        gvk: (String, String, String),
    ) {
        let (id, tag) = id_and_tag(&op, &self.r.group, &self.r.version);
        let (consumes, produces) = match action {
            "patch" if self.custom => (CUSTOM_PATCHES, self.media(false)),
            "patch" => (PATCHES, self.media(false)),
            "list" | "watch" | "watchlist" => (ANY, self.media(true)),
            "connect" => (ANY, vec!["*/*"]),
            _ => (ANY, self.media(false)),
        };
        let mut responses = responses;
        responses.push((401, "Unauthorized", None));
        let operation = Operation {
            method,
            id,
            tag,
            action,
            description,
            consumes,
            produces,
            params: Vec::new(),
            responses,
            gvk,
        };
        self.routes.push((path, operation, params));
    }
}

fn gvk(r: &ResourceInfo) -> (String, String, String) {
    (r.group.clone(), r.version.clone(), r.kind.clone())
}

/// The definition of a subresource's object: the resource's own for its own kind (status),
/// else the built-in kind's.
fn subresource_definition(r: &ResourceInfo, sub: &SubresourceInfo) -> Option<String> {
    let group = if sub.group.is_empty() {
        &r.group
    } else {
        &sub.group
    };
    let version = if sub.version.is_empty() {
        &r.version
    } else {
        &sub.version
    };
    if sub.kind == r.kind && group == &r.group {
        return crate::openapi::definition_name(r).map(str::to_string);
    }
    kubox_openapi::Schemas::builtin()
        .definition_name(group, version, &sub.kind)
        .map(str::to_string)
}

/// The option type of a connecting subresource.
fn connect_options(resource: &str, sub: &str) -> Option<&'static str> {
    Some(match (resource, sub) {
        ("pods", "exec") => "PodExecOptions",
        ("pods", "attach") => "PodAttachOptions",
        ("pods", "portforward") => "PodPortForwardOptions",
        ("pods", "proxy") => "PodProxyOptions",
        ("services", "proxy") => "ServiceProxyOptions",
        ("nodes", "proxy") => "NodeProxyOptions",
        _ => return None,
    })
}

fn resource_routes(prefix: &str, r: &ResourceInfo) -> Vec<(String, Operation, Vec<Param>)> {
    let mut b = Builder {
        r,
        custom: r.strategy.is_custom(),
        routes: Vec::new(),
    };
    let kind = r.kind.as_str();
    let def = crate::openapi::definition_name(r).map(str::to_string);
    let object = def.clone().map(Returns::Definition);
    let status = Some(Returns::Definition(format!("{META}.Status")));
    let event = Some(Returns::Definition(format!("{META}.WatchEvent")));
    let list_def = def.as_ref().and_then(|d| {
        let name = format!("{d}List");
        let known = r.strategy.published_schema().is_some()
            || kubox_openapi::Schemas::builtin()
                .definition(&name)
                .is_some();
        known.then_some(Returns::Definition(name))
    });
    let (ns, scope_params, scoped) = if r.namespaced {
        (
            "Namespaced",
            vec![path_param("namespace", NAMESPACE)],
            format!("namespaces/{{namespace}}/{}", r.resource),
        )
    } else {
        ("", Vec::new(), r.resource.clone())
    };
    let name_param = path_param("name", &format!("name of the {kind}"));
    let mut item_params = scope_params.clone();
    item_params.push(name_param.clone());
    let with = |base: &[Param], more: Vec<Param>| -> Vec<Param> {
        let mut v = base.to_vec();
        v.push(pretty());
        v.extend(more);
        v
    };
    let collection = format!("{prefix}/{scoped}");
    let item = format!("{collection}/{{name}}");
    let has = |verb: &str| r.has_verb(verb);
    let body_def = def.clone().unwrap_or_default();
    let deleted = if r.spec.is_some_and(|s| s.returns_deleted) || r.strategy.is_custom() {
        object.clone()
    } else {
        status.clone()
    };
    let watch_doc = "deprecated: use the 'watch' parameter with a list operation instead";
    if has("list") {
        let doc = if has("watch") {
            format!("list or watch objects of kind {kind}")
        } else {
            format!("list objects of kind {kind}")
        };
        b.add(
            collection.clone(),
            "get",
            format!("list{ns}{kind}"),
            "list",
            doc,
            with(&scope_params, query("ListOptions", &[])),
            vec![(200, "OK", list_def.clone())],
            gvk(r),
        );
    }
    if has("create") {
        let mut params = with(&scope_params, query("CreateOptions", &[]));
        params.push(body(&body_def, true));
        b.add(
            collection.clone(),
            "post",
            format!("create{ns}{kind}"),
            "post",
            format!("create{}{kind}", article(kind)),
            params,
            vec![
                (200, "OK", object.clone()),
                (201, "Created", object.clone()),
                (202, "Accepted", object.clone()),
            ],
            gvk(r),
        );
    }
    if has("deletecollection") {
        let mut params = with(&scope_params, query("DeleteOptions", &[]));
        params.extend(query("ListOptions", WATCH_ONLY));
        params.push(body(&format!("{META}.DeleteOptions"), false));
        b.add(
            collection.clone(),
            "delete",
            format!("deletecollection{ns}{kind}"),
            "deletecollection",
            format!("delete collection of {kind}"),
            params,
            vec![(200, "OK", status.clone())],
            gvk(r),
        );
    }
    if has("watch") && has("list") {
        b.add(
            format!("{prefix}/watch/{scoped}"),
            "get",
            format!("watch{ns}{kind}List"),
            "watchlist",
            format!("watch individual changes to a list of {kind}. {watch_doc}."),
            with(&scope_params, query("ListOptions", &[])),
            vec![(200, "OK", event.clone())],
            gvk(r),
        );
    }
    if has("get") {
        b.add(
            item.clone(),
            "get",
            format!("read{ns}{kind}"),
            "get",
            format!("read the specified {kind}"),
            with(&item_params, Vec::new()),
            vec![(200, "OK", object.clone())],
            gvk(r),
        );
    }
    if has("update") {
        let mut params = with(&item_params, query("UpdateOptions", &[]));
        params.push(body(&body_def, true));
        b.add(
            item.clone(),
            "put",
            format!("replace{ns}{kind}"),
            "put",
            format!("replace the specified {kind}"),
            params,
            vec![
                (200, "OK", object.clone()),
                (201, "Created", object.clone()),
            ],
            gvk(r),
        );
    }
    if has("patch") {
        let mut params = with(&item_params, query("PatchOptions", &[]));
        params.push(body(&format!("{META}.Patch"), true));
        b.add(
            item.clone(),
            "patch",
            format!("patch{ns}{kind}"),
            "patch",
            format!("partially update the specified {kind}"),
            params,
            vec![
                (200, "OK", object.clone()),
                (201, "Created", object.clone()),
            ],
            gvk(r),
        );
    }
    if has("delete") {
        let mut params = with(&item_params, query("DeleteOptions", &[]));
        params.push(body(&format!("{META}.DeleteOptions"), false));
        b.add(
            item.clone(),
            "delete",
            format!("delete{ns}{kind}"),
            "delete",
            format!("delete{}{kind}", article(kind)),
            params,
            vec![(200, "OK", deleted.clone()), (202, "Accepted", deleted)],
            gvk(r),
        );
    }
    if has("watch") {
        b.add(
            format!("{prefix}/watch/{scoped}/{{name}}"),
            "get",
            format!("watch{ns}{kind}"),
            "watch",
            format!("watch changes to an object of kind {kind}. {watch_doc}, filtered to a single item with the 'fieldSelector' parameter."),
            with(&item_params, query("ListOptions", &[])),
            vec![(200, "OK", event.clone())],
            gvk(r),
        );
    }
    if r.namespaced && has("list") {
        let doc = if has("watch") {
            format!("list or watch objects of kind {kind}")
        } else {
            format!("list objects of kind {kind}")
        };
        b.add(
            format!("{prefix}/{}", r.resource),
            "get",
            format!("list{kind}ForAllNamespaces"),
            "list",
            doc,
            with(&[], query("ListOptions", &[])),
            vec![(200, "OK", list_def)],
            gvk(r),
        );
        if has("watch") {
            b.add(
                format!("{prefix}/watch/{}", r.resource),
                "get",
                format!("watch{kind}ListForAllNamespaces"),
                "watchlist",
                format!("watch individual changes to a list of {kind}. {watch_doc}."),
                with(&[], query("ListOptions", &[])),
                vec![(200, "OK", event)],
                gvk(r),
            );
        }
    }
    for sub in &r.subresources {
        subresource_routes(&mut b, &item, &item_params, sub);
    }
    b.routes
}

fn subresource_routes(
    b: &mut Builder<'_>,
    item: &str,
    item_params: &[Param],
    sub: &SubresourceInfo,
) {
    let r = b.r;
    let kind = r.kind.clone();
    let ns = if r.namespaced { "Namespaced" } else { "" };
    let name = sub.name.as_str();
    let suffix = title(name);
    let path = format!("{item}/{name}");
    let sub_gvk = (
        if sub.group.is_empty() && sub.kind == r.kind {
            r.group.clone()
        } else {
            sub.group.clone()
        },
        if sub.version.is_empty() {
            r.version.clone()
        } else {
            sub.version.clone()
        },
        sub.kind.clone(),
    );
    let with = |more: Vec<Param>| -> Vec<Param> {
        let mut v = item_params.to_vec();
        v.push(pretty());
        v.extend(more);
        v
    };
    let has = |verb: &str| sub.verbs.iter().any(|v| v == verb);
    if let Some(options) = connect_options(&r.resource, name) {
        let methods: &[&'static str] = if name == "proxy" {
            &["delete", "get", "head", "options", "patch", "post", "put"]
        } else {
            &["get", "post"]
        };
        let with_path = name == "proxy";
        for (path, op_suffix, extra) in [
            (path.clone(), "", None),
            (
                format!("{path}/{{path}}"),
                "WithPath",
                Some(path_param("path", "path to the resource")),
            ),
        ] {
            if !op_suffix.is_empty() && !with_path {
                continue;
            }
            for method in methods {
                let mut params = item_params.to_vec();
                params.extend(extra.clone());
                params.extend(query(options, &[]));
                b.add(
                    path.clone(),
                    method,
                    format!("connect{}{ns}{kind}{suffix}{op_suffix}", title(method)),
                    "connect",
                    format!(
                        "connect {} requests to {name} of {kind}",
                        method.to_uppercase()
                    ),
                    params,
                    vec![(200, "OK", Some(Returns::Text))],
                    (String::new(), "v1".to_string(), options.to_string()),
                );
            }
        }
        return;
    }
    if name == "log" {
        b.add(
            path,
            "get",
            format!("read{ns}{kind}Log"),
            "get",
            format!("read log of the specified {kind}"),
            with(query("PodLogOptions", &[])),
            vec![(200, "OK", Some(Returns::Text))],
            sub_gvk,
        );
        return;
    }
    let def = subresource_definition(r, sub);
    let object = def.clone().map(Returns::Definition);
    let body_def = def.unwrap_or_default();
    if has("get") {
        b.add(
            path.clone(),
            "get",
            format!("read{ns}{kind}{suffix}"),
            "get",
            format!("read {name} of the specified {kind}"),
            with(Vec::new()),
            vec![(200, "OK", object.clone())],
            sub_gvk.clone(),
        );
    }
    if has("update") {
        let mut params = with(query("UpdateOptions", &[]));
        params.push(body(&body_def, true));
        b.add(
            path.clone(),
            "put",
            format!("replace{ns}{kind}{suffix}"),
            "put",
            format!("replace {name} of the specified {kind}"),
            params,
            vec![
                (200, "OK", object.clone()),
                (201, "Created", object.clone()),
            ],
            sub_gvk.clone(),
        );
    }
    if has("patch") {
        let mut params = with(query("PatchOptions", &[]));
        params.push(body(&format!("{META}.Patch"), true));
        b.add(
            path.clone(),
            "patch",
            format!("patch{ns}{kind}{suffix}"),
            "patch",
            format!("partially update {name} of the specified {kind}"),
            params,
            vec![
                (200, "OK", object.clone()),
                (201, "Created", object.clone()),
            ],
            sub_gvk.clone(),
        );
    }
    if has("create") {
        let mut params = with(query("CreateOptions", &[]));
        params.push(body(&body_def, true));
        b.add(
            path,
            "post",
            format!("create{ns}{kind}{suffix}"),
            "post",
            format!("create {name} of{}{kind}", article(&kind)),
            params,
            vec![
                (200, "OK", object.clone()),
                (201, "Created", object.clone()),
                (202, "Accepted", object),
            ],
            sub_gvk,
        );
    }
}

/// Every path of the served resources (of one group/version with `only`), sorted, with the
/// parameters all of a path's operations share moved to the path, as kube's builder does.
pub fn paths(snap: &Snapshot, only: Option<(&str, &str)>) -> Vec<PathItem> {
    let mut routes = Vec::new();
    for g in &snap.groups {
        for v in &g.versions {
            if only.is_some_and(|(og, ov)| og != g.name || ov != v) {
                continue;
            }
            let prefix = if g.name.is_empty() {
                format!("/api/{v}")
            } else {
                format!("/apis/{}/{v}", g.name)
            };
            for r in snap.resources(&g.name, v).unwrap_or_default() {
                routes.extend(resource_routes(&prefix, r));
            }
        }
    }
    let mut by_path: std::collections::BTreeMap<String, Vec<(Operation, Vec<Param>)>> =
        Default::default();
    for (path, op, params) in routes {
        by_path.entry(path).or_default().push((op, params));
    }
    by_path
        .into_iter()
        .map(|(path, ops)| {
            let key = |p: &Param| (p.name.clone(), p.location);
            let mut common: Vec<Param> = ops[0]
                .1
                .iter()
                .filter(|p| p.location != "body")
                .filter(|p| {
                    ops.iter()
                        .all(|(_, params)| params.iter().any(|q| key(q) == key(p)))
                })
                .cloned()
                .collect();
            common.sort_by(|a, b| a.name.cmp(&b.name).then(a.location.cmp(b.location)));
            let ops = ops
                .into_iter()
                .map(|(mut op, params)| {
                    let mut own: Vec<Param> = params
                        .into_iter()
                        .filter(|p| !common.iter().any(|c| key(c) == key(p)))
                        .collect();
                    own.sort_by(|a, b| a.name.cmp(&b.name).then(a.location.cmp(b.location)));
                    op.params = own;
                    op
                })
                .collect();
            PathItem {
                path,
                params: common,
                ops,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_ids_are_kubes() {
        let cases = [
            (
                "listNamespacedPod",
                "",
                "v1",
                "listCoreV1NamespacedPod",
                "core_v1",
            ),
            (
                "deletecollectionNamespacedPod",
                "",
                "v1",
                "deleteCoreV1CollectionNamespacedPod",
                "core_v1",
            ),
            (
                "connectGetNamespacedPodExec",
                "",
                "v1",
                "connectCoreV1GetNamespacedPodExec",
                "core_v1",
            ),
            (
                "readClusterRole",
                "rbac.authorization.k8s.io",
                "v1",
                "readRbacAuthorizationV1ClusterRole",
                "rbacAuthorization_v1",
            ),
            (
                "watchNamespacedWidgetList",
                "stable.example.com",
                "v1beta1",
                "watchStableExampleComV1beta1NamespacedWidgetList",
                "stableExampleCom_v1beta1",
            ),
        ];
        for (op, group, version, id, tag) in cases {
            assert_eq!(
                id_and_tag(op, group, version),
                (id.to_string(), tag.to_string())
            );
        }
        assert_eq!(article("Endpoints"), " ");
        assert_eq!(article("Ingress"), " an ");
        assert_eq!(article("Pod"), " a ");
    }
}
