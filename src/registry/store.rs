//! The generic registry store: create, update and delete of one resource's objects, as kube's
//! `registry/generic/registry.Store` does them, under the HTTP handlers and over the storage.
//!
//! Who writes and where is a [`Scope`] (resource, namespace, subresource, user); how is a typed
//! options value ([`CreateOptions`], [`UpdateOptions`], [`DeleteOptions`]). Every write takes the
//! same steps for every resource: system fields, defaults, mutating admission, the strategy's
//! prepare and validate, validating admission, compare-and-swap in the storage. What a resource
//! adds is its [`Hooks`] (kube's per-resource REST overrides and store hooks: Service allocation,
//! RBAC escalation checks, waiting for the CRD controller and the RBAC index, namespace deletion).
//!
//! Endpoints (`handlers.rs`, `patch.rs`, `subresources.rs`) decode requests into these calls;
//! controllers call them directly ([`guaranteed_update`], [`delete`]), with admission, as
//! kube-controller-manager's writes are admitted — never through a request.

use std::sync::Arc;

use async_trait::async_trait;
use http::StatusCode;
use kubox_apimachinery::validation::FieldError;
use kubox_storage::{KeyValue, StoreError};
use serde_json::{json, Value};

use crate::admission::{Attributes, Operation};
use crate::authn::UserInfo;
use crate::objects::{self, from_stored, name_of, namespace_of, to_storage_version, to_stored};
use crate::registry::managed::Write;
use crate::registry::Backend;
use crate::registry::ResourceInfo;
use crate::status::{self, ApiError, ApiResult, GroupResource};

/// Who writes what where: the request-scoped part of a write (kube's request context).
#[derive(Clone)]
pub struct Scope {
    /// The server's parts the write needs (store, admission, clock, indexes).
    pub state: Arc<Backend>,
    /// The resource written.
    pub info: Arc<ResourceInfo>,
    /// The namespace ("" for cluster-scoped resources).
    pub namespace: String,
    /// `status`, `scale`, `finalize`, or "" for the resource itself.
    pub subresource: String,
    /// Who writes (after impersonation); controllers write as the loopback user.
    pub user: UserInfo,
    /// The client's user agent (names the field manager when `fieldManager` is not given).
    pub user_agent: String,
}

impl Scope {
    /// A scope; the namespace is dropped for cluster-scoped resources.
    pub fn new(
        state: Arc<Backend>,
        info: Arc<ResourceInfo>,
        namespace: &str,
        subresource: &str,
        user: UserInfo,
    ) -> Scope {
        let namespace = if info.namespaced {
            namespace.to_string()
        } else {
            String::new()
        };
        Scope {
            state,
            info,
            namespace,
            subresource: subresource.to_string(),
            user,
            user_agent: String::new(),
        }
    }

    /// The same scope for a client with this user agent.
    pub fn with_user_agent(mut self, user_agent: &str) -> Scope {
        self.user_agent = user_agent.to_string();
        self
    }

    /// A write by the server itself (controllers, bootstrap): the loopback user.
    pub fn system(
        state: &Arc<Backend>,
        info: Arc<ResourceInfo>,
        namespace: &str,
        subresource: &str,
    ) -> Scope {
        Scope::new(
            state.clone(),
            info,
            namespace,
            subresource,
            UserInfo::loopback(),
        )
        .with_user_agent("kube-controller-manager")
    }

    /// The same resource and user in another namespace.
    pub fn in_namespace(&self, namespace: &str) -> Scope {
        Scope::new(
            self.state.clone(),
            self.info.clone(),
            namespace,
            &self.subresource,
            self.user.clone(),
        )
        .with_user_agent(&self.user_agent)
    }

    /// The field manager of a write with these options.
    fn manager(&self, field_manager: &Option<String>) -> String {
        super::managed::manager_name(field_manager.as_deref(), &self.user_agent)
    }

    /// The storage key of the named object.
    pub fn key(&self, name: &str) -> String {
        self.info.key(&self.namespace, name)
    }

    /// The group/resource for messages.
    pub fn gr(&self) -> GroupResource {
        self.info.group_resource()
    }

    /// Read the named object as stored (storage version).
    pub async fn read(&self, name: &str) -> ApiResult<(Value, KeyValue)> {
        read(&self.state, &self.info, &self.namespace, name).await
    }

    /// Admission attributes for a write in this scope.
    pub fn attributes(
        &self,
        operation: Operation,
        name: &str,
        object: Option<Value>,
        old_object: Option<Value>,
        dry_run: bool,
        options: Value,
    ) -> Attributes {
        Attributes {
            operation,
            info: self.info.clone(),
            subresource: self.subresource.clone(),
            namespace: self.namespace.clone(),
            name: name.to_string(),
            object,
            old_object,
            user: self.user.clone(),
            dry_run,
            options,
            patched_by_webhook: false,
        }
    }
}

/// metav1.CreateOptions.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// `dryRun=All`: everything but the storage write.
    pub dry_run: bool,
    /// `fieldManager`.
    pub field_manager: Option<String>,
    /// A server-side apply's configuration (the write is an `Apply` operation).
    pub applied: Option<Value>,
}

