//! Networks: on a multi-network mesh each cluster's network is on the
//! control plane's namespace label, in the install's `global.network` and
//! on the east-west gateway Service, all the same value.

use super::{View, ctx, obj, skipped};
use crate::check::expect::Source;
use crate::check::finding::Finding;

const LABEL: &str = "topology.istio.io/network";

pub(super) fn check(v: &View<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    let ns = v.ns();
    let multi = v.expect.is_multi_network();
    if v.expect.multi_network.is_none()
        && v.clusters.len() > 1
        && let Some((c, _)) = v.clusters.first()
    {
        // No spec and no label anywhere: most likely one network; say what was not checked.
        out.push(skipped(
            c.name(),
            "networks and the east-west gateway",
            &format!("whether the clusters share a network (no {LABEL} label on any {ns})"),
        ));
    }
    for (c, s) in &v.clusters {
        let label = s.network_label.as_deref();
        let said = c
            .network
            .as_ref()
            .filter(|k| k.source == Source::Said)
            .map(|k| k.value.as_str());
        let namespace = format!("Namespace {ns}");
        match (said, label) {
            (Some(want), Some(have)) if want != have => out.push(Finding::new(
                "MC301",
                c.name(),
                namespace.clone(),
                format!("label {LABEL}={have:?}, expected {want:?}: istiod puts this cluster's endpoints on the wrong network and routes to them directly instead of through the east-west gateway"),
                format!("kubectl {} label namespace {ns} {LABEL}={want} --overwrite", ctx(c)),
            )),
            (want, None) if multi || want.is_some() => out.push(Finding::new(
                "MC301",
                c.name(),
                namespace.clone(),
                format!("no label {LABEL} on a multi-network mesh{}: istiod treats every endpoint as reachable directly", want.map(|w| format!(" (expected {w:?})")).unwrap_or_default()),
                format!("kubectl {} label namespace {ns} {LABEL}={}", ctx(c), want.unwrap_or("<this cluster's network>")),
            )),
            _ => {}
        }
        let network = v.network(c, s);
        if let (Some(values), Some(have)) = (s.values_network.as_deref(), label)
            && values != have
        {
            out.push(Finding::new(
                "MC302",
                c.name(),
                obj("ConfigMap", ns, "values"),
                format!("the install's global.network is {values:?} but namespace {ns} is labelled {have:?}: sidecars injected from now on get {values:?}"),
                format!("install again with values.global.network: {} (istioctl install or helm upgrade istiod)", network.unwrap_or(have)),
            ));
        }
        if let (Some(gw), Some(want)) = (&s.eastwest, network)
            && (multi || gw.network.is_some())
            && gw.network.as_deref() != Some(want)
        {
            out.push(Finding::new(
                "MC303",
                c.name(),
                obj("Service", ns, &gw.name),
                format!("label {LABEL} is {}, expected {want:?}: istiod does not use this gateway for the cluster's network, so no traffic from other networks enters", gw.network.as_deref().map_or("missing".to_string(), |n| format!("{n:?}"))),
                format!("kubectl {} -n {ns} label service {} {LABEL}={want} --overwrite (and set the label in the gateway's install values so it stays)", ctx(c), gw.name),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{found, healthy};
    use crate::check::Group;

    #[test]
    fn a_changed_namespace_label_is_found() {
        let (e, mut s) = healthy();
        s[1].network_label = Some("network9".into());
        let f = found(Group::Networks, &e, &s);
        assert!(
            f.contains(&("MC301".into(), "c2".into(), "Namespace istio-system".into())),
            "{f:?}"
        );
        assert!(
            f.contains(&(
                "MC302".into(),
                "c2".into(),
                "ConfigMap istio-system/values".into()
            )),
            "{f:?}"
        );
    }

    #[test]
    fn without_spec_or_labels_the_network_checks_say_they_were_skipped() {
        let (mut e, mut s) = healthy();
        e.multi_network = None;
        for (c, x) in e.clusters.iter_mut().zip(&mut s) {
            c.network = None;
            x.network_label = None;
        }
        assert_eq!(
            found(Group::Networks, &e, &s),
            vec![("MC002".into(), "c1".into(), "-".into())]
        );
    }

    #[test]
    fn a_gateway_on_another_network_is_found() {
        let (e, mut s) = healthy();
        if let Some(g) = s[0].eastwest.as_mut() {
            g.network = None;
        }
        let f = found(Group::Networks, &e, &s);
        assert_eq!(
            f,
            vec![(
                "MC303".into(),
                "c1".into(),
                "Service istio-system/istio-eastwestgateway".into()
            )]
        );
    }
}
