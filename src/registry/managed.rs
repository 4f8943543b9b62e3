//! `metadata.managedFields` on every write, as kube-apiserver's field manager keeps them for
//! `Update` operations (creates, updates, patches, subresource writes): the fields a write
//! adds or changes go to its manager, and leave every other manager's set; removed fields leave
//! every set; each entry names its manager, operation, apiVersion, subresource and the time its
//! set last changed; at most 10 `Update` entries are kept (older ones merge into
//! `ancient-changes`); `managedFields: [{}]` strips them all.
//!
//! The manager is `?fieldManager=` or the user agent up to its first `/` (kube's
//! `managerOrUserAgent`); the server's own controllers are `kube-controller-manager`.
//! An apply (`Apply` entries) owns exactly the fields it applies; changing a field another
//! manager owns is a 409 conflict unless forced; fields it applied before and no longer does,
//! that nobody else owns, are removed.

use kubox_apimachinery::fieldpath::{self, PathElement, Schema, Set, Untyped};
use serde_json::{json, Value};

use super::ResourceInfo;
use crate::status::{ApiError, ApiResult};

/// One `managedFields` entry.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    manager: String,
    operation: String,
    api_version: String,
    time: Option<String>,
    fields: Set,
    subresource: String,
}

impl Entry {
    /// kube's manager identifier: apply entries are one per manager whatever the version.
    fn same_owner(&self, other: &Entry) -> bool {
        self.manager == other.manager
            && self.operation == other.operation
            && self.subresource == other.subresource
            && (self.operation == "Apply" || self.api_version == other.api_version)
    }

    fn to_json(&self) -> Value {
        let mut e = json!({
            "operation": self.operation,
            "apiVersion": self.api_version,
        });
        // `manager` is omitempty: a request without a user agent has none.
        if !self.manager.is_empty() {
            e["manager"] = json!(self.manager);
        }
        if let Some(t) = &self.time {
            e["time"] = json!(t);
        }
        e["fieldsType"] = json!("FieldsV1");
        e["fieldsV1"] = self.fields.to_value();
        if !self.subresource.is_empty() {
            e["subresource"] = json!(self.subresource);
        }
        e
    }
}

/// The entries of a `managedFields` list; None when absent, empty or not decodable (kube then
/// keeps the live object's).
fn decode(list: Option<&Value>) -> Option<Vec<Entry>> {
    let items = list?.as_array()?;
    if items.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(items.len());
    for e in items {
        let s = |k: &str| e.get(k).and_then(Value::as_str).map(str::to_string);
        if e.get("fieldsType").and_then(Value::as_str) != Some("FieldsV1") {
            return None;
        }
        let fields = Set::from_value(e.get("fieldsV1")?).ok()?;
        out.push(Entry {
            manager: s("manager").unwrap_or_default(),
            operation: s("operation")?,
            api_version: s("apiVersion").unwrap_or_default(),
            time: s("time"),
            fields,
            subresource: s("subresource").unwrap_or_default(),
        });
    }
    Some(out)
}

/// kube's order: operation, time (seconds), manager, apiVersion, subresource.
fn encode(mut entries: Vec<Entry>) -> Value {
    entries.sort_by(|p, q| {
        p.operation
            .cmp(&q.operation)
            .then_with(|| p.time.cmp(&q.time))
            .then_with(|| p.manager.cmp(&q.manager))
            .then_with(|| p.api_version.cmp(&q.api_version))
            .then_with(|| p.subresource.cmp(&q.subresource))
    });
    Value::Array(entries.iter().map(Entry::to_json).collect())
}

/// Fields never tracked (kube's strip set): identity and server-set metadata.
static STRIP_SET: std::sync::LazyLock<Set> = std::sync::LazyLock::new(strip_set);

fn strip_set() -> Set {
    let mut s = Set::new();
    let f = |n: &str| PathElement::Field(n.to_string());
    s.insert(&[f("apiVersion")]);
    s.insert(&[f("kind")]);
    s.insert(&[f("metadata")]);
    for m in [
        "name",
        "namespace",
        "creationTimestamp",
        "selfLink",
        "uid",
        "clusterName",
        "generation",
        "managedFields",
        "resourceVersion",
    ] {
        s.insert(&[f("metadata"), f(m)]);
    }
    s
}

/// Most `Update` entries kept; older ones merge into one `ancient-changes` entry per version.
const MAX_UPDATE_MANAGERS: usize = 10;

/// The manager of a write: `?fieldManager=`, else the user agent's product (kube's
/// `managerOrUserAgent`).
pub fn manager_name(field_manager: Option<&str>, user_agent: &str) -> String {
    match field_manager.filter(|m| !m.is_empty()) {
        Some(m) => m.to_string(),
        None => user_agent.split('/').next().unwrap_or_default().to_string(),
    }
}

