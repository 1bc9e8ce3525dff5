//! `migrate unlock --force ID`'s output: what was found and done, the state store first, then the mesh's Lease
//! cluster by cluster.

use crate::engine::mesh_lease::{ForcedRelease, LEASE_NAME, LEASE_NAMESPACE};

/// The state store's lock, as `unlock` found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreOutcome {
    /// Held by ID: released. Whom it named.
    Released(String),
    /// Not held by ID: no lock, or another holder (named).
    NotHeld(Option<String>),
    /// Held by ID but renewed or taken since it was read: left alone. Whom it named.
    Changed(String),
    /// Could not be read or written.
    Failed(String),
}

/// One cluster's mesh Lease, as `unlock` found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterOutcome {
    /// Read, and what was done.
    Lease(ForcedRelease),
    /// Not reached (connection, permission, deadline): why.
    Unreachable(String),
}

/// What `unlock --force ID` found and did.
#[derive(Debug, Clone)]
pub struct Unlocked {
    /// The holder id given.
    pub id: String,
    /// The state store, as the user named it.
    pub location: String,
    /// Its lock.
    pub store: StoreOutcome,
    /// The mesh's Lease, by cluster, in the order of the spec or the run.
    pub clusters: Vec<(String, ClusterOutcome)>,
    /// Why the clusters could not be told (no spec given and the store's run unreadable).
    pub no_clusters: Option<String>,
}

/// Prints one line for the store, one per cluster, and what the exit code means when not everything was read.
pub fn show(u: &Unlocked) {
    let id = &u.id;
    match &u.store {
        StoreOutcome::Released(who) => {
            tell!("state {}: released the lock held by {who}", u.location)
        }
        StoreOutcome::NotHeld(None) => tell!("state {}: no lock held by {id}", u.location),
        StoreOutcome::NotHeld(Some(other)) => tell!(
            "state {}: the lock is held by {other}, not {id}; left alone",
            u.location
        ),
        StoreOutcome::Changed(who) => tell!(
            "state {}: the lock held by {who} was renewed or taken while being cleared (its holder may be alive); \
             left alone",
            u.location
        ),
        StoreOutcome::Failed(e) => say!(
            "state {}: not reached: {}",
            u.location,
            crate::state::redact_text(e)
        ),
    }
    let lease = format!("Lease {LEASE_NAMESPACE}/{LEASE_NAME}");
    for (cluster, outcome) in &u.clusters {
        match outcome {
            ClusterOutcome::Lease(ForcedRelease::Released(who)) => {
                tell!("cluster {cluster}: deleted {lease} held by {who}")
            }
            ClusterOutcome::Lease(ForcedRelease::Absent) => {
                tell!("cluster {cluster}: no {lease} held; nothing to do")
            }
            ClusterOutcome::Lease(ForcedRelease::HeldByOther { holder, id: theirs }) => {
                // A claim names its id in its holder's identity; one from an older migrate names none.
                let unnamed = if theirs.is_empty() {
                    format!(
                        " (it names no holder id: if its store is gone for good, `kubectl delete lease \
                         {LEASE_NAME} -n {LEASE_NAMESPACE}` frees it)"
                    )
                } else {
                    String::new()
                };
                tell!(
                    "cluster {cluster}: {lease} is held by {holder}, not {id}; left alone{unnamed}"
                )
            }
            ClusterOutcome::Lease(ForcedRelease::Changed(who)) => tell!(
                "cluster {cluster}: {lease} held by {who} was renewed or taken while being deleted (its holder may \
                 be alive); left alone"
            ),
            ClusterOutcome::Unreachable(e) => {
                // Connection errors already name the cluster.
                let e = e.strip_prefix(&format!("cluster {cluster}: ")).unwrap_or(e);
                say!(
                    "cluster {cluster}: not reached: {}",
                    crate::state::redact_text(e)
                )
            }
        }
    }
    if let Some(why) = &u.no_clusters {
        say!(
            "the mesh's Leases were not looked for: the run's clusters cannot be read ({why}); give the spec with \
             -f SPEC"
        );
    }
    let unread = u.no_clusters.is_some()
        || matches!(u.store, StoreOutcome::Failed(_))
        || u.clusters
            .iter()
            .any(|(_, o)| matches!(o, ClusterOutcome::Unreachable(_)));
    if unread {
        say!(
            "partial: not every lock could be read; those of {id} that could were released. Run it again once the \
             rest answer"
        );
    }
}
