//! Names: each istiod's clusterName is the one expected and unique; remote
//! secrets name the cluster they read by its clusterName, in data key and
//! annotation alike; one meshID everywhere.

use super::{View, ctx, obj, skipped};
use crate::check::ClusterExpect;
use crate::check::expect::Source;
use crate::check::finding::Finding;
use crate::check::snapshot::{ClusterSnapshot, RemoteSecret};

pub(super) fn check(v: &View<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    let ns = v.ns();
    let mut seen: Vec<(&str, &str)> = Vec::new();
    for (c, s) in &v.clusters {
        let Some(istiod) = s.istiods.first() else {
            continue;
        };
        let actual = s.istiod_cluster_id().unwrap_or_default();
        let deployment = obj("Deployment", ns, &istiod.deployment);
        if let Some(want) = c.cluster_name.as_ref().filter(|k| k.source == Source::Said)
            && want.value != actual
        {
            out.push(Finding::new(
                "MC201",
                c.name(),
                deployment.clone(),
                format!("istiod's clusterName (env CLUSTER_ID) is {actual:?}, expected {:?}", want.value),
                format!("set values.global.multiCluster.clusterName: {} in the install (istioctl install or helm upgrade istiod), then restart the injected workloads", want.value),
            ));
        }
        if let Some((other, _)) = seen.iter().find(|(_, id)| *id == actual) {
            out.push(Finding::new(
                "MC202",
                c.name(),
                deployment,
                format!("istiod's clusterName {actual:?} is also {other}'s: istiod keeps one of two clusters of one name and ignores the other"),
                "give each cluster its own values.global.multiCluster.clusterName and recreate the remote secrets with istioctl create-remote-secret --name=<that name>".to_string(),
            ));
        }
        seen.push((c.name(), actual));
    }
    for (c, s) in &v.clusters {
        for secret in &s.remote_secrets {
            out.extend(secret_names(v, c, secret));
        }
    }
    out.extend(mesh_ids(v));
    out
}

/// The cluster a remote secret's kubeconfig reads: by server address, else
/// by data key (clusterName), else by the secret's name.
pub(super) fn target<'a>(
    v: &'a View<'_>,
    secret: &RemoteSecret,
    key: &str,
    server: Option<&str>,
) -> Option<(&'a ClusterExpect, &'a ClusterSnapshot, bool)> {
    let by_server = server.and_then(|url| {
        v.clusters.iter().find(|(c, s)| {
            c.api_server.as_deref() == Some(url)
                || s.server.trim_end_matches('/') == url.trim_end_matches('/')
        })
    });
    if let Some((c, s)) = by_server {
        return Some((*c, *s, true));
    }
    let suffix = secret.name.strip_prefix("istio-remote-secret-");
    v.clusters
        .iter()
        .find(|(c, s)| v.cluster_name(c, s) == Some(key) || c.name() == key)
        .or_else(|| {
            v.clusters.iter().find(|(c, s)| {
                suffix.is_some_and(|x| v.cluster_name(c, s) == Some(x) || c.name() == x)
            })
        })
        .map(|(c, s)| (*c, *s, false))
}

fn secret_names(v: &View<'_>, reader: &ClusterExpect, secret: &RemoteSecret) -> Vec<Finding> {
    let mut out = Vec::new();
    let ns = v.ns();
    let object = obj("Secret", ns, &secret.name);
    for k in &secret.kubeconfigs {
        let read = target(v, secret, &k.key, k.server.as_deref())
            .and_then(|(tc, ts, _)| Some((tc, v.cluster_name(tc, ts)?)));
        // The command that makes a correct secret: concrete when the cluster read is known.
        let recreate = |name: &str| {
            let (context, cluster_name) = match read {
                Some((tc, want)) => (tc.target.context.clone(), want.to_string()),
                None => (
                    "<context of the cluster read>".into(),
                    "<its clusterName>".into(),
                ),
            };
            let create = format!(
                "istioctl create-remote-secret --context={context} --name={cluster_name} | kubectl {} apply -f -",
                ctx(reader)
            );
            if name == format!("istio-remote-secret-{cluster_name}") {
                create
            } else {
                format!(
                    "kubectl {} -n {ns} delete secret {name}, then {create}",
                    ctx(reader)
                )
            }
        };
        if let Some(a) = &secret.annotation
            && *a != k.key
        {
            out.push(Finding::new(
                "MC203",
                reader.name(),
                object.clone(),
                format!("data key {:?} and annotation networking.istio.io/cluster={a:?} differ: istiod names the cluster by the key, istioctl and migrate by the annotation", k.key),
                recreate(&secret.name),
            ));
        }
        let Some((tc, want)) = read else {
            continue;
        };
        for (what, name) in [
            ("data key", Some(&k.key)),
            (
                "annotation networking.istio.io/cluster",
                secret.annotation.as_ref(),
            ),
        ] {
            if let Some(name) = name
                && name != want
            {
                out.push(Finding::new(
                    "MC204",
                    reader.name(),
                    object.clone(),
                    format!(
                        "reads {} ({}) whose clusterName is {want:?}, but its {what} is {name:?}",
                        tc.name(),
                        k.server.as_deref().unwrap_or("no server")
                    ),
                    recreate(&secret.name),
                ));
            }
        }
    }
    out
}

fn mesh_ids(v: &View<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    let Some(want) = &v.expect.mesh_id else {
        if let Some((c, _)) = v.clusters.first() {
            out.push(skipped(c.name(), "meshID", "the meshID"));
        }
        return out;
    };
    for (c, s) in &v.clusters {
        if !s.runs_istiod() {
            continue;
        }
        let seen = s.mesh_id.as_deref();
        if seen != Some(want.value.as_str()) {
            let said = match want.source {
                Source::Said => "expected",
                Source::Guessed => "the other clusters use",
            };
            out.push(Finding::new(
                "MC205",
                c.name(),
                obj("ConfigMap", v.ns(), "istio"),
                format!("meshID is {}, {said} {:?}: workloads of different meshIDs are not one mesh", seen.map_or("not set".to_string(), |m| format!("{m:?}")), want.value),
                format!("set values.global.meshID: {} in the install on {}, then restart the injected workloads", want.value, c.name()),
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
    fn an_annotation_that_differs_from_the_data_key_is_found() {
        let (e, mut s) = healthy();
        s[1].remote_secrets[0].annotation = Some("cluster9".into());
        let f = found(Group::Names, &e, &s);
        let secret = "Secret istio-system/istio-remote-secret-c1".to_string();
        assert!(
            f.contains(&("MC203".into(), "c2".into(), secret.clone())),
            "{f:?}"
        );
        assert!(f.contains(&("MC204".into(), "c2".into(), secret)), "{f:?}");
    }

    #[test]
    fn a_shared_default_cluster_name_and_another_mesh_id_are_found() {
        let (e, mut s) = healthy();
        for x in &mut s {
            x.istiods[0].cluster_id = None;
        }
        s[1].mesh_id = Some("mesh2".into());
        let f = found(Group::Names, &e, &s);
        let codes: Vec<&str> = f.iter().map(|x| x.0.as_str()).collect();
        assert!(
            codes.contains(&"MC201") && codes.contains(&"MC202") && codes.contains(&"MC205"),
            "{f:?}"
        );
    }
}
