//! The Kubernetes backend on a simulated cluster: its log replays to the same records, is chunked and compacted,
//! keeps secrets in Secrets only; its Lease admits one holder, and a holder that lost it can write nothing.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::Api;
use kube::api::{ListParams, PostParams};

use super::*;

struct World {
    rt: tokio::runtime::Runtime,
    sim: meshsim::Sim,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let sim = rt
            .block_on(meshsim::Sim::start(meshsim::SimConfig {
                clusters: 1,
                ..Default::default()
            }))
            .unwrap();
        World { rt, sim }
    })
}

fn client() -> kube::Client {
    let w = world();
    w.rt.block_on(async {
        let kc = kube::config::Kubeconfig::read_from(w.sim.kubeconfig_path()).unwrap();
        let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .unwrap();
        kube::Client::try_from(config).unwrap()
    })
}

/// A new namespace on the simulated cluster, as a store location.
pub(super) fn fresh_location() -> KubeLocation {
    static N: AtomicUsize = AtomicUsize::new(0);
    let ns = format!(
        "state-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    );
    let w = world();
    let client = client();
    let namespace: Namespace = serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap();
    w.rt.block_on(async {
        Api::<Namespace>::all(client)
            .create(&PostParams::default(), &namespace)
            .await
            .unwrap();
    });
    KubeLocation {
        context: Some(w.sim.clusters()[0].context()),
        namespace: ns,
    }
}

pub(super) fn fresh_store() -> (KubeLocation, KubeStore) {
    let location = fresh_location();
    let store = reopen(&location);
    (location, store)
}

pub(super) fn reopen(location: &KubeLocation) -> KubeStore {
    KubeStore::open(location, Some(world().sim.kubeconfig_path())).unwrap()
}

/// Every record of a store, as comparable text (snapshots with their payloads).
pub(super) fn dump(s: &dyn Store) -> String {
    let mut out = String::new();
    for run in s.runs().unwrap() {
        out += &format!("{run:?}\nplan {}\n", s.plan(run.id).unwrap());
        for (step, st) in s.step_states(run.id).unwrap() {
            out += &format!(
                "step {step} {st:?} left {:?}\n",
                s.left_objects(run.id, &step).unwrap()
            );
        }
        for e in s.events(run.id, 0).unwrap() {
            out += &format!("{e:?} {:?}\n", e.details);
        }
        for snap in s.snapshots(run.id, &SnapshotFilter::default()).unwrap() {
            out += &format!("{snap:?} {:?}\n", snap.object);
        }
    }
    out
}

fn secrets(location: &KubeLocation) -> Vec<Secret> {
    let api: Api<Secret> = Api::namespaced(client(), &location.namespace);
    world()
        .rt
        .block_on(api.list(&ListParams::default()))
        .unwrap()
        .items
}

#[test]
fn a_second_opener_is_refused_naming_the_holder_until_the_first_closes() {
    let (location, first) = fresh_store();
    let run = first.begin_run(new_run(&["a"])).unwrap().id;
    let err = KubeStore::open(&location, Some(world().sim.kubeconfig_path())).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, StateError::LeaseHeld { .. }), "{err}");
    assert!(
        text.contains(&format!("pid {}", std::process::id())) && text.contains(&first.holder().id),
        "{text}"
    );
    // Status-like readers do not need the Lease, and see who holds it.
    let (reader, holder) =
        KubeStore::open_read_only(&location, Some(world().sim.kubeconfig_path())).unwrap();
    assert_eq!(reader.run(run).unwrap().outcome, Outcome::Running);
    assert_eq!(holder.map(|h| h.id()), Some(first.holder().id.clone()));
    assert!(
        reader.finish_run(run, Outcome::Failed).is_err(),
        "read-only"
    );
    drop(first);
    let second = reopen(&location);
    assert_eq!(second.run(run).unwrap().outcome, Outcome::Running);
}

#[test]
fn a_holder_that_lost_its_lease_writes_nothing() {
    let location = fresh_location();
    let kubeconfig = world().sim.kubeconfig_path();
    let stale = KubeStore::open_with_lease(&location, Some(kubeconfig), 2).unwrap();
    let run = stale.begin_run(new_run(&["a", "b"])).unwrap().id;
    // Another holder clears the Lease by force (as `migrate unlock --force` does) and takes it.
    force_unlock_kube(&location, Some(kubeconfig), &stale.holder().id).unwrap();
    let taker = reopen(&location);
    // The stale holder's heartbeat may not have noticed yet: its next write is refused all the same, by the
    // Lease or by the log (the taker's fence took the entry number it would write).
    let err = stale
        .set_step_status(run, "a", StepStatus::Running, None)
        .unwrap_err();
    assert!(matches!(err, StateError::LostLease { .. }), "{err}");
    assert!(
        err.to_string().contains(&taker.holder().id) || err.to_string().contains("lost"),
        "{err}"
    );
    assert!(
        stale
            .set_step_status(run, "b", StepStatus::Running, None)
            .is_err()
    );
    drop(stale);
    // Nothing of the refused writes reached the log; the taker goes on.
    assert_eq!(
        taker.step_state(run, "a").unwrap().status,
        StepStatus::Pending
    );
    taker
        .set_step_status(run, "a", StepStatus::Running, None)
        .unwrap();
}

