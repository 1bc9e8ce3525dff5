//! `istioctl uninstall`: find what an install left, by labels, and delete it.
//!
//! As istioctl 1.30 (`operator/pkg/uninstall/prune.go`):
//! - `--purge`: every object of the pruned kinds carrying the component
//!   label, in every namespace, CustomResourceDefinitions included (a CRD
//!   istioctl did not create carries no such label and stays);
//! - `-f FILE`: the objects owned by that IstioOperator's name (any owner
//!   when it has none) of the components Pilot, IngressGateways,
//!   EgressGateways, Cni and Ztunnel: base (CRDs, the reader account) stays;
//! - `--revision R`: the same components of revision R.
//!
//! The `istio-system` namespace itself is never deleted.

use super::args::UninstallArgs;
use super::kube_api::KubeApi;
use super::operator::read_operator;
use super::pruned::{CLUSTER, NAMESPACED, removed_name};
use super::{Global, IstioctlError, confirm, connect};
use crate::istio::install::{COMPONENT_LABEL, OWNER_LABEL, OWNER_NAMESPACE_LABEL};
use kube::Client;
use kube::ResourceExt;
use serde_json::Value;
use std::io::{BufRead, Write};

const CRD: (&str, &str) = ("apiextensions.k8s.io/v1", "CustomResourceDefinition");

/// Components a non-purge uninstall removes (never base).
const PRUNED_COMPONENTS: &str = "Pilot,IngressGateways,EgressGateways,Cni,Ztunnel";

pub(super) async fn run(
    global: &Global,
    args: &UninstallArgs,
    out: &mut dyn Write,
    input: &mut dyn BufRead,
) -> Result<(), IstioctlError> {
    let (name, namespace) = match &args.file {
        Some(file) => {
            let iop = read_operator(std::slice::from_ref(file), &[], input)?;
            let field = |f: &str| {
                iop.pointer(&format!("/metadata/{f}"))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            };
            (field("name"), field("namespace"))
        }
        None => (None, None),
    };
    if args.purge && (args.file.is_some() || args.revision.is_some()) {
        writeln!(
            out,
            "Purge uninstall will remove all Istio resources, ignoring the specified revision or operator file"
        )?;
    }
    if args.purge {
        let message = "All Istio resources will be pruned from the cluster";
        if args.skip_confirmation {
            writeln!(out, "{message}")?;
        } else if !confirm(&format!("{message}\nProceed? (y/N)"), out, input)? {
            return Err(IstioctlError::Cancelled);
        }
    }
    let selector = if args.purge {
        COMPONENT_LABEL.to_string()
    } else {
        let mut parts = Vec::new();
        if let Some(n) = &name {
            parts.push(format!("{OWNER_LABEL}={n}"));
        }
        if let Some(ns) = &namespace {
            parts.push(format!("{OWNER_NAMESPACE_LABEL}={ns}"));
        }
        if let Some(rev) = &args.revision {
            parts.push(format!("istio.io/rev={rev}"));
        }
        parts.push(format!("{COMPONENT_LABEL} in ({PRUNED_COMPONENTS})"));
        parts.join(",")
    };
    let client = connect(global).await?;
    let removed = uninstall(&client, &selector, args.purge, out).await?;
    if removed == 0 {
        writeln!(out, "No Istio resources matched ({selector}).")?;
    }
    writeln!(out, "✔ Uninstall complete")?;
    Ok(())
}

/// Deletes every object matching `selector` among the pruned kinds (CRDs
/// too with `purge`); prints a line per object and returns how many.
pub async fn uninstall(
    client: &Client,
    selector: &str,
    purge: bool,
    out: &mut dyn Write,
) -> Result<usize, IstioctlError> {
    let mut api = KubeApi::new(client.clone());
    let mut kinds: Vec<(&str, &str)> = NAMESPACED.iter().chain(CLUSTER).copied().collect();
    if purge {
        kinds.push(CRD);
    }
    let mut removed = 0;
    for (api_version, kind) in kinds {
        for obj in api.list(api_version, kind, selector).await? {
            let ns = obj.namespace();
            let name = obj.name_any();
            if api.delete(api_version, kind, ns.as_deref(), &name).await? {
                removed += 1;
                writeln!(
                    out,
                    "  Removed {}.",
                    removed_name(api_version, kind, &name, ns.as_deref().unwrap_or_default())
                )?;
            }
        }
    }
    Ok(removed)
}
