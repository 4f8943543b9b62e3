//! RBAC policy rules: what a rule allows, whether one set of rules covers another (the
//! escalation check), and the compact text kube-apiserver prints for missing rules.
//! Pure functions, no I/O (as k8s.io/kubernetes `plugin/pkg/auth/authorizer/rbac/rbac.go` and
//! `pkg/registry/rbac/validation/policy_comparator.go`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Attributes;

/// `rbac.authorization.k8s.io/v1` PolicyRule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRule {
    /// Verbs (`*` = all).
    #[serde(default)]
    pub verbs: Vec<String>,
    /// API groups (`*` = all, "" = core).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub api_groups: Vec<String>,
    /// Resources, `resource/subresource`, `*`, `*/subresource`, `resource/*`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    /// Object names (empty = any).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_names: Vec<String>,
    /// Non-resource paths; a trailing `*` matches any suffix.
    #[serde(
        default,
        rename = "nonResourceURLs",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub non_resource_urls: Vec<String>,
}

impl PolicyRule {
    /// A rule from string slices (bootstrap policy, tests).
    pub fn new(verbs: &[&str], groups: &[&str], resources: &[&str]) -> PolicyRule {
        PolicyRule {
            verbs: strings(verbs),
            api_groups: strings(groups),
            resources: strings(resources),
            ..Default::default()
        }
    }

    /// A non-resource rule.
    pub fn urls(verbs: &[&str], urls: &[&str]) -> PolicyRule {
        PolicyRule {
            verbs: strings(verbs),
            non_resource_urls: strings(urls),
            ..Default::default()
        }
    }

    /// Does this rule allow the request?
    pub fn allows(&self, a: &Attributes<'_>) -> bool {
        if !has_or_star(&self.verbs, a.verb) {
            return false;
        }
        if !a.resource_request {
            return self
                .non_resource_urls
                .iter()
                .any(|u| url_matches(u, a.path));
        }
        has_or_star(&self.api_groups, a.api_group)
            && self.resource_matches(a.resource, a.subresource)
            && (self.resource_names.is_empty() || self.resource_names.iter().any(|n| n == a.name))
    }

    fn resource_matches(&self, resource: &str, subresource: &str) -> bool {
        self.resources.iter().any(|r| {
            if r == "*" {
                return true;
            }
            if subresource.is_empty() {
                return r == resource;
            }
            // `pods/status`, or `*/status` for every resource's status.
            r.split_once('/')
                .is_some_and(|(res, sub)| (res == resource || res == "*") && sub == subresource)
        })
    }

    /// kube-apiserver's `CompactString`: `{APIGroups:["apps"], Resources:["deployments"], Verbs:["get"]}`.
    pub fn compact_string(&self) -> String {
        let mut parts = Vec::new();
        if !self.api_groups.is_empty() {
            parts.push(format!("APIGroups:{}", go_quoted(&self.api_groups)));
        }
        if !self.resources.is_empty() {
            parts.push(format!("Resources:{}", go_quoted(&self.resources)));
        }
        if !self.non_resource_urls.is_empty() {
            parts.push(format!(
                "NonResourceURLs:{}",
                go_quoted(&self.non_resource_urls)
            ));
        }
        if !self.resource_names.is_empty() {
            parts.push(format!("ResourceNames:{}", go_quoted(&self.resource_names)));
        }
        if !self.verbs.is_empty() {
            parts.push(format!("Verbs:{}", go_quoted(&self.verbs)));
        }
        format!("{{{}}}", parts.join(", "))
    }
}

fn strings(s: &[&str]) -> Vec<String> {
    s.iter().map(|s| s.to_string()).collect()
}

/// Go's `%q` of a `[]string`: `["a" "b"]`.
pub fn go_quoted(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", quoted.join(" "))
}

fn has_or_star(items: &[String], want: &str) -> bool {
    items.iter().any(|i| i == "*" || i == want)
}

fn has(items: &[String], want: &str) -> bool {
    items.iter().any(|i| i == want)
}

fn url_matches(rule: &str, path: &str) -> bool {
    if rule == "*" || rule == path {
        return true;
    }
    rule.strip_suffix('*')
        .is_some_and(|prefix| path.starts_with(prefix))
}

/// Split rules into single-verb, single-group, single-resource (single-name) rules, as
/// kube-apiserver's `BreakdownRule`.
fn breakdown(rule: &PolicyRule) -> Vec<PolicyRule> {
    let mut out = Vec::new();
    for group in &rule.api_groups {
        for resource in &rule.resources {
            for verb in &rule.verbs {
                if rule.resource_names.is_empty() {
                    out.push(PolicyRule {
                        verbs: vec![verb.clone()],
                        api_groups: vec![group.clone()],
                        resources: vec![resource.clone()],
                        ..Default::default()
                    });
                }
                for name in &rule.resource_names {
                    out.push(PolicyRule {
                        verbs: vec![verb.clone()],
                        api_groups: vec![group.clone()],
                        resources: vec![resource.clone()],
                        resource_names: vec![name.clone()],
                        ..Default::default()
                    });
                }
            }
        }
    }
    for url in &rule.non_resource_urls {
        for verb in &rule.verbs {
            out.push(PolicyRule {
                verbs: vec![verb.clone()],
                non_resource_urls: vec![url.clone()],
                ..Default::default()
            });
        }
    }
    out
}

