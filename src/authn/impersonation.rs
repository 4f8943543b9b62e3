//! The impersonation layer (`Impersonate-User`, `Impersonate-Group`, `Impersonate-Uid`,
//! `Impersonate-Extra-<key>`; `kubectl --as`, `--as-group`): the authenticated user must be
//! allowed the `impersonate` verb on each requested user (or ServiceAccount), group, uid and
//! extra; the request then goes on as the impersonated user. As kube-apiserver's filter.

use std::sync::Arc;

use http::HeaderMap;

use super::{
    service_account_namespace_group, UserInfo, ANONYMOUS, AUTHENTICATED, SERVICE_ACCOUNTS,
    SERVICE_ACCOUNT_PREFIX, UNAUTHENTICATED,
};
use crate::authz::{Attributes, Authorizer, Decision};
use crate::body::error_response;
use crate::chain::{BoxFuture, Filter, Next, Req};
use crate::status::{ApiError, GroupResource};

const USER: &str = "impersonate-user";
const GROUP: &str = "impersonate-group";
const UID: &str = "impersonate-uid";
const EXTRA_PREFIX: &str = "impersonate-extra-";

/// Switches the request's user to the impersonated one, when allowed.
#[derive(Clone)]
pub struct ImpersonationFilter {
    authorizer: Arc<dyn Authorizer>,
}

impl ImpersonationFilter {
    /// Impersonation checked by `authorizer`.
    pub fn new(authorizer: Arc<dyn Authorizer>) -> Self {
        ImpersonationFilter { authorizer }
    }
}

/// One thing asked for: (API group, resource, subresource, namespace, name).
struct Wanted {
    group: &'static str,
    resource: &'static str,
    subresource: String,
    namespace: String,
    name: String,
}

fn header_values<'a>(headers: &'a HeaderMap, name: &str) -> Vec<&'a str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect()
}

