//! Preflight's look at the mesh itself, before anything changes: what
//! `migrate` cannot carry out (the ambient data plane, a mesh another
//! installer owns, an external CA) is refused here, with the evidence and
//! the promise that nothing was changed; what a person should know (a
//! half-done manual migration, version skew) is a warning.

use super::{ActionError, StepCtx, note, warn};
use crate::cluster::inventory::{self, CaKind, DataPlaneMode, InstallerKind, MeshInventory};
use crate::state::{EventKind, NewEvent};
use serde_json::json;

/// The tail of every refusal: preflight changes nothing.
const NOTHING_CHANGED: &str = "nothing was changed on any cluster";

/// Reads and journals `on`'s mesh, then refuses what migrate cannot do
/// with it. `installer`: the spec's installer for a cluster whose mesh the
/// migration keeps (None for a cluster that runs none yet); `trust`: the
/// spec's `trust.root` mode.
pub(super) async fn inventory(
    ctx: &StepCtx,
    on: &str,
    namespace: &str,
    installer: Option<&str>,
    trust: &str,
) -> Result<(), ActionError> {
    let c = ctx.cluster(on)?;
    let observer = ctx.env.observer.clone();
    let step = ctx.step.clone();
    // As `StepCtx::retry` tells of retries: the observer shows them, redacted.
    let on_retry = move |attempt: u32, err: &crate::cluster::ClusterError| {
        let text = crate::state::redact_text(&err.to_string());
        tracing::debug!(step = %step, attempt, "transient error: {text}");
        observer.retrying(&step, attempt, &text);
    };
    let inv = inventory::read(c, namespace, ctx.opts.backoff, &on_retry).await?;
    record(ctx, on, &inv)?;
    if inv.data_plane.mode == DataPlaneMode::Ambient {
        return Err(ActionError::Failed(format!(
            "cluster {on} runs Istio's ambient data plane ({}): migrate moves sidecar meshes only, because multi-cluster ambient is a different design (ztunnel and waypoints peered through east-west gateways) that is still beta upstream; {NOTHING_CHANGED}",
            inv.data_plane.evidence.join(", ")
        )));
    }
    if !inv.unread.is_empty() {
        warn(
            ctx,
            &format!(
                "cluster {on}: the credentials may not list {}, so the mesh inventory may miss what they show",
                inv.unread.join(", ")
            ),
        )?;
    }
    if let Some(expected) = installer {
        installer_matches(ctx, on, &inv, expected)?;
        if inv.ca.kind == CaKind::External {
            return Err(ActionError::Failed(format!(
                "cluster {on}'s workload certificates come from an external CA ({}): every trust mode (adopt, generate, files) plugs a root into istiod's own CA, which an external CA bypasses, so none applies (the spec says {trust}); have the external CA issue every cluster's certificates from one root, or turn istiod's CA server back on; {NOTHING_CHANGED}",
                inv.ca.evidence.join(", ")
            )));
        }
    }
    if !inv.multi_cluster.is_empty() {
        warn(
            ctx,
            &format!(
                "cluster {on} already holds parts of a multi-cluster mesh, as a manual migration leaves them: {}; the plan writes its own and takes over objects of the same name: check that none of these points somewhere it should not",
                inv.multi_cluster.join("; ")
            ),
        )?;
    }
    Ok(())
}

/// The spec's installer is the installer of record (`expected` as the
/// spec spells it: `istioctl`, `helm`).
fn installer_matches(
    ctx: &StepCtx,
    on: &str,
    inv: &MeshInventory,
    expected: &str,
) -> Result<(), ActionError> {
    let found = &inv.installer;
    match found.kind {
        // MeshPresent says what is missing.
        InstallerKind::None => Ok(()),
        InstallerKind::Unknown => warn(
            ctx,
            &format!(
                "cluster {on}: nothing says who installed istiod ({}); migrate will change it with {expected}",
                found.evidence
            ),
        ),
        InstallerKind::Sail => Err(ActionError::Failed(format!(
            "{on}'s mesh is managed by the Sail operator: {}; the operator reconciles istiod and would undo what {expected} changes, and migrate does not drive it: follow the Sail operator's multi-cluster guide; {NOTHING_CHANGED}",
            found.evidence
        ))),
        kind if kind.as_str() == expected => Ok(()),
        kind => {
            let by = match kind {
                InstallerKind::Helm => "Helm",
                _ => kind.as_str(),
            };
            Err(ActionError::Failed(format!(
                "{on}'s mesh was installed by {by}: {}; set installer.kind: {kind} (changing it with {expected} would fight {by} over istiod); {NOTHING_CHANGED}",
                found.evidence
            )))
        }
    }
}

/// Journals the inventory: a note whose details `migrate status` shows.
fn record(ctx: &StepCtx, on: &str, inv: &MeshInventory) -> Result<(), ActionError> {
    let mut line = format!("cluster {on} mesh: {}", inv.summary());
    if inv.has_mesh() {
        line.push_str(&format!(
            "; trust modes that apply: {}",
            match inv.ca.kind.trust_modes() {
                [] => "none".to_string(),
                modes => modes.join(", "),
            }
        ));
    }
    let details = json!({ "inventory": { "cluster": on, "mesh": inv } });
    ctx.env.store.record_event(
        ctx.run,
        NewEvent::new(EventKind::Note, Some(&ctx.step), line).with_details(details),
    )?;
    Ok(())
}

/// Warns when the meshes of `clusters` run different Istio minor versions.
pub(super) async fn version_skew(
    ctx: &StepCtx,
    namespace: &str,
    clusters: &[String],
) -> Result<(), ActionError> {
    let mut versions = Vec::new();
    for name in clusters {
        let c = ctx.cluster(name)?;
        let deployments = ctx
            .retry(|| c.list("apps/v1", "Deployment", Some(namespace), None))
            .await?;
        let version = inventory::revisions::istiods(&deployments)
            .into_iter()
            .find_map(inventory::revisions::version);
        if let Some(v) = version {
            versions.push((name.clone(), v));
        }
    }
    if let Some(skew) = inventory::minor_skew(&versions) {
        warn(
            ctx,
            &format!(
                "the meshes run different Istio minor versions ({skew}): Istio supports a multi-cluster mesh across one minor version at most, and the plan installs one version: upgrade them to one release"
            ),
        )?;
    } else {
        note(ctx, "the meshes run the same Istio minor version")?;
    }
    Ok(())
}