fn resources_cover(owner: &[String], wanted: &[String]) -> bool {
    if has(owner, "*") {
        return true;
    }
    wanted.iter().all(|w| {
        if has(owner, w) {
            return true;
        }
        match w.split_once('/') {
            Some((res, sub)) => has(owner, &format!("{res}/*")) || has(owner, &format!("*/{sub}")),
            None => false,
        }
    })
}

fn urls_cover(owner: &[String], wanted: &[String]) -> bool {
    wanted
        .iter()
        .all(|w| owner.iter().any(|o| url_matches(o, w)))
}

fn covers_one(owner: &PolicyRule, wanted: &PolicyRule) -> bool {
    let all = |o: &[String], w: &[String]| has(o, "*") || w.iter().all(|x| has(o, x));
    let names = if wanted.resource_names.is_empty() {
        owner.resource_names.is_empty()
    } else {
        owner.resource_names.is_empty()
            || wanted
                .resource_names
                .iter()
                .all(|n| has(&owner.resource_names, n))
    };
    all(&owner.verbs, &wanted.verbs)
        && all(&owner.api_groups, &wanted.api_groups)
        && resources_cover(&owner.resources, &wanted.resources)
        && urls_cover(&owner.non_resource_urls, &wanted.non_resource_urls)
        && names
}

/// The parts of `wanted` that `owner` does not cover (empty: covered), compacted as
/// kube-apiserver's `CompactRules` (one rule per group, verb with several resources).
pub fn missing(owner: &[PolicyRule], wanted: &[PolicyRule]) -> Vec<PolicyRule> {
    let mut missing: Vec<PolicyRule> = Vec::new();
    for rule in wanted {
        for atom in breakdown(rule) {
            if !owner.iter().any(|o| covers_one(o, &atom)) && !missing.contains(&atom) {
                missing.push(atom);
            }
        }
    }
    compact(missing)
}

fn compact(rules: Vec<PolicyRule>) -> Vec<PolicyRule> {
    let mut merged: BTreeMap<(String, String), PolicyRule> = BTreeMap::new();
    let mut rest = Vec::new();
    for r in rules {
        let simple = r.resource_names.is_empty() && r.non_resource_urls.is_empty();
        match (simple, r.api_groups.first(), r.verbs.first()) {
            (true, Some(g), Some(v)) => {
                let entry = merged
                    .entry((g.clone(), v.clone()))
                    .or_insert_with(|| PolicyRule {
                        verbs: vec![v.clone()],
                        api_groups: vec![g.clone()],
                        ..Default::default()
                    });
                entry.resources.extend(r.resources);
            }
            _ => rest.push(r),
        }
    }
    let mut out: Vec<PolicyRule> = merged.into_values().collect();
    out.extend(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs<'a>(
        verb: &'a str,
        group: &'a str,
        resource: &'a str,
        sub: &'a str,
        name: &'a str,
    ) -> Attributes<'a> {
        Attributes {
            verb,
            api_group: group,
            resource,
            subresource: sub,
            name,
            resource_request: true,
            ..Default::default()
        }
    }

    #[test]
    fn star_subresource_rule_matches_any_resources_subresource_only() {
        let r = PolicyRule::new(&["get"], &[""], &["*/status"]);
        assert!(r.allows(&attrs("get", "", "pods", "status", "x")));
        assert!(!r.allows(&attrs("get", "", "pods", "", "x")));
        assert!(!r.allows(&attrs("get", "", "pods", "log", "x")));
    }

    #[test]
    fn url_rule_with_star_suffix_matches_prefix() {
        let r = PolicyRule::urls(&["get"], &["/apis/*"]);
        let a = Attributes {
            verb: "get",
            path: "/apis/apps/v1",
            ..Default::default()
        };
        assert!(r.allows(&a));
        let b = Attributes {
            verb: "get",
            path: "/api",
            ..Default::default()
        };
        assert!(!r.allows(&b));
    }

    #[test]
    fn missing_reports_uncovered_rules_compacted() {
        let owner = vec![PolicyRule::new(&["get", "list"], &[""], &["pods"])];
        let wanted = vec![PolicyRule::new(
            &["get", "delete"],
            &[""],
            &["pods", "secrets"],
        )];
        let m: Vec<String> = missing(&owner, &wanted)
            .iter()
            .map(|r| r.compact_string())
            .collect();
        assert_eq!(
            m,
            vec![
                r#"{APIGroups:[""], Resources:["pods" "secrets"], Verbs:["delete"]}"#,
                r#"{APIGroups:[""], Resources:["secrets"], Verbs:["get"]}"#,
            ]
        );
        assert!(missing(&[PolicyRule::new(&["*"], &["*"], &["*"])], &wanted).is_empty());
    }
}
