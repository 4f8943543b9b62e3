//! What compiling a CRD version makes — its schema operations (structural schema, defaults,
//! CEL rules) and its published OpenAPI schemas — shared by every server of the process that
//! serves the same version: servers forked from one snapshot, or the many servers of a test
//! suite, compile each schema once. An entry lives as long as some server uses it (the cache
//! holds weak references, pruned as they die), so the cache holds nothing no server needs.
//!
//! Entries are found first by the stored CRD's bytes (a fingerprint: forks of a snapshot hold
//! the very same bytes, and hashing them is cheap), then by the content that decides the
//! compiled result (a SHA-256 of the schema text: the same CRD created by another server has
//! other bytes — uid, timestamps — and the same schema). Serialising and hashing a large
//! schema costs milliseconds, so the second key is computed only when the first misses.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use kubox_openapi::published::{CrdVersion, PublishedSchema};
use serde_json::Value;

use crate::crd::strategy::SchemaOps;

type Key = [u8; 32];

/// What identifies a stored CRD's bytes: two SipHashes under process-wide random keys (not
/// guessable, so no CRD can be made to collide with another).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Fingerprint(u64, u64);

/// The fingerprint of a stored CRD.
pub fn fingerprint(stored: &[u8]) -> Fingerprint {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    static STATES: std::sync::OnceLock<[RandomState; 2]> = std::sync::OnceLock::new();
    let states = STATES.get_or_init(Default::default);
    let hash = |s: &RandomState| {
        let mut h = s.build_hasher();
        h.write(stored);
        h.finish()
    };
    Fingerprint(hash(&states[0]), hash(&states[1]))
}

/// A stored CRD's version: its fingerprint and the version's name.
type StoredKey = (Fingerprint, String);

struct Cache<T: ?Sized> {
    by_content: HashMap<Key, Weak<T>>,
    by_stored: HashMap<StoredKey, Weak<T>>,
    /// Prune dead entries when the maps grow past this.
    prune_at: usize,
}

impl<T: ?Sized> Cache<T> {
    fn new() -> Self {
        Cache {
            by_content: HashMap::new(),
            by_stored: HashMap::new(),
            prune_at: 64,
        }
    }

    /// The entry for `stored`, else the one for the content key `content()` computes, else
    /// what `make` makes; remembered under both keys.
    fn get_or_make(
        &mut self,
        stored: StoredKey,
        content: impl FnOnce() -> Key,
        make: impl FnOnce() -> Option<Arc<T>>,
    ) -> Option<Arc<T>> {
        if let Some(live) = self.by_stored.get(&stored).and_then(Weak::upgrade) {
            return Some(live);
        }
        let key = content();
        let found = match self.by_content.get(&key).and_then(Weak::upgrade) {
            Some(live) => live,
            None => {
                let made = make()?;
                self.by_content.insert(key, Arc::downgrade(&made));
                made
            }
        };
        self.by_stored.insert(stored, Arc::downgrade(&found));
        if self.by_content.len() + self.by_stored.len() > self.prune_at {
            self.by_content.retain(|_, w| w.strong_count() > 0);
            self.by_stored.retain(|_, w| w.strong_count() > 0);
            self.prune_at = ((self.by_content.len() + self.by_stored.len()) * 2).max(64);
        }
        Some(found)
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
pub fn schema_ops(stored: Fingerprint, crd: &Value, version: &Value) -> Option<Arc<dyn SchemaOps>> {
    let schema = version.get("schema")?.get("openAPIV3Schema")?;
    if !schema.is_object() {
        return None;
    }
    let name = version["name"].as_str().unwrap_or_default().to_string();
    lock(schemas()).get_or_make(
        (stored, name),
        || key(&["schema", &schema.to_string()]),
        || crate::crd::validation::schema_ops(crd, version),
    )
}

/// The published schemas of a CRD version.
pub fn published_schema(stored: Fingerprint, v: CrdVersion<'_>) -> Option<Arc<PublishedSchema>> {
    let content = || {
        let schema = v.schema.map(Value::to_string).unwrap_or_default();
        key(&[
            "published",
            v.group,
            v.version,
            v.kind,
            v.list_kind,
            v.plural,
            &schema,
            if v.preserve_unknown_fields { "1" } else { "0" },
        ])
    };
    lock(published()).get_or_make((stored, v.version.to_string()), content, || {
        Some(Arc::new(PublishedSchema::new(v)))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_found_by_stored_bytes_then_by_content() {
        let mut cache: Cache<String> = Cache::new();
        let (a, b) = (
            fingerprint(b"crd as stored"),
            fingerprint(b"same crd, other uid"),
        );
        assert_ne!(a, b);
        let first = cache
            .get_or_make(
                (a, "v1".into()),
                || [1; 32],
                || Some(Arc::new("made".into())),
            )
            .unwrap();
        // The same stored bytes: the content key is not even computed.
        let again = cache
            .get_or_make(
                (a, "v1".into()),
                || panic!("content hashed on a stored-bytes hit"),
                || panic!("compiled twice"),
            )
            .unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        // Other bytes, same content: shared, not compiled again.
        let other = cache
            .get_or_make((b, "v1".into()), || [1; 32], || panic!("compiled twice"))
            .unwrap();
        assert!(Arc::ptr_eq(&first, &other));
        // Nothing is kept once no server holds it.
        drop((first, again, other));
        let fresh = cache
            .get_or_make(
                (a, "v1".into()),
                || [1; 32],
                || Some(Arc::new("new".into())),
            )
            .unwrap();
        assert_eq!(fresh.as_str(), "new");
    }
}
