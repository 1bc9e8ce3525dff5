//! `istioctl version`: the client version, and with `--remote` (the
//! default) the control plane's and the data plane's, read from the pods.
//! As istioctl, a cluster that cannot be asked is reported and the client
//! version still printed.

use super::args::VersionArgs;
use super::{Global, IstioctlError, connect};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::ListParams;
use std::io::Write;

pub(super) async fn run(
    global: &Global,
    args: &VersionArgs,
    out: &mut dyn Write,
) -> Result<(), IstioctlError> {
    let remote = if args.remote {
        match remote_versions(global).await {
            Ok(v) => Some(v),
            Err(e) => {
                writeln!(out, "{e}")?;
                None
            }
        }
    } else {
        None
    };
    let release = super::release();
    if args.short {
        writeln!(out, "client version: {release}")?;
    } else {
        writeln!(
            out,
            "client version: version.BuildInfo{{Version:\"{release}\", GitRevision:\"meshsim\", GolangVersion:\"\", BuildStatus:\"Clean\", GitTag:\"{release}\"}}"
        )?;
    }
    if let Some((control, data)) = remote {
        writeln!(out, "control plane version: {control}")?;
        match data {
            Some((version, n)) => writeln!(out, "data plane version: {version} ({n} proxies)")?,
            None => writeln!(out, "data plane version: none")?,
        }
    }
    Ok(())
}

fn tag(image: &str) -> &str {
    image.rsplit_once(':').map_or("unknown", |(_, t)| t)
}

type Versions = (String, Option<(String, usize)>);

async fn remote_versions(global: &Global) -> Result<Versions, IstioctlError> {
    let client = connect(global).await?;
    let ns = &global.istio_namespace;
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let istiods = pods
        .list(&ListParams::default().labels("app=istiod"))
        .await
        .map_err(|e| IstioctlError::api(format!("listing istiod pods in {ns}"), e))?;
    let running: Vec<&Pod> = istiods
        .items
        .iter()
        .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
        .collect();
    let Some(istiod) = running.first() else {
        return Err(IstioctlError::NoIstioPods(ns.clone()));
    };
    let control = istiod
        .spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .and_then(|c| c.image.as_deref())
        .map_or("unknown", tag)
        .to_string();
    let all: Api<Pod> = Api::all(client);
    let every = all
        .list(&ListParams::default())
        .await
        .map_err(|e| IstioctlError::api("listing pods", e))?;
    let proxies: Vec<String> = every
        .items
        .iter()
        .filter_map(|p| {
            p.spec
                .as_ref()?
                .containers
                .iter()
                .chain(p.spec.as_ref()?.init_containers.iter().flatten())
                .find(|c| c.name == "istio-proxy")
                .and_then(|c| c.image.as_deref())
                .map(|i| tag(i).to_string())
        })
        .collect();
    let data = proxies.first().map(|v| (v.clone(), proxies.len()));
    Ok((control, data))
}
