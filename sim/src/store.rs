//! One cluster's objects, with the rules a real API server keeps:
//! resourceVersion on every write, generation on spec changes, uid and
//! creationTimestamp set once, finalizers, owner-reference cascades, and an
//! event history that watches resume from.

use crate::resources::{GroupResource, ResourceType, builtin_types, types_from_crd};
use crate::status::{ApiError, Cause};
use crate::validation::{NameRule, name_causes};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use tokio::sync::broadcast;

/// How many past events a watch can resume from; older resourceVersions get 410 Expired.
const HISTORY: usize = 2048;
/// Buffer of the live event channel; a watcher that falls further behind is closed.
const CHANNEL: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// A change to one object, as watches and controllers see it.
#[derive(Debug, Clone)]
pub struct WatchEvent {
    pub rv: u64,
    pub kind: EventType,
    pub gr: GroupResource,
    /// Empty for cluster-scoped objects.
    pub namespace: String,
    pub object: Arc<Value>,
    /// For MODIFIED: the object before the change (watches with selectors
    /// turn a change into or out of the selection into ADDED / DELETED).
    pub previous: Option<Arc<Value>>,
}

/// Which parts of an incoming object a write may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StatusPolicy {
    /// Everything (in-process callers, controllers).
    #[default]
    All,
    /// The main resource of a type with a status subresource: status is kept (dropped on create).
    KeepStatus,
    /// The status subresource: only status changes.
    StatusOnly,
}

#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    pub dry_run: bool,
    pub status: StatusPolicy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Propagation {
    #[default]
    Background,
    Foreground,
    Orphan,
}

#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    pub dry_run: bool,
    pub propagation: Propagation,
    pub precondition_uid: Option<String>,
    pub precondition_rv: Option<String>,
    /// Pods only: how long the kubelet has to stop the containers.
    pub grace: Grace,
}

/// The grace period of a pod's deletion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Grace {
    /// Removed at once (in-process callers, controllers; a forced deletion).
    #[default]
    Now,
    /// As the API server: the pod's `terminationGracePeriodSeconds` (30 when unset).
    PodDefault,
    /// `gracePeriodSeconds` (0: at once).
    Seconds(i64),
}

/// What a DELETE did.
#[derive(Debug, Clone)]
pub enum Deleted {
    /// The object is gone (its last state).
    Gone(Value),
    /// Finalizers hold it: deletionTimestamp is set (its new state).
    Finalizing(Value),
}

type ObjKey = (String, String);

/// Past events (after the requested resourceVersion) and the live receiver.
pub type Subscription = (Vec<Arc<WatchEvent>>, broadcast::Receiver<Arc<WatchEvent>>);

struct State {
    rv: u64,
    types: Vec<ResourceType>,
    objects: HashMap<GroupResource, BTreeMap<ObjKey, Arc<Value>>>,
    history: VecDeque<Arc<WatchEvent>>,
    logs: HashMap<ObjKey, String>,
    /// How often each Deployment's `spec.replicas` changed ("ns/name").
    scales: BTreeMap<String, u64>,
}

struct Shared {
    cluster: String,
    state: RwLock<State>,
    events: broadcast::Sender<Arc<WatchEvent>>,
    admission: RwLock<Option<Arc<dyn Admission>>>,
}

/// A mutating admission hook (like a webhook): called on every create, HTTP
/// and in-process alike, before the object is stored and without the store's
/// lock held, so it may read this and other stores.
pub trait Admission: Send + Sync + 'static {
    /// May change `obj`; an error refuses the create.
    fn admit_create(&self, rt: &ResourceType, obj: &mut Value) -> Result<(), ApiError>;
}

/// A cluster's object store; cheap to clone (shared).
#[derive(Clone)]
pub struct Store {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("cluster", &self.shared.cluster)
            .finish()
    }
}

impl Store {
    /// An empty store serving the built-in types.
    pub fn new(cluster: &str) -> Self {
        let (events, _) = broadcast::channel(CHANNEL);
        Store {
            shared: Arc::new(Shared {
                cluster: cluster.to_string(),
                state: RwLock::new(State {
                    rv: 1,
                    types: builtin_types(),
                    objects: HashMap::new(),
                    history: VecDeque::new(),
                    logs: HashMap::new(),
                    scales: BTreeMap::new(),
                }),
                events,
                admission: RwLock::new(None),
            }),
        }
    }

    pub fn cluster_name(&self) -> &str {
        &self.shared.cluster
    }

