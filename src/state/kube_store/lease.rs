//! The store's lock: a `coordination.k8s.io/v1` Lease `migrate-state` in the store's namespace, taken when the
//! store opens, renewed by a heartbeat thread, released when it closes.
//!
//! Holding it is judged by this process's monotonic clock: a write is allowed only while the last successful
//! renewal (timed from when its request was sent) is younger than the Lease's duration less a margin. A process
//! paused past that (SIGSTOP, a laptop lid) finds out before its next write, whatever the wall clock says. Taking a
//! Lease from another holder is decided by its `renewTime` against this host's wall clock (as client-go's leader
//! election does on a fresh start): clocks skewed by more than the margin could let a taker in early, which is why
//! the log's create-only names fence the writes too (see `log`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff;
use kube::Api;
use kube::api::PostParams;

use super::super::error::{HeldBy, StateError};
use super::super::holder::Holder;
use super::retry::retrying;
use super::worker::Worker;

/// Annotation holding the JSON holder record (id, pid, host, command, since).
const HOLDER_ANNOTATION: &str = "migrate.meshops.dev/holder";

/// How long a Lease holds without renewal unless `MIGRATE_STATE_LEASE_SECONDS` says otherwise.
pub const DEFAULT_DURATION_SECONDS: i32 = 30;

/// The environment variable that sets the Lease's duration, in seconds (at least 2).
pub const DURATION_ENV: &str = "MIGRATE_STATE_LEASE_SECONDS";

/// The Lease's duration for this process.
pub fn duration_seconds() -> i32 {
    std::env::var(DURATION_ENV)
        .ok()
        .and_then(|v| v.parse::<i32>().ok())
        .filter(|s| *s >= 2)
        .unwrap_or(DEFAULT_DURATION_SECONDS)
}

/// The Lease as read: who holds it and until when.
#[derive(Debug, Clone)]
pub struct LeaseHolder {
    /// `holderIdentity`: `user@host pid N id ID`.
    pub identity: String,
    /// The holder record, when the Lease carries one.
    pub holder: Option<Holder>,
    /// `renewTime`, RFC 3339.
    pub renewed: Option<jiff::Timestamp>,
    pub duration: i32,
}

impl LeaseHolder {
    fn of(lease: &Lease) -> Option<LeaseHolder> {
        let spec = lease.spec.as_ref()?;
        let identity = spec.holder_identity.clone().filter(|h| !h.is_empty())?;
        let holder = lease
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(HOLDER_ANNOTATION))
            .and_then(|h| serde_json::from_str(h).ok());
        Some(LeaseHolder {
            identity,
            holder,
            renewed: spec.renew_time.as_ref().map(|t| t.0),
            duration: spec
                .lease_duration_seconds
                .unwrap_or(DEFAULT_DURATION_SECONDS),
        })
    }

    /// Whether the holder let it lapse, by this host's clock.
    fn expired(&self, now: jiff::Timestamp) -> bool {
        match self.renewed {
            None => true,
            Some(r) => {
                let age = now.duration_since(r);
                age > jiff::SignedDuration::from_secs(i64::from(self.duration))
            }
        }
    }

    /// `LeaseHeld`: the store at `location` is in use by this holder of Lease `name`.
    pub fn refusal(&self, location: &str, name: &str) -> StateError {
        StateError::LeaseHeld {
            location: location.to_string(),
            by: Box::new(HeldBy {
                lease: name.to_string(),
                id: self.id(),
                holder: self.identity.clone(),
                renewed: self
                    .renewed
                    .map_or_else(|| "never".into(), |r| r.to_string()),
                duration: self.duration,
            }),
        }
    }

    /// The holder id `migrate unlock --force` takes.
    pub fn id(&self) -> String {
        self.holder
            .as_ref()
            .map(|h| h.id.clone())
            .unwrap_or_else(|| self.identity.clone())
    }
}

/// This process's hold on the Lease. Dropping it stops the heartbeat; `release` gives the Lease up.
pub struct HeldLease {
    location: String,
    name: String,
    api: Api<Lease>,
    identity: String,
    duration: Duration,
    state: Arc<HoldState>,
    stop: Option<std::sync::mpsc::Sender<()>>,
    heartbeat: Option<std::thread::JoinHandle<()>>,
}

