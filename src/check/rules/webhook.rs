//! Injection webhooks: namespaces that ask for injection need a webhook; a
//! remote's webhook calls the primary's istiod, so it needs a caBundle and
//! an address that reaches the primary.

use super::{View, ctx};
use crate::check::finding::Finding;

pub(super) fn check(v: &View<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    for (c, s) in &v.clusters {
        if s.injectors.is_empty() {
            let asking: Vec<&str> = s
                .inventory
                .iter()
                .flat_map(|i| i.namespaces.iter().map(|n| n.namespace.as_str()))
                .collect();
            if !asking.is_empty() {
                out.push(Finding::new(
                    "MC703",
                    c.name(),
                    "MutatingWebhookConfiguration istio-sidecar-injector",
                    format!("namespaces {} ask for injection but no sidecar injector webhook exists: new pods start without sidecars", asking.join(", ")),
                    format!("install the control plane (or, on a remote, the remote profile) on {}", c.name()),
                ));
            }
            continue;
        }
        if c.is_primary() {
            continue;
        }
        let primary = c
            .primary
            .as_deref()
            .and_then(|p| v.clusters.iter().find(|(pc, _)| pc.name() == p))
            .or_else(|| v.clusters.iter().find(|(pc, _)| pc.is_primary()));
        for w in &s.injectors {
            let object = format!("MutatingWebhookConfiguration {}", w.configuration);
            if !w.ca_bundle {
                out.push(Finding::new(
                    "MC701",
                    c.name(),
                    object.clone(),
                    format!("webhook {}: clientConfig.caBundle is empty: the API server cannot verify the primary's istiod and every injected pod creation fails", w.webhook),
                    format!("set caBundle to the primary's root (kubectl {} -n istio-system get configmap istio-ca-root-cert -o jsonpath='{{.data.root-cert\\.pem}}' | base64 -w0), or install the remote with istioctl so it is patched", primary.map(|(p, _)| ctx(p)).unwrap_or_else(|| "--context <primary>".into())),
                ));
            }
            let (Some(url), Some((pc, ps))) = (&w.url, primary) else {
                continue;
            };
            let addresses = ps
                .eastwest
                .as_ref()
                .map(|g| g.addresses.clone())
                .unwrap_or_default();
            if !addresses.is_empty() && !addresses.iter().any(|a| url.contains(a.as_str())) {
                out.push(Finding::new(
                    "MC702",
                    c.name(),
                    object,
                    format!("webhook {} calls {url}, but {}'s east-west gateway is at {}: injection may not reach istiod", w.webhook, pc.name(), addresses.join(", ")),
                    format!("install the remote again with values.global.remotePilotAddress={} (istioctl install --set values.global.remotePilotAddress=...)", addresses[0]),
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{found, healthy};
    use crate::check::Group;
    use crate::check::expect::{Known, Model, Role};

    #[test]
    fn a_remote_webhook_without_ca_bundle_is_found() {
        let (mut e, mut s) = healthy();
        e.model = Some(Known::said(Model::PrimaryRemote));
        e.clusters[1].role = Some(Known::said(Role::Remote));
        e.clusters[1].primary = Some("c1".into());
        let w = &mut s[1].injectors[0];
        w.ca_bundle = false;
        w.service = None;
        w.url = Some("https://172.18.9.9:15017/inject".into());
        let f = found(Group::Webhook, &e, &s);
        let object = "MutatingWebhookConfiguration istio-sidecar-injector".to_string();
        assert_eq!(
            f,
            vec![
                ("MC701".into(), "c2".into(), object.clone()),
                ("MC702".into(), "c2".into(), object)
            ]
        );
    }
}