/// What a write changed, as the managers that wrote at another apiVersion see it: the
/// comparison of the live and new objects converted to that version (see `store.rs`).
pub type OtherVersions = std::collections::HashMap<String, fieldpath::Comparison>;

/// One write, as [`track`] records it.
pub struct Write<'a> {
    /// Who writes ([`manager_name`]).
    pub manager: &'a str,
    /// The subresource written ("" for the resource itself).
    pub subresource: &'a str,
    /// RFC 3339, seconds.
    pub now: &'a str,
    /// An apply: the configuration applied, and whether forced.
    pub applied: Option<(&'a Value, bool)>,
    /// The change at the other versions managers wrote at.
    pub others: &'a OtherVersions,
}

/// The apiVersions, other than `version`, at which the entries of `live` (or those the client
/// sets on `new`) were written.
pub fn other_versions(live: Option<&Value>, new: &Value, version: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for obj in [live, Some(new)].into_iter().flatten() {
        let Some(entries) = obj["metadata"]["managedFields"].as_array() else {
            continue;
        };
        for e in entries {
            if let Some(v) = e.get("apiVersion").and_then(Value::as_str) {
                if v != version && !v.is_empty() && !out.iter().any(|o| o == v) {
                    out.push(v.to_string());
                }
            }
        }
    }
    out
}

/// Set `new`'s `managedFields` for a write `w` over `live` (None for a create): an `Update`,
/// or an `Apply` of `w.applied` (with its `force`): the
/// applier owns exactly the fields it applies; fields it applied before and applies no more,
/// that nobody else owns, are removed from `new`; a change to a field another manager owns is
/// a 409 conflict unless forced, and forced it leaves that manager.
pub fn track(
    info: &ResourceInfo,
    live: Option<&Value>,
    new: &mut Value,
    w: &Write<'_>,
) -> ApiResult<()> {
    let (manager, subresource, now, applied) = (w.manager, w.subresource, w.now, w.applied);
    let given = new["metadata"].get("managedFields");
    // `[{}]`: the client strips managedFields (kube's documented reset).
    if given
        .and_then(Value::as_array)
        .is_some_and(|a| a.len() == 1 && a[0].as_object().is_some_and(|o| o.is_empty()))
    {
        if let Some(m) = new["metadata"].as_object_mut() {
            m.remove("managedFields");
        }
        return Ok(());
    }
    let live_entries = live.and_then(|l| decode(l["metadata"].get("managedFields")));
    // Entries the client sets itself are taken as they are; otherwise the live object's.
    let user_set = decode(given).filter(|e| Some(e) != live_entries.as_ref());
    let mut entries = user_set.or(live_entries).unwrap_or_default();

    let structural = info.schema();
    // A create compares with the kind's zero value: the structs a built-in type holds by value
    // (metadata, spec, a Deployment's template and strategy…) exist in it, as in the Go zero
    // value kube compares with, so they are not "added" themselves; a custom resource's is `{}`.
    let empty = match structural.filter(|_| !info.strategy.is_custom()) {
        Some(s) => s.zero_value(),
        None => json!({}),
    };
    let schema: &dyn Schema = match structural {
        Some(s) => s,
        None => &Untyped,
    };
    let stripped: &Set = &STRIP_SET;
    // What this subresource does not own (kube's reset fields): status through the main
    // resource, spec through /status.
    let reset = |mut s: Set| -> Set {
        s.subtract(stripped);
        match (info.strategy.has_status(), subresource) {
            (true, "") => s.remove_field("status"),
            (true, "status") => s.remove_field("spec"),
            _ => {}
        }
        s
    };
    let me = Entry {
        manager: manager.to_string(),
        operation: if applied.is_some() { "Apply" } else { "Update" }.to_string(),
        api_version: info.api_version(),
        time: None,
        fields: Set::new(),
        subresource: subresource.to_string(),
    };
    let mine_before = entries.iter().position(|e| e.same_owner(&me));
    let applied_set = applied.map(|(config, _)| reset(fieldpath::fields_of(config, schema)));
    if let (Some(now_applied), Some(i)) = (&applied_set, mine_before) {
        // What the applier applied before and applies no more, unless someone else owns it.
        let others = entries
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .fold(Set::new(), |acc, (_, e)| acc.union(&e.fields));
        let owned = others.union(now_applied);
        // A container stays while anything below it is still owned (structured-merge-diff
        // adds owned items back after removing the dropped ones).
        let mut dropped = Set::new();
        for p in entries[i].fields.difference(&owned).paths() {
            if !owned.has_below(&p) {
                dropped.insert(&p);
            }
        }
        if !dropped.is_empty() {
            fieldpath::remove_paths(new, &dropped, schema);
        }
    }
    // (metadata.managedFields are not compared.)
    let c = fieldpath::compare(live.unwrap_or(&empty), new, schema);
    let changed = if c.modified.is_empty() {
        reset(c.added)
    } else {
        reset(c.modified.union(&c.added))
    };
    let removed = reset(c.removed);
    // Every other manager sees the change at the version it wrote at (structured-merge-diff
    // converts both objects there).
    let at_versions: std::collections::HashMap<&str, (Set, Set)> = w
        .others
        .iter()
        .map(|(v, c)| {
            let sets = (reset(c.modified.union(&c.added)), reset(c.removed.clone()));
            (v.as_str(), sets)
        })
        .collect();
    let seen = |e: &Entry| -> (&Set, &Set) {
        match at_versions.get(e.api_version.as_str()) {
            Some((ch, rm)) => (ch, rm),
            None => (&changed, &removed),
        }
    };
    if let Some((_, false)) = applied {
        let conflicts: Vec<(&Entry, Set)> = entries
            .iter()
            .filter(|e| !e.same_owner(&me))
            .map(|e| (e, e.fields.intersection(seen(e).0)))
            .filter(|(_, c)| !c.is_empty())
            .collect();
        if !conflicts.is_empty() {
            return Err(conflict_error(&conflicts));
        }
    }
    for e in entries.iter_mut().filter(|e| !e.same_owner(&me)) {
        let (ch, rm) = seen(e);
        e.fields.subtract(ch);
        e.fields.subtract(rm);
    }
    let mut mine = match mine_before {
        Some(i) => entries.remove(i),
        None => me,
    };
    let before = mine.fields.clone();
    mine.fields = match applied_set {
        Some(set) => set,
        // A create's manager owns exactly what changed.
        None if mine.fields.is_empty() && removed.is_empty() => changed,
        None => mine.fields.union(&changed).difference(&removed),
    };
    mine.api_version = info.api_version();
    if mine.fields != before || mine.time.is_none() {
        mine.time = Some(now.to_string());
    }
    entries.push(mine);
    entries.retain(|e| !e.fields.is_empty());
    cap_updates(&mut entries);
    if entries.is_empty() {
        if let Some(m) = new["metadata"].as_object_mut() {
            m.remove("managedFields");
        }
    } else {
        new["metadata"]["managedFields"] = encode(entries);
    }
    Ok(())
}