/// metav1.UpdateOptions (PATCH and apply write through them too).
#[derive(Debug, Clone, Default)]
pub struct UpdateOptions {
    /// `dryRun=All`.
    pub dry_run: bool,
    /// `fieldManager`.
    pub field_manager: Option<String>,
    /// A server-side apply's configuration (the write is an `Apply` operation).
    pub applied: Option<Value>,
    /// `force`: an apply takes the fields it conflicts on.
    pub force: bool,
}

fn options_value(kind: &str, dry_run: bool, field_manager: &Option<String>) -> Value {
    let mut o = json!({"kind": kind, "apiVersion": "meta.k8s.io/v1"});
    if dry_run {
        o["dryRun"] = json!(["All"]);
    }
    if let Some(m) = field_manager.as_deref().filter(|m| !m.is_empty()) {
        o["fieldManager"] = json!(m);
    }
    o
}

impl CreateOptions {
    /// As admission reports them (`request.options`).
    pub fn to_value(&self) -> Value {
        options_value("CreateOptions", self.dry_run, &self.field_manager)
    }

    /// Update options with the same dry-run and field manager (a PUT or apply that creates).
    pub fn from_update(o: &UpdateOptions) -> CreateOptions {
        CreateOptions {
            dry_run: o.dry_run,
            field_manager: o.field_manager.clone(),
            applied: o.applied.clone(),
        }
    }
}

impl UpdateOptions {
    /// As admission reports them (`request.options`).
    pub fn to_value(&self) -> Value {
        options_value("UpdateOptions", self.dry_run, &self.field_manager)
    }
}

/// metav1.Preconditions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preconditions {
    /// The object's uid must be this.
    pub uid: Option<String>,
    /// The object's resourceVersion must be this.
    pub resource_version: Option<String>,
}

/// metav1.DeletionPropagation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    /// Dependents are orphaned.
    Orphan,
    /// The owner goes now, the garbage collector deletes dependents after.
    Background,
    /// Dependents with blockOwnerDeletion go first.
    Foreground,
}

impl Propagation {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Propagation::Orphan => "Orphan",
            Propagation::Background => "Background",
            Propagation::Foreground => "Foreground",
        }
    }

    /// Parse the wire name; anything else is a 422 as kube answers it.
    pub fn parse(s: &str) -> ApiResult<Propagation> {
        match s {
            "Orphan" => Ok(Propagation::Orphan),
            "Background" => Ok(Propagation::Background),
            "Foreground" => Ok(Propagation::Foreground),
            p => Err(ApiError::invalid(
                "DeleteOptions",
                "",
                "",
                &[FieldError::not_supported(
                    "propagationPolicy",
                    p,
                    &["Foreground", "Background", "Orphan", "nil"],
                )],
            )),
        }
    }
}

/// metav1.DeleteOptions.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    /// `dryRun=All`.
    pub dry_run: bool,
    /// uid / resourceVersion the object must have.
    pub preconditions: Preconditions,
    /// `propagationPolicy`.
    pub propagation: Option<Propagation>,
    /// The deprecated `orphanDependents` (wins over the propagation policy).
    pub orphan_dependents: Option<bool>,
    /// `gracePeriodSeconds` (kept for admission; objects without a kubelet go at once).
    pub grace_period_seconds: Option<i64>,
}

impl DeleteOptions {
    /// Read DeleteOptions from their JSON form (a request body), checking them as kube does.
    pub fn from_value(v: &Value) -> ApiResult<DeleteOptions> {
        let bad = |field: &str, want: &str| {
            ApiError::bad_request(format!(
                "json: cannot unmarshal {} into Go struct field DeleteOptions.{field} of type {want}",
                crate::encoding::json_type(&v[field])
            ))
        };
        let str_field = |parent: &Value, f: &str| -> ApiResult<Option<String>> {
            match &parent[f] {
                Value::Null => Ok(None),
                Value::String(s) => Ok(Some(s.clone())),
                _ => Err(bad(f, "string")),
            }
        };
        let orphan_dependents = match &v["orphanDependents"] {
            Value::Null => None,
            Value::Bool(b) => Some(*b),
            _ => return Err(bad("orphanDependents", "bool")),
        };
        let grace_period_seconds = match &v["gracePeriodSeconds"] {
            Value::Null => None,
            g => Some(
                g.as_i64()
                    .ok_or_else(|| bad("gracePeriodSeconds", "int64"))?,
            ),
        };
        let propagation = str_field(v, "propagationPolicy")?;
        if orphan_dependents.is_some() && propagation.is_some() {
            return Err(ApiError::invalid(
                "DeleteOptions",
                "",
                "",
                &[FieldError::invalid(
                    "propagationPolicy",
                    propagation.as_deref().unwrap_or_default(),
                    "orphanDependents and deletionPropagation cannot be both set",
                )],
            ));
        }
        let propagation = propagation.as_deref().map(Propagation::parse).transpose()?;
        let pre = &v["preconditions"];
        Ok(DeleteOptions {
            dry_run: v["dryRun"]
                .as_array()
                .is_some_and(|a| a.contains(&json!("All"))),
            preconditions: Preconditions {
                uid: str_field(pre, "uid")?,
                resource_version: str_field(pre, "resourceVersion")?,
            },
            propagation,
            orphan_dependents,
            grace_period_seconds,
        })
    }

