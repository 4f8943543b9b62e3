//! The store suite on a real etcd (Debian's `etcd-server`): a fresh single-member etcd per case,
//! started on free loopback ports.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kubox_storage::etcd::{EtcdOptions, EtcdStore};
use kubox_storage::etcd_process::EtcdCluster;
use kubox_storage::testing::SuiteConfig;

async fn etcd_fixture(config: SuiteConfig) -> (EtcdStore, EtcdCluster) {
    let cluster = tokio::task::spawn_blocking(|| EtcdCluster::start(1))
        .await
        .expect("start etcd");
    let store = EtcdStore::connect(EtcdOptions {
        endpoints: cluster.endpoints(),
        clock: config.clock,
        watch_backlog: config.watch_backlog,
        ..Default::default()
    })
    .await
    .expect("connect to etcd");
    (store, cluster)
}

kubox_storage::store_suite!(etcd_fixture);

/// A store connecting to an etcd compacted before it (by another replica, an earlier run)
/// knows how far: its compacted revision, and refusals of the revisions below.
#[test]
fn a_new_store_learns_how_far_etcd_was_compacted() {
    kubox_storage::testing::block_on(async {
        use bytes::Bytes;
        use kubox_storage::{Store, StoreError};
        let cluster = tokio::task::spawn_blocking(|| EtcdCluster::start(1))
            .await
            .expect("start etcd");
        let options = || EtcdOptions {
            endpoints: cluster.endpoints(),
            ..Default::default()
        };
        let first = EtcdStore::connect(options()).await.unwrap();
        let base = first.current_revision().await.unwrap();
        for i in 0..20 {
            first
                .create(&format!("/k/{i}"), Bytes::from_static(b"v"))
                .await
                .unwrap();
        }
        first.compact(base + 13).await.unwrap();
        let second = EtcdStore::connect(options()).await.unwrap();
        assert_eq!(second.compacted_revision().await.unwrap(), base + 13);
        assert_eq!(
            second.get("/k/5", Some(base + 13)).await,
            Err(StoreError::Compacted {
                requested: base + 13,
                compact_revision: base + 13
            })
        );
        assert!(second.get("/k/15", Some(base + 16)).await.is_ok());
        // A fresh etcd: nothing compacted.
        let fresh = tokio::task::spawn_blocking(|| EtcdCluster::start(1))
            .await
            .expect("start etcd");
        let third = EtcdStore::connect(EtcdOptions {
            endpoints: fresh.endpoints(),
            ..Default::default()
        })
        .await
        .unwrap();
        assert_eq!(third.compacted_revision().await.unwrap(), 0);
    });
}
