//! Images: a consistent picture of a store at one revision, and stores started from one
//! (memory and sled), answering as the imaged store did with history compacted there.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use futures::StreamExt;
use kubox_storage::memory::{MemoryOptions, MemoryStore};
use kubox_storage::sled_store::{SledOptions, SledStore};
use kubox_storage::{Image, KeyValue, ListOptions, Store, StoreError};

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// A store with history: creates, updates, a delete and a re-create.
async fn seeded() -> MemoryStore {
    let s = MemoryStore::new();
    for i in 0..5 {
        s.create(&format!("/a/{i}"), b(&format!("v{i}")))
            .await
            .unwrap(); // 1..=5
    }
    s.update("/a/0", b("v0-2"), None).await.unwrap(); // 6
    s.delete("/a/1", None).await.unwrap(); // 7
    s.create("/b/x", b("x")).await.unwrap(); // 8
    s.update("/a/0", b("v0-3"), None).await.unwrap(); // 9
    s
}

async fn all(s: &dyn Store) -> Vec<KeyValue> {
    s.list("", ListOptions::default()).await.unwrap().items
}

fn same(a: &[KeyValue], b: &[KeyValue]) {
    let key = |kv: &KeyValue| {
        (
            kv.key.to_string(),
            kv.value.clone(),
            kv.create_revision,
            kv.mod_revision,
            kv.version,
        )
    };
    assert_eq!(
        a.iter().map(key).collect::<Vec<_>>(),
        b.iter().map(key).collect::<Vec<_>>()
    );
}

/// What every store started from an image must show.
async fn behaves_as_the_image(from: &dyn Store, image: &Image, original: &dyn Store) {
    assert_eq!(from.current_revision().await.unwrap(), image.revision);
    same(&all(from).await, &all(original).await);
    let a0 = from.get("/a/0", None).await.unwrap();
    assert_eq!((a0.create_revision, a0.mod_revision, a0.version), (1, 9, 3));
    // History before the image is gone, as after a compaction at its revision.
    assert!(matches!(
        from.get("/a/0", Some(5)).await,
        Err(StoreError::Compacted { .. })
    ));
    assert!(matches!(
        from.watch("/a/", 3).await,
        Err(StoreError::Compacted { .. })
    ));
    // Writes continue from the image's revision; a watch from just after it sees them.
    let mut w = from.watch("/a/", image.revision + 1).await.unwrap();
    let kv = from.update("/a/2", b("v2-2"), Some(3)).await.unwrap();
    assert_eq!((kv.mod_revision, kv.version), (image.revision + 1, 2));
    let ev = w.next().await.unwrap().unwrap();
    assert_eq!(ev.kv.mod_revision, image.revision + 1);
    assert!(matches!(
        from.create("/b/x", b("again")).await,
        Err(StoreError::AlreadyExists(_))
    ));
    // The original did not move.
    assert_eq!(original.current_revision().await.unwrap(), image.revision);
}

#[tokio::test]
async fn an_image_holds_every_live_key_at_one_revision() {
    let s = seeded().await;
    let image = Image::read(&s).await.unwrap();
    assert_eq!(image.revision, 9);
    let keys: Vec<&str> = image.kvs.iter().map(|kv| &*kv.key).collect();
    assert_eq!(keys, ["/a/0", "/a/2", "/a/3", "/a/4", "/b/x"]);
    // Later writes do not change it.
    s.create("/c", b("c")).await.unwrap();
    assert_eq!(image.kvs.len(), 5);
}

#[tokio::test]
async fn memory_stores_start_from_an_image_and_fork_independently() {
    let s = seeded().await;
    let image = Image::read(&s).await.unwrap();
    let one = MemoryStore::from_image(&image, MemoryOptions::default()).unwrap();
    let two = MemoryStore::from_image(&image, MemoryOptions::default()).unwrap();
    behaves_as_the_image(&one, &image, &s).await;
    // The second fork saw none of the first's writes.
    assert_eq!(two.get("/a/2", None).await.unwrap().value, b("v2"));
    assert_eq!(two.current_revision().await.unwrap(), image.revision);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sled_stores_start_from_an_image_and_keep_it() {
    let s = seeded().await;
    let image = Image::read(&s).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    {
        let store =
            SledStore::create_from_image(dir.path(), &image, SledOptions::default()).unwrap();
        behaves_as_the_image(&store, &image, &s).await;
        store.close().await.unwrap();
    }
    // Reopened, it holds the image plus the write made after it.
    let store = SledStore::open(dir.path()).unwrap();
    assert_eq!(store.current_revision().await.unwrap(), image.revision + 1);
    assert_eq!(store.get("/a/2", None).await.unwrap().value, b("v2-2"));
    assert_eq!(store.get("/a/0", None).await.unwrap().version, 3);
    store.close().await.unwrap();
    drop(store);
    // A directory that holds a store is not overwritten.
    let again = SledStore::create_from_image(dir.path(), &image, SledOptions::default());
    assert!(again.is_err());
}

#[tokio::test]
async fn inconsistent_images_are_refused() {
    let kv = |key: &str, create, modified, version| KeyValue {
        key: key.into(),
        value: b("v"),
        create_revision: create,
        mod_revision: modified,
        version,
    };
    for kvs in [
        vec![kv("/a", 1, 11, 1)], // modified after the image's revision
        vec![kv("/a", 1, 3, 1), kv("/b", 2, 3, 1)], // two keys at one revision
        vec![kv("/a", 5, 3, 1)],  // created after its last modification
        vec![kv("/a", 0, 3, 1)],
    ] {
        let image = Image {
            revision: 10,
            kvs: kvs.into(),
        };
        assert!(MemoryStore::from_image(&image, MemoryOptions::default()).is_err());
    }
}