    /// As admission reports them (`request.options`).
    pub fn to_value(&self) -> Value {
        let mut o = json!({"kind": "DeleteOptions", "apiVersion": "meta.k8s.io/v1"});
        if let Some(g) = self.grace_period_seconds {
            o["gracePeriodSeconds"] = json!(g);
        }
        if self.preconditions != Preconditions::default() {
            let mut p = json!({});
            if let Some(u) = &self.preconditions.uid {
                p["uid"] = json!(u);
            }
            if let Some(r) = &self.preconditions.resource_version {
                p["resourceVersion"] = json!(r);
            }
            o["preconditions"] = p;
        }
        if let Some(b) = self.orphan_dependents {
            o["orphanDependents"] = json!(b);
        }
        if let Some(p) = self.propagation {
            o["propagationPolicy"] = json!(p.as_str());
        }
        if self.dry_run {
            o["dryRun"] = json!(["All"]);
        }
        o
    }
}

/// What a resource adds to the generic store: kube's store hooks (BeginCreate, AfterCreate…,
/// Decorator) and per-resource REST overrides. Every method has a do-nothing default.
#[async_trait]
pub trait Hooks: Send + Sync {
    /// With the strategy's PrepareForCreate: what a create takes from its author (a
    /// CertificateSigningRequest's requesting user).
    fn prepare_for_create(&self, _scope: &Scope, _obj: &mut Value) {}

    /// After validation, before validating admission: checks that need the author (RBAC's
    /// escalation prevention). `old` is None on create.
    fn authorize_write(&self, _scope: &Scope, _new: &Value, _old: Option<&Value>) -> ApiResult<()> {
        Ok(())
    }

    /// Just before a new object is stored (also on a dry run, as kube's allocators dry-run):
    /// allocate what it needs (a Service's cluster IP and node ports).
    async fn before_create(
        &self,
        _scope: &Scope,
        _obj: &mut Value,
        _dry_run: bool,
    ) -> ApiResult<()> {
        Ok(())
    }

    /// After a write is durable at `rev`: wait until what must see it has (the CRD controller,
    /// the RBAC index), so the next request finds it applied.
    async fn after_write(&self, _scope: &Scope, _rev: i64) {}

    /// Does something besides `metadata.finalizers` hold a deleting object (a namespace's
    /// `spec.finalizers`)?
    fn held_by_spec(&self, _obj: &Value) -> bool {
        false
    }

    /// The resource's own deletion (kube's namespace REST): Some(result) replaces the generic
    /// one. `obj` is as stored, read at `rev`; admission has allowed the delete.
    async fn delete(
        &self,
        _scope: &Scope,
        _obj: Value,
        _rev: i64,
        _opts: &DeleteOptions,
    ) -> Option<ApiResult<(Value, bool)>> {
        None
    }

    /// After the generic delete marked `obj` deleting (finalizers remain): is it gone already?
    /// (A CRD without custom resources is released by its controller before the answer.)
    async fn gone_after_marking(&self, _scope: &Scope) -> bool {
        false
    }
}

/// The hooks of a resource without any.
pub struct NoHooks;

#[async_trait]
impl Hooks for NoHooks {}

/// How often a create whose generated name collides is tried with a new name (kube's
/// maxNameGenerationCreateAttempts).
const GENERATE_NAME_ATTEMPTS: usize = 8;

/// How often an update without a resourceVersion (or a controller's read-modify-write) is tried
/// against a newer object before the conflict is reported.
pub const UNCONDITIONAL_ATTEMPTS: usize = 16;

const GENERATE_CHARS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// Five random characters, as kube's `SimpleNameGenerator` appends to a generateName.
pub(crate) fn generate_suffix() -> String {
    suffix(&mut rand::rng())
}

fn suffix(rng: &mut impl rand::Rng) -> String {
    (0..5)
        .map(|_| GENERATE_CHARS[rng.random_range(0..GENERATE_CHARS.len())] as char)
        .collect()
}

/// The names `generateName` produces: random, or from a seed (the same seed gives the same
/// sequence of names, so a test can reproduce a run).
pub struct NameGenerator {
    seeded: Option<std::sync::Mutex<rand::rngs::StdRng>>,
}

impl NameGenerator {
    /// Random names.
    pub fn random() -> NameGenerator {
        NameGenerator { seeded: None }
    }

    /// Names from a seed.
    pub fn seeded(seed: u64) -> NameGenerator {
        use rand::SeedableRng;
        NameGenerator {
            seeded: Some(std::sync::Mutex::new(rand::rngs::StdRng::seed_from_u64(
                seed,
            ))),
        }
    }

