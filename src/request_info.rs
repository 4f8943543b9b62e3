//! What a request is about, parsed from method, path and query once, before any handler runs.
//!
//! Mirrors k8s.io/apiserver/pkg/endpoints/request/requestinfo.go: resource requests live under
//! `/api/{version}` and `/apis/{group}/{version}`; everything else is a non-resource request.

use http::Method;

/// The parsed shape of a request (k8s.io/apiserver `RequestInfo`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestInfo {
    /// True for `/api/...` and `/apis/...` requests naming a resource.
    pub is_resource_request: bool,
    /// The request path.
    pub path: String,
    /// Kubernetes verb: get, list, watch, create, update, patch, delete, deletecollection; for
    /// non-resource requests the lowercased HTTP method.
    pub verb: String,
    /// "api" or "apis" (empty for non-resource requests).
    pub api_prefix: String,
    /// API group ("" for core).
    pub api_group: String,
    /// API version.
    pub api_version: String,
    /// Namespace, if the path names one.
    pub namespace: String,
    /// Plural resource name.
    pub resource: String,
    /// Subresource (`status`, `scale`, ...).
    pub subresource: String,
    /// Object name, if any.
    pub name: String,
}

/// A boolean query parameter as kube-apiserver decodes it (`Convert_Slice_string_To_bool`): set
/// unless its first value is `0` or `false` in any case (`?watch`, `watch=True`, `watch=1` are
/// all true).
pub fn kube_bool(value: &str) -> bool {
    !(value == "0" || value.eq_ignore_ascii_case("false"))
}

/// The first value of a query parameter, decoded.
pub(crate) fn query_param(query: &str, key: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

/// Query parameters that change the verb.
fn query_flag(query: &str, key: &str) -> bool {
    query_param(query, key).is_some_and(|v| kube_bool(&v))
}

/// The name a list or watch asks for through `fieldSelector=metadata.name=X`, as kube's
/// RequestInfo takes it (so that RBAC `resourceNames` apply to it). Only a name that is a valid
/// path segment counts.
fn selected_name(query: &str) -> Option<String> {
    let selector = query_param(query, "fieldSelector")?;
    let parsed = kubox_apimachinery::fields::FieldSelector::parse(&selector).ok()?;
    let name = parsed.requires_exact_match("metadata.name")?;
    let valid = !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '%']);
    valid.then(|| name.to_string())
}

