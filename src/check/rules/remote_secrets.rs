//! Remote secrets: each istiod has one for every cluster it must read; each
//! kubeconfig inside names a server with a CA and credentials; the server is
//! that cluster's; and istiod reports every peer synced.

use super::names::target;
use super::{View, ctx, obj};
use crate::check::expect::ClusterExpect;
use crate::check::finding::{Finding, Severity};

/// A server address that, from inside a cluster, is the pod itself.
fn is_loopback(url: &str) -> bool {
    let host = url
        .split("://")
        .nth(1)
        .unwrap_or(url)
        .split(['/', ':'])
        .next()
        .unwrap_or("");
    host == "localhost" || host.starts_with("127.") || url.contains("[::1]")
}

/// The clusters whose istiod must read `reader`: for a primary, every other
/// cluster (multi-primary) or its remotes and the other primaries.
fn must_read<'a>(v: &'a View<'_>, reader: &ClusterExpect) -> Vec<&'a ClusterExpect> {
    if !reader.is_primary() {
        return Vec::new();
    }
    v.expect
        .clusters
        .iter()
        .filter(|c| c.name() != reader.name())
        .filter(|c| c.is_primary() || c.primary.as_deref().is_none_or(|p| p == reader.name()))
        .collect()
}

pub(super) fn check(v: &View<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    let ns = v.ns();
    for (reader, s) in &v.clusters {
        if !s.runs_istiod() {
            continue;
        }
        // Which clusters its secrets read.
        let mut read: Vec<&str> = Vec::new();
        for secret in &s.remote_secrets {
            let object = obj("Secret", ns, &secret.name);
            if secret.kubeconfigs.is_empty() {
                out.push(Finding::new(
                    "MC502",
                    reader.name(),
                    object.clone(),
                    "the secret has no data: istiod reads no cluster from it".to_string(),
                    "recreate it with istioctl create-remote-secret".to_string(),
                ));
            }
            for k in &secret.kubeconfigs {
                let fix_recreate = format!(
                    "recreate it: istioctl create-remote-secret --context=<context of the cluster read> --name={} | kubectl {} apply -f -",
                    k.key,
                    ctx(reader)
                );
                let Some(server) = k.server.as_deref().filter(|_| k.error.is_none()) else {
                    out.push(Finding::new(
                        "MC502",
                        reader.name(),
                        object.clone(),
                        format!(
                            "data key {:?}: {}",
                            k.key,
                            k.error
                                .as_deref()
                                .unwrap_or("the kubeconfig names no server")
                        ),
                        fix_recreate,
                    ));
                    continue;
                };
                if server.starts_with("https://") && k.ca.is_none() && !k.insecure {
                    let why = if k.ca_file {
                        "its CA is a file path (certificate-authority), which istiod cannot read from a Secret"
                    } else {
                        "no certificate-authority-data"
                    };
                    out.push(Finding::new("MC503", reader.name(), object.clone(), format!("data key {:?}, server {server}: {why}: istiod's TLS check of that API server fails", k.key), fix_recreate.clone()));
                }
                if !k.has_credentials {
                    out.push(Finding::new("MC504", reader.name(), object.clone(), format!("data key {:?}, server {server}: no token, client certificate or exec plugin: the API server refuses istiod", k.key), fix_recreate.clone()));
                }
                let Some((tc, ts, by_server)) = target(v, secret, &k.key, Some(server)) else {
                    out.push(
                        Finding::new("MC508", reader.name(), object.clone(), format!("data key {:?}, server {server}: not one of the clusters checked ({})", k.key, v.expect.clusters.iter().map(|c| c.name()).collect::<Vec<_>>().join(", ")), "if that cluster left the mesh, delete the secret; else check it too (add its --context)".to_string())
                            .with_severity(Severity::Info),
                    );
                    continue;
                };
                if tc.name() == reader.name() {
                    out.push(Finding::new("MC508", reader.name(), object.clone(), format!("data key {:?} reads {} itself: istiod already reads its own cluster, so every endpoint shows twice", k.key, reader.name()), format!("kubectl {} -n {ns} delete secret {}", ctx(reader), secret.name)));
                    continue;
                }
                read.push(tc.name());
                let expected = tc.api_server.clone().unwrap_or_else(|| ts.server.clone());
                if !by_server {
                    out.push(Finding::new("MC505", reader.name(), object.clone(), format!("data key {:?} reads {} at {server}, but {} is reached at {expected}", k.key, tc.name(), tc.name()), format!("recreate the secret with the address istiod can reach (istioctl create-remote-secret --server=<address> for {})", tc.name())));
                } else if is_loopback(server) && !is_loopback(&ts.server) {
                    out.push(Finding::new("MC505", reader.name(), object.clone(), format!("data key {:?}: server {server} is a loopback address: from inside {}'s istiod pod it is the pod itself", k.key, reader.name()), format!("recreate the secret with an address of {}'s API server that {}'s pods reach (istioctl create-remote-secret --server=https://<address>)", tc.name(), reader.name())));
                }
                if let (Some(have), Some(want)) = (&k.ca, &ts.api_ca)
                    && have != want
                {
                    out.push(Finding::new("MC506", reader.name(), object.clone(), format!("data key {:?}: its CA ({}) is not the CA {}'s API server presents to the check ({}): a secret from a rebuilt cluster, or a different endpoint", k.key, short(have), tc.name(), short(want)), fix_recreate.clone()));
                }
            }
        }
        for peer in must_read(v, reader) {
            let peer_name = v
                .clusters
                .iter()
                .find(|(c, _)| c.name() == peer.name())
                .and_then(|(c, s)| v.cluster_name(c, s))
                .or(peer.cluster_name.as_ref().map(|k| k.value.as_str()))
                .unwrap_or(peer.name());
            if !read.contains(&peer.name()) {
                out.push(Finding::new(
                    "MC501",
                    reader.name(),
                    obj("Secret", ns, &format!("istio-remote-secret-{peer_name}")),
                    format!("{}'s istiod has no remote secret for {} (clusterName {peer_name}): it does not discover {}'s endpoints, so no traffic goes there", reader.name(), peer.name(), peer.name()),
                    format!("istioctl create-remote-secret {} --name={peer_name} | kubectl {} apply -f -", ctx(peer).replace("--context ", "--context="), ctx(reader)),
                ));
                continue;
            }
            if let Some(peers) = &s.peers {
                let found = peers.iter().find(|p| p.cluster == peer_name);
                let status = found.map(|p| p.status.as_str());
                let deployment = s
                    .istiods
                    .first()
                    .map_or("istiod", |i| i.deployment.as_str());
                // One replica that has not synced serves its proxies without the peer's endpoints.
                if let Some(pod) = found.and_then(|p| p.pod.as_deref()) {
                    out.push(Finding::new(
                        "MC507",
                        reader.name(),
                        obj("Pod", ns, pod),
                        format!("istiod replica {pod} reports cluster {peer_name} as {}: the proxies it serves do not (yet) know that cluster's endpoints, whatever the other replicas say", status.unwrap_or("absent")),
                        format!("kubectl {} -n {ns} logs {pod} | grep {peer_name} shows why (unreachable server, refused token, wrong CA); deleting the pod lets the Deployment start one that syncs afresh", ctx(reader)),
                    ));
                } else if status != Some("synced") {
                    out.push(Finding::new(
                        "MC507",
                        reader.name(),
                        obj("Deployment", ns, deployment),
                        format!("istiod reports cluster {peer_name} as {}: its endpoints are not (yet) known here", status.unwrap_or("absent")),
                        format!("kubectl {} -n {ns} logs deployment/{deployment} | grep {peer_name} shows why (unreachable server, refused token, wrong CA)", ctx(reader)),
                    ));
                }
            } else if let Some(why) = &s.peers_error {
                out.push(Finding::new(
                    "MC507",
                    reader.name(),
                    obj("Deployment", ns, s.istiods.first().map_or("istiod", |i| i.deployment.as_str())),
                    format!("istiod could not be asked whether it synced cluster {peer_name} (debug/clusterz through a port-forward): {why}"),
                    format!("make an istiod pod Ready and allow pods/portforward in {ns}, then check again (istioctl remote-clusters {} asks the same)", ctx(reader)),
                ));
            }
        }
    }
    out
}

