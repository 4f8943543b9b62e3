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