impl RequestInfo {
    /// Parse a request line.
    pub fn parse(method: &Method, path: &str, query: &str) -> RequestInfo {
        let mut info = RequestInfo {
            path: path.to_string(),
            verb: method.as_str().to_ascii_lowercase(),
            ..Default::default()
        };
        let trimmed = path.trim_matches('/');
        let mut parts: Vec<&str> = if trimmed.is_empty() {
            vec![]
        } else {
            trimmed.split('/').collect()
        };
        if parts.is_empty() || (parts[0] != "api" && parts[0] != "apis") {
            return info;
        }
        info.api_prefix = parts[0].to_string();
        parts.remove(0);
        if info.api_prefix == "apis" {
            // /apis/{group}/{version}/...
            if parts.len() < 2 {
                return info;
            }
            info.api_group = parts.remove(0).to_string();
        } else if parts.is_empty() {
            return info;
        }
        info.api_version = parts.remove(0).to_string();
        if parts.is_empty() {
            return info;
        }
        info.is_resource_request = true;

        // Legacy `/watch/` paths.
        let mut watch_path = false;
        if parts[0] == "watch" {
            watch_path = true;
            parts.remove(0);
            if parts.is_empty() {
                info.is_resource_request = false;
                return info;
            }
        }
        info.verb = match *method {
            Method::POST => "create",
            Method::GET | Method::HEAD => "get",
            Method::PUT => "update",
            Method::PATCH => "patch",
            Method::DELETE => "delete",
            _ => "",
        }
        .to_string();

        // /namespaces/{ns}/{resource}... — but `namespaces/{name}[/status|/finalize]` is the
        // namespace object itself.
        if parts[0] == "namespaces" && parts.len() > 1 {
            info.namespace = parts[1].to_string();
            if parts.len() > 2 && !matches!(parts[2], "status" | "finalize") {
                parts.drain(0..2);
            }
        }
        info.resource = parts.first().map(|s| s.to_string()).unwrap_or_default();
        info.name = parts.get(1).map(|s| s.to_string()).unwrap_or_default();
        info.subresource = parts.get(2).map(|s| s.to_string()).unwrap_or_default();
        if info.resource == "namespaces" {
            // A namespace object has no namespace of its own.
            info.namespace = String::new();
        }

        if watch_path || (info.verb == "get" && query_flag(query, "watch")) {
            if info.name.is_empty() || watch_path {
                info.verb = "watch".to_string();
            }
            if !info.name.is_empty() && query_flag(query, "watch") {
                info.verb = "watch".to_string();
            }
        }
        if info.verb == "get" && info.name.is_empty() {
            info.verb = "list".to_string();
        }
        if matches!(info.verb.as_str(), "list" | "watch") && info.name.is_empty() {
            if let Some(name) = selected_name(query) {
                info.name = name;
            }
        }
        if info.verb == "delete" && info.name.is_empty() {
            info.verb = "deletecollection".to_string();
        }
        info
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn p(m: Method, path: &str, q: &str) -> RequestInfo {
        RequestInfo::parse(&m, path, q)
    }

    #[test]
    fn namespaced_get_names_every_part() {
        let i = p(
            Method::GET,
            "/apis/apps/v1/namespaces/ns1/deployments/web/scale",
            "",
        );
        assert!(i.is_resource_request);
        assert_eq!(
            (i.api_group.as_str(), i.api_version.as_str()),
            ("apps", "v1")
        );
        assert_eq!(
            (i.namespace.as_str(), i.resource.as_str()),
            ("ns1", "deployments")
        );
        assert_eq!(
            (i.name.as_str(), i.subresource.as_str(), i.verb.as_str()),
            ("web", "scale", "get")
        );
    }

    #[test]
    fn collection_get_is_list_and_watch_query_is_watch() {
        assert_eq!(p(Method::GET, "/api/v1/pods", "").verb, "list");
        assert_eq!(
            p(Method::GET, "/api/v1/namespaces/a/pods", "watch=true").verb,
            "watch"
        );
        assert_eq!(
            p(Method::GET, "/api/v1/watch/namespaces/a/pods", "").verb,
            "watch"
        );
        assert_eq!(
            p(Method::DELETE, "/api/v1/namespaces/a/pods", "").verb,
            "deletecollection"
        );
    }

    #[test]
    fn watch_is_a_boolean_as_kube_decodes_it() {
        for q in [
            "watch=true",
            "watch=True",
            "watch=1",
            "watch=yes",
            "watch",
            "watch=",
        ] {
            assert_eq!(p(Method::GET, "/api/v1/pods", q).verb, "watch", "{q}");
        }
        for q in ["watch=false", "watch=FALSE", "watch=0", ""] {
            assert_eq!(p(Method::GET, "/api/v1/pods", q).verb, "list", "{q}");
        }
    }

    #[test]
    fn a_name_field_selector_names_the_object_of_a_list_or_watch() {
        let i = p(
            Method::GET,
            "/api/v1/namespaces/a/pods",
            "fieldSelector=metadata.name%3Dweb&watch=1",
        );
        assert_eq!((i.verb.as_str(), i.name.as_str()), ("watch", "web"));
        let i = p(
            Method::GET,
            "/api/v1/namespaces/a/pods",
            "fieldSelector=status.phase%3DRunning,metadata.name%3D%3Dweb",
        );
        assert_eq!((i.verb.as_str(), i.name.as_str()), ("list", "web"));
        for q in [
            "fieldSelector=metadata.name!%3Dweb",
            "fieldSelector=metadata.name%3D..",
            "fieldSelector=status.phase%3DRunning",
        ] {
            assert_eq!(p(Method::GET, "/api/v1/pods", q).name, "", "{q}");
        }
        // Deletecollection is not narrowed (kube only narrows list and watch).
        let i = p(
            Method::DELETE,
            "/api/v1/namespaces/a/pods",
            "fieldSelector=metadata.name%3Dweb",
        );
        assert_eq!((i.verb.as_str(), i.name.as_str()), ("deletecollection", ""));
    }

    #[test]
    fn namespace_object_paths_are_cluster_scoped() {
        let i = p(Method::GET, "/api/v1/namespaces/kube-system", "");
        assert_eq!(
            (i.resource.as_str(), i.name.as_str(), i.namespace.as_str()),
            ("namespaces", "kube-system", "")
        );
        let i = p(Method::PUT, "/api/v1/namespaces/x/finalize", "");
        assert_eq!((i.name.as_str(), i.subresource.as_str()), ("x", "finalize"));
        let i = p(Method::GET, "/api/v1/namespaces", "");
        assert_eq!(
            (i.resource.as_str(), i.verb.as_str()),
            ("namespaces", "list")
        );
    }

    #[test]
    fn discovery_paths_are_not_resource_requests() {
        assert!(!p(Method::GET, "/apis/apps/v1", "").is_resource_request);
        assert!(!p(Method::GET, "/api", "").is_resource_request);
        assert!(!p(Method::GET, "/version", "").is_resource_request);
    }
}
