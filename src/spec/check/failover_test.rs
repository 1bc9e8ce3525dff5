//! The failover drill: which service, from where, draining what.

use super::{Checker, formats};

pub(super) fn check(c: &mut Checker) {
    let spec = c.spec;
    let Some(t) = &spec.spec.failover_test else {
        return;
    };
    let base = "spec.failoverTest";
    let svc = &t.service;
    c.format(
        &format!("{base}.service.namespace"),
        &svc.namespace,
        "namespace",
        formats::dns_label,
    );
    // Service names are DNS-1035 labels: a DNS-1123 label starting with a letter.
    let name_path = format!("{base}.service.name");
    if c.format(&name_path, &svc.name, "service name", formats::dns_label)
        && !svc.name.starts_with(|ch: char| ch.is_ascii_lowercase())
    {
        c.error(
            &name_path,
            format!("service name `{}` must start with a letter", svc.name),
            None,
        );
    }
    if svc.port == 0 {
        c.error(
            &format!("{base}.service.port"),
            "port 0 is not a port (1..65535)",
            None,
        );
    }
    if !svc.path.starts_with('/') {
        c.error(
            &format!("{base}.service.path"),
            format!("the HTTP path `{}` must start with `/`", svc.path),
            Some(format!("write `/{}`", svc.path)),
        );
    }
    let from_ok = c.cluster_ref(&format!("{base}.from"), &t.from);
    let drain_ok = c.cluster_ref(&format!("{base}.drain"), &t.drain);
    // Draining the client's own cluster is the Istio docs' locality failover
    // task: every answer must then cross clusters. Draining another cluster
    // while locality load balancing keeps the client's requests local shows
    // nothing moving, so say so.
    if from_ok && drain_ok && t.from != t.drain && spec.spec.locality_lb_applies(t) {
        c.warn(
            &format!("{base}.drain"),
            format!(
                "a DestinationRule with locality load balancing keeps `{}`'s requests in `{}`; draining `{}` shows no failover",
                t.from, t.from, t.drain
            ),
            Some(format!(
                "drain `{}` (the client's own cluster) to see traffic move to the others",
                t.from
            )),
        );
    }
    if t.requests == 0 {
        c.error(
            &format!("{base}.requests"),
            "the probe must send at least one request",
            None,
        );
    }
}
