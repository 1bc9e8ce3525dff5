//! `istioctl install`: read the IstioOperator (files overlaid in order,
//! then `--set`), apply what it renders component by component with
//! server-side apply, wait for each component's Deployments, and print
//! what istioctl prints.

use super::args::InstallArgs;
use super::kube_api::{KubeApi, describe};
use super::uninstall::{CLUSTER, NAMESPACED};
use super::{Global, IstioctlError, VERSION, confirm, connect};
use crate::istio::install::{
    COMPONENT_LABEL, Install, MANAGED_LABEL, OWNER_LABEL, UNNAMED_OWNER, VERSION_LABEL,
};
use kube::Client;
use serde_json::{Map, Value};
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
    let install = Install::from_iop(&iop, VERSION)?;
    if !args.skip_confirmation {
        let prompt = format!(
            "This will install the Istio {VERSION} {:?} profile (with components: {}) into the cluster. Proceed? (y/N)",
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
    let install = Install::from_iop(iop, VERSION)?;
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
        "{MANAGED_LABEL}=Reconcile,{VERSION_LABEL}={},istio.io/rev=default,{COMPONENT_LABEL}",
        install.version
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

/// `apps/v1, Kind=Deployment/istiod.istio-system`, as istioctl names what it deletes.
pub(super) fn removed_name(api_version: &str, kind: &str, name: &str, ns: &str) -> String {
    let gv = match api_version.split_once('/') {
        Some((g, v)) => format!("{g}/{v}"),
        None => format!("/{api_version}"),
    };
    format!("{gv}, Kind={kind}/{name}.{ns}")
}

/// The IstioOperator from `-f` files (later ones overlay earlier ones; `-`
/// is stdin; none means the default profile) with `--set` applied on top.
pub fn read_operator(
    files: &[String],
    sets: &[String],
    stdin: &mut dyn BufRead,
) -> Result<Value, IstioctlError> {
    let mut iop = serde_json::json!({
        "apiVersion": "install.istio.io/v1alpha1",
        "kind": "IstioOperator",
        "spec": {},
    });
    for path in files {
        let text = if path == "-" {
            let mut s = String::new();
            stdin
                .read_to_string(&mut s)
                .map_err(|source| IstioctlError::ReadFile {
                    path: "stdin".into(),
                    source,
                })?;
            s
        } else {
            std::fs::read_to_string(path).map_err(|source| IstioctlError::ReadFile {
                path: path.clone(),
                source,
            })?
        };
        let shown = if path == "-" { "stdin" } else { path.as_str() };
        let doc = parse_operator(&text).map_err(|message| IstioctlError::BadFile {
            path: shown.to_string(),
            message,
        })?;
        merge(&mut iop, &doc);
    }
    for set in sets {
        let (path, value) = set.split_once('=').ok_or_else(|| IstioctlError::BadFile {
            path: format!("--set {set}"),
            message: "expected path=value".into(),
        })?;
        set_path(&mut iop["spec"], path, parse_scalar(value)).map_err(|message| {
            IstioctlError::BadFile {
                path: format!("--set {set}"),
                message,
            }
        })?;
    }
    Ok(iop)
}

/// One IstioOperator document, checked for its kind.
fn parse_operator(text: &str) -> Result<Value, String> {
    let doc: Value = serde_yaml::from_str(text).map_err(|e| format!("not valid YAML: {e}"))?;
    match &doc {
        Value::Null => Err("empty: expected an IstioOperator".into()),
        Value::Object(m) => {
            let api = m.get("apiVersion").and_then(Value::as_str).unwrap_or("");
            let kind = m.get("kind").and_then(Value::as_str).unwrap_or("");
            if kind != "IstioOperator" || !api.starts_with("install.istio.io/") {
                return Err(format!(
                    "expected apiVersion install.istio.io/v1alpha1 and kind IstioOperator, found {:?} {:?}",
                    api, kind
                ));
            }
            if let Some(spec) = m.get("spec")
                && !spec.is_object()
                && !spec.is_null()
            {
                return Err("spec must be a mapping".into());
            }
            Ok(doc)
        }
        _ => Err("expected a mapping (an IstioOperator)".into()),
    }
}

/// `true`/`false` and numbers as YAML reads them; anything else is a string.
fn parse_scalar(text: &str) -> Value {
    match text {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        _ => text
            .parse::<i64>()
            .map(Value::from)
            .or_else(|_| text.parse::<f64>().map(Value::from))
            .unwrap_or_else(|_| Value::String(text.to_string())),
    }
}

fn set_path(target: &mut Value, path: &str, value: Value) -> Result<(), String> {
    let mut cur = target;
    let parts: Vec<&str> = path.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(format!("{path:?} is not a valid path"));
    }
    for (i, part) in parts.iter().enumerate() {
        if cur.is_null() {
            *cur = Value::Object(Map::new());
        }
        let map = cur
            .as_object_mut()
            .ok_or_else(|| format!("{} is not a mapping", parts[..i].join(".")))?;
        if i + 1 == parts.len() {
            map.insert(part.to_string(), value);
            return Ok(());
        }
        cur = map.entry(part.to_string()).or_insert(Value::Null);
    }
    Ok(())
}

/// Deep merge: mappings merged key by key, anything else replaced.
fn merge(target: &mut Value, overlay: &Value) {
    match (target, overlay) {
        (Value::Object(t), Value::Object(o)) => {
            for (k, v) in o {
                match t.get_mut(k) {
                    Some(existing) if existing.is_object() && v.is_object() => merge(existing, v),
                    _ => {
                        t.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (t, o) => *t = o.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn files_overlay_and_sets_apply_to_the_spec() {
        let dir = tempfile_dir();
        let a = dir.join("a.yaml");
        let b = dir.join("b.yaml");
        std::fs::write(&a, "apiVersion: install.istio.io/v1alpha1\nkind: IstioOperator\nmetadata: {name: east}\nspec:\n  values:\n    global: {meshID: m1, network: n1}\n").unwrap();
        std::fs::write(&b, "apiVersion: install.istio.io/v1alpha1\nkind: IstioOperator\nspec:\n  values:\n    global: {network: n2}\n").unwrap();
        let files = vec![a.display().to_string(), b.display().to_string()];
        let sets = vec![
            "values.global.multiCluster.clusterName=c1".to_string(),
            "values.pilot.replicaCount=2".to_string(),
        ];
        let iop = read_operator(&files, &sets, &mut std::io::empty()).unwrap();
        assert_eq!(iop["metadata"]["name"], "east");
        assert_eq!(
            iop["spec"]["values"]["global"],
            json!({"meshID": "m1", "network": "n2", "multiCluster": {"clusterName": "c1"}})
        );
        assert_eq!(iop["spec"]["values"]["pilot"]["replicaCount"], 2);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn stdin_and_the_default_profile() {
        let iop = read_operator(&[], &[], &mut std::io::empty()).unwrap();
        assert_eq!(Install::from_iop(&iop, VERSION).unwrap().profile, "default");
        let mut input: &[u8] =
            b"apiVersion: install.istio.io/v1alpha1\nkind: IstioOperator\nspec: {profile: empty}\n";
        let iop = read_operator(&["-".to_string()], &[], &mut input).unwrap();
        assert_eq!(iop["spec"]["profile"], "empty");
    }

    #[test]
    fn bad_files_name_the_file() {
        let dir = tempfile_dir();
        let bad = dir.join("bad.yaml");
        std::fs::write(&bad, "apiVersion: v1\nkind: ConfigMap\n").unwrap();
        let err =
            read_operator(&[bad.display().to_string()], &[], &mut std::io::empty()).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("bad.yaml") && text.contains("IstioOperator"),
            "{text}"
        );
        std::fs::write(&bad, "spec: [unclosed\n").unwrap();
        let text = read_operator(&[bad.display().to_string()], &[], &mut std::io::empty())
            .unwrap_err()
            .to_string();
        assert!(text.contains("bad.yaml") && text.contains("YAML"), "{text}");
        let missing = dir.join("missing.yaml").display().to_string();
        let text = read_operator(std::slice::from_ref(&missing), &[], &mut std::io::empty())
            .unwrap_err()
            .to_string();
        assert!(text.contains(&missing), "{text}");
        let text = read_operator(&[], &["novalue".into()], &mut std::io::empty())
            .unwrap_err()
            .to_string();
        assert!(text.contains("path=value"), "{text}");
        let _ = std::fs::remove_dir_all(&dir);
    }

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

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "istioctl-test-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
