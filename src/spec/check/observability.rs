//! Prometheus and tracing settings.

use super::{Checker, formats};

pub(super) fn check(c: &mut Checker) {
    let spec = c.spec;
    let obs = &spec.spec.observability;
    if let Some(p) = &obs.prometheus {
        c.format(
            "spec.observability.prometheus.namespace",
            &p.namespace,
            "namespace",
            formats::dns_label,
        );
        c.format(
            "spec.observability.prometheus.configMap",
            &p.config_map,
            "ConfigMap name",
            formats::dns_subdomain,
        );
    }
    if let Some(t) = &obs.tracing {
        c.format(
            "spec.observability.tracing.zipkin",
            &t.zipkin,
            "collector address",
            formats::host_port,
        );
        if !(0.0..=100.0).contains(&t.sampling) {
            c.error(
                "spec.observability.tracing.sampling",
                format!("sampling is a percentage (0 to 100), found {}", t.sampling),
                None,
            );
        }
    }
}