    /// `prefix` and five characters.
    pub fn generate(&self, prefix: &str) -> String {
        let s = match &self.seeded {
            Some(rng) => suffix(&mut *rng.lock().unwrap_or_else(|e| e.into_inner())),
            None => generate_suffix(),
        };
        format!("{prefix}{s}")
    }
}

fn invalid(info: &ResourceInfo, obj: &Value, errs: &[FieldError]) -> ApiError {
    ApiError::invalid(&info.kind, &info.group, name_of(obj), errs)
}

/// A built-in object's shape against its typed definition: a value of the wrong type is a 400.
/// Checked as the client sent it, and again after a mutating webhook changed it.
pub(crate) fn check_shape(info: &ResourceInfo, obj: &Value) -> ApiResult<()> {
    if info.strategy.is_custom() {
        return Ok(());
    }
    crate::typed::check_shape(&info.group, &info.kind, obj).map_err(ApiError::bad_request)
}

/// A built-in object as a Go round trip leaves it: explicit nulls of its fields dropped.
fn drop_go_nulls(info: &ResourceInfo, obj: &mut Value) {
    if info.strategy.is_custom() {
        return;
    }
    if let Some(schema) = info.write_schema() {
        kubox_apimachinery::fieldpath::drop_null_fields(obj, schema);
    }
}

/// Keep `new`'s managedFields ([`super::managed::track`]). Fields are tracked at the version of
/// the request, as kube's field manager tracks them on the versioned object: a built-in written
/// through a version other than its storage version (`autoscaling/v1`, `events.k8s.io/v1`) is
/// compared there, and brought back to the storage version after.
async fn track_managed_fields(
    scope: &Scope,
    live: Option<&Value>,
    new: &mut Value,
    manager: &str,
    applied: Option<(&Value, bool)>,
) -> ApiResult<()> {
    let info = &scope.info;
    let now = objects::timestamp(scope.state.clock.now());
    let track = |live: Option<&Value>, new: &mut Value, others: &super::managed::OtherVersions| {
        let w = Write {
            manager,
            subresource: &scope.subresource,
            now: &now,
            applied,
            others,
        };
        super::managed::track(info, live, new, &w)
    };
    if info.strategy.is_custom() || info.serves_api_version(&info.storage_api_version) {
        let others = compare_at_other_versions(scope, live, new).await?;
        return track(live, new, &others);
    }
    let mut served = objects::to_version(info, std::mem::take(new)).await?;
    let live = match live {
        Some(l) => Some(objects::to_version(info, l.clone()).await?),
        None => None,
    };
    let others = compare_at_other_versions(scope, live.as_ref(), &served).await?;
    track(live.as_ref(), &mut served, &others)?;
    *new = objects::to_storage_version(info, served).await?;
    Ok(())
}

/// The change from `live` to `new` (both at the request's version) as seen at each other
/// apiVersion a manager of the object wrote at: both converted there and compared under that
/// version's schema, as structured-merge-diff does. (A version no longer served is left out:
/// its managers see the change as the request's version does.)
async fn compare_at_other_versions(
    scope: &Scope,
    live: Option<&Value>,
    new: &Value,
) -> ApiResult<super::managed::OtherVersions> {
    let info = &scope.info;
    let mut out = super::managed::OtherVersions::new();
    let Some(live) = live else {
        return Ok(out);
    };
    let versions = super::managed::other_versions(Some(live), new, &info.api_version());
    if versions.is_empty() {
        return Ok(out);
    }
    let snapshot = scope.state.registry.snapshot();
    for v in versions {
        let (group, version) = v.split_once('/').unwrap_or(("", v.as_str()));
        // A version not served (any more) is compared as the request's version is.
        let Some(there) = snapshot
            .get(group, version, &info.resource)
            .filter(|i| i.kind == info.kind)
        else {
            continue;
        };
        let both = objects::to_api_version(info, vec![live.clone(), new.clone()], &v).await?;
        let c = match there.schema() {
            Some(s) => kubox_apimachinery::fieldpath::compare(&both[0], &both[1], s),
            None => kubox_apimachinery::fieldpath::compare(
                &both[0],
                &both[1],
                &kubox_apimachinery::fieldpath::Untyped,
            ),
        };
        out.insert(v, c);
    }
    Ok(out)
}

/// Create an object (POST, a PUT or apply that creates, controllers). Returns the object written
/// at the write version, with its resourceVersion.
pub async fn create(scope: &Scope, obj: Value, opts: &CreateOptions) -> ApiResult<Value> {
    create_stored(scope, obj, opts).await.map(|(obj, _)| obj)
}

