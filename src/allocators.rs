//! Service cluster IPs (10.96.0.0/12, as kube-apiserver's default range) and node ports
//! (30000-32767), allocated on create.
//!
//! Each allocation is claimed in the store (`/registry/kubox/serviceips/<ip>`,
//! `/registry/kubox/nodeports/<port>`, holding the Service's `namespace/name`) by a create that
//! only one writer can win, so replicas sharing one store never hand out one address twice;
//! the in-memory view only spares the claims already known to be taken. A dry run checks the
//! claims and writes none.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use serde_json::{json, Value};
use tokio::sync::Mutex;

use crate::objects::from_stored;
use crate::registry::store::Scope;
use crate::status::{ApiError, ApiResult};

const BASE: u32 = u32::from_be_bytes([10, 96, 0, 0]);
const SIZE: u32 = 1 << 20;
/// The `kubernetes` Service's address: the first of the range.
pub const KUBERNETES_SERVICE_IP: &str = "10.96.0.1";

/// What is allocated; loaded from storage on first use.
#[derive(Default)]
pub struct ServiceIps {
    state: Mutex<Option<Allocated>>,
}

#[derive(Default)]
struct Allocated {
    ips: BTreeSet<u32>,
    ports: BTreeSet<i64>,
    next_ip: u32,
    next_port: i64,
}

fn invalid(field: &str, value: &str, message: &str) -> ApiError {
    ApiError::invalid(
        "Service",
        "",
        "",
        &[kubox_apimachinery::validation::FieldError::invalid(
            field, value, message,
        )],
    )
}

const IP_CLAIMS: &str = "/registry/kubox/serviceips/";
const PORT_CLAIMS: &str = "/registry/kubox/nodeports/";

/// Claim `key` for `owner` (`namespace/name`): true when it is now the owner's (claimed here,
/// or claimed by the same Service before), false when another holds it. A dry run only looks.
async fn claim(ctx: &Scope, key: &str, owner: &str, dry_run: bool) -> ApiResult<bool> {
    let store = &ctx.state.store;
    let failed = |e| crate::status::from_store(e, &ctx.info.group_resource(), "");
    if !dry_run {
        match store
            .create(key, bytes::Bytes::copy_from_slice(owner.as_bytes()))
            .await
        {
            Ok(_) => return Ok(true),
            Err(kubox_storage::StoreError::AlreadyExists(_)) => {}
            Err(e) => return Err(failed(e)),
        }
    }
    match store.get(key, None).await {
        Ok(kv) => Ok(kv.value.as_ref() == owner.as_bytes()),
        Err(kubox_storage::StoreError::NotFound(_)) => Ok(true),
        Err(e) => Err(failed(e)),
    }
}

/// Take `value` (claimed at `key`) unless it is taken: true when it is now `owner`'s. Whatever
/// is found taken is remembered in `taken`; a dry run remembers nothing it took itself.
async fn take<T: Ord>(
    ctx: &Scope,
    taken: &mut BTreeSet<T>,
    value: T,
    key: &str,
    owner: &str,
    dry_run: bool,
) -> ApiResult<bool> {
    if taken.contains(&value) {
        return Ok(false);
    }
    let mine = claim(ctx, key, owner, dry_run).await?;
    if !(mine && dry_run) {
        taken.insert(value);
    }
    Ok(mine)
}