#[test]
fn large_records_are_chunked_and_old_entries_compacted() {
    let (location, store) = fresh_store();
    let steps: Vec<String> = (0..40).map(|i| format!("s{i}")).collect();
    let refs: Vec<&str> = steps.iter().map(String::as_str).collect();
    let run = store.begin_run(new_run(&refs)).unwrap().id;
    // A snapshot of 1.5 MB: three parts.
    let big = "k".repeat(1_500_000);
    store
        .begin_step(
            run,
            "s0",
            StepStatus::Running,
            vec![(key("c1", "big"), Some(secret(&big)))],
        )
        .unwrap();
    for step in &steps {
        store
            .set_step_status(run, step, StepStatus::Running, None)
            .ok();
        store
            .set_step_status(run, step, StepStatus::Done, None)
            .unwrap();
    }
    let before = dump(&store);
    drop(store);
    let objects = secrets(&location);
    let entries = objects
        .iter()
        .filter(|s| s.metadata.labels.as_ref().unwrap()["migrate.meshops.dev/role"] == "entry")
        .count();
    assert!(
        entries < 80,
        "compacted: {entries} entries left for 82 writes"
    );
    for s in &objects {
        let size: usize = s.data.as_ref().unwrap().values().map(|b| b.0.len()).sum();
        assert!(
            size <= 512 * 1024,
            "{:?} holds {size} bytes",
            s.metadata.name
        );
        assert_eq!(s.type_.as_deref(), Some("migrate.meshops.dev/state"));
        assert_eq!(
            s.metadata.labels.as_ref().unwrap()["app.kubernetes.io/managed-by"],
            "migrate"
        );
    }
    let reopened = reopen(&location);
    assert_eq!(dump(&reopened), before);
    let snap = reopened
        .snapshot(run, "s0", &key("c1", "big"))
        .unwrap()
        .unwrap();
    assert_eq!(snap.object, Some(secret(&big)));
    // No ConfigMap holds anything of it (the namespace's own CA bundle is all there is).
    let cms: Api<ConfigMap> = Api::namespaced(client(), &location.namespace);
    let cms = world()
        .rt
        .block_on(cms.list(&ListParams::default()))
        .unwrap();
    let text = serde_json::to_string(&cms.items).unwrap();
    assert!(
        !text.contains("kkkkkkkk") && !text.contains("migrate"),
        "{text}"
    );
}

#[test]
fn a_damaged_log_is_refused() {
    let (location, store) = fresh_store();
    let run = store.begin_run(new_run(&["a"])).unwrap().id;
    store
        .set_step_status(run, "a", StepStatus::Running, None)
        .unwrap();
    drop(store);
    // Entries: 1 the store's first checkpoint, 2 the run, 3 the step. Remove one in the middle: a gap (the last
    // one missing would read as a crash before it was written).
    let api: Api<Secret> = Api::namespaced(client(), &location.namespace);
    world()
        .rt
        .block_on(api.delete("migrate-state-000000000002", &Default::default()))
        .unwrap();
    let err = KubeStore::open(&location, Some(world().sim.kubeconfig_path())).unwrap_err();
    assert!(matches!(err, StateError::LogDamaged { .. }), "{err}");
    assert!(err.to_string().contains("entry 2 is missing"), "{err}");
}

#[test]
fn a_ten_thousand_step_run_reopens_quickly() {
    let (location, store) = fresh_store();
    let steps: Vec<String> = (0..10_000).map(|i| format!("phase/step-{i:05}")).collect();
    let refs: Vec<&str> = steps.iter().map(String::as_str).collect();
    let run = store.begin_run(new_run(&refs)).unwrap().id;
    for step in steps.iter().take(50) {
        store
            .set_step_status(run, step, StepStatus::Running, None)
            .unwrap();
        store
            .set_step_status(run, step, StepStatus::Done, None)
            .unwrap();
    }
    drop(store);
    let started = std::time::Instant::now();
    let reopened = reopen(&location);
    let states = reopened.step_states(run).unwrap();
    let took = started.elapsed();
    eprintln!("kubernetes store: reopened a 10,000-step run in {took:?}");
    assert_eq!(states.len(), 10_000);
    assert_eq!(
        states
            .values()
            .filter(|s| s.status == StepStatus::Done)
            .count(),
        50
    );
    // Generous for a debug build on a loaded machine; the release figure is far lower.
    assert!(took < std::time::Duration::from_secs(5), "{took:?}");
}

#[test]
fn progress_notes_ride_with_the_next_write_and_the_close() {
    let (location, store) = fresh_store();
    let kubeconfig = Some(world().sim.kubeconfig_path());
    let run = store.begin_run(new_run(&["a"])).unwrap().id;
    let note = || NewEvent::new(EventKind::Action, Some("a"), "applied x");
    assert_eq!(store.record_progress(run, note()).unwrap(), 2);
    assert_eq!(store.record_progress(run, note()).unwrap(), 3);
    let durable = |n: usize| {
        let (reader, _) = KubeStore::open_read_only(&location, kubeconfig).unwrap();
        assert_eq!(reader.events(run, 0).unwrap().len(), n);
    };
    durable(1);
    store
        .set_step_status(run, "a", StepStatus::Running, None)
        .unwrap();
    durable(4);
    store.record_progress(run, note()).unwrap();
    drop(store);
    durable(5);
}