/// `%2F`-style escapes in extra keys (header names cannot carry `/`).
fn unescape(key: &str) -> String {
    let bytes: Vec<u8> = key.bytes().collect();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes.get(i).copied().unwrap_or_default();
        if b == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(v) = hex {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The impersonated user and what must be allowed for it; None when nothing is impersonated.
fn requested(headers: &HeaderMap) -> Result<Option<(UserInfo, Vec<Wanted>)>, ApiError> {
    let user = header_values(headers, USER).first().map(|s| s.to_string());
    let groups: Vec<String> = header_values(headers, GROUP)
        .into_iter()
        .map(str::to_string)
        .collect();
    let uid = header_values(headers, UID).first().map(|s| s.to_string());
    let mut extra = std::collections::BTreeMap::<String, Vec<String>>::new();
    for (name, value) in headers {
        if let Some(key) = name.as_str().strip_prefix(EXTRA_PREFIX) {
            if let Ok(v) = value.to_str() {
                extra
                    .entry(unescape(&key.to_ascii_lowercase()))
                    .or_default()
                    .push(v.to_string());
            }
        }
    }
    let Some(username) = user else {
        if groups.is_empty() && uid.is_none() && extra.is_empty() {
            return Ok(None);
        }
        return Err(ApiError::internal(
            "requested impersonation of groups, a uid or extra fields without impersonating a user",
        ));
    };
    let mut wanted = Vec::new();
    let mut out = UserInfo {
        username: username.clone(),
        ..Default::default()
    };
    match username
        .strip_prefix(SERVICE_ACCOUNT_PREFIX)
        .and_then(|r| r.split_once(':'))
    {
        Some((ns, name)) => {
            wanted.push(Wanted {
                group: "",
                resource: "serviceaccounts",
                subresource: String::new(),
                namespace: ns.to_string(),
                name: name.to_string(),
            });
            if groups.is_empty() {
                out.groups = vec![
                    SERVICE_ACCOUNTS.to_string(),
                    service_account_namespace_group(ns),
                ];
            }
        }
        None => wanted.push(Wanted {
            group: "",
            resource: "users",
            subresource: String::new(),
            namespace: String::new(),
            name: username.clone(),
        }),
    }
    for g in &groups {
        wanted.push(Wanted {
            group: "",
            resource: "groups",
            subresource: String::new(),
            namespace: String::new(),
            name: g.clone(),
        });
        out.groups.push(g.clone());
    }
    if let Some(uid) = uid {
        wanted.push(Wanted {
            group: "authentication.k8s.io",
            resource: "uids",
            subresource: String::new(),
            namespace: String::new(),
            name: uid.clone(),
        });
        out.uid = uid;
    }
    for (key, values) in &extra {
        for v in values {
            wanted.push(Wanted {
                group: "authentication.k8s.io",
                resource: "userextras",
                subresource: key.clone(),
                namespace: String::new(),
                name: v.clone(),
            });
        }
    }
    out.extra = extra;
    let marker = if username == ANONYMOUS {
        UNAUTHENTICATED
    } else {
        AUTHENTICATED
    };
    if !out.in_group(marker) {
        out.groups.push(marker.to_string());
    }
    Ok(Some((out, wanted)))
}

/// Is `requestor` allowed every impersonation in `wanted`?
fn check(
    authorizer: &dyn Authorizer,
    requestor: &UserInfo,
    wanted: &[Wanted],
) -> Result<(), ApiError> {
    for w in wanted {
        let attrs = Attributes {
            user: Some(requestor),
            verb: "impersonate",
            namespace: &w.namespace,
            api_group: w.group,
            resource: w.resource,
            subresource: &w.subresource,
            name: &w.name,
            resource_request: true,
            ..Default::default()
        };
        let reason = match authorizer.authorize(&attrs) {
            Decision::Allow(_) => continue,
            Decision::Deny(r) | Decision::NoOpinion(r) => r,
        };
        let scope = if w.namespace.is_empty() {
            "at the cluster scope".to_string()
        } else {
            format!("in the namespace \"{}\"", w.namespace)
        };
        let resource = if w.subresource.is_empty() {
            w.resource.to_string()
        } else {
            format!("{}/{}", w.resource, w.subresource)
        };
        let mut why = format!(
            "User \"{}\" cannot impersonate resource \"{resource}\" in API group \"{}\" {scope}",
            requestor.username, w.group
        );
        if !reason.is_empty() {
            why.push_str(": ");
            why.push_str(&reason);
        }
        return Err(ApiError::forbidden(
            &GroupResource::new(w.group, &resource),
            &w.name,
            &why,
        ));
    }
    Ok(())
}

impl Filter for ImpersonationFilter {
    fn call(&self, mut req: Req, next: &Next) -> BoxFuture {
        // Nearly every request impersonates no one: one pass over the header names says so.
        if !req
            .headers()
            .keys()
            .any(|k| k.as_str().starts_with("impersonate-"))
        {
            return next.oneshot(req);
        }
        let decided = requested(req.headers()).and_then(|r| {
            let Some((user, wanted)) = r else {
                return Ok(None);
            };
            let requestor = req
                .extensions()
                .get::<UserInfo>()
                .cloned()
                .unwrap_or_else(UserInfo::anonymous);
            check(self.authorizer.as_ref(), &requestor, &wanted)?;
            Ok(Some(user))
        });
        match decided {
            Err(e) => Box::pin(async move { Ok(error_response(&e)) }),
            Ok(user) => {
                if let Some(user) = user {
                    let h = req.headers_mut();
                    let extra: Vec<_> = h
                        .keys()
                        .filter(|k| k.as_str().starts_with(EXTRA_PREFIX))
                        .cloned()
                        .collect();
                    for k in extra
                        .into_iter()
                        .chain([USER, GROUP, UID].map(http::HeaderName::from_static))
                    {
                        h.remove(k);
                    }
                    if let Some(slot) = req.extensions().get::<crate::audit::ImpersonatedSlot>() {
                        if let Ok(mut s) = slot.0.lock() {
                            *s = Some(user.clone());
                        }
                    }
                    req.extensions_mut().insert(user);
                }
                next.oneshot(req)
            }
        }
    }
}
