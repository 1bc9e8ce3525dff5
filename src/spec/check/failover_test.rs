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
            Some(format!("/{}", svc.path)),
        );
    }
    let from_ok = c.cluster_ref(&format!("{base}.from"), &t.from);
    let drain_ok = c.cluster_ref(&format!("{base}.drain"), &t.drain);
    if from_ok && drain_ok && t.from == t.drain {
        c.error(
            &format!("{base}.drain"),
            format!("the probe runs in `{}`, the cluster it drains", t.from),
            Some("`from` is the client cluster that stays up; `drain` is another cluster".into()),
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