/// [`create`], with what the store holds (None for a dry run): for a built-in at its storage
/// version, the stored bytes plus the resourceVersion are the answer.
pub async fn create_stored(
    scope: &Scope,
    mut obj: Value,
    opts: &CreateOptions,
) -> ApiResult<(Value, Option<KeyValue>)> {
    let info = &scope.info;
    // Namespace: from the scope, and the object must agree.
    if info.namespaced {
        let body_ns = namespace_of(&obj).to_string();
        if !body_ns.is_empty() && body_ns != scope.namespace {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        obj["metadata"]["namespace"] = json!(scope.namespace);
    } else if let Some(m) = obj["metadata"].as_object_mut() {
        if m.get("namespace").and_then(Value::as_str) == Some("") {
            m.remove("namespace");
        }
    }
    let mut obj = objects::to_write_version(info, obj).await?;
    // A value of the wrong type is a 400 before defaulting or admission work on the object
    // (kube decodes into typed objects first); validation checks again what admission made.
    check_shape(info, &obj)?;
    drop_go_nulls(info, &mut obj);
    if let Some(m) = obj["metadata"].as_object_mut() {
        for k in [
            "resourceVersion",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "selfLink",
            "uid",
            "creationTimestamp",
        ] {
            m.remove(k);
        }
    }
    info.strategy.default(&mut obj);
    track_managed_fields(
        scope,
        None,
        &mut obj,
        &scope.manager(&opts.field_manager),
        opts.applied.as_ref().map(|a| (a, true)),
    )
    .await?;
    // Mutating admission sees the object as the client sent it, defaulted: a generated name,
    // uid and creationTimestamp come after, as kube's store sets them.
    let name = name_of(&obj).to_string();
    let mut attrs = scope.attributes(
        Operation::Create,
        &name,
        Some(obj),
        None,
        opts.dry_run,
        opts.to_value(),
    );
    scope
        .state
        .admission
        .admit(&scope.state, &mut attrs)
        .await?;
    let obj = attrs.object.take().unwrap_or_default();
    let generate = name_of(&obj).is_empty()
        && obj["metadata"]["generateName"]
            .as_str()
            .is_some_and(|g| !g.is_empty());
    if !generate {
        return create_once(scope, obj, opts, &mut attrs, false).await;
    }
    let mut last = None;
    for _ in 0..GENERATE_NAME_ATTEMPTS {
        match create_once(scope, obj.clone(), opts, &mut attrs, generate).await {
            Err(e) if generate && e.reason == "AlreadyExists" => last = Some(e),
            done => return done,
        }
    }
    Err(last.unwrap_or_else(|| ApiError::internal("name generation failed")))
}

/// One attempt of a create after mutating admission (kube's `Store.create`).
async fn create_once(
    scope: &Scope,
    mut obj: Value,
    opts: &CreateOptions,
    attrs: &mut Attributes,
    generate: bool,
) -> ApiResult<(Value, Option<KeyValue>)> {
    let info = &scope.info;
    let now = scope.state.clock.now();
    {
        let meta = &mut obj["metadata"];
        if generate {
            let prefix = meta["generateName"].as_str().unwrap_or_default();
            meta["name"] = json!(scope.state.names.generate(prefix));
        }
        meta["uid"] = json!(crate::audit::random_uuid());
        meta["creationTimestamp"] = json!(objects::timestamp(now));
    }
    info.strategy.prepare_for_create(&mut obj);
    info.hooks.prepare_for_create(scope, &mut obj);
    info.hooks.authorize_write(scope, &obj, None)?;
    if attrs.patched_by_webhook {
        check_shape(info, &obj)?;
    }
    let mut errs = info
        .strategy
        .validate(&obj)
        .map_err(ApiError::bad_request)?;
    if let Some(config) = &opts.applied {
        errs.extend(info.strategy.applied_null_errors(config));
    }
    if !errs.is_empty() {
        return Err(invalid(info, &obj, &errs));
    }
    let name = name_of(&obj).to_string();
    attrs.name = name.clone();
    attrs.object = Some(obj);
    scope.state.admission.validate(&scope.state, attrs).await?;
    let mut obj = attrs.object.take().unwrap_or_default();
    if opts.dry_run {
        info.hooks.before_create(scope, &mut obj, true).await?;
        return Ok((obj, None));
    }
    let stored = async {
        info.hooks.before_create(scope, &mut obj, false).await?;
        // A built-in at its storage version is stored as it is (no copy to convert).
        let stored = if objects::servable_as_stored(info) {
            to_stored(&obj)?
        } else {
            to_stored(&to_storage_version(info, obj.clone()).await?)?
        };
        scope
            .state
            .store
            .create(&scope.key(&name), stored)
            .await
            .map_err(|e| status::from_store(e, &scope.gr(), &name))
    }
    .await;
    let kv = match stored {
        Ok(kv) => kv,
        Err(e) => {
            // Admission charged the namespace's quotas with this object: count them again.
            if info.namespaced {
                crate::admission::sync_quotas(&scope.state, info, &scope.namespace, true).await;
            }
            return Err(e);
        }
    };
    objects::set_resource_version(&mut obj, kv.mod_revision);
    after_write(scope, kv.mod_revision, Written::Created).await;
    Ok((obj, Some(kv)))
}

/// What a durable write did, for the quotas of its namespace.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Written {
    /// A new object: admission has already charged the quotas with it.
    Created,
    /// A changed object: usage changes only for pods (phase, resources) and quotas themselves.
    Updated,
    /// An object gone (or a create that failed after admission charged it): usage may drop.
    Released,
}

