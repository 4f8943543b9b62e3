//! Injected faults and the request recorder through kube-rs, in process:
//! - a `kube::runtime::Controller` whose status writes get two injected 409s retries and
//!   writes its status; the recorder shows exactly those two conflicts, its one successful
//!   write and its field manager;
//! - a watcher (reflector) that meets a 410 Gone, a watch ended early and a connection cut
//!   mid-answer still sees every object, and the recorder shows the relist and the re-watches;
//! - faults matched by user agent and with a seeded probability replay the same way.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action as Requeue;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, Controller, WatchStreamExt};
use kube::{Client, ResourceExt};
use kubox::faults::{Action, FaultsSpec, Match, Rule, StatusFault};
use kubox::recorder::Filter;
use kubox::{Server, ServerHandle};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);

async fn client_of(server: &ServerHandle) -> Client {
    let kc = kube::config::Kubeconfig::from_yaml(server.kubeconfig()).unwrap();
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    Client::try_from(cfg).unwrap()
}

fn conflict() -> Action {
    Action::Status(StatusFault {
        code: 409,
        reason: None,
        message: Some("the object has been modified; please apply your changes to the latest version and try again".into()),
        retry_after_seconds: None,
    })
}

fn deployment(name: &str) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}
    }))
    .unwrap()
}

/// Writes `status.observedGeneration` (with server-side apply on /status).
async fn reconcile(d: Arc<Deployment>, api: Arc<Api<Deployment>>) -> Result<Requeue, kube::Error> {
    let generation = d.metadata.generation.unwrap_or_default();
    if d.status.as_ref().and_then(|s| s.observed_generation) == Some(generation) {
        return Ok(Requeue::await_change());
    }
    api.patch_status(
        &d.name_any(),
        &PatchParams::apply("status-writer").force(),
        &Patch::Apply(json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "status": {"observedGeneration": generation}})),
    )
    .await?;
    Ok(Requeue::await_change())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_survives_conflicts_on_its_status_writes() {
    let server = Server::builder().start().await.unwrap();
    let rule = server
        .faults()
        .add(
            Rule::new(
                Match {
                    subresource: Some("status".into()),
                    ..Match::verb_resource("patch", "deployments")
                },
                conflict(),
            )
            .times(2),
        )
        .unwrap();
    let client = client_of(&server).await;
    let api: Api<Deployment> = Api::namespaced(client, "default");
    api.create(&PostParams::default(), &deployment("web"))
        .await
        .unwrap();
    let controller = Controller::new(api.clone(), watcher::Config::default())
        .run(
            reconcile,
            |_d, _e, _ctx| Requeue::requeue(Duration::from_millis(20)),
            Arc::new(api.clone()),
        )
        .for_each(|_| async {});
    let controller = tokio::spawn(controller);
    // Three status writes: two conflicts, then the one that lands.
    let status_writes = Filter::new()
        .verb("patch")
        .resource("deployments")
        .subresource("status");
    let seen = server
        .recorder()
        .wait_for(&status_writes.clone().code(200), 1, WAIT)
        .await
        .expect("the controller wrote its status");
    controller.abort();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].field_manager, "status-writer");
    assert_eq!(seen[0].name, "web");
    assert_eq!(server.recorder().count(&status_writes.clone().code(409)), 2);
    assert_eq!(server.recorder().count(&status_writes), 3);
    assert_eq!(server.faults().fired(rule), 2);
    let d = api.get("web").await.unwrap();
    assert_eq!(d.status.unwrap().observed_generation, Some(1));
    server.shutdown().await.unwrap();
}