    /// Installs (or with `None` removes) the create-time admission hook.
    pub fn set_admission(&self, hook: Option<Arc<dyn Admission>>) {
        *self
            .shared
            .admission
            .write()
            .unwrap_or_else(|e| e.into_inner()) = hook;
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        // A panic while holding the lock leaves consistent data (every write is
        // applied at once at the end), so poisoning is ignored.
        self.shared.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.shared.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The current resourceVersion (of the last write).
    pub fn resource_version(&self) -> u64 {
        self.read().rv
    }

    // ---- types ----

    /// Every served group/version/resource.
    pub fn types(&self) -> Vec<ResourceType> {
        self.read().types.clone()
    }

    /// The type served at `group`/`version`/`resource` (plural).
    pub fn resolve(&self, group: &str, version: &str, resource: &str) -> Option<ResourceType> {
        self.read()
            .types
            .iter()
            .find(|t| t.group == group && t.version == version && t.resource == resource)
            .cloned()
    }

    /// The type for an object's `apiVersion` and `kind`.
    pub fn resolve_kind(&self, api_version: &str, kind: &str) -> Option<ResourceType> {
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        self.read()
            .types
            .iter()
            .find(|t| t.group == group && t.version == version && t.kind == kind)
            .cloned()
    }

    // ---- reads ----

    pub fn get(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        self.get_arc(rt, namespace, name).map(|v| (*v).clone())
    }

    /// The stored object without copying it.
    pub fn get_arc(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Arc<Value>, ApiError> {
        let key = obj_key(rt, namespace, name);
        self.read()
            .objects
            .get(&rt.group_resource())
            .and_then(|m| m.get(&key))
            .cloned()
            .ok_or_else(|| ApiError::not_found(&rt.group, &rt.resource, name))
    }

    /// All objects of a type (in one namespace, or all), with the list's resourceVersion.
    pub fn list(&self, rt: &ResourceType, namespace: Option<&str>) -> (Vec<Arc<Value>>, u64) {
        let state = self.read();
        let items = match state.objects.get(&rt.group_resource()) {
            None => Vec::new(),
            Some(m) => match namespace.filter(|_| rt.namespaced) {
                Some(ns) => m
                    .range((ns.to_string(), String::new())..)
                    .take_while(|((n, _), _)| n == ns)
                    .map(|(_, v)| v.clone())
                    .collect(),
                None => m.values().cloned().collect(),
            },
        };
        (items, state.rv)
    }

    /// Objects of every namespaced type in `namespace` (for cascades).
    fn namespace_contents(state: &State, namespace: &str) -> Vec<(GroupResource, String)> {
        let mut out = Vec::new();
        for (gr, m) in &state.objects {
            for ((ns, name), _) in m.range((namespace.to_string(), String::new())..) {
                if ns != namespace {
                    break;
                }
                out.push((gr.clone(), name.clone()));
            }
        }
        out
    }

    // ---- pod logs ----

    pub fn set_log(&self, namespace: &str, pod: &str, log: String) {
        self.write()
            .logs
            .insert((namespace.to_string(), pod.to_string()), log);
    }

    pub fn log(&self, namespace: &str, pod: &str) -> Option<String> {
        self.read()
            .logs
            .get(&(namespace.to_string(), pod.to_string()))
            .cloned()
    }

    // ---- watch ----

    /// Events after `from_rv` still in the history plus a receiver for the
    /// ones to come; 410 Expired when `from_rv` is older than the history.
    pub fn subscribe(&self, from_rv: u64) -> Result<Subscription, ApiError> {
        let state = self.read();
        let rx = self.shared.events.subscribe();
        if let Some(oldest) = state.history.front()
            && from_rv + 1 < oldest.rv
        {
            return Err(ApiError::expired(format!(
                "too old resource version: {from_rv} ({})",
                oldest.rv - 1
            )));
        }
        let backlog = state
            .history
            .iter()
            .filter(|e| e.rv > from_rv)
            .cloned()
            .collect();
        Ok((backlog, rx))
    }

    /// Live events only (controllers).
    pub fn events(&self) -> broadcast::Receiver<Arc<WatchEvent>> {
        self.shared.events.subscribe()
    }

    /// Stores a created (`old` None) or updated object under the next
    /// resourceVersion, registers the kinds a CRD brings, and tells watchers.
    fn commit_locked(
        &self,
        state: &mut State,
        rt: &ResourceType,
        key: ObjKey,
        mut obj: Value,
        new_types: Option<Vec<ResourceType>>,
        old: Option<Arc<Value>>,
    ) -> Arc<Value> {
        state.rv += 1;
        let rv = state.rv;
        metadata_mut(&mut obj).insert("resourceVersion".into(), json!(rv.to_string()));
        if let Some(types) = new_types {
            register_types(state, types);
        }
        count_scale(state, rt, &obj, old.as_deref());
        let stored = Arc::new(obj);
        state
            .objects
            .entry(rt.group_resource())
            .or_default()
            .insert(key, stored.clone());
        let kind = if old.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.emit(state, kind, &rt.group_resource(), stored.clone(), old);
        stored
    }

    /// How many times each Deployment's `spec.replicas` changed, by
    /// `namespace/name`: what tests count as scale operations (an update that
    /// leaves the count as it was is none, as in `kubectl scale` to the same
    /// number).
    pub fn scale_counts(&self) -> BTreeMap<String, u64> {
        self.read().scales.clone()
    }

    fn emit(
        &self,
        state: &mut State,
        kind: EventType,
        gr: &GroupResource,
        object: Arc<Value>,
        previous: Option<Arc<Value>>,
    ) {
        let namespace = meta_str(&object, "namespace")
            .unwrap_or_default()
            .to_string();
        let event = Arc::new(WatchEvent {
            rv: state.rv,
            kind,
            gr: gr.clone(),
            namespace,
            object,
            previous,
        });
        if state.history.len() >= HISTORY {
            state.history.pop_front();
        }
        state.history.push_back(event.clone());
        // No receivers is fine.
        let _ = self.shared.events.send(event);
    }

    // ---- writes ----

    /// Creates `obj` (its namespace, for namespaced types, in metadata).
    pub fn create(
        &self,
        rt: &ResourceType,
        mut obj: Value,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        if !obj.is_object() {
            return Err(ApiError::bad_request("the object must be a JSON object"));
        }
        let hook = self
            .shared
            .admission
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(hook) = hook {
            hook.admit_create(rt, &mut obj)?;
        }
        let mut state = self.write();
        let namespace = self.check_namespace(&state, rt, &obj)?;
        let meta = metadata_mut(&mut obj);
        let name = match meta.get("name").and_then(Value::as_str) {
            Some(n) if !n.is_empty() => n.to_string(),
            _ => match meta.get("generateName").and_then(Value::as_str) {
                Some(prefix) if !prefix.is_empty() => loop {
                    let candidate = format!("{prefix}{}", random_suffix(5));
                    let key = obj_key(rt, namespace.as_deref(), &candidate);
                    let taken = state
                        .objects
                        .get(&rt.group_resource())
                        .is_some_and(|m| m.contains_key(&key));
                    if !taken {
                        break candidate;
                    }
                },
                _ => {
                    return Err(ApiError::invalid(
                        &rt.group,
                        &rt.kind,
                        "",
                        vec![Cause {
                            reason: "FieldValueRequired".into(),
                            message: "Required value: name or generateName is required".into(),
                            field: "metadata.name".into(),
                        }],
                    ));
                }
            },
        };
        let causes = name_causes(&name, name_rule(rt));
        if !causes.is_empty() {
            return Err(ApiError::invalid(&rt.group, &rt.kind, &name, causes));
        }
        let key = obj_key(rt, namespace.as_deref(), &name);
        if state
            .objects
            .get(&rt.group_resource())
            .is_some_and(|m| m.contains_key(&key))
        {
            return Err(ApiError::already_exists(&rt.group, &rt.resource, &name));
        }
        let now = now_rfc3339();
        let meta = metadata_mut(&mut obj);
        meta.insert("name".into(), json!(name));
        if let Some(ns) = &namespace {
            meta.insert("namespace".into(), json!(ns));
        } else {
            meta.remove("namespace");
        }
        meta.insert("uid".into(), json!(new_uid()));
        meta.insert("creationTimestamp".into(), json!(now));
        meta.insert("generation".into(), json!(1));
        meta.remove("deletionTimestamp");
        meta.remove("deletionGracePeriodSeconds");
        meta.remove("resourceVersion");
        let map = obj.as_object_mut().expect("checked above");
        map.insert("apiVersion".into(), json!(rt.api_version()));
        map.insert("kind".into(), json!(rt.kind));
        if opts.status == StatusPolicy::KeepStatus {
            map.remove("status");
        }
        crate::defaults::on_create(rt, &mut obj, &self.shared.cluster, state.rv);
        drop_empty_metadata(&mut obj);
        let new_types = if is_crd(rt) {
            Some(Self::crd_types(&state, &mut obj)?)
        } else {
            None
        };
        if opts.dry_run {
            return Ok(obj);
        }
        let stored = self.commit_locked(&mut state, rt, key, obj, new_types, None);
        Ok((*stored).clone())
    }

    /// Replaces the object named in `obj`'s metadata. A resourceVersion in
    /// `obj` is a precondition (409 Conflict when stale). A write that changes
    /// nothing is not a write: the stored object comes back unchanged.
    pub fn update(
        &self,
        rt: &ResourceType,
        mut obj: Value,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        if !obj.is_object() {
            return Err(ApiError::bad_request("the object must be a JSON object"));
        }
        let mut state = self.write();
        let namespace = if rt.namespaced {
            meta_str(&obj, "namespace").map(str::to_string)
        } else {
            None
        };
        if rt.namespaced && namespace.is_none() {
            return Err(ApiError::bad_request(
                "the namespace of the object is required",
            ));
        }
        let name = meta_str(&obj, "name")
            .filter(|n| !n.is_empty())
            .ok_or_else(|| ApiError::bad_request("metadata.name is required"))?
            .to_string();
        let key = obj_key(rt, namespace.as_deref(), &name);
        let old = state
            .objects
            .get(&rt.group_resource())
            .and_then(|m| m.get(&key))
            .cloned()
            .ok_or_else(|| ApiError::not_found(&rt.group, &rt.resource, &name))?;
        if let Some(rv) = meta_str(&obj, "resourceVersion").filter(|r| !r.is_empty())
            && Some(rv) != meta_str(&old, "resourceVersion")
        {
            return Err(ApiError::conflict(
                &rt.group,
                &rt.resource,
                &name,
                "the object has been modified; please apply your changes to the latest version and try again",
            ));
        }
        if let Some(uid) = meta_str(&obj, "uid").filter(|u| !u.is_empty())
            && Some(uid) != meta_str(&old, "uid")
        {
            return Err(ApiError::conflict(
                &rt.group,
                &rt.resource,
                &name,
                "Precondition failed: UID in precondition does not match the UID of the object",
            ));
        }
        let map = obj.as_object_mut().expect("checked above");
        map.insert("apiVersion".into(), json!(rt.api_version()));
        map.insert("kind".into(), json!(rt.kind));
        match opts.status {
            StatusPolicy::All => {}
            StatusPolicy::KeepStatus => match old.get("status") {
                Some(s) => {
                    map.insert("status".into(), s.clone());
                }
                None => {
                    map.remove("status");
                }
            },
            StatusPolicy::StatusOnly => {
                let status = map.remove("status");
                let mut base = (*old).clone();
                if let Some(b) = base.as_object_mut() {
                    match status {
                        Some(s) => b.insert("status".into(), s),
                        None => b.remove("status"),
                    };
                }
                obj = base;
            }
        }
        // Server-owned metadata is kept from the stored object.
        let old_meta = old.get("metadata").cloned().unwrap_or_default();
        let meta = metadata_mut(&mut obj);
        for field in [
            "uid",
            "creationTimestamp",
            "namespace",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
        ] {
            match old_meta.get(field) {
                Some(v) => meta.insert(field.into(), v.clone()),
                None => meta.remove(field),
            };
        }
        meta.insert("name".into(), json!(name));
        let old_generation = old_meta
            .get("generation")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let generation = if spec_of(&obj) != spec_of(&old) {
            old_generation + 1
        } else {
            old_generation
        };
        metadata_mut(&mut obj).insert("generation".into(), json!(generation));
        metadata_mut(&mut obj).insert(
            "resourceVersion".into(),
            old_meta
                .get("resourceVersion")
                .cloned()
                .unwrap_or(json!("0")),
        );
        crate::defaults::on_update(rt, &mut obj, &old);
        drop_empty_metadata(&mut obj);
        if same_ignoring_times(&obj, &old) {
            return Ok((*old).clone());
        }
        let new_types = if is_crd(rt) {
            Some(Self::crd_types(&state, &mut obj)?)
        } else {
            None
        };
        if opts.dry_run {
            return Ok(obj);
        }
        // Removing the last finalizer of an object being deleted deletes it.
        // (A pod in its grace period without finalizers stays: the kubelet still reports on it.)
        let graceful_pod =
            rt.group.is_empty() && rt.resource == "pods" && finalizers(&old).is_empty();
        let finalizing = obj.pointer("/metadata/deletionTimestamp").is_some() && !graceful_pod;
        if finalizing && finalizers(&obj).is_empty() {
            state.rv += 1;
            metadata_mut(&mut obj).insert("resourceVersion".into(), json!(state.rv.to_string()));
            let last = Arc::new(obj);
            self.remove_locked(
                &mut state,
                rt.group_resource(),
                key,
                Propagation::Background,
                Some(last.clone()),
            );
            return Ok((*last).clone());
        }
        let stored = self.commit_locked(&mut state, rt, key, obj, new_types, Some(old));
        Ok((*stored).clone())
    }

    /// Deletes an object: gone at once, or only marked (deletionTimestamp)
    /// while finalizers remain. Namespaces always go through Terminating.
    pub fn delete(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Deleted, ApiError> {
        let mut state = self.write();
        let key = obj_key(rt, namespace, name);
        let old = state
            .objects
            .get(&rt.group_resource())
            .and_then(|m| m.get(&key))
            .cloned()
            .ok_or_else(|| ApiError::not_found(&rt.group, &rt.resource, name))?;
        if let Some(uid) = &opts.precondition_uid
            && Some(uid.as_str()) != meta_str(&old, "uid")
        {
            return Err(ApiError::conflict(
                &rt.group,
                &rt.resource,
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    meta_str(&old, "uid").unwrap_or("")
                ),
            ));
        }
        if let Some(rv) = &opts.precondition_rv
            && Some(rv.as_str()) != meta_str(&old, "resourceVersion")
        {
            return Err(ApiError::conflict(
                &rt.group,
                &rt.resource,
                name,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    meta_str(&old, "resourceVersion").unwrap_or("")
                ),
            ));
        }
        if let Some(secs) = graceful_pod(rt, &old, opts.grace) {
            // A running pod is only marked: the kubelet stops it, then removes it.
            let current = old
                .pointer("/metadata/deletionGracePeriodSeconds")
                .and_then(Value::as_i64);
            if current.is_some_and(|c| c <= secs) {
                return Ok(Deleted::Finalizing((*old).clone()));
            }
            let mut obj = (*old).clone();
            let at = time::OffsetDateTime::now_utc() + time::Duration::seconds(secs);
            let meta = metadata_mut(&mut obj);
            meta.insert("deletionTimestamp".into(), json!(rfc3339(at)));
            meta.insert("deletionGracePeriodSeconds".into(), json!(secs));
            if opts.dry_run {
                return Ok(Deleted::Finalizing(obj));
            }
            state.rv += 1;
            metadata_mut(&mut obj).insert("resourceVersion".into(), json!(state.rv.to_string()));
            let stored = Arc::new(obj);
            state
                .objects
                .entry(rt.group_resource())
                .or_default()
                .insert(key, stored.clone());
            self.emit(
                &mut state,
                EventType::Modified,
                &rt.group_resource(),
                stored.clone(),
                Some(old),
            );
            return Ok(Deleted::Finalizing((*stored).clone()));
        }
        let is_namespace = rt.group.is_empty() && rt.resource == "namespaces";
        if !finalizers(&old).is_empty() || is_namespace {
            if old.pointer("/metadata/deletionTimestamp").is_some() {
                return Ok(Deleted::Finalizing((*old).clone()));
            }
            let mut obj = (*old).clone();
            let meta = metadata_mut(&mut obj);
            meta.insert("deletionTimestamp".into(), json!(now_rfc3339()));
            meta.insert("deletionGracePeriodSeconds".into(), json!(0));
            if is_namespace {
                obj["status"] = json!({"phase": "Terminating"});
            }
            if opts.dry_run {
                return Ok(Deleted::Finalizing(obj));
            }
            state.rv += 1;
            metadata_mut(&mut obj).insert("resourceVersion".into(), json!(state.rv.to_string()));
            let stored = Arc::new(obj);
            state
                .objects
                .entry(rt.group_resource())
                .or_default()
                .insert(key, stored.clone());
            self.emit(
                &mut state,
                EventType::Modified,
                &rt.group_resource(),
                stored.clone(),
                Some(old),
            );
            return Ok(Deleted::Finalizing((*stored).clone()));
        }
        if opts.dry_run {
            return Ok(Deleted::Gone((*old).clone()));
        }
        state.rv += 1;
        let mut last = (*old).clone();
        metadata_mut(&mut last).insert("resourceVersion".into(), json!(state.rv.to_string()));
        let last = Arc::new(last);
        self.remove_locked(
            &mut state,
            rt.group_resource(),
            key,
            opts.propagation,
            Some(last.clone()),
        );
        Ok(Deleted::Gone((*last).clone()))
    }

    /// Removes a namespace once it is empty (the namespace controller's last step).
    pub fn finalize_namespace(&self, name: &str) -> Result<bool, ApiError> {
        let mut state = self.write();
        if !Self::namespace_contents(&state, name).is_empty() {
            return Ok(false);
        }
        let gr = GroupResource::new("", "namespaces");
        let key = (String::new(), name.to_string());
        if state.objects.get(&gr).and_then(|m| m.get(&key)).is_none() {
            return Ok(true);
        }
        state.rv += 1;
        self.remove_locked(&mut state, gr, key, Propagation::Orphan, None);
        Ok(true)
    }

    /// Deletes what a terminating namespace holds (objects with finalizers are only marked).
    pub fn purge_namespace(&self, name: &str) {
        let contents = Self::namespace_contents(&self.read(), name);
        for (gr, obj_name) in contents {
            let Some(rt) = self
                .read()
                .types
                .iter()
                .find(|t| t.group_resource() == gr)
                .cloned()
            else {
                continue;
            };
            // Already gone (a cascade got it first) is fine.
            let _ = self.delete(&rt, Some(name), &obj_name, &DeleteOptions::default());
        }
    }

    /// Removes an object (state.rv already advanced), emits DELETED, and
    /// cascades to dependents and, for CRDs, to the custom resources.
    fn remove_locked(
        &self,
        state: &mut State,
        gr: GroupResource,
        key: ObjKey,
        propagation: Propagation,
        last: Option<Arc<Value>>,
    ) {
        let Some(removed) = state.objects.get_mut(&gr).and_then(|m| m.remove(&key)) else {
            return;
        };
        let last = last.unwrap_or_else(|| {
            let mut v = (*removed).clone();
            metadata_mut(&mut v).insert("resourceVersion".into(), json!(state.rv.to_string()));
            Arc::new(v)
        });
        if gr.group.is_empty() && gr.resource == "pods" {
            state.logs.remove(&key);
        }
        self.emit(state, EventType::Deleted, &gr, last.clone(), None);
        if gr.group == "apiextensions.k8s.io" && gr.resource == "customresourcedefinitions" {
            self.remove_crd_locked(state, &last);
        }
        let Some(uid) = meta_str(&last, "uid").map(str::to_string) else {
            return;
        };
        let owner_ns = key.0.clone();
        let mut dependents = Vec::new();
        for (dgr, m) in &state.objects {
            for (dkey, obj) in m.iter() {
                if (owner_ns.is_empty() || dkey.0 == owner_ns) && owned_by(obj, &uid) {
                    dependents.push((dgr.clone(), dkey.clone(), obj.clone()));
                }
            }
        }
        for (dgr, dkey, obj) in dependents {
            state.rv += 1;
            if propagation == Propagation::Orphan {
                // Orphans lose the reference to their gone owner.
                let mut freed = (*obj).clone();
                if let Some(refs) = freed
                    .pointer_mut("/metadata/ownerReferences")
                    .and_then(Value::as_array_mut)
                {
                    refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(uid.as_str()));
                }
                metadata_mut(&mut freed)
                    .insert("resourceVersion".into(), json!(state.rv.to_string()));
                drop_empty_metadata(&mut freed);
                let freed = Arc::new(freed);
                state
                    .objects
                    .entry(dgr.clone())
                    .or_default()
                    .insert(dkey, freed.clone());
                self.emit(state, EventType::Modified, &dgr, freed, Some(obj));
            } else if finalizers(&obj).is_empty() {
                self.remove_locked(state, dgr, dkey, Propagation::Background, None);
            } else if obj.pointer("/metadata/deletionTimestamp").is_none() {
                let mut marked = (*obj).clone();
                let meta = metadata_mut(&mut marked);
                meta.insert("deletionTimestamp".into(), json!(now_rfc3339()));
                meta.insert("resourceVersion".into(), json!(state.rv.to_string()));
                let marked = Arc::new(marked);
                state
                    .objects
                    .entry(dgr.clone())
                    .or_default()
                    .insert(dkey, marked.clone());
                self.emit(state, EventType::Modified, &dgr, marked, Some(obj));
            }
        }
    }

