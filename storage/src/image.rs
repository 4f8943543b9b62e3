//! A consistent image of a whole store at one revision, and stores started from one.
//!
//! An [`Image`] holds every live key's latest value (with its create revision, mod revision and
//! version) as of one revision. A store started from it answers exactly as the imaged store did
//! at that revision, with its history compacted there: reads and watches from earlier revisions
//! are [`crate::StoreError::Compacted`], and the next write gets the revision after the image's.
//! Values are [`bytes::Bytes`], so many stores started from one image share their bytes.

use std::sync::Arc;

use crate::{KeyValue, ListOptions, Revision, Store, StoreResult};

/// Every live key of a store at one revision, in key order.
#[derive(Clone, Debug, Default)]
pub struct Image {
    /// The revision the image was taken at.
    pub revision: Revision,
    /// The keys and their values, in key order.
    pub kvs: Arc<[KeyValue]>,
}

impl Image {
    /// Take an image of `store` at its current revision (one consistent list of every key).
    pub async fn read(store: &dyn Store) -> StoreResult<Image> {
        let revision = store.current_revision().await?;
        let list = store
            .list(
                "",
                ListOptions {
                    revision: Some(revision),
                    ..ListOptions::default()
                },
            )
            .await?;
        Ok(Image {
            revision,
            kvs: list.items.into(),
        })
    }

    /// The bytes the values hold.
    pub fn value_bytes(&self) -> usize {
        self.kvs.iter().map(|kv| kv.value.len()).sum()
    }
}

/// The MVCC state an image describes, checked: every key's mod revision is distinct, above 0 and
/// at most the image's revision, and its create revision at most its mod revision.
pub(crate) fn state_of(image: &Image) -> StoreResult<crate::mvcc::State> {
    let bad = |why: String| crate::StoreError::Internal(format!("invalid image: {why}"));
    let mut by_revision: Vec<&KeyValue> = image.kvs.iter().collect();
    by_revision.sort_by_key(|kv| kv.mod_revision);
    let mut restore = crate::mvcc::Restore::new(image.revision);
    for kv in by_revision {
        if kv.mod_revision <= 0 || kv.mod_revision > image.revision {
            return Err(bad(format!(
                "{} was modified at revision {}, outside 1..={}",
                kv.key, kv.mod_revision, image.revision
            )));
        }
        if kv.create_revision <= 0 || kv.create_revision > kv.mod_revision || kv.version < 1 {
            return Err(bad(format!("{} has inconsistent revisions", kv.key)));
        }
        restore.push(kv.mod_revision, crate::mvcc::Record::put(kv))?;
    }
    restore.finish(image.revision)
}
