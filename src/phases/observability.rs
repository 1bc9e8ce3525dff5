//! Phase 5: Prometheus external label `cluster` and federation, and the
//! mesh tracing settings (`defaultConfig.tracing.zipkin.address`,
//! `sampling`) in the `istio` ConfigMap. Each edit is undone by restoring
//! the ConfigMap's snapshot. Proxies pick the tracing settings up as they
//! restart.

use super::{Ctx, install, restore};
use crate::plan::{Action, ConfigEdit, ObjectRef, Phase, RuntimeValue, Step, Substitution};
use crate::spec::{ClusterSpec, Prometheus, Tracing};
use serde_json::json;

/// The key of Prometheus's configuration in its ConfigMap.
pub const PROMETHEUS_KEY: &str = "prometheus.yml";
/// The port federation scrapes a peer's Prometheus on.
pub const PROMETHEUS_PORT: u16 = 9090;

/// `observability/<cluster>`.
pub fn id(cluster: &str) -> String {
    format!("observability/{cluster}")
}

fn path(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|p| p.to_string()).collect()
}

/// One step per cluster with something to edit.
pub fn steps(ctx: &Ctx<'_>) -> Vec<Step> {
    ctx.clusters()
        .iter()
        .filter_map(|c| cluster_step(ctx, c))
        .collect()
}

/// The Prometheus and tracing edits of `c`, undone in reverse by restoring
/// each ConfigMap; `None` when there is nothing to edit there.
fn cluster_step(ctx: &Ctx<'_>, c: &ClusterSpec) -> Option<Step> {
    let obs = &ctx.spec.observability;
    let mut s = Step::new(Phase::Observability, id(&c.name), "");
    s.need(install::id(&c.name));
    let mut what = Vec::new();
    if let Some(p) = &obs.prometheus {
        let (edit, said) = prometheus_edit(ctx, c, p);
        let cm = ObjectRef::config_map(&p.namespace, &p.config_map);
        s.forward(edit);
        s.rollback(restore(&c.name, &cm));
        what.extend(said);
    }
    // A remote has no mesh ConfigMap: its proxies follow the primary's.
    if let Some(t) = &obs.tracing
        && !ctx.is_remote(c)
    {
        let cm = super::mesh_config_map(ctx);
        s.forward(tracing_edit(ctx, c, t));
        s.rollback(restore(&c.name, &cm));
        what.push(format!("tracing to {} at {}%", t.zipkin, t.sampling));
    }
    if s.forward.is_empty() {
        return None;
    }
    s.rollback.reverse();
    s.description = format!("Observability on {}: {}.", c.name, what.join(", "));
    Some(s)
}

/// The external label `cluster` in `c`'s Prometheus configuration and, on
/// the source when asked, federation of every other cluster; with what it
/// does, for the description.
fn prometheus_edit(ctx: &Ctx<'_>, c: &ClusterSpec, p: &Prometheus) -> (Action, Vec<String>) {
    let cm = ObjectRef::config_map(&p.namespace, &p.config_map);
    let mut edits = vec![ConfigEdit::Set {
        path: path(&["global", "external_labels", "cluster"]),
        value: json!(c.name),
    }];
    let mut substitutions = Vec::new();
    let mut what = vec!["Prometheus external label cluster".to_string()];
    if p.federate && ctx.is_source(c) {
        let (federate, addresses) = federation(ctx, c, p);
        edits.extend(federate);
        substitutions.extend(addresses);
        what.push("federation of every other cluster".into());
    }
    let edit = Action::EditConfig {
        cluster: c.name.clone(),
        object: cm,
        key: PROMETHEUS_KEY.into(),
        edits,
        substitutions,
    };
    (edit, what)
}

/// The source's Prometheus federates the others': one scrape job per peer,
/// reached through its Prometheus Service's LoadBalancer address (filled in
/// at run time).
fn federation(
    ctx: &Ctx<'_>,
    c: &ClusterSpec,
    p: &Prometheus,
) -> (Vec<ConfigEdit>, Vec<Substitution>) {
    let service = ObjectRef::service(&p.namespace, "prometheus");
    let mut edits = Vec::new();
    let mut substitutions = Vec::new();
    for peer in ctx.clusters().iter().filter(|o| o.name != c.name) {
        let placeholder = format!("${{prometheus-address:{}}}", peer.name);
        edits.push(ConfigEdit::Upsert {
            path: path(&["scrape_configs"]),
            match_key: "job_name".into(),
            item: json!({
                "job_name": format!("federate-{}", peer.name),
                "honor_labels": true,
                "metrics_path": "/federate",
                "params": { "match[]": ["{job=~\".+\"}"] },
                "static_configs": [{
                    "targets": [format!("{placeholder}:{PROMETHEUS_PORT}")],
                    "labels": { "cluster": peer.name },
                }],
            }),
        });
        substitutions.push(Substitution {
            placeholder,
            value: RuntimeValue::LoadBalancerAddress {
                cluster: peer.name.clone(),
                service: service.clone(),
            },
        });
    }
    (edits, substitutions)
}

/// The mesh's Zipkin address and sampling rate in `c`'s `istio` ConfigMap.
fn tracing_edit(ctx: &Ctx<'_>, c: &ClusterSpec, t: &Tracing) -> Action {
    Action::EditConfig {
        cluster: c.name.clone(),
        object: super::mesh_config_map(ctx),
        key: "mesh".into(),
        edits: vec![
            ConfigEdit::Set {
                path: path(&["defaultConfig", "tracing", "zipkin", "address"]),
                value: json!(t.zipkin),
            },
            ConfigEdit::Set {
                path: path(&["defaultConfig", "tracing", "sampling"]),
                value: json!(t.sampling),
            },
        ],
        substitutions: Vec::new(),
    }
}
