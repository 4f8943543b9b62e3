//! A custom resource the way kube-rs users write one: a `#[derive(CustomResource)]` type whose
//! generated CRD is applied with server-side apply, then a `kube::runtime::Controller` that
//! reconciles it, writes `/status`, and cleans up through a finalizer on delete.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::finalizer::{self, finalizer, Event};
use kube::runtime::wait::{await_condition, conditions};
use kube::runtime::watcher;
use kube::{Client, CustomResource, CustomResourceExt, KubeSchema, ResourceExt};
use kubox_conformance::{Backend, Target};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);
const FINALIZER: &str = "widgets.kubox.example/cleanup";

/// A widget: a square of `size`, in a colour.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "kubox.example",
    version = "v1",
    kind = "Widget",
    namespaced,
    status = "WidgetStatus",
    shortname = "wd",
    printcolumn = r#"{"name":"Size", "type":"integer", "jsonPath":".spec.size"}"#,
    printcolumn = r#"{"name":"Area", "type":"integer", "jsonPath":".status.area"}"#
)]
#[x_kube(validation = kube::core::Rule::new("self.color != 'red' || self.size <= 10")
    .message("red widgets are at most 10 wide"))]
pub struct WidgetSpec {
    /// Side length.
    #[schemars(range(min = 1, max = 100))]
    size: i64,
    /// Colour.
    color: String,
}

/// What the controller observed.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WidgetStatus {
    /// The generation the status describes.
    observed_generation: Option<i64>,
    /// `size * size`.
    area: Option<i64>,
}

struct Context {
    client: Client,
    /// Widgets whose finalizer cleanup ran.
    cleaned: Mutex<Vec<String>>,
}

async fn reconcile(
    widget: Arc<Widget>,
    ctx: Arc<Context>,
) -> Result<Action, finalizer::Error<kube::Error>> {
    let ns = widget.namespace().unwrap_or_default();
    let api: Api<Widget> = Api::namespaced(ctx.client.clone(), &ns);
    finalizer(&api, FINALIZER, widget, |event| async {
        match event {
            Event::Apply(w) => {
                let status = json!({"status": {
                    "observedGeneration": w.metadata.generation,
                    "area": w.spec.size * w.spec.size,
                }});
                api.patch_status(
                    &w.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&status),
                )
                .await?;
                Ok(Action::await_change())
            }
            Event::Cleanup(w) => {
                ctx.cleaned.lock().unwrap().push(w.name_any());
                Ok(Action::await_change())
            }
        }
    })
    .await
}

fn error_policy(_: Arc<Widget>, _: &finalizer::Error<kube::Error>, _: Arc<Context>) -> Action {
    Action::requeue(Duration::from_millis(100))
}

fn widget(name: &str, size: i64, color: &str) -> Widget {
    Widget::new(
        name,
        WidgetSpec {
            size,
            color: color.into(),
        },
    )
}

/// Wait until the widget's status describes its current generation with this area.
async fn converged(api: &Api<Widget>, name: &str, generation: i64, area: i64) -> Widget {
    let cond = move |w: Option<&Widget>| {
        w.is_some_and(|w| {
            w.metadata.generation == Some(generation)
                && w.status.as_ref()
                    == Some(&WidgetStatus {
                        observed_generation: Some(generation),
                        area: Some(area),
                    })
        })
    };
    tokio::time::timeout(WAIT, await_condition(api.clone(), name, cond))
        .await
        .unwrap_or_else(|_| panic!("{name} did not converge to generation {generation}"))
        .unwrap()
        .unwrap()
}

#[track_caller]
fn invalid(r: Result<Widget, kube::Error>) -> String {
    match r {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 422, "{s:?}");
            assert_eq!(s.reason, "Invalid", "{s:?}");
            s.message.clone()
        }
        other => panic!("expected a 422, got {other:?}"),
    }
}