struct HoldState {
    /// When the request of the last successful renewal was sent.
    renewed: Mutex<Instant>,
    lost: AtomicBool,
    /// Who took it, when known.
    taker: Mutex<Option<String>>,
}

fn kube_err(location: &str, op: &'static str) -> impl FnOnce(kube::Error) -> StateError {
    let location = location.to_string();
    move |e| StateError::Kube {
        location,
        op,
        source: Box::new(e),
    }
}

fn gone(location: &str) -> StateError {
    StateError::KubeConfig {
        location: location.to_string(),
        detail: "the store's runtime stopped".into(),
    }
}

fn identity_of(me: &Holder) -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    format!("{user}@{} pid {} id {}", me.host, me.pid, me.id)
}

impl HeldLease {
    /// Takes the Lease `name` unless someone else holds it (`LeaseHeld` names them), and starts renewing it.
    pub fn acquire(
        worker: &Arc<Worker>,
        api: Api<Lease>,
        location: &str,
        name: &str,
        me: Holder,
        seconds: i32,
    ) -> Result<HeldLease, StateError> {
        let identity = identity_of(&me);
        let record = serde_json::to_string(&me).unwrap_or_default();
        let sent = Instant::now();
        let took = {
            let (api, name, identity, loc) = (
                api.clone(),
                name.to_string(),
                identity.clone(),
                location.to_string(),
            );
            worker
                .run(async move { take(&api, &loc, &name, &identity, &record, seconds).await })
                .ok_or_else(|| gone(location))?
        };
        if let Err(held) = took? {
            return Err(held.refusal(location, name));
        }
        let state = Arc::new(HoldState {
            renewed: Mutex::new(sent),
            lost: AtomicBool::new(false),
            taker: Mutex::new(None),
        });
        let duration = Duration::from_secs(u64::try_from(seconds).unwrap_or(30));
        let (stop, stopped) = std::sync::mpsc::channel();
        let heartbeat = {
            let (worker, api, name, identity, state) = (
                worker.clone(),
                api.clone(),
                name.to_string(),
                identity.clone(),
                state.clone(),
            );
            std::thread::Builder::new()
                .name("migrate-lease".into())
                .spawn(move || {
                    heartbeat(&worker, &api, &name, &identity, &state, duration, &stopped)
                })
                .map_err(|e| StateError::KubeConfig {
                    location: location.to_string(),
                    detail: format!("cannot start the Lease's heartbeat: {e}"),
                })?
        };
        Ok(HeldLease {
            location: location.to_string(),
            name: name.to_string(),
            api,
            identity,
            duration,
            state,
            stop: Some(stop),
            heartbeat: Some(heartbeat),
        })
    }

    /// Ok while this process may write: the Lease is not known lost and its last renewal is recent enough. A
    /// renewal overdue (a late heartbeat, or this process was paused) is tried once here: it succeeds only if
    /// the Lease is still this holder's and unchanged since read (resourceVersion), else the Lease is lost.
    pub fn check(&self, worker: &Worker) -> Result<(), StateError> {
        if self.state.lost.load(Ordering::SeqCst) {
            return Err(self.lost(None));
        }
        if self.fresh() {
            return Ok(());
        }
        let sent = Instant::now();
        let (api, name, identity) = (self.api.clone(), self.name.clone(), self.identity.clone());
        match worker.run(async move { renew(&api, &name, &identity).await }) {
            Some(Ok(Renewal::Renewed)) => {
                *self.state.renewed.lock().unwrap_or_else(|e| e.into_inner()) = sent;
                Ok(())
            }
            Some(Ok(Renewal::TakenBy(who))) => Err(self.lost(who)),
            // Not known lost, but not known held either: refuse this write, let a later one try again.
            Some(Err(e)) => {
                tracing::warn!("renewing the state store's Lease {}: {e}", self.name);
                Err(StateError::LostLease {
                    location: self.location.clone(),
                    lease: self.name.clone(),
                    holder: None,
                })
            }
            None => Err(self.lost(None)),
        }
    }

    /// Whether the last renewal is younger than the duration less the margin, by the monotonic clock.
    fn fresh(&self) -> bool {
        let since = self
            .state
            .renewed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed();
        since + margin(self.duration) < self.duration
    }