fn short(fingerprint: &str) -> String {
    let hex = fingerprint.trim_start_matches("sha256:");
    format!("sha256:{}", &hex[..hex.len().min(16)])
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{found, healthy};
    use crate::check::Group;

    #[test]
    fn a_deleted_remote_secret_is_found() {
        let (e, mut s) = healthy();
        s[0].remote_secrets.clear();
        s[0].peers = Some(vec![]);
        assert_eq!(
            found(Group::RemoteSecrets, &e, &s),
            vec![(
                "MC501".into(),
                "c1".into(),
                "Secret istio-system/istio-remote-secret-c2".into()
            )]
        );
    }

    #[test]
    fn a_secret_without_ca_or_token_and_a_peer_not_synced_are_found() {
        let (e, mut s) = healthy();
        let k = &mut s[1].remote_secrets[0].kubeconfigs[0];
        k.ca = None;
        k.has_credentials = false;
        s[0].peers.as_mut().unwrap()[0].status = "timeout".into();
        let f = found(Group::RemoteSecrets, &e, &s);
        let codes: Vec<&str> = f.iter().map(|x| x.0.as_str()).collect();
        assert!(
            codes.contains(&"MC503") && codes.contains(&"MC504") && codes.contains(&"MC507"),
            "{f:?}"
        );
    }

    #[test]
    fn a_replica_that_has_not_synced_is_named_though_another_has() {
        let (e, mut s) = healthy();
        let peer = &mut s[0].peers.as_mut().unwrap()[0];
        peer.status = "syncing".into();
        peer.pod = Some("istiod-7f9c-b".into());
        let f = found(Group::RemoteSecrets, &e, &s);
        assert_eq!(
            f,
            vec![(
                "MC507".into(),
                s[0].cluster.clone(),
                "Pod istio-system/istiod-7f9c-b".into()
            )]
        );
    }

    #[test]
    fn an_istiod_that_could_not_be_asked_is_an_error_not_a_pass() {
        let (e, mut s) = healthy();
        assert!(found(Group::RemoteSecrets, &e, &s).is_empty());
        s[0].peers = None;
        s[0].peers_error = Some("no Running and Ready pod".into());
        let f = found(Group::RemoteSecrets, &e, &s);
        assert!(
            f.iter().any(|x| x.0 == "MC507" && x.1 == s[0].cluster),
            "{f:?}"
        );
    }

    #[test]
    fn loopback_servers_are_named() {
        assert!(super::is_loopback("https://127.0.0.1:6443"));
        assert!(!super::is_loopback("https://10.1.2.3:6443"));
    }
}
