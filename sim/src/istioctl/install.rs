//! `istioctl install`: read the IstioOperator (files overlaid in order,
//! then `--set`), apply what it renders component by component with
//! server-side apply, wait for each component's Deployments, and print
//! what istioctl prints.

use super::args::InstallArgs;
use super::kube_api::{KubeApi, describe};
use super::operator::read_operator;
use super::pruned::{CLUSTER, NAMESPACED, removed_name};
use super::{Global, IstioctlError, VERSION, confirm, connect};
use crate::istio::install::{
    COMPONENT_LABEL, Install, MANAGED_LABEL, OWNER_LABEL, UNNAMED_OWNER, VERSION_LABEL,
};
use kube::Client;
use serde_json::Value;
use std::io::{BufRead, Write};
use std::time::Duration;

/// The components in install order, with the line istioctl prints for each.
const COMPONENTS: &[(&str, &str, &str)] = &[
    ("Base", "Istio core", "✔ Istio core installed ⛵️"),
    ("Pilot", "Istiod", "✔ Istiod installed 🧠"),
    (
        "IngressGateways",
        "Ingress gateways",
        "✔ Ingress gateways installed 🛬",
    ),
];

/// Reads and checks the operator (and asks, without `-y`) before connecting.
pub(super) async fn run(
    global: &Global,
    args: &InstallArgs,
    out: &mut dyn Write,
    input: &mut dyn BufRead,
) -> Result<(), IstioctlError> {
    let iop = read_operator(&args.files, &args.sets, input)?;
    let release = super::release();
    let install = Install::from_iop(&iop, &release)?;
    if !args.skip_confirmation {
        let prompt = format!(
            "This will install the Istio {release} {:?} profile (with components: {}) into the cluster. Proceed? (y/N)",
            install.profile,
            human_join(&component_names(&install))
        );
        if !confirm(&prompt, out, input)? {
            return Err(IstioctlError::Cancelled);
        }
    }
    let client = connect(global).await?;
    install_operator(&client, &install, args.readiness_timeout, out).await
}

/// Installs an IstioOperator in process (the same path as `istioctl install -y -f`).
pub async fn install(
    client: &Client,
    iop: &Value,
    readiness_timeout: Duration,
    out: &mut dyn Write,
) -> Result<Install, IstioctlError> {
    install_version(client, iop, VERSION, readiness_timeout, out).await
}

/// As [`install`], playing istioctl `version` (image tags and the version label): the seeds
/// install older releases this way.
pub async fn install_version(
    client: &Client,
    iop: &Value,
    version: &str,
    readiness_timeout: Duration,
    out: &mut dyn Write,
) -> Result<Install, IstioctlError> {
    let install = Install::from_iop(iop, version)?;
    install_operator(client, &install, readiness_timeout, out).await?;
    Ok(install)
}

fn component_of(obj: &Value) -> &str {
    obj.pointer("/metadata/labels")
        .and_then(|l| l.get(COMPONENT_LABEL))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn component_names(install: &Install) -> Vec<&'static str> {
    let objects = install.objects();
    COMPONENTS
        .iter()
        .filter(|(label, _, _)| objects.iter().any(|o| component_of(o) == *label))
        .filter(|(label, _, _)| *label != "Pilot" || install.istiod)
        .map(|(_, name, _)| *name)
        .collect()
}

/// "a", "a and b", "a, b, and c", as istioctl's prompt joins component names.
fn human_join(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => one.to_string(),
        [a, b] => format!("{a} and {b}"),
        [rest @ .., last] => format!("{}, and {last}", rest.join(", ")),
    }
}