    /// `LostLease`, naming the taker when known (or `taker`).
    pub fn lost(&self, taker: Option<String>) -> StateError {
        self.state.lost.store(true, Ordering::SeqCst);
        let known = self
            .state
            .taker
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        StateError::LostLease {
            location: self.location.clone(),
            lease: self.name.clone(),
            holder: taker.or(known),
        }
    }

    /// Who holds the Lease now (after a write was refused), read from the server.
    pub fn current_holder(&self, worker: &Worker) -> Option<String> {
        let (api, name) = (self.api.clone(), self.name.clone());
        let lease = worker
            .run(async move { retrying("read the Lease", || api.get_opt(&name)).await })?
            .ok()??;
        LeaseHolder::of(&lease)
            .map(|h| h.identity)
            .filter(|h| *h != self.identity)
    }

    /// Stops the heartbeat and gives the Lease up if it is still ours (holderIdentity cleared, as client-go does).
    pub fn release(mut self, worker: &Worker) {
        self.stop_heartbeat();
        if self.state.lost.load(Ordering::SeqCst) {
            return;
        }
        let (api, name, identity) = (self.api.clone(), self.name.clone(), self.identity.clone());
        let released = worker.run(async move {
            let Some(mut lease) = retrying("read the Lease", || api.get_opt(&name)).await? else {
                return Ok(());
            };
            let spec = lease.spec.get_or_insert_with(Default::default);
            if spec.holder_identity.as_deref() != Some(identity.as_str()) {
                return Ok(());
            }
            spec.holder_identity = None;
            spec.renew_time = Some(MicroTime(jiff::Timestamp::now()));
            let pp = PostParams::default();
            retrying("release the Lease", || api.replace(&name, &pp, &lease))
                .await
                .map(|_| ())
        });
        if let Some(Err(e)) = released {
            tracing::warn!("releasing Lease {}: {e}", self.name);
        }
    }

    fn stop_heartbeat(&mut self) {
        self.stop.take();
        if let Some(h) = self.heartbeat.take() {
            let _ = h.join();
        }
    }
}

impl Drop for HeldLease {
    fn drop(&mut self) {
        self.stop_heartbeat();
    }
}

/// What is left of the duration before a write is refused: a quarter, at least one second.
fn margin(duration: Duration) -> Duration {
    (duration / 4).max(Duration::from_secs(1)).min(duration / 2)
}

/// Creates or takes over the Lease; `Ok(Err(holder))` when someone else holds it.
async fn take(
    api: &Api<Lease>,
    location: &str,
    name: &str,
    identity: &str,
    record: &str,
    seconds: i32,
) -> Result<Result<(), LeaseHolder>, StateError> {
    for _ in 0..3 {
        let now = jiff::Timestamp::now();
        let existing = retrying("read the Lease", || api.get_opt(name))
            .await
            .map_err(kube_err(location, "read the Lease"))?;
        let (mut lease, transitions) = match existing {
            None => (
                Lease {
                    metadata: ObjectMeta {
                        name: Some(name.to_string()),
                        labels: Some(
                            [(
                                "app.kubernetes.io/managed-by".to_string(),
                                "migrate".to_string(),
                            )]
                            .into(),
                        ),
                        ..Default::default()
                    },
                    spec: None,
                },
                0,
            ),
            Some(lease) => {
                if let Some(held) = LeaseHolder::of(&lease) {
                    // Ours: an earlier attempt of this take landed and its answer was lost (a retried request).
                    if held.identity == identity {
                        return Ok(Ok(()));
                    }
                    if !held.expired(now) {
                        return Ok(Err(held));
                    }
                }
                let t = lease
                    .spec
                    .as_ref()
                    .and_then(|s| s.lease_transitions)
                    .unwrap_or(0);
                (lease, t + 1)
            }
        };
        let fresh = lease.metadata.resource_version.is_none();
        lease
            .metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(HOLDER_ANNOTATION.into(), record.to_string());
        lease.spec = Some(LeaseSpec {
            holder_identity: Some(identity.to_string()),
            lease_duration_seconds: Some(seconds),
            acquire_time: Some(MicroTime(now)),
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(transitions),
            ..Default::default()
        });
        let pp = PostParams::default();
        let written = if fresh {
            retrying("create the Lease", || api.create(&pp, &lease)).await
        } else {
            retrying("take the Lease", || api.replace(name, &pp, &lease)).await
        };
        match written {
            Ok(_) => return Ok(Ok(())),
            // Someone else wrote it first (409: created or updated since we read it): read it again.
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            Err(e) => return Err(kube_err(location, "take the Lease")(e)),
        }
    }
    Err(StateError::KubeConfig {
        location: location.to_string(),
        detail: format!("Lease {name} keeps changing under us; try again"),
    })
}