/// After every durable write: the resource's hook (CRD controller, RBAC index), the informer
/// that caches the resource, then the namespace's quotas report the new usage where it changed
/// before the client gets its answer.
async fn after_write(scope: &Scope, rev: i64, written: Written) {
    scope.info.hooks.after_write(scope, rev).await;
    // What admission reads from an informer applies to the next request.
    if let Some(informer) = scope.state.informers.for_prefix(&scope.info.storage_prefix) {
        informer.wait_for(rev).await;
    }
    let info = &scope.info;
    let core = info.group.is_empty();
    let sub = scope.subresource.as_str();
    let recount = match written {
        Written::Released => sub.is_empty(),
        // A new quota's usage; a quota's changed limits (not its own status writes).
        Written::Created => core && info.resource == "resourcequotas",
        Written::Updated => {
            core && ((info.resource == "pods" && matches!(sub, "" | "status"))
                || (info.resource == "resourcequotas" && sub.is_empty()))
        }
    };
    if recount && info.namespaced {
        crate::admission::sync_quotas(
            &scope.state,
            info,
            &scope.namespace,
            written == Written::Released,
        )
        .await;
    }
}

/// PUT by name (kube's `Store.Update` with the object as given): `expected` is the body's
/// resourceVersion (None or 0: unconditional, retried against newer objects for built-ins as
/// kube's GuaranteedUpdate does; refused with 422 for custom resources). A missing object is created where the resource allows it.
/// Returns the object written and whether it was created.
pub async fn update_by_name(
    scope: &Scope,
    name: &str,
    new: Value,
    expected: Option<i64>,
    opts: &UpdateOptions,
) -> ApiResult<(Value, bool)> {
    let new = objects::to_write_version(&scope.info, new).await?;
    let unconditional = expected.is_none_or(|e| e == 0) && !scope.info.strategy.is_custom();
    let mut attempts = 0;
    loop {
        attempts += 1;
        let (old, old_kv) = match scope.read(name).await {
            Ok(found) => found,
            Err(e)
                if e.code == StatusCode::NOT_FOUND
                    && scope.info.strategy.allow_create_on_update()
                    && scope.subresource.is_empty() =>
            {
                let created = create(scope, new, &CreateOptions::from_update(opts)).await?;
                return Ok((created, true));
            }
            Err(e) => return Err(e),
        };
        if let Some(exp) = expected.filter(|e| *e > 0) {
            if exp != old_kv.mod_revision {
                return Err(ApiError::stale_update(&scope.gr(), name));
            }
        } else if scope.info.strategy.is_custom() {
            // Custom resources allow no unconditional update (kube's CRD strategy); the
            // error names the resource where the kind would go, as kube's store does.
            return Err(ApiError::invalid(
                &scope.info.resource,
                &scope.info.group,
                name,
                &[FieldError::invalid_rendered(
                    "metadata.resourceVersion",
                    "0x0",
                    "must be specified for an update",
                )],
            ));
        }
        match update(scope, new.clone(), old, old_kv.mod_revision, opts).await {
            Ok((obj, _)) => return Ok((obj, false)),
            Err(e)
                if unconditional
                    && attempts < UNCONDITIONAL_ATTEMPTS
                    && e.code == StatusCode::CONFLICT
                    && e.reason == "Conflict" => {}
            Err(e) => return Err(e),
        }
    }
}