    fn remove_crd_locked(&self, state: &mut State, crd: &Value) {
        let Ok(types) = types_from_crd(crd) else {
            return;
        };
        let Some(first) = types.first() else { return };
        let gr = first.group_resource();
        state
            .types
            .retain(|t| !(t.custom && t.group_resource() == gr));
        if let Some(objects) = state.objects.remove(&gr) {
            for (_, obj) in objects {
                state.rv += 1;
                let mut last = (*obj).clone();
                metadata_mut(&mut last)
                    .insert("resourceVersion".into(), json!(state.rv.to_string()));
                self.emit(state, EventType::Deleted, &gr, Arc::new(last), None);
            }
        }
    }

    /// Validates a CRD object, fills its status, and returns the types it serves.
    fn crd_types(state: &State, crd: &mut Value) -> Result<Vec<ResourceType>, ApiError> {
        let name = meta_str(crd, "name").unwrap_or_default().to_string();
        let invalid = |field: &str, message: String| {
            ApiError::invalid(
                "apiextensions.k8s.io",
                "CustomResourceDefinition",
                &name,
                vec![Cause {
                    reason: "FieldValueInvalid".into(),
                    message,
                    field: field.into(),
                }],
            )
        };
        let types = types_from_crd(crd).map_err(|m| invalid("spec", m))?;
        let first = types.first().ok_or_else(|| {
            invalid(
                "spec.versions",
                "must have at least one served version".into(),
            )
        })?;
        let expected = format!("{}.{}", first.resource, first.group);
        if name != expected {
            return Err(invalid(
                "metadata.name",
                format!("Invalid value: \"{name}\": must be spec.names.plural+\".\"+spec.group"),
            ));
        }
        if let Some(clash) = state
            .types
            .iter()
            .find(|t| t.group == first.group && t.resource == first.resource && !t.custom)
        {
            return Err(invalid(
                "spec.names.plural",
                format!("{} is a built-in resource", clash.resource),
            ));
        }
        let now = now_rfc3339();
        let names = crd.pointer("/spec/names").cloned().unwrap_or_default();
        let stored: Vec<Value> = crd
            .pointer("/spec/versions")
            .and_then(Value::as_array)
            .map(|vs| {
                vs.iter()
                    .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
                    .filter_map(|v| v.get("name").cloned())
                    .collect()
            })
            .unwrap_or_default();
        crd["status"] = json!({
            "acceptedNames": names,
            "conditions": [
                {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
                 "message": "no conflicts found", "lastTransitionTime": now},
                {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
                 "message": "the initial names have been accepted", "lastTransitionTime": now},
            ],
            "storedVersions": stored,
        });
        Ok(types)
    }