/// Renews the Lease every quarter of its duration until told to stop or it is lost.
fn heartbeat(
    worker: &Worker,
    api: &Api<Lease>,
    name: &str,
    identity: &str,
    state: &HoldState,
    duration: Duration,
    stop: &std::sync::mpsc::Receiver<()>,
) {
    let every = duration / 4;
    loop {
        match stop.recv_timeout(every) {
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            // Told to stop, or the store is gone.
            _ => return,
        }
        let sent = Instant::now();
        let (api2, name2, identity2) = (api.clone(), name.to_string(), identity.to_string());
        let outcome = worker.run(async move { renew(&api2, &name2, &identity2).await });
        match outcome {
            Some(Ok(Renewal::Renewed)) => {
                *state.renewed.lock().unwrap_or_else(|e| e.into_inner()) = sent;
            }
            Some(Ok(Renewal::TakenBy(who))) => {
                *state.taker.lock().unwrap_or_else(|e| e.into_inner()) = who;
                state.lost.store(true, Ordering::SeqCst);
                tracing::warn!("the state store's Lease {name} was taken over; no more writes");
                return;
            }
            Some(Err(e)) => tracing::warn!("renewing the state store's Lease {name}: {e}"),
            None => return,
        }
    }
}

enum Renewal {
    Renewed,
    TakenBy(Option<String>),
}

/// How often a renewal refused with 409 is tried again with the version read after it.
const RENEW_ATTEMPTS: usize = 4;

async fn renew(api: &Api<Lease>, name: &str, identity: &str) -> Result<Renewal, kube::Error> {
    let mut lease = retrying("read the Lease", || api.get_opt(name)).await?;
    for _ in 0..RENEW_ATTEMPTS {
        let Some(mut renewed) = lease else {
            return Ok(Renewal::TakenBy(None));
        };
        let spec = renewed.spec.get_or_insert_with(Default::default);
        if spec.holder_identity.as_deref() != Some(identity) {
            return Ok(Renewal::TakenBy(spec.holder_identity.clone()));
        }
        let read = spec.lease_transitions;
        spec.renew_time = Some(MicroTime(jiff::Timestamp::now()));
        let pp = PostParams::default();
        match retrying("renew the Lease", || api.replace(name, &pp, &renewed)).await {
            Ok(_) => return Ok(Renewal::Renewed),
            // Changed since read: by a racing renewal of ours (the heartbeat and a write's check) or a taker.
            Err(kube::Error::Api(s)) if s.code == 409 => {
                let now = retrying("read the Lease", || api.get_opt(name)).await?;
                match after_conflict(identity, read, now.as_ref()) {
                    AfterConflict::Retry => lease = now,
                    AfterConflict::Lost(by) => return Ok(Renewal::TakenBy(by)),
                }
            }
            Err(e) => return Err(e),
        }
    }
    Err(kube::Error::Service(
        format!("Lease {name} keeps changing under its renewals").into(),
    ))
}

/// What a renewal refused with 409 (the Lease changed since it was read) means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterConflict {
    /// Still this holder's, not taken in between: another renewal of its own won the race; renew the version
    /// read now.
    Retry,
    /// Deleted, or taken (another holder, or `leaseTransitions` moved): the holder now, if any.
    Lost(Option<String>),
}

/// Decides what a 409 on renewing means, from `identity` (the holder renewing), the `leaseTransitions` it read
/// before its write, and the Lease read after the refusal (`now`). Only a change of holder or of transitions is
/// a loss: a `renewTime` or resourceVersion moved by the holder's own other renewal is not.
pub fn after_conflict(identity: &str, read: Option<i32>, now: Option<&Lease>) -> AfterConflict {
    let Some(spec) = now.and_then(|l| l.spec.as_ref()) else {
        return AfterConflict::Lost(None);
    };
    let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
    if holder.as_deref() != Some(identity) || spec.lease_transitions != read {
        return AfterConflict::Lost(holder);
    }
    AfterConflict::Retry
}