/// Allocate what a new object needs (Services: cluster IP and node ports).
pub async fn on_create(ctx: &Scope, obj: &mut Value, dry_run: bool) -> ApiResult<()> {
    if !(ctx.info.group.is_empty() && ctx.info.kind == "Service") {
        return Ok(());
    }
    let mut guard = ctx.state.service_ips.state.lock().await;
    if guard.is_none() {
        let mut a = Allocated {
            next_ip: 10,
            next_port: 30000,
            ..Default::default()
        };
        a.ips.insert(1);
        let prefix = crate::registry::storage_prefix("", "services");
        let list = ctx
            .state
            .store
            .list(&prefix, Default::default())
            .await
            .map_err(|e| crate::status::from_store(e, &ctx.info.group_resource(), ""))?;
        for kv in &list.items {
            let svc = from_stored(kv)?;
            if let Some(ip) = svc["spec"]["clusterIP"]
                .as_str()
                .and_then(|s| s.parse::<Ipv4Addr>().ok())
            {
                a.ips.insert(u32::from(ip).wrapping_sub(BASE));
            }
            for p in svc["spec"]["ports"].as_array().into_iter().flatten() {
                if let Some(np) = p["nodePort"].as_i64() {
                    a.ports.insert(np);
                }
            }
        }
        *guard = Some(a);
    }
    let Some(a) = guard.as_mut() else {
        return Ok(());
    };
    let owner = format!(
        "{}/{}",
        ctx.namespace,
        obj["metadata"]["name"].as_str().unwrap_or_default()
    );
    let spec = &mut obj["spec"];
    let ty = spec["type"].as_str().unwrap_or("ClusterIP").to_string();
    if ty != "ExternalName" {
        match spec["clusterIP"].as_str().filter(|s| !s.is_empty()) {
            Some("None") => {
                spec["clusterIPs"] = json!(["None"]);
            }
            Some(ip) => {
                let parsed: Ipv4Addr = ip.parse().map_err(|_| {
                    invalid(
                        "spec.clusterIP",
                        ip,
                        "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                    )
                })?;
                let off = u32::from(parsed).wrapping_sub(BASE);
                if off >= SIZE {
                    return Err(invalid("spec.clusterIPs", ip, "failed to allocate IP: the provided IP is not in the valid range. The range of valid IPs is 10.96.0.0/12"));
                }
                let key = format!("{IP_CLAIMS}{ip}");
                if !take(ctx, &mut a.ips, off, &key, &owner, dry_run).await? {
                    return Err(invalid(
                        "spec.clusterIPs",
                        ip,
                        &format!("failed to allocate IP {ip}: provided IP is already allocated"),
                    ));
                }
                spec["clusterIPs"] = json!([ip]);
            }
            None => {
                let mut off = a.next_ip;
                let ip = loop {
                    while a.ips.contains(&off) {
                        off = if off + 1 >= SIZE { 10 } else { off + 1 };
                    }
                    let ip = Ipv4Addr::from(BASE + off).to_string();
                    let key = format!("{IP_CLAIMS}{ip}");
                    // Not ours: another replica took it, and the search goes on past it.
                    if take(ctx, &mut a.ips, off, &key, &owner, dry_run).await? {
                        break ip;
                    }
                };
                if !dry_run {
                    a.next_ip = off + 1;
                }
                spec["clusterIP"] = json!(ip);
                spec["clusterIPs"] = json!([ip]);
            }
        }
        if spec.get("ipFamilies").is_none() {
            spec["ipFamilies"] = json!(["IPv4"]);
        }
        if spec.get("ipFamilyPolicy").is_none() {
            spec["ipFamilyPolicy"] = json!("SingleStack");
        }
    }
    if ty == "NodePort" || ty == "LoadBalancer" {
        if let Some(ports) = spec["ports"].as_array_mut() {
            for p in ports {
                if let Some(np) = p["nodePort"].as_i64() {
                    let key = format!("{PORT_CLAIMS}{np}");
                    if !take(ctx, &mut a.ports, np, &key, &owner, dry_run).await? {
                        return Err(invalid(
                            "spec.ports[0].nodePort",
                            &np.to_string(),
                            "provided port is already allocated",
                        ));
                    }
                    continue;
                }
                let mut port = a.next_port;
                loop {
                    while a.ports.contains(&port) {
                        port = if port >= 32767 { 30000 } else { port + 1 };
                    }
                    let key = format!("{PORT_CLAIMS}{port}");
                    if take(ctx, &mut a.ports, port, &key, &owner, dry_run).await? {
                        break;
                    }
                }
                if !dry_run {
                    a.next_port = if port >= 32767 { 30000 } else { port + 1 };
                }
                p["nodePort"] = json!(port);
            }
        }
    }
    Ok(())
}