    fn check_namespace(
        &self,
        state: &State,
        rt: &ResourceType,
        obj: &Value,
    ) -> Result<Option<String>, ApiError> {
        if !rt.namespaced {
            return Ok(None);
        }
        let ns = meta_str(obj, "namespace")
            .filter(|n| !n.is_empty())
            .ok_or_else(|| ApiError::bad_request("the namespace of the object is required"))?;
        let ns_obj = state
            .objects
            .get(&GroupResource::new("", "namespaces"))
            .and_then(|m| m.get(&(String::new(), ns.to_string())))
            .ok_or_else(|| ApiError::not_found("", "namespaces", ns))?;
        if ns_obj.pointer("/metadata/deletionTimestamp").is_some() {
            return Err(ApiError::new(
                403,
                "Forbidden",
                format!(
                    "{} \"{}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                    rt.resource,
                    meta_str(obj, "name").unwrap_or_default()
                ),
            ));
        }
        Ok(Some(ns.to_string()))
    }
}

fn register_types(state: &mut State, types: Vec<ResourceType>) {
    if let Some(first) = types.first() {
        let gr = first.group_resource();
        state
            .types
            .retain(|t| !(t.custom && t.group_resource() == gr));
    }
    state.types.extend(types);
}

fn is_crd(rt: &ResourceType) -> bool {
    rt.group == "apiextensions.k8s.io" && rt.resource == "customresourcedefinitions"
}