/// How kube prints a manager in a conflict: `"name"`, with its subresource, and for Update
/// entries the apiVersion it wrote at.
fn print_manager(e: &Entry) -> String {
    let mut s = format!("{:?}", e.manager);
    if !e.subresource.is_empty() {
        s = format!("{s} with subresource {:?}", e.subresource);
    }
    if e.operation == "Update" {
        s = format!("{s} using {}", e.api_version);
    }
    s
}

/// kube's apply conflict: 409, reason Conflict, a cause per field.
fn conflict_error(conflicts: &[(&Entry, Set)]) -> ApiError {
    let mut all: Vec<(String, String)> = Vec::new();
    for (e, set) in conflicts {
        for p in set.paths() {
            all.push((print_manager(e), fieldpath::display_path(&p)));
        }
    }
    all.sort();
    let message = if let [(m, p)] = all.as_slice() {
        format!("Apply failed with 1 conflict: conflict with {m}: {p}")
    } else {
        let mut lines = Vec::new();
        let mut last: Option<&str> = None;
        for (m, p) in &all {
            if last != Some(m.as_str()) {
                lines.push(format!("conflicts with {m}:"));
                last = Some(m);
            }
            lines.push(format!("- {p}"));
        }
        format!(
            "Apply failed with {} conflicts: {}",
            all.len(),
            lines.join("\n")
        )
    };
    let causes: Vec<Value> = all
        .iter()
        .map(|(m, p)| json!({"reason": "FieldManagerConflict", "message": format!("conflict with {m}"), "field": p}))
        .collect();
    ApiError::apply_conflict(message, causes)
}