/// Write an updated object over `old` (as stored), which was read at `old_rev`. Both are
/// brought to the write version ([`objects::to_write_version`]) first. Returns the object
/// written, at that version, and whether it still exists (false when the last finalizer went).
pub async fn update(
    scope: &Scope,
    new: Value,
    old: Value,
    old_rev: i64,
    opts: &UpdateOptions,
) -> ApiResult<(Value, bool)> {
    let info = &scope.info;
    let dry_run = opts.dry_run;
    let mut new = objects::to_write_version(info, new).await?;
    let old = objects::to_write_version(info, old).await?;
    // System fields come from the old object: identity when the client left it out, deletion
    // state always (an update cannot set or clear it).
    for k in ["uid", "creationTimestamp", "namespace"] {
        let given = new["metadata"]
            .get(k)
            .is_some_and(|v| !v.is_null() && *v != json!(""));
        if !given {
            objects::set_or_remove(&mut new["metadata"], k, old["metadata"].get(k).cloned());
        }
    }
    for k in ["deletionTimestamp", "deletionGracePeriodSeconds"] {
        objects::set_or_remove(&mut new["metadata"], k, old["metadata"].get(k).cloned());
    }
    objects::set_resource_version(&mut new, old_rev);
    check_shape(info, &new)?;
    drop_go_nulls(info, &mut new);
    info.strategy.default(&mut new);
    track_managed_fields(
        scope,
        Some(&old),
        &mut new,
        &scope.manager(&opts.field_manager),
        opts.applied.as_ref().map(|a| (a, opts.force)),
    )
    .await?;
    let mut old_for_admission = old.clone();
    objects::set_resource_version(&mut old_for_admission, old_rev);
    let mut attrs = scope.attributes(
        Operation::Update,
        name_of(&old),
        Some(new),
        Some(old_for_admission),
        dry_run,
        opts.to_value(),
    );
    scope
        .state
        .admission
        .admit(&scope.state, &mut attrs)
        .await?;
    let mut new = attrs.object.take().unwrap_or_default();
    info.strategy
        .prepare_for_update(&mut new, &old, &scope.subresource);
    info.hooks.authorize_write(scope, &new, Some(&old))?;
    if attrs.patched_by_webhook {
        check_shape(info, &new)?;
    }
    let mut errs = info
        .strategy
        .validate_update(&new, &old)
        .map_err(ApiError::bad_request)?;
    errs.extend(
        info.strategy
            .validate_subresource_update(&scope.subresource, &new, &old),
    );
    if let Some(config) = &opts.applied {
        errs.extend(info.strategy.applied_null_errors(config));
    }
    let deleting = is_deleting(&old);
    if deleting {
        let old_f: Vec<&Value> = old["metadata"]["finalizers"]
            .as_array()
            .map(|a| a.iter().collect())
            .unwrap_or_default();
        if let Some(new_f) = new["metadata"]["finalizers"].as_array() {
            if new_f.iter().any(|f| !old_f.contains(&f)) {
                errs.push(FieldError::forbidden(
                    "metadata.finalizers",
                    "no new finalizers can be added if the object is being deleted",
                ));
            }
        }
    }
    if !errs.is_empty() {
        return Err(invalid(info, &new, &errs));
    }
    attrs.object = Some(new);
    scope.state.admission.validate(&scope.state, &attrs).await?;
    let mut new = attrs.object.take().unwrap_or_default();
    let name = name_of(&new).to_string();
    let key = scope.key(&name);
    let gr = scope.gr();
    let no_finalizers = new["metadata"]["finalizers"]
        .as_array()
        .is_none_or(|a| a.is_empty())
        && !info.hooks.held_by_spec(&new);
    if deleting && no_finalizers {
        if dry_run {
            return Ok((new, false));
        }
        let (_, rev) = scope
            .state
            .store
            .delete(&key, Some(old_rev))
            .await
            .map_err(|e| status::from_store(e, &gr, &name))?;
        objects::set_resource_version(&mut new, rev);
        after_write(scope, rev, Written::Released).await;
        return Ok((new, false));
    }
    // A no-op update writes nothing and keeps the resourceVersion.
    let mut old_cmp = old.clone();
    objects::set_resource_version(&mut old_cmp, old_rev);
    let mut new_cmp = new.clone();
    objects::set_resource_version(&mut new_cmp, old_rev);
    if old_cmp == new_cmp || dry_run {
        objects::set_resource_version(&mut new, old_rev);
        return Ok((new, true));
    }
    let stored = to_stored(&to_storage_version(info, new.clone()).await?)?;
    let kv = scope
        .state
        .store
        .update(&key, stored, Some(old_rev))
        .await
        .map_err(|e| status::from_store(e, &gr, &name))?;
    objects::set_resource_version(&mut new, kv.mod_revision);
    after_write(scope, kv.mod_revision, Written::Updated).await;
    Ok((new, true))
}

/// Read one stored object of `info` as stored (storage version) with its key-value; a missing
/// one is a 404 Status.
pub async fn read(
    state: &Backend,
    info: &ResourceInfo,
    namespace: &str,
    name: &str,
) -> ApiResult<(Value, KeyValue)> {
    let kv = state
        .store
        .get(&info.key(namespace, name), None)
        .await
        .map_err(|e| status::from_store(e, &info.group_resource(), name))?;
    Ok((from_stored(&kv)?, kv))
}

/// Read one stored object: (object at the storage version, resourceVersion), None if absent.
pub async fn get(scope: &Scope, name: &str) -> ApiResult<Option<(Value, i64)>> {
    match scope.state.store.get(&scope.key(name), None).await {
        Ok(kv) => Ok(Some((from_stored(&kv)?, kv.mod_revision))),
        Err(StoreError::NotFound(_)) => Ok(None),
        Err(e) => Err(status::from_store(e, &scope.gr(), name)),
    }
}

/// Read-modify-write one object (kube's GuaranteedUpdate for in-process writers): `change`
/// edits the stored object and says whether it changed anything; nothing is written when it did
/// not. With `uid`, an object replaced by a namesake is left alone. Conflicts are retried on the
/// newer object. Returns whether a write happened (a removed last finalizer deletes the object).
pub async fn guaranteed_update<F>(
    scope: &Scope,
    name: &str,
    uid: Option<&str>,
    mut change: F,
) -> ApiResult<bool>
where
    F: FnMut(&mut Value) -> bool + Send,
{
    for _ in 0..UNCONDITIONAL_ATTEMPTS {
        let Some((old, rev)) = get(scope, name).await? else {
            return Ok(false);
        };
        if uid.is_some_and(|u| old["metadata"]["uid"].as_str() != Some(u)) {
            return Ok(false);
        }
        let mut new = old.clone();
        if !change(&mut new) {
            return Ok(false);
        }
        match update(scope, new, old, rev, &UpdateOptions::default()).await {
            Ok(_) => return Ok(true),
            Err(e) if e.code == StatusCode::CONFLICT => continue,
            Err(e) if e.code == StatusCode::NOT_FOUND => return Ok(false),
            Err(e) => return Err(e),
        }
    }
    Err(ApiError::conflict(
        &scope.gr(),
        name,
        "too many concurrent writers",
    ))
}