fn name_rule(rt: &ResourceType) -> NameRule {
    match (rt.group.as_str(), rt.resource.as_str()) {
        ("", "namespaces") | ("", "services") => NameRule::Label,
        // APIServices are `<version>.<group>`: `v1.` for the core group.
        ("rbac.authorization.k8s.io", _) | ("apiregistration.k8s.io", "apiservices") => {
            NameRule::PathSegment
        }
        _ => NameRule::Subdomain,
    }
}

fn obj_key(rt: &ResourceType, namespace: Option<&str>, name: &str) -> ObjKey {
    let ns = if rt.namespaced {
        namespace.unwrap_or_default()
    } else {
        ""
    };
    (ns.to_string(), name.to_string())
}

/// `metadata.<field>` as a string.
pub fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(field)?.as_str()
}

/// The metadata map, created when missing.
pub fn metadata_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    obj["metadata"]
        .as_object_mut()
        .expect("just made an object")
}

fn finalizers(obj: &Value) -> Vec<&str> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn owned_by(obj: &Value, uid: &str) -> bool {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|refs| {
            refs.iter()
                .any(|r| r.get("uid").and_then(Value::as_str) == Some(uid))
        })
}

/// Go's `omitempty` never shows empty labels, annotations, finalizers,
/// ownerReferences or managedFields; neither do we.
fn drop_empty_metadata(obj: &mut Value) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.retain(|k, v| {
            let optional = matches!(
                k.as_str(),
                "labels"
                    | "annotations"
                    | "finalizers"
                    | "ownerReferences"
                    | "managedFields"
                    | "generateName"
            );
            !(optional
                && (v.is_null()
                    || v.as_object().is_some_and(|m| m.is_empty())
                    || v.as_array().is_some_and(|a| a.is_empty())
                    || v.as_str().is_some_and(str::is_empty)))
        });
    }
}