/// Who holds the Lease `name`, if anyone does and has not let it lapse.
pub async fn read(api: &Api<Lease>, name: &str) -> Result<Option<LeaseHolder>, kube::Error> {
    let lease = retrying("read the Lease", || api.get_opt(name)).await?;
    let now = jiff::Timestamp::now();
    Ok(lease
        .as_ref()
        .and_then(LeaseHolder::of)
        .filter(|h| !h.expired(now)))
}

/// What `migrate unlock --force ID` found on a store's Lease, and did.
#[derive(Debug, Clone)]
pub enum ForcedRelease {
    /// Held by `ID`: cleared. Whom it named.
    Released(LeaseHolder),
    /// No Lease, or no holder: nothing to clear.
    NotHeld,
    /// Held by another holder id: left alone.
    HeldByOther(LeaseHolder),
    /// Held by `ID` but written again since it was read (renewed, so its holder lives; or re-taken): left alone.
    Changed(LeaseHolder),
}

/// Clears the Lease `name` if its holder id is `id` (`migrate unlock --force ID`). The write is conditional on
/// the version read, so a Lease renewed or taken in between is left as it is.
pub async fn force_release(
    api: &Api<Lease>,
    location: &str,
    name: &str,
    id: &str,
) -> Result<ForcedRelease, StateError> {
    let lease = retrying("read the Lease", || api.get_opt(name))
        .await
        .map_err(kube_err(location, "read the Lease"))?;
    let Some(mut lease) = lease else {
        return Ok(ForcedRelease::NotHeld);
    };
    let Some(held) = LeaseHolder::of(&lease) else {
        return Ok(ForcedRelease::NotHeld);
    };
    if held.id() != id {
        return Ok(ForcedRelease::HeldByOther(held));
    }
    if let Some(spec) = lease.spec.as_mut() {
        spec.holder_identity = None;
    }
    // `replace` sends the resourceVersion read: a 409 means it changed since.
    let pp = PostParams::default();
    match retrying("release the Lease", || api.replace(name, &pp, &lease)).await {
        Ok(_) => Ok(ForcedRelease::Released(held)),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(ForcedRelease::Changed(held)),
        Err(e) => Err(kube_err(location, "release the Lease")(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(holder: Option<&str>, transitions: Option<i32>) -> Lease {
        Lease {
            metadata: ObjectMeta::default(),
            spec: Some(LeaseSpec {
                holder_identity: holder.map(str::to_string),
                lease_transitions: transitions,
                ..Default::default()
            }),
        }
    }

    #[test]
    fn a_conflict_with_a_racing_renewal_of_the_same_holder_is_retried() {
        let now = lease(Some("me"), Some(3));
        assert_eq!(
            after_conflict("me", Some(3), Some(&now)),
            AfterConflict::Retry
        );
        let never_taken = lease(Some("me"), None);
        assert_eq!(
            after_conflict("me", None, Some(&never_taken)),
            AfterConflict::Retry
        );
    }

    #[test]
    fn a_conflict_is_a_loss_only_when_the_holder_or_the_transitions_changed() {
        let taken = lease(Some("other"), Some(4));
        assert_eq!(
            after_conflict("me", Some(3), Some(&taken)),
            AfterConflict::Lost(Some("other".into()))
        );
        // Lapsed, taken by another and given back under the same name: a transition in between.
        let retaken = lease(Some("me"), Some(5));
        assert_eq!(
            after_conflict("me", Some(3), Some(&retaken)),
            AfterConflict::Lost(Some("me".into()))
        );
        let cleared = lease(None, Some(3));
        assert_eq!(
            after_conflict("me", Some(3), Some(&cleared)),
            AfterConflict::Lost(None)
        );
        let emptied = lease(Some(""), Some(3));
        assert_eq!(
            after_conflict("me", Some(3), Some(&emptied)),
            AfterConflict::Lost(None)
        );
        assert_eq!(
            after_conflict("me", Some(3), None),
            AfterConflict::Lost(None)
        );
    }
}