async fn scenario(backend: Backend) {
    let target = Target::start(backend).await;
    let client = target.client().await;
    let ns = target.namespace.clone();
    Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap(),
        )
        .await
        .unwrap();

    // The generated CRD, server-side applied, becomes Established.
    let crd = Widget::crd();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let name = crd.name_any();
    assert_eq!(name, "widgets.kubox.example");
    crds.patch(
        &name,
        &PatchParams::apply("kube-rs-crd").force(),
        &Patch::Apply(&crd),
    )
    .await
    .unwrap();
    tokio::time::timeout(
        WAIT,
        await_condition(crds.clone(), &name, conditions::is_crd_established()),
    )
    .await
    .expect("CRD established in time")
    .unwrap();
    let stored = crds.get(&name).await.unwrap();
    assert_eq!(stored.spec.names.short_names, Some(vec!["wd".to_string()]));

    // The controller, running until told to stop.
    let ctx = Arc::new(Context {
        client: client.clone(),
        cleaned: Mutex::new(Vec::new()),
    });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let all: Api<Widget> = Api::all(client.clone());
    let controller = tokio::spawn(
        Controller::new(all, watcher::Config::default())
            .graceful_shutdown_on(async move {
                let _ = stopped.await;
            })
            .run(reconcile, error_policy, ctx.clone())
            .for_each(|r| {
                // Failed reconciles are retried (error_policy); say why, for a failing run.
                if let Err(e) = r {
                    eprintln!("reconcile failed: {e:?}");
                }
                futures::future::ready(())
            }),
    );

    let widgets: Api<Widget> = Api::namespaced(client.clone(), &ns);
    widgets
        .create(&PostParams::default(), &widget("w1", 3, "blue"))
        .await
        .unwrap();
    let w1 = converged(&widgets, "w1", 1, 9).await;
    // The finalizer (a metadata write) and the status writes left the generation at 1.
    assert_eq!(w1.finalizers(), [FINALIZER.to_string()]);

    // A spec change bumps the generation; the controller catches up.
    widgets
        .patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 4}})),
        )
        .await
        .unwrap();
    converged(&widgets, "w1", 2, 16).await;
    // Status in a write of the main resource is ignored; a status write keeps the generation.
    let mut replaced = widgets.get("w1").await.unwrap();
    replaced.status = Some(WidgetStatus {
        observed_generation: Some(99),
        area: Some(0),
    });
    let after = widgets
        .replace("w1", &PostParams::default(), &replaced)
        .await
        .unwrap();
    assert_eq!(after.metadata.generation, Some(2));
    assert_eq!(after.status.unwrap().observed_generation, Some(2));
    let after = widgets
        .patch_status(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"area": 1}})),
        )
        .await
        .unwrap();
    assert_eq!(after.metadata.generation, Some(2));
    assert_eq!(after.status.unwrap().area, Some(1));
    // That write is an event like any other: the controller restores its status.
    converged(&widgets, "w1", 2, 16).await;

    // The schema's range and the CEL rule are enforced by the server, naming the field.
    let msg = invalid(
        widgets
            .create(&PostParams::default(), &widget("tiny", 0, "blue"))
            .await,
    );
    assert!(msg.contains("spec.size"), "{msg}");
    assert!(
        msg.contains("should be greater than or equal to 1"),
        "{msg}"
    );
    let msg = invalid(
        widgets
            .create(&PostParams::default(), &widget("big", 20, "red"))
            .await,
    );
    assert!(msg.contains("spec"), "{msg}");
    assert!(msg.contains("red widgets are at most 10 wide"), "{msg}");
    let msg = invalid(
        widgets
            .patch(
                "w1",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"size": 101}})),
            )
            .await,
    );
    assert!(msg.contains("spec.size"), "{msg}");

    // Delete: the finalizer holds the object until the controller's cleanup has run.
    let uid = widgets.get("w1").await.unwrap().uid().unwrap();
    widgets
        .delete("w1", &DeleteParams::default())
        .await
        .unwrap();
    tokio::time::timeout(
        WAIT,
        await_condition(widgets.clone(), "w1", conditions::is_deleted(&uid)),
    )
    .await
    .expect("w1 deleted in time")
    .unwrap();
    assert_eq!(*ctx.cleaned.lock().unwrap(), vec!["w1".to_string()]);

    // The controller stops when asked.
    stop.send(()).unwrap();
    tokio::time::timeout(WAIT, controller)
        .await
        .expect("controller stops in time")
        .unwrap();
    target.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_derive_crd_with_a_runtime_controller() {
    scenario(Backend::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_derive_crd_with_a_runtime_controller_on_sled() {
    scenario(Backend::Sled).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_derive_crd_with_a_runtime_controller_on_etcd() {
    scenario(Backend::Etcd).await;
}
