//! Gates: after trust, discovery and routing, one step (`gate/<phase>`)
//! runs the checks of the mesh verifier that phase is responsible for,
//! across every cluster. It needs every step of its phase, and the steps
//! of the next phase (and any later step needing one of the gated phase)
//! need it: a failing gate fails the phase and nothing built on it starts;
//! once the mesh is fixed, `apply --resume` runs the gate again. A gate
//! changes nothing, so rolling it back undoes nothing.
//!
//! The plan carries what the spec says as plain data ([`GateExpectations`]);
//! the engine turns it into the verifier's expectations. Being in the
//! plan, they are part of its fingerprint: a replan that changes them runs
//! a done gate again (the engine compares the gate's action).

use super::{Ctx, ISTIO_SYSTEM};
use crate::plan::{Action, Check, GateCluster, GateExpectations, Phase, Step};
use crate::spec::Topology;

/// The phases with a gate, and the verifier's groups each runs (named as
/// `migrate check --group` takes them).
pub const GATED: [(Phase, &[&str]); 3] = [
    (Phase::Trust, &["roots"]),
    (Phase::Discovery, &["names", "remote-secrets"]),
    (Phase::Routing, &["gateway", "destination-rules"]),
];

/// `gate/<phase>`.
pub fn id(phase: Phase) -> String {
    format!("gate/{}", phase.name())
}

/// Whether `id` names a gate step.
pub fn is_gate(id: &str) -> bool {
    id.starts_with("gate/")
}

/// What the gate of `phase` proves, for the plan.
fn description(phase: Phase) -> &'static str {
    match phase {
        Phase::Trust => {
            "Gate: every cluster serves the shared root (istio-ca-root-cert), and every cacerts is complete, chains to it \
             and is what istiod loaded (roots, MC1xx); an error fails the phase."
        }
        Phase::Discovery => {
            "Gate: each primary's istiod reports every peer synced; each remote secret's data key, its networking.istio.io/cluster \
             annotation and that cluster's clusterName agree, with one meshID (names, MC2xx; remote-secrets, MC5xx); an error fails the phase."
        }
        _ => {
            "Gate: each east-west gateway has an address, port 15443 and exactly one AUTO_PASSTHROUGH Gateway; no DestinationRule \
             has locality failover without outlierDetection, or the obsolete consecutiveErrors (gateway, MC4xx; destination-rules, MC6xx); \
             an error fails the phase."
        }
    }
}

/// What the spec says the mesh is.
pub fn expectations(ctx: &Ctx<'_>) -> GateExpectations {
    GateExpectations {
        namespace: ISTIO_SYSTEM.to_string(),
        mesh_id: ctx.spec.mesh.id.clone(),
        topology: match ctx.spec.topology {
            Topology::MultiPrimary => "multi-primary",
            Topology::PrimaryRemote => "primary-remote",
        }
        .to_string(),
        revision: Some(ctx.revision().to_string()).filter(|r| !r.is_empty()),
        istio_version: ctx.spec.mesh.istio_version.clone(),
        clusters: ctx
            .clusters()
            .iter()
            .map(|c| {
                let remote = ctx.is_remote(c);
                GateCluster {
                    name: c.name.clone(),
                    network: c.network.clone(),
                    remote,
                    primary: if remote {
                        ctx.primary_of(c).map(|p| p.name.clone())
                    } else {
                        None
                    },
                    api_server: c.api_server.clone(),
                }
            })
            .collect(),
    }
}

/// Adds the gate of every gated phase that has steps to `steps` (every
/// step of the plan, phase by phase), right after its phase's steps, and
/// the edges that make later work wait for it.
pub fn add(ctx: &Ctx<'_>, steps: &mut Vec<Step>) {
    for (phase, groups) in GATED {
        let members: Vec<String> = steps
            .iter()
            .filter(|s| s.phase == phase)
            .map(|s| s.id.clone())
            .collect();
        if members.is_empty() {
            continue;
        }
        let gate_id = id(phase);
        let next = Phase::ALL.into_iter().find(|p| *p > phase);
        for s in steps.iter_mut().filter(|s| s.phase > phase) {
            let builds_on_it = s.needs.iter().any(|n| members.contains(n));
            if builds_on_it || Some(s.phase) == next {
                s.need(gate_id.clone());
                s.needs.sort();
                s.needs.dedup();
            }
        }
        let mut gate = Step::new(phase, gate_id, description(phase));
        gate.needs_all(members.iter().cloned());
        gate.forward(Action::Check {
            cluster: None,
            check: Check::Gate {
                groups: groups.iter().map(|g| g.to_string()).collect(),
                expectations: expectations(ctx),
            },
        });
        let at = steps
            .iter()
            .rposition(|s| s.phase == phase)
            .map_or(steps.len(), |i| i + 1);
        steps.insert(at, gate.finish());
    }
}
