//! What compiling a CRD version makes — its schema operations (structural schema, defaults,
//! CEL rules) and its published OpenAPI schemas — shared by every server of the process that
//! serves the same version: servers forked from one snapshot, or the many servers of a test
//! suite, compile each schema once. An entry lives as long as some server uses it (the cache
//! holds weak references, pruned as they die), so the cache holds nothing no server needs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use kubox_openapi::published::{CrdVersion, PublishedSchema};
use serde_json::Value;

use crate::crd::strategy::SchemaOps;

type Key = [u8; 32];

struct Cache<T: ?Sized> {
    entries: HashMap<Key, Weak<T>>,
    /// Prune dead entries when the map grows past this.
    prune_at: usize,
}

impl<T: ?Sized> Cache<T> {
    fn new() -> Self {
        Cache {
            entries: HashMap::new(),
            prune_at: 64,
        }
    }

    fn get_or_make(&mut self, key: Key, make: impl FnOnce() -> Option<Arc<T>>) -> Option<Arc<T>> {
        if let Some(live) = self.entries.get(&key).and_then(Weak::upgrade) {
            return Some(live);
        }
        let made = make()?;
        self.entries.insert(key, Arc::downgrade(&made));
        if self.entries.len() > self.prune_at {
            self.entries.retain(|_, w| w.strong_count() > 0);
            self.prune_at = (self.entries.len() * 2).max(64);
        }
        Some(made)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// SHA-256 of the parts (each followed by a NUL, so boundaries count).
fn key(parts: &[&str]) -> Key {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for p in parts {
        ctx.update(p.as_bytes());
        ctx.update(&[0]);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

fn schemas() -> &'static Mutex<Cache<dyn SchemaOps>> {
    static CACHE: std::sync::OnceLock<Mutex<Cache<dyn SchemaOps>>> = std::sync::OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(Cache::new()))
}

fn published() -> &'static Mutex<Cache<PublishedSchema>> {
    static CACHE: std::sync::OnceLock<Mutex<Cache<PublishedSchema>>> = std::sync::OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(Cache::new()))
}

/// The schema operations of a CRD version (None without a schema). Compiling holds the
/// cache's lock, so two servers loading the same CRD at once compile it once.
pub fn schema_ops(crd: &Value, version: &Value) -> Option<Arc<dyn SchemaOps>> {
    let schema = version.get("schema")?.get("openAPIV3Schema")?;
    if !schema.is_object() {
        return None;
    }
    let k = key(&["schema", &schema.to_string()]);
    lock(schemas()).get_or_make(k, || crate::crd::validation::schema_ops(crd, version))
}

/// The published schemas of a CRD version.
pub fn published_schema(v: CrdVersion<'_>) -> Option<Arc<PublishedSchema>> {
    let schema = v.schema.map(Value::to_string).unwrap_or_default();
    let k = key(&[
        "published",
        v.group,
        v.version,
        v.kind,
        v.list_kind,
        v.plural,
        &schema,
        if v.preserve_unknown_fields { "1" } else { "0" },
    ]);
    lock(published()).get_or_make(k, || Some(Arc::new(PublishedSchema::new(v))))
}