/// Does the object carry a deletionTimestamp?
pub fn is_deleting(obj: &Value) -> bool {
    obj["metadata"]
        .get("deletionTimestamp")
        .is_some_and(|v| !v.is_null())
}

/// Delete one object by name; returns the object and whether it is gone (false: finalizers, or
/// the resource's own deletion, keep it for now).
pub async fn delete(scope: &Scope, name: &str, opts: &DeleteOptions) -> ApiResult<(Value, bool)> {
    let key = scope.key(name);
    let gr = scope.gr();
    let (mut obj, kv) = scope.read(name).await?;
    let pre = &opts.preconditions;
    if let Some(uid) = pre.uid.as_deref() {
        if obj["metadata"]["uid"].as_str() != Some(uid) {
            return Err(ApiError::conflict(
                &gr,
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    obj["metadata"]["uid"].as_str().unwrap_or_default()
                ),
            ));
        }
    }
    if let Some(rv) = pre.resource_version.as_deref() {
        if rv != kv.mod_revision.to_string() {
            return Err(ApiError::conflict(
                &gr,
                name,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    kv.mod_revision
                ),
            ));
        }
    }
    let mut old = obj.clone();
    objects::set_resource_version(&mut old, kv.mod_revision);
    let attrs = scope.attributes(
        Operation::Delete,
        name,
        None,
        Some(old),
        opts.dry_run,
        opts.to_value(),
    );
    let mut attrs = attrs;
    scope
        .state
        .admission
        .admit(&scope.state, &mut attrs)
        .await?;
    scope.state.admission.validate(&scope.state, &attrs).await?;
    if let Some(done) = scope
        .info
        .hooks
        .delete(scope, obj.clone(), kv.mod_revision, opts)
        .await
    {
        return done;
    }
    let deleting = is_deleting(&obj);
    // The garbage collector's finalizers for the propagation asked for (or the default).
    let gc_changed = match super::gc_finalizers::deletion_finalizers(
        scope.state.garbage_collection,
        &scope.info,
        &obj,
        opts,
    ) {
        Some(f) => {
            obj["metadata"]["finalizers"] = json!(f);
            true
        }
        None => false,
    };
    let has_finalizers = obj["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|a| !a.is_empty());
    if has_finalizers {
        if deleting && !gc_changed {
            return Ok((obj, false));
        }
        if !deleting {
            obj["metadata"]["deletionTimestamp"] =
                json!(objects::timestamp(scope.state.clock.now()));
            obj["metadata"]["deletionGracePeriodSeconds"] = json!(0);
            // kube's markAsDeleting: generation moves when deletion starts.
            if let Some(g) = obj["metadata"]["generation"].as_i64().filter(|g| *g > 0) {
                obj["metadata"]["generation"] = json!(g + 1);
            }
        }
        if opts.dry_run {
            return Ok((obj, false));
        }
        let new = scope
            .state
            .store
            .update(&key, to_stored(&obj)?, Some(kv.mod_revision))
            .await
            .map_err(|e| status::from_store(e, &gr, name))?;
        objects::set_resource_version(&mut obj, new.mod_revision);
        after_write(scope, new.mod_revision, Written::Released).await;
        let gone = scope.info.hooks.gone_after_marking(scope).await
            && matches!(
                scope.state.store.get(&key, None).await,
                Err(StoreError::NotFound(_))
            );
        return Ok((obj, gone));
    }
    if opts.dry_run {
        return Ok((obj, true));
    }
    let (_, rev) = scope
        .state
        .store
        .delete(&key, Some(kv.mod_revision))
        .await
        .map_err(|e| status::from_store(e, &gr, name))?;
    after_write(scope, rev, Written::Released).await;
    Ok((obj, true))
}

/// Write an object marked for deletion by a resource's own delete (the namespace REST): CAS on
/// `rev`, nothing on a dry run.
pub async fn write_marked(
    scope: &Scope,
    mut obj: Value,
    rev: i64,
    dry_run: bool,
) -> ApiResult<Value> {
    if dry_run {
        return Ok(obj);
    }
    let name = name_of(&obj).to_string();
    let new = scope
        .state
        .store
        .update(&scope.key(&name), to_stored(&obj)?, Some(rev))
        .await
        .map_err(|e| status::from_store(e, &scope.gr(), &name))?;
    objects::set_resource_version(&mut obj, new.mod_revision);
    after_write(scope, new.mod_revision, Written::Updated).await;
    Ok(obj)
}