async fn install_operator(
    client: &Client,
    install: &Install,
    readiness_timeout: Duration,
    out: &mut dyn Write,
) -> Result<(), IstioctlError> {
    let mut api = KubeApi::new(client.clone());
    let objects = install.objects();
    // Created only when missing (labelled with the network then); an existing
    // namespace, and the labels others put on it, stay as they are.
    for ns in objects.iter().filter(|o| o["kind"] == "Namespace") {
        api.create_if_absent(ns).await?;
    }
    for (label, _, done) in COMPONENTS {
        let mine: Vec<&Value> = objects
            .iter()
            .filter(|o| o["kind"] != "Namespace" && component_of(o) == *label)
            .collect();
        if mine.is_empty() {
            continue;
        }
        for obj in &mine {
            if obj["kind"] == "CustomResourceDefinition" {
                // An Istio CRD already served (the real schema, or a newer one) stays as it is.
                api.create_if_absent(obj).await?;
            } else {
                api.apply(obj).await?;
            }
        }
        for obj in mine.iter().filter(|o| o["kind"] == "Deployment") {
            let ns = obj
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or(crate::istio::install::ISTIO_NAMESPACE);
            let name = obj
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .ok_or_else(|| IstioctlError::BadFile {
                    path: describe(obj),
                    message: "rendered without a name".into(),
                })?;
            api.wait_deployment(ns, name, readiness_timeout).await?;
        }
        if *label != "Pilot" || install.istiod {
            writeln!(out, "{done}")?;
        }
    }
    prune(&mut api, install, &objects, out).await?;
    writeln!(out, "✔ Installation complete")?;
    if install.istiod {
        writeln!(
            out,
            "Made this installation the default for cluster-wide operations."
        )?;
    }
    Ok(())
}

/// Deletes what an earlier install of the same owner left and this one no
/// longer renders, as istioctl's installer does after applying: among the
/// objects carrying its version, revision and (if the operator is named)
/// owner labels, any whose component no longer lists it. An unnamed
/// operator therefore prunes every unnamed *and named* install's leftovers
/// of the same revision: a separately installed east-west gateway goes
/// when an unnamed operator without it is installed again.
async fn prune(
    api: &mut KubeApi,
    install: &Install,
    objects: &[Value],
    out: &mut dyn Write,
) -> Result<(), IstioctlError> {
    let key = |kind: &str, ns: &str, name: &str| format!("{kind}:{ns}:{name}");
    let keep: std::collections::HashSet<(String, String)> = objects
        .iter()
        .map(|o| {
            let meta = &o["metadata"];
            (
                component_of(o).to_string(),
                key(
                    o["kind"].as_str().unwrap_or_default(),
                    meta["namespace"].as_str().unwrap_or_default(),
                    meta["name"].as_str().unwrap_or_default(),
                ),
            )
        })
        .collect();
    let mut selector = format!(
        "{MANAGED_LABEL}=Reconcile,{VERSION_LABEL}={},istio.io/rev={},{COMPONENT_LABEL}",
        install.version,
        crate::istio::install::rev_label(&install.revision)
    );
    if install.name != UNNAMED_OWNER {
        selector.push_str(&format!(",{OWNER_LABEL}={}", install.name));
    }
    for (api_version, kind) in NAMESPACED.iter().chain(CLUSTER) {
        for obj in api.list(api_version, kind, &selector).await? {
            let ns = obj.metadata.namespace.clone().unwrap_or_default();
            let name = obj.metadata.name.clone().unwrap_or_default();
            let component = obj
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(COMPONENT_LABEL))
                .cloned()
                .unwrap_or_default();
            if keep.contains(&(component, key(kind, &ns, &name))) {
                continue;
            }
            let namespace = Some(ns.as_str()).filter(|n| !n.is_empty());
            if api.delete(api_version, kind, namespace, &name).await? {
                writeln!(
                    out,
                    "  Removed {}.",
                    removed_name(api_version, kind, &name, &ns)
                )?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prompt_names_the_components() {
        let iop =
            json!({"apiVersion": "install.istio.io/v1alpha1", "kind": "IstioOperator", "spec": {}});
        let install = Install::from_iop(&iop, VERSION).unwrap();
        assert_eq!(
            human_join(&component_names(&install)),
            "Istio core, Istiod, and Ingress gateways"
        );
        assert_eq!(human_join(&["a", "b"]), "a and b");
    }
}