/// Everything but metadata and status: what generation tracks.
fn spec_of(obj: &Value) -> Vec<(&String, &Value)> {
    obj.as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| {
                    !matches!(k.as_str(), "metadata" | "status" | "apiVersion" | "kind")
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Equal apart from managedFields timestamps: such a write is a no-op.
fn same_ignoring_times(a: &Value, b: &Value) -> bool {
    fn strip(v: &Value) -> Value {
        let mut v = v.clone();
        if let Some(fields) = v
            .pointer_mut("/metadata/managedFields")
            .and_then(Value::as_array_mut)
        {
            for f in fields {
                if let Some(m) = f.as_object_mut() {
                    m.remove("time");
                }
            }
        }
        v
    }
    a == b || strip(a) == strip(b)
}

/// RFC 3339 UTC timestamp with second precision, as Kubernetes writes them.
pub fn now_rfc3339() -> String {
    rfc3339(time::OffsetDateTime::now_utc())
}

/// The grace period (seconds) a pod's deletion gets, or `None` when it goes at once: as the
/// API server, a pod not on a node or already ended, and a zero period, need no kubelet.
fn graceful_pod(rt: &ResourceType, pod: &Value, grace: Grace) -> Option<i64> {
    if !(rt.group.is_empty() && rt.resource == "pods") {
        return None;
    }
    let secs = match grace {
        Grace::Now => return None,
        Grace::Seconds(s) => s,
        Grace::PodDefault => pod
            .pointer("/spec/terminationGracePeriodSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(30),
    };
    let ended = matches!(
        pod.pointer("/status/phase").and_then(Value::as_str),
        Some("Succeeded" | "Failed")
    );
    (secs > 0 && !ended && pod.pointer("/spec/nodeName").is_some()).then_some(secs)
}

fn rfc3339(now: time::OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    )
}

/// A random version-4 UUID.
pub fn new_uid() -> String {
    let mut b: [u8; 16] = std::array::from_fn(|_| fastrand::u8(..));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Kubernetes' suffix alphabet (no vowels, no confusable digits).
pub fn random_suffix(len: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..len)
        .map(|_| ALPHABET[fastrand::usize(..ALPHABET.len())] as char)
        .collect()
}

/// Counts a change of a Deployment's `spec.replicas` (see `Store::scale_counts`).
fn count_scale(state: &mut State, rt: &ResourceType, new: &Value, old: Option<&Value>) {
    if rt.kind != "Deployment" {
        return;
    }
    let Some(old) = old else { return };
    let replicas = |o: &Value| o.pointer("/spec/replicas").and_then(Value::as_i64);
    if replicas(old) != replicas(new) {
        let name = format!(
            "{}/{}",
            meta_str(new, "namespace").unwrap_or_default(),
            meta_str(new, "name").unwrap_or_default()
        );
        *state.scales.entry(name).or_default() += 1;
    }
}