/// Wait (on the reflector's events, within [`WAIT`]) until the store holds `n` ConfigMaps
/// named `cm-*`.
async fn holds(
    store: &Store<ConfigMap>,
    events: &mut tokio::sync::watch::Receiver<u64>,
    n: usize,
) -> bool {
    tokio::time::timeout(WAIT, async {
        loop {
            events.borrow_and_update();
            let count = store
                .state()
                .iter()
                .filter(|c| c.name_any().starts_with("cm-"))
                .count();
            if count == n {
                return;
            }
            if events.changed().await.is_err() {
                return;
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_recovers_from_gone_ended_and_cut_watches_without_losing_an_event() {
    let server = Server::builder().start().await.unwrap();
    let watches = Match::verb_resource("watch", "configmaps");
    server
        .faults()
        .set(FaultsSpec {
            seed: 0,
            rules: vec![
                Rule::new(watches.clone(), Action::WatchGone).times(1),
                Rule::new(watches.clone(), Action::EndWatchAfter { events: 2 }).times(1),
                Rule::new(watches.clone(), Action::DropConnection).times(1),
            ],
        })
        .unwrap();
    let client = client_of(&server).await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let (store, writer) = reflector::store::<ConfigMap>();
    let (seen, mut events) = tokio::sync::watch::channel(0u64);
    // The reflector updates the store before it yields each event.
    let stream = reflector::reflector(writer, watcher(cms.clone(), watcher::Config::default()))
        .default_backoff()
        .for_each(move |_| {
            seen.send_modify(|n| *n += 1);
            async {}
        });
    let task = tokio::spawn(stream);
    // One object at a time, each seen before the next, until every fault has fired (the
    // watch they cut is re-made by the watcher) and at least ten objects exist.
    let mut made = 0;
    while made < 10 || server.faults().report().iter().any(|r| r.fired == 0) {
        assert!(
            made < 100,
            "the faults did not all fire: {:?}",
            server.faults().report()
        );
        cms.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": format!("cm-{made}")}})).unwrap(),
        )
        .await
        .unwrap();
        made += 1;
        assert!(
            holds(&store, &mut events, made).await,
            "the reflector lost an object"
        );
    }
    // Every fault fired once; the recorder shows the 410 and the relist after it.
    let report = server.faults().report();
    assert!(report.iter().all(|r| r.fired == 1), "{report:?}");
    let rec = server.recorder();
    let watch_filter = Filter::new().verb("watch").resource("configmaps");
    // Four watches (gone, ended, cut, the one that lasts) and a relist after the gone one.
    assert!(
        rec.count(&watch_filter) >= 4,
        "{:?}",
        rec.requests(&watch_filter)
    );
    assert!(rec.count(&Filter::new().verb("list").resource("configmaps")) >= 2);
    // A deletion after all that still arrives.
    cms.delete("cm-3", &Default::default()).await.unwrap();
    assert!(holds(&store, &mut events, made - 1).await);
    task.abort();
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_by_user_agent_and_seeded_probability_replay() {
    // Which of 20 GETs fail with probability 0.5, for a seed.
    async fn pattern(seed: u64) -> Vec<u16> {
        let server = Server::builder()
            .faults(FaultsSpec {
                seed,
                rules: vec![Rule::new(
                    Match {
                        user_agent: Some("flaky-client".into()),
                        ..Match::verb_resource("get", "configmaps")
                    },
                    Action::Status(StatusFault {
                        code: 500,
                        reason: None,
                        message: None,
                        retry_after_seconds: None,
                    }),
                )
                .probability(0.5)],
            })
            .start()
            .await
            .unwrap();
        let kc = kube::config::Kubeconfig::from_yaml(server.kubeconfig()).unwrap();
        let mut cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .unwrap();
        let plain = Client::try_from(cfg.clone()).unwrap();
        cfg.headers.push((
            http::header::USER_AGENT,
            http::HeaderValue::from_static("flaky-client/1.0"),
        ));
        let flaky = Client::try_from(cfg).unwrap();
        let cms: Api<ConfigMap> = Api::namespaced(plain.clone(), "default");
        cms.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "x"}})).unwrap(),
        )
        .await
        .unwrap();
        let flaky_cms: Api<ConfigMap> = Api::namespaced(flaky, "default");
        let mut codes = Vec::new();
        for _ in 0..20 {
            codes.push(match flaky_cms.get("x").await {
                Ok(_) => 200,
                Err(kube::Error::Api(s)) => s.code,
                Err(e) => panic!("{e}"),
            });
            // Other clients are never affected.
            cms.get("x").await.unwrap();
        }
        // What the server answered the flaky client (the recorder sees each try).
        let flaky_gets = Filter::new().verb("get").resource("configmaps");
        let answered: Vec<u16> = server
            .recorder()
            .requests(&flaky_gets)
            .into_iter()
            .filter(|r| r.user_agent.starts_with("flaky-client"))
            .map(|r| r.code)
            .collect();
        assert_eq!(answered, codes);
        server.shutdown().await.unwrap();
        codes
    }
    let a = pattern(7).await;
    assert_eq!(a, pattern(7).await, "one seed, one sequence");
    let failed = a.iter().filter(|c| **c == 500).count();
    assert!((2..=18).contains(&failed), "{a:?}");
    assert_ne!(a, pattern(8).await, "another seed, another sequence");
}
