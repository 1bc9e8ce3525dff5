//! The IstioOperator an `istioctl` command line names: `-f` files overlaid
//! in order (`-` is stdin), then `--set path=value` on top.

use super::IstioctlError;
use serde_json::{Map, Value};
use std::io::BufRead;

/// The IstioOperator from `-f` files (later ones overlay earlier ones; `-`
/// is stdin; none means the default profile) with `--set` applied on top.
pub(super) fn read_operator(
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
    use crate::istio::install::Install;
    use crate::istioctl::VERSION;
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
