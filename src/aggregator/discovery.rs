//! What discovery shows of remote APIServices: their groups, ordered by priority among
//! kubox's own (kube-aggregator's `SortedByGroupAndVersion`: group priority highest first,
//! then name; versions by versionPriority highest first, then kube's version order), and
//! their resources from the discovery document each extension server answered last
//! (`Stale` when the last fetch failed).

use std::sync::Arc;

use serde_json::Value;

use super::Aggregator;

/// The last discovery document (`APIResourceList`) of a remote group/version.
#[derive(Debug, Clone, Default)]
pub struct Discovered {
    /// The document, once one was fetched.
    pub list: Option<Arc<Value>>,
    /// The last fetch succeeded.
    pub fresh: bool,
    /// Where the extension server's `/openapi/v3` index says this group/version's document
    /// is (its `serverRelativeURL`, hash included), when it publishes one.
    pub openapi_v3: Option<String>,
    /// The extension server's `/openapi/v2` document, when it publishes one.
    pub openapi_v2: Option<Arc<Value>>,
}

/// One remote version in discovery.
#[derive(Debug, Clone)]
pub struct RemoteVersion {
    /// The version.
    pub version: String,
    /// What the extension server listed, and whether it is current.
    pub discovered: Discovered,
}

/// One remote group in discovery.
#[derive(Debug, Clone)]
pub struct RemoteGroup {
    /// The group.
    pub name: String,
    /// Its priority (the highest of its APIServices').
    pub priority: i64,
    /// Its versions, preferred first.
    pub versions: Vec<RemoteVersion>,
}

impl Aggregator {
    /// Change what is known of `group`/`version`.
    fn record(&self, group: &str, version: &str, change: impl FnOnce(&mut Discovered)) {
        let mut map = self
            .discovered
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        change(
            map.entry((group.to_string(), version.to_string()))
                .or_default(),
        );
    }

    /// Record what a fetch of `group`/`version`'s discovery document gave (None: it failed).
    pub fn discovered(&self, group: &str, version: &str, list: Option<Value>) {
        self.record(group, version, |entry| match list {
            Some(l) => {
                entry.list = Some(Arc::new(l));
                entry.fresh = true;
            }
            None => entry.fresh = false,
        })
    }

    /// Record where the extension server publishes `group`/`version`'s OpenAPI v3 document.
    pub fn openapi_v3_found(&self, group: &str, version: &str, url: Option<String>) {
        self.record(group, version, |e| e.openapi_v3 = url);
    }

    /// Record the extension server's `/openapi/v2` document for `group`/`version`.
    pub fn openapi_v2_found(&self, group: &str, version: &str, doc: Option<Value>) {
        self.record(group, version, |e| e.openapi_v2 = doc.map(Arc::new));
    }

    /// The `/openapi/v2` documents of available remote group/versions, in name order.
    pub fn openapi_v2_documents(&self) -> Vec<Arc<Value>> {
        let map = self
            .discovered
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut keyed: Vec<(&(String, String), Arc<Value>)> = map
            .iter()
            .filter(|((g, v), _)| self.remote(g, v).is_some_and(|r| r.available))
            .filter_map(|(k, d)| Some((k, d.openapi_v2.clone()?)))
            .collect();
        keyed.sort_by(|a, b| a.0.cmp(b.0));
        keyed.into_iter().map(|(_, d)| d).collect()
    }

    /// The OpenAPI v3 entries of available remote group/versions: (`apis/<g>/<v>`, the
    /// extension server's URL for it).
    pub fn openapi_v3_paths(&self) -> Vec<(String, String)> {
        let map = self
            .discovered
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out: Vec<(String, String)> = map
            .iter()
            .filter_map(|((g, v), d)| {
                let url = d.openapi_v3.clone()?;
                self.remote(g, v).filter(|r| r.available)?;
                Some((format!("apis/{g}/{v}"), url))
            })
            .collect();
        out.sort();
        out
    }

    /// `group`/`version`'s OpenAPI v3 document, fetched from its extension server now.
    pub async fn openapi_v3_document(&self, group: &str, version: &str) -> Option<bytes::Bytes> {
        let remote = self.remote(group, version).filter(|r| r.available)?;
        let url = self
            .discovered
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&(group.to_string(), version.to_string()))?
            .openapi_v3
            .clone()?;
        self.get_from(&remote, &url).await.ok()
    }

    /// Forget what was fetched for APIServices that no longer exist.
    pub fn forget_discovery_except(&self, keep: &[(String, String)]) {
        self.discovered
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|k, _| keep.contains(k));
    }

    /// The groups served only by remote APIServices (a group kubox serves itself stays
    /// kubox's), in discovery order among themselves.
    pub fn remote_groups(&self, is_local: impl Fn(&str) -> bool) -> Vec<RemoteGroup> {
        let services = self.api_services();
        let mut remotes: Vec<&Arc<Value>> = services
            .iter()
            .filter(|a| a["spec"]["service"].is_object())
            .filter(|a| !is_local(a["spec"]["group"].as_str().unwrap_or_default()))
            .collect();
        if remotes.is_empty() {
            return Vec::new();
        }
        let discovered = self
            .discovered
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        remotes.sort_by(|a, b| {
            let (ga, gb) = (
                a["spec"]["group"].as_str().unwrap_or_default(),
                b["spec"]["group"].as_str().unwrap_or_default(),
            );
            ga.cmp(gb).then_with(|| {
                let (pa, pb) = (
                    a["spec"]["versionPriority"].as_i64().unwrap_or(0),
                    b["spec"]["versionPriority"].as_i64().unwrap_or(0),
                );
                pb.cmp(&pa).then_with(|| {
                    crate::registry::version_priority(a["spec"]["version"].as_str().unwrap_or(""))
                        .cmp(&crate::registry::version_priority(
                            b["spec"]["version"].as_str().unwrap_or(""),
                        ))
                })
            })
        });
        let mut groups: Vec<RemoteGroup> = Vec::new();
        for a in remotes {
            let group = a["spec"]["group"].as_str().unwrap_or_default().to_string();
            let version = a["spec"]["version"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let priority = a["spec"]["groupPriorityMinimum"].as_i64().unwrap_or(0);
            let d = discovered
                .get(&(group.clone(), version.clone()))
                .cloned()
                .unwrap_or_default();
            let v = RemoteVersion {
                version,
                discovered: d,
            };
            match groups.last_mut().filter(|g| g.name == group) {
                Some(g) => {
                    g.priority = g.priority.max(priority);
                    g.versions.push(v);
                }
                None => groups.push(RemoteGroup {
                    name: group,
                    priority,
                    versions: vec![v],
                }),
            }
        }
        groups.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.name.cmp(&b.name)));
        groups
    }
}

/// Where `remote` goes among `local` groups (names, already in discovery order, with their
/// priorities): before the first group it sorts ahead of.
pub fn position(local: &[(String, i64)], remote: &RemoteGroup) -> usize {
    local
        .iter()
        .position(|(name, p)| {
            *p < remote.priority || (*p == remote.priority && *name > remote.name)
        })
        .unwrap_or(local.len())
}