/// Merge the oldest `Update` entries (per apiVersion) into `ancient-changes` until at most
/// [`MAX_UPDATE_MANAGERS`] remain, as kube's capManagersManager does.
fn cap_updates(entries: &mut Vec<Entry>) {
    let count = |es: &Vec<Entry>| es.iter().filter(|e| e.operation == "Update").count();
    if count(entries) <= MAX_UPDATE_MANAGERS {
        return;
    }
    let mut order: Vec<usize> = (0..entries.len())
        .filter(|i| entries[*i].operation == "Update")
        .collect();
    order.sort_by(|a, b| entries[*a].time.cmp(&entries[*b].time));
    let mut first_of_version: Vec<(String, usize)> = Vec::new();
    let mut gone = vec![false; entries.len()];
    let mut length = order.len();
    for i in order {
        if length <= MAX_UPDATE_MANAGERS {
            break;
        }
        let version = entries[i].api_version.clone();
        match first_of_version.iter().find(|(v, _)| *v == version) {
            Some((_, first)) => {
                let first = *first;
                entries[first].manager = "ancient-changes".to_string();
                entries[first].subresource = String::new();
                entries[first].fields = entries[first].fields.union(&entries[i].fields);
                entries[first].time = entries[i].time.clone();
                gone[i] = true;
                length -= 1;
            }
            None => first_of_version.push((version, i)),
        }
    }
    let mut i = 0;
    entries.retain(|_| {
        let keep = !gone[i];
        i += 1;
        keep
    });
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// The fieldsV1 a create by `m` records on a built-in object, for each kind of list and map:
    /// set lists by value, associative lists by key, atomic lists and maps whole, granular maps
    /// key by key (what kube records for the same creates).
    #[test]
    fn created_fields_by_list_and_map_type() {
        let snap = crate::registry::Registry::builtin().snapshot();
        let cases = [
            (
                "configmaps",
                json!({"metadata": {"name": "x", "finalizers": ["a"], "labels": {"k": "v"}}, "data": {"d": "1"}}),
                json!({"f:data": {".": {}, "f:d": {}},
                       "f:metadata": {"f:finalizers": {".": {}, "v:\"a\"": {}}, "f:labels": {".": {}, "f:k": {}}}}),
            ),
            (
                "services",
                json!({"metadata": {"name": "s"},
                       "spec": {"selector": {"app": "a"}, "externalIPs": ["1.2.3.4"],
                                "ports": [{"port": 80}]}}),
                json!({"f:spec": {"f:externalIPs": {}, "f:ports": {".": {},
                           "k:{\"port\":80,\"protocol\":\"TCP\"}": {".": {}, "f:port": {}}},
                       "f:selector": {}}}),
            ),
        ];
        for (resource, obj, want) in cases {
            let info = snap.get("", "v1", resource).unwrap();
            let mut obj = obj;
            let w = Write {
                manager: "m",
                subresource: "",
                now: "2026-01-01T00:00:00Z",
                applied: None,
                others: &OtherVersions::new(),
            };
            track(&info, None, &mut obj, &w).unwrap();
            let got = &obj["metadata"]["managedFields"][0];
            assert_eq!(got["manager"], "m");
            assert_eq!(got["operation"], "Update");
            assert_eq!(got["fieldsV1"], want, "{resource}");
        }
    }

    /// A create compares with the Go zero value: the structs a Deployment holds by value
    /// (spec, strategy, template, the template's metadata and spec) are in it, so only what is
    /// new below them is recorded — no `.` for them, as kube records the same create — while
    /// the maps and list items the create adds, and structs inside a new list item, have theirs.
    #[test]
    fn a_create_is_compared_with_the_go_zero_value() {
        let snap = crate::registry::Registry::builtin().snapshot();
        let info = snap.get("apps", "v1", "deployments").unwrap();
        let mut obj = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                     "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx",
                                           "resources": {"limits": {"cpu": "1"}}}]}}}});
        let w = Write {
            manager: "kubectl-create",
            subresource: "",
            now: "2026-01-01T00:00:00Z",
            applied: None,
            others: &OtherVersions::new(),
        };
        track(&info, None, &mut obj, &w).unwrap();
        assert_eq!(
            obj["metadata"]["managedFields"][0]["fieldsV1"],
            json!({
                "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                "f:spec": {
                    "f:replicas": {},
                    "f:selector": {},
                    "f:strategy": {"f:rollingUpdate": {".": {}, "f:maxSurge": {}}, "f:type": {}},
                    "f:template": {
                        "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                        "f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {
                            ".": {}, "f:image": {}, "f:name": {},
                            "f:resources": {".": {}, "f:limits": {".": {}, "f:cpu": {}}}}}}
                    }
                }
            })
        );
    }

    #[test]
    fn managers_are_named_by_field_manager_or_user_agent() {
        assert_eq!(
            manager_name(Some("kubectl-create"), "kubectl/v1.35.0 (linux/amd64)"),
            "kubectl-create"
        );
        assert_eq!(
            manager_name(None, "kubectl/v1.35.0 (linux/amd64)"),
            "kubectl"
        );
        assert_eq!(
            manager_name(Some(""), "python-requests/2.31"),
            "python-requests"
        );
        assert_eq!(manager_name(None, ""), "");
    }
}
