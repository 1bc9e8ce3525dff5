use super::*;
use crate::schema::{FieldValidation, REASON_UNKNOWN, crd_version_schema, validate};
use std::collections::{BTreeMap, BTreeSet};

/// Every node of a schema as `path: type format enum flags required`:
/// what decides which fields exist and which values they take. Descriptions,
/// bounds, patterns, CEL rules and `oneOf`/`anyOf` choices are left out.
fn shape(schema: &Value) -> BTreeSet<String> {
    fn walk(node: &Value, path: &str, out: &mut BTreeSet<String>) {
        let text = |k: &str| node.get(k).map(Value::to_string).unwrap_or_default();
        let flag = |k: &str| node.get(k) == Some(&Value::Bool(true));
        let mut required: Vec<String> = node
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().map(Value::to_string).collect())
            .unwrap_or_default();
        required.sort();
        out.insert(format!(
            "{path}: {} {} {} nullable={} preserve={} int-or-string={} required={required:?}",
            text("type"),
            text("format"),
            text("enum"),
            flag("nullable"),
            flag("x-kubernetes-preserve-unknown-fields"),
            flag("x-kubernetes-int-or-string"),
        ));
        if let Some(props) = node.get("properties").and_then(Value::as_object) {
            for (name, child) in props {
                walk(child, &format!("{path}.{name}"), out);
            }
        }
        if let Some(items) = node.get("items").filter(|i| i.is_object()) {
            walk(items, &format!("{path}[]"), out);
        }
        if let Some(values) = node.get("additionalProperties").filter(|a| a.is_object()) {
            walk(values, &format!("{path}{{}}"), out);
        }
    }
    let mut out = BTreeSet::new();
    walk(schema, "", &mut out);
    out
}

/// Name, served and storage of each version.
fn versions(crd: &Value) -> BTreeSet<String> {
    crd["spec"]["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| {
            format!(
                "{} served={} storage={}",
                v["name"], v["served"], v["storage"]
            )
        })
        .collect()
}

fn names(crd: &Value) -> Value {
    let mut names = crd["spec"]["names"].clone();
    if names.get("shortNames").is_none() {
        names["shortNames"] = json!([]);
    }
    json!({"scope": crd["spec"]["scope"], "group": crd["spec"]["group"], "names": names})
}

/// Istio's own CRDs by name, or None when the test skipped.
fn istios(test: &str) -> Option<BTreeMap<String, Value>> {
    let path = crate::testdata::istio_file("crds/crd-all.gen.yaml", test)?;
    let text = std::fs::read_to_string(&path).expect("Istio's CRDs read");
    let mut out = BTreeMap::new();
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let crd: Value = serde::Deserialize::deserialize(doc).expect("a YAML document");
        if let Some(name) = crd.pointer("/metadata/name").and_then(Value::as_str) {
            out.insert(name.to_string(), crd);
        }
    }
    Some(out)
}

#[test]
fn our_kinds_are_istios_kinds_field_for_field() {
    let Some(istio) = istios("our_kinds_are_istios_kinds_field_for_field") else {
        return;
    };
    let ours: BTreeSet<String> = KINDS.iter().map(IstioKind::crd_name).collect();
    let theirs: BTreeSet<String> = istio.keys().cloned().collect();
    assert_eq!(ours, theirs, "the kinds registered");
    for kind in KINDS {
        let ours = kind.crd();
        let theirs = &istio[&kind.crd_name()];
        assert_eq!(names(&ours), names(theirs), "{}", kind.kind);
        assert_eq!(versions(&ours), versions(theirs), "{}", kind.kind);
        for version in kind.versions {
            let mine = shape(crd_version_schema(&ours, version).expect("our schema"));
            let istios = shape(crd_version_schema(theirs, version).expect("Istio's schema"));
            let missing: Vec<&String> = istios.difference(&mine).collect();
            let extra: Vec<&String> = mine.difference(&istios).collect();
            assert!(
                missing.is_empty() && extra.is_empty(),
                "{} {version}:\n Istio's, not ours: {missing:#?}\n ours, not Istio's: {extra:#?}",
                kind.kind
            );
        }
    }
}

#[test]
fn unknown_fields_are_refused_deep_down_and_known_ones_kept() {
    let dr = KINDS
        .iter()
        .find(|k| k.kind == "DestinationRule")
        .expect("DestinationRule is registered");
    let schema = dr.schema();
    let object = |traffic_policy: Value| {
        json!({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
            "metadata": {"name": "r"},
            "spec": {"host": "reviews", "subsets": [{"name": "v1", "labels": {"version": "v1"},
                "trafficPolicy": traffic_policy}]}})
    };
    let good = object(json!({"tls": {"mode": "ISTIO_MUTUAL"},
        "loadBalancer": {"localityLbSetting": {"enabled": true}},
        "outlierDetection": {"consecutive5xxErrors": 7, "interval": "5m"}}));
    let kept = validate(&schema, &good, FieldValidation::Strict).expect("valid");
    assert_eq!(kept.object, good);
    let bad = object(json!({"outlierDetection": {"noSuchField": 1}}));
    let errors = validate(&schema, &bad, FieldValidation::Strict).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].reason, REASON_UNKNOWN);
    assert_eq!(
        errors[0].field,
        "spec.subsets[0].trafficPolicy.outlierDetection.noSuchField"
    );
    let bad = object(json!({"tls": {"mode": "SOMETIMES"}}));
    assert!(validate(&schema, &bad, FieldValidation::Strict).is_err());
}

#[test]
fn every_kind_has_status_and_a_storage_version_it_serves() {
    for kind in KINDS {
        assert!(kind.versions.contains(&kind.storage), "{}", kind.kind);
        let crd = kind.crd();
        let stored: Vec<&Value> = crd["spec"]["versions"]
            .as_array()
            .expect("versions")
            .iter()
            .filter(|v| v["storage"] == true)
            .collect();
        assert_eq!(stored.len(), 1, "{}", kind.kind);
        assert_eq!(
            kind.schema()["properties"]["status"]["x-kubernetes-preserve-unknown-fields"],
            true
        );
    }
}
