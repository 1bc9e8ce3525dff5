//! Phase 5: Prometheus external label `cluster` and federation, and the
//! mesh tracing settings (`defaultConfig.tracing.zipkin.address`,
//! `sampling`) in the `istio` ConfigMap. Each edit is undone by restoring
//! the ConfigMap's snapshot. Proxies pick the tracing settings up as they
//! restart.

use super::{Ctx, ISTIO_SYSTEM, install, restore};
use crate::plan::{Action, ConfigEdit, ObjectRef, Phase, RuntimeValue, Step, Substitution};
use serde_json::json;

pub const PROMETHEUS_KEY: &str = "prometheus.yml";
pub const PROMETHEUS_PORT: u16 = 9090;

pub fn id(cluster: &str) -> String {
    format!("observability/{cluster}")
}

fn path(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|p| p.to_string()).collect()
}

pub fn steps(ctx: &Ctx<'_>) -> Vec<Step> {
    let obs = &ctx.spec.observability;
    let mut out = Vec::new();
    for c in ctx.clusters() {
        let mut s = Step::new(Phase::Observability, id(&c.name), "");
        s.need(install::id(&c.name));
        let mut what = Vec::new();
        if let Some(p) = &obs.prometheus {
            let cm = ObjectRef::config_map(&p.namespace, &p.config_map);
            let mut edits = vec![ConfigEdit::Set {
                path: path(&["global", "external_labels", "cluster"]),
                value: json!(c.name),
            }];
            let mut substitutions = Vec::new();
            what.push("Prometheus external label cluster".to_string());
            if p.federate && ctx.is_source(c) {
                // The source's Prometheus federates the others' (reached
                // through their Prometheus Service's LoadBalancer address).
                let service = ObjectRef::service(&p.namespace, "prometheus");
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
                what.push("federation of every other cluster".into());
            }
            s.forward(Action::EditConfig {
                cluster: c.name.clone(),
                object: cm.clone(),
                key: PROMETHEUS_KEY.into(),
                edits,
                substitutions,
            });
            s.rollback(restore(&c.name, &cm));
        }
        // A remote has no mesh ConfigMap: its proxies follow the primary's.
        if let Some(t) = &obs.tracing
            && !ctx.is_remote(c)
        {
            let cm = ObjectRef::config_map(ISTIO_SYSTEM, "istio");
            s.forward(Action::EditConfig {
                cluster: c.name.clone(),
                object: cm.clone(),
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
            });
            s.rollback(restore(&c.name, &cm));
            what.push(format!("tracing to {} at {}%", t.zipkin, t.sampling));
        }
        if s.forward.is_empty() {
            continue;
        }
        s.rollback.reverse();
        s.description = format!("Observability on {}: {}.", c.name, what.join(", "));
        out.push(s);
    }
    out
}
