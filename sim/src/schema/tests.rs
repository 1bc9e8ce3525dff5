use super::*;
use serde::Deserialize;
use serde_json::json;
use std::sync::OnceLock;

/// Istio's CRDs, parsed once; `None` (the test skips) where they are not beside the repository.
fn istio_crds(test: &str) -> Option<&'static [Value]> {
    static CRDS_PARSED: OnceLock<Vec<Value>> = OnceLock::new();
    let path = crate::testdata::istio_file("crds/crd-all.gen.yaml", test)?;
    Some(CRDS_PARSED.get_or_init(|| {
        let text = std::fs::read_to_string(&path).unwrap();
        yaml_docs(&text)
    }))
}

fn yaml_docs(text: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .map(|d| Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

fn istio_schema(kind: &str, version: &str, test: &str) -> Option<&'static Value> {
    let crd = istio_crds(test)?
        .iter()
        .find(|c| c.pointer("/spec/names/kind").and_then(Value::as_str) == Some(kind))
        .unwrap_or_else(|| panic!("no CRD for {kind}"));
    Some(
        crd_version_schema(crd, version)
            .unwrap_or_else(|| panic!("no schema for {kind} {version}")),
    )
}

fn dr(spec: Value) -> Value {
    json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": {"name": "reviews", "namespace": "default"},
        "spec": spec
    })
}

fn valid_dr() -> Value {
    dr(json!({
        "host": "reviews.default.svc.cluster.local",
        "trafficPolicy": {
            "tls": {"mode": "ISTIO_MUTUAL"},
            "loadBalancer": {"simple": "ROUND_ROBIN"},
            "connectionPool": {"tcp": {"maxConnections": 100}},
            "outlierDetection": {"consecutive5xxErrors": 7, "interval": "5m", "baseEjectionTime": "15m"}
        },
        "subsets": [{"name": "v1", "labels": {"version": "v1"}}]
    }))
}

#[test]
fn istios_crds_parse() {
    let Some(crds) = istio_crds("istios_crds_parse") else {
        return;
    };
    assert!(crds.len() >= 10);
}

#[test]
fn valid_destination_rule_passes_unchanged() {
    let Some(schema) = istio_schema(
        "DestinationRule",
        "v1",
        "valid_destination_rule_passes_unchanged",
    ) else {
        return;
    };
    let obj = valid_dr();
    let out = validate(schema, &obj, FieldValidation::Strict).unwrap();
    assert_eq!(out.object, obj);
    assert!(out.warnings.is_empty());
}

#[test]
fn unknown_field_strict_names_the_field() {
    let Some(schema) = istio_schema(
        "DestinationRule",
        "v1",
        "unknown_field_strict_names_the_field",
    ) else {
        return;
    };
    let mut obj = valid_dr();
    obj["spec"]["trafficPolicy"]["foo"] = json!("bar");
    obj["spec"]["bogus"] = json!(1);
    let errs = validate(schema, &obj, FieldValidation::Strict).unwrap_err();
    let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
    assert!(fields.contains(&"spec.trafficPolicy.foo"), "{errs:?}");
    assert!(fields.contains(&"spec.bogus"), "{errs:?}");
    let e = errs
        .iter()
        .find(|e| e.field == "spec.trafficPolicy.foo")
        .unwrap();
    assert_eq!(e.reason, "FieldUnknown");
    assert_eq!(e.message, "unknown field \"spec.trafficPolicy.foo\"");
    assert_eq!(e.to_string(), "unknown field \"spec.trafficPolicy.foo\"");
    assert_eq!(
        strict_decoding_message("DestinationRule", "v1", &errs).unwrap(),
        "DestinationRule in version \"v1\" cannot be handled as a DestinationRule: strict decoding error: \
         unknown field \"spec.trafficPolicy.foo\", unknown field \"spec.bogus\""
    );
    assert!(strict_decoding_message("X", "v1", &[required("spec.a")]).is_none());
}

#[test]
fn unknown_field_warn_and_ignore_prune() {
    let Some(schema) = istio_schema(
        "DestinationRule",
        "v1",
        "unknown_field_warn_and_ignore_prune",
    ) else {
        return;
    };
    let mut obj = valid_dr();
    obj["spec"]["trafficPolicy"]["foo"] = json!({"deep": true});
    obj["spec"]["subsets"][0]["extra"] = json!(1);
    let out = validate(schema, &obj, FieldValidation::Warn).unwrap();
    assert_eq!(out.object, valid_dr());
    let mut warnings = out.warnings.clone();
    warnings.sort();
    assert_eq!(
        warnings,
        vec![
            "unknown field \"spec.subsets[0].extra\"".to_string(),
            "unknown field \"spec.trafficPolicy.foo\"".to_string()
        ]
    );
    assert_eq!(out.warnings.len(), 2, "{:?}", out.warnings);
    let out = validate(schema, &obj, FieldValidation::Ignore).unwrap();
    assert_eq!(out.object, valid_dr());
    assert!(out.warnings.is_empty());
}

#[test]
fn deprecated_consecutive_errors_is_still_accepted() {
    let Some(schema) = istio_schema(
        "DestinationRule",
        "v1",
        "deprecated_consecutive_errors_is_still_accepted",
    ) else {
        return;
    };
    let obj =
        dr(json!({"host": "a", "trafficPolicy": {"outlierDetection": {"consecutiveErrors": 5}}}));
    validate(schema, &obj, FieldValidation::Strict).unwrap();
}

#[test]
fn wrong_types_fail_with_all_errors_collected() {
    let Some(schema) = istio_schema(
        "DestinationRule",
        "v1",
        "wrong_types_fail_with_all_errors_collected",
    ) else {
        return;
    };
    let obj = dr(json!({
        "host": 42,
        "trafficPolicy": {"connectionPool": {"tcp": {"maxConnections": "many"}}},
        "subsets": {"name": "v1"}
    }));
    let errs = validate(schema, &obj, FieldValidation::Strict).unwrap_err();
    let find = |f: &str| {
        errs.iter()
            .find(|e| e.field == f)
            .unwrap_or_else(|| panic!("{f}: {errs:?}"))
    };
    let host = find("spec.host");
    assert_eq!(host.reason, "FieldValueTypeInvalid");
    assert_eq!(
        host.message,
        "Invalid value: \"integer\": spec.host in body must be of type string: \"integer\""
    );
    assert_eq!(
        find("spec.trafficPolicy.connectionPool.tcp.maxConnections").reason,
        "FieldValueTypeInvalid"
    );
    assert_eq!(find("spec.subsets").reason, "FieldValueTypeInvalid");
}

#[test]
fn enum_violations_list_supported_values() {
    let Some(schema) = istio_schema(
        "DestinationRule",
        "v1",
        "enum_violations_list_supported_values",
    ) else {
        return;
    };
    let obj = dr(json!({"host": "a", "trafficPolicy": {"tls": {"mode": "SOMETIMES"}}}));
    let errs = validate(schema, &obj, FieldValidation::Strict).unwrap_err();
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].field, "spec.trafficPolicy.tls.mode");
    assert_eq!(errs[0].reason, "FieldValueNotSupported");
    assert!(
        errs[0]
            .message
            .starts_with("Unsupported value: \"SOMETIMES\": supported values: \"DISABLE\""),
        "{}",
        errs[0].message
    );
}

#[test]
fn istio_required_and_one_of() {
    let Some(schema) = istio_schema("DestinationRule", "v1", "istio_required_and_one_of") else {
        return;
    };
    // host is required
    let errs = validate(schema, &dr(json!({"subsets": []})), FieldValidation::Strict).unwrap_err();
    assert!(
        errs.iter()
            .any(|e| e.field == "spec.host" && e.message == "Required value"),
        "{errs:?}"
    );
    // loadBalancer: simple and consistentHash are mutually exclusive (oneOf)
    let obj = dr(json!({"host": "a", "trafficPolicy": {"loadBalancer": {
        "simple": "ROUND_ROBIN", "consistentHash": {"httpHeaderName": "x"}}}}));
    let errs = validate(schema, &obj, FieldValidation::Strict).unwrap_err();
    assert!(
        errs.iter()
            .any(|e| e.field == "spec.trafficPolicy.loadBalancer" && e.message.contains("oneOf")),
        "{errs:?}"
    );
}

#[test]
fn multicluster_samples_pass() {
    let Some(samples) =
        crate::testdata::istio_file("samples/multicluster", "multicluster_samples_pass")
    else {
        return;
    };
    let mut checked = 0;
    for file in [
        "expose-services.yaml",
        "expose-istiod.yaml",
        "expose-istiod-https.yaml",
    ] {
        let text = std::fs::read_to_string(samples.join(file)).unwrap();
        for doc in yaml_docs(&text) {
            let kind = doc["kind"].as_str().unwrap();
            let version = doc["apiVersion"]
                .as_str()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap();
            let schema = istio_schema(kind, version, "multicluster_samples_pass").unwrap();
            let out = validate(schema, &doc, FieldValidation::Strict)
                .unwrap_or_else(|e| panic!("{file} {kind}: {e:?}"));
            assert_eq!(out.object, doc);
            checked += 1;
        }
    }
    assert!(checked >= 3);
}

#[test]
fn peer_authentication_passes_and_mode_is_checked() {
    let Some(schema) = istio_schema(
        "PeerAuthentication",
        "v1",
        "peer_authentication_passes_and_mode_is_checked",
    ) else {
        return;
    };
    let pa = json!({
        "apiVersion": "security.istio.io/v1",
        "kind": "PeerAuthentication",
        "metadata": {"name": "default", "namespace": "istio-system"},
        "spec": {"mtls": {"mode": "STRICT"}, "portLevelMtls": {"8080": {"mode": "PERMISSIVE"}}}
    });
    assert_eq!(
        validate(schema, &pa, FieldValidation::Strict)
            .unwrap()
            .object,
        pa
    );
    let mut bad = pa.clone();
    bad["spec"]["mtls"]["mode"] = json!("MAYBE");
    bad["spec"]["portLevelMtls"]["8080"]["mode"] = json!(3);
    let errs = validate(schema, &bad, FieldValidation::Strict).unwrap_err();
    assert!(errs.iter().any(|e| e.field == "spec.mtls.mode"), "{errs:?}");
    assert!(
        errs.iter()
            .any(|e| e.field == "spec.portLevelMtls[8080].mode"),
        "{errs:?}"
    );
}

#[test]
fn api_version_and_kind_must_be_present() {
    let schema = json!({"type": "object"});
    let errs = validate(
        &schema,
        &json!({"metadata": {"name": "x"}}),
        FieldValidation::Strict,
    )
    .unwrap_err();
    let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, vec!["apiVersion", "kind"]);
    assert!(validate(&schema, &json!([]), FieldValidation::Strict).is_err());
}

fn obj(spec: Value) -> Value {
    json!({"apiVersion": "x/v1", "kind": "X", "metadata": {"name": "a", "anything": 1}, "spec": spec})
}

fn spec_schema(spec: Value) -> Value {
    json!({"type": "object", "properties": {"spec": spec}})
}

#[test]
fn defaults_are_applied_and_null_pruned() {
    let schema = spec_schema(json!({
        "type": "object",
        "properties": {
            "replicas": {"type": "integer", "default": 1},
            "mode": {"type": "string", "default": "A"},
            "note": {"type": "string", "nullable": true},
            "inner": {"type": "object", "properties": {"x": {"type": "string", "default": "d"}}}
        }
    }));
    let out = validate(
        &schema,
        &obj(json!({"mode": null, "note": null, "inner": {}})),
        FieldValidation::Strict,
    )
    .unwrap();
    assert_eq!(
        out.object["spec"],
        json!({"mode": "A", "note": null, "inner": {"x": "d"}, "replicas": 1})
    );
    // an absent parent gets no defaults below it
    let out = validate(&schema, &obj(json!({})), FieldValidation::Strict).unwrap();
    assert_eq!(out.object["spec"], json!({"replicas": 1, "mode": "A"}));
    // a non-nullable null without default is dropped, then required applies
    let schema = spec_schema(
        json!({"type": "object", "required": ["r"], "properties": {"r": {"type": "string"}}}),
    );
    let errs = validate(&schema, &obj(json!({"r": null})), FieldValidation::Strict).unwrap_err();
    assert_eq!(errs[0].field, "spec.r");
    assert_eq!(errs[0].reason, "FieldValueRequired");
}

#[test]
fn preserve_unknown_fields_and_maps() {
    let schema = spec_schema(json!({
        "type": "object",
        "properties": {
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                     "properties": {"typed": {"type": "object", "properties": {"a": {"type": "string"}}}}},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "open": {"type": "object", "additionalProperties": true},
            "closed": {"type": "object"}
        }
    }));
    let input = obj(json!({
        "free": {"anything": {"deep": [1, 2]}, "typed": {"a": "x", "b": "pruned"}},
        "labels": {"a": "b", "c": 3},
        "open": {"k": {"v": 1}},
        "closed": {"gone": 1}
    }));
    let errs = validate(&schema, &input, FieldValidation::Strict).unwrap_err();
    let fields: Vec<_> = errs
        .iter()
        .map(|e| (e.field.as_str(), e.reason.as_str()))
        .collect();
    assert_eq!(
        fields,
        vec![
            ("spec.free.typed.b", "FieldUnknown"),
            ("spec.labels[c]", "FieldValueTypeInvalid"),
            ("spec.closed.gone", "FieldUnknown")
        ]
    );
    let mut fixed = input.clone();
    fixed["spec"]["labels"]["c"] = json!("3");
    let out = validate(&schema, &fixed, FieldValidation::Ignore).unwrap();
    assert_eq!(
        out.object["spec"]["free"],
        json!({"anything": {"deep": [1, 2]}, "typed": {"a": "x"}})
    );
    assert_eq!(out.object["spec"]["open"], json!({"k": {"v": 1}}));
    assert_eq!(out.object["spec"]["closed"], json!({}));
    // metadata is the server's business: not pruned
    assert_eq!(out.object["metadata"]["anything"], 1);
}

#[test]
fn int_or_string_and_numbers() {
    let schema = spec_schema(json!({"type": "object", "properties": {
        "port": {"x-kubernetes-int-or-string": true},
        "ratio": {"type": "number", "minimum": 0, "maximum": 1},
        "count": {"type": "integer", "minimum": 1, "exclusiveMaximum": true, "maximum": 10},
        "step": {"type": "integer", "multipleOf": 5}
    }}));
    validate(
        &schema,
        &obj(json!({"port": 80, "ratio": 1, "count": 9, "step": 15})),
        FieldValidation::Strict,
    )
    .unwrap();
    validate(
        &schema,
        &obj(json!({"port": "http", "ratio": 0.5})),
        FieldValidation::Strict,
    )
    .unwrap();
    let errs = validate(
        &schema,
        &obj(json!({"port": true, "ratio": 1.5, "count": 10, "step": 7})),
        FieldValidation::Strict,
    )
    .unwrap_err();
    let msgs: Vec<_> = errs.iter().map(|e| format!("{e}")).collect();
    assert_eq!(
        msgs,
        vec![
            "spec.port: Invalid value: \"boolean\": spec.port in body must be of type integer,string: \"boolean\"",
            "spec.ratio: Invalid value: 1.5: spec.ratio in body should be less than or equal to 1",
            "spec.count: Invalid value: 10: spec.count in body should be less than 10",
            "spec.step: Invalid value: 7: spec.step in body should be a multiple of 5",
        ]
    );
    let errs = validate(
        &schema,
        &obj(json!({"count": 0, "ratio": "x"})),
        FieldValidation::Strict,
    )
    .unwrap_err();
    assert_eq!(errs.len(), 2);
    assert!(
        errs[0].message.contains("greater than or equal to 1")
            || errs[1].message.contains("greater than or equal to 1")
    );
    // integer rejects fractions, number accepts integers
    let errs = validate(
        &schema,
        &obj(json!({"count": 2.5})),
        FieldValidation::Strict,
    )
    .unwrap_err();
    assert_eq!(errs[0].reason, "FieldValueTypeInvalid");
}

#[test]
fn strings_lengths_patterns_formats() {
    let schema = spec_schema(json!({"type": "object", "properties": {
        "name": {"type": "string", "minLength": 2, "maxLength": 5, "pattern": "^[a-z]+$"},
        "when": {"type": "string", "format": "date-time"},
        "data": {"type": "string", "format": "byte"},
        "ip": {"type": "string", "format": "ipv4"},
        "n": {"type": "integer", "format": "int32"}
    }}));
    validate(
        &schema,
        &obj(json!({"name": "abc", "when": "2026-11-21T17:00:00Z", "data": "aGVsbG8=", "ip": "10.0.0.1", "n": 5_000_000_000u64})),
        FieldValidation::Strict,
    )
    .unwrap();
    let errs = validate(
        &schema,
        &obj(json!({"name": "ABCDEFG", "when": "yesterday", "data": "!!", "ip": "300.1.1.1"})),
        FieldValidation::Strict,
    )
    .unwrap_err();
    let reasons: Vec<_> = errs
        .iter()
        .map(|e| (e.field.as_str(), e.reason.as_str()))
        .collect();
    assert_eq!(
        reasons,
        vec![
            ("spec.name", "FieldValueTooLong"),
            ("spec.name", "FieldValueInvalid"),
            ("spec.when", "FieldValueInvalid"),
            ("spec.data", "FieldValueInvalid"),
            ("spec.ip", "FieldValueInvalid"),
        ]
    );
    assert!(errs[1].message.contains("should match '^[a-z]+$'"));
    let errs = validate(&schema, &obj(json!({"name": "a"})), FieldValidation::Strict).unwrap_err();
    assert!(
        errs[0].message.contains("at least 2 chars long"),
        "{errs:?}"
    );
}

#[test]
fn arrays_items_and_list_types() {
    let schema = spec_schema(json!({"type": "object", "properties": {
        "hosts": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 2,
                  "x-kubernetes-list-type": "set"},
        "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["port"],
                  "items": {"type": "object", "properties": {"port": {"type": "integer"}}}}
    }}));
    validate(
        &schema,
        &obj(json!({"hosts": ["a"], "ports": [{"port": 1}, {"port": 2}]})),
        FieldValidation::Strict,
    )
    .unwrap();
    let errs = validate(
        &schema,
        &obj(json!({"hosts": ["a", "a", 3], "ports": [{"port": 1, "x": 1}, {"port": 1}]})),
        FieldValidation::Strict,
    )
    .unwrap_err();
    let got: Vec<_> = errs
        .iter()
        .map(|e| (e.field.as_str(), e.reason.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("spec.hosts", "FieldValueTooMany"),
            ("spec.hosts[1]", "FieldValueDuplicate"),
            ("spec.hosts[2]", "FieldValueTypeInvalid"),
            ("spec.ports[1]", "FieldValueDuplicate"),
            ("spec.ports[0].x", "FieldUnknown"),
        ]
    );
    let errs = validate(&schema, &obj(json!({"hosts": []})), FieldValidation::Strict).unwrap_err();
    assert!(errs[0].message.contains("should have at least 1 items"));
}

#[test]
fn combinators_are_value_checks() {
    let schema = spec_schema(json!({"type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "string"}, "c": {"type": "integer"}},
        "oneOf": [{"required": ["a"]}, {"required": ["b"]}],
        "anyOf": [{"required": ["c"]}, {"properties": {"a": {"enum": ["x"]}}}],
        "not": {"required": ["d"]}
    }));
    validate(&schema, &obj(json!({"a": "x"})), FieldValidation::Strict).unwrap();
    validate(
        &schema,
        &obj(json!({"b": "y", "c": 1})),
        FieldValidation::Strict,
    )
    .unwrap();
    let errs = validate(
        &schema,
        &obj(json!({"a": "x", "b": "y"})),
        FieldValidation::Strict,
    )
    .unwrap_err();
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0]
            .message
            .contains("must validate one and only one schema (oneOf)")
    );
    let errs = validate(&schema, &obj(json!({"a": "z"})), FieldValidation::Strict).unwrap_err();
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].message.contains("(anyOf)"), "{errs:?}");
    let all = spec_schema(
        json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true,
        "allOf": [{"required": ["a"]}, {"required": ["b"]}], "not": {"required": ["d"]}}),
    );
    let errs = validate(&all, &obj(json!({"a": 1, "d": 1})), FieldValidation::Strict).unwrap_err();
    let msgs: Vec<_> = errs.iter().map(|e| e.message.as_str()).collect();
    assert!(
        msgs.iter().any(|m| m.contains("(allOf)")) && msgs.iter().any(|m| m.contains("(not)")),
        "{msgs:?}"
    );
}

#[test]
fn embedded_resources_keep_type_meta() {
    let schema = spec_schema(json!({"type": "object", "properties": {"template": {
        "type": "object", "x-kubernetes-embedded-resource": true,
        "properties": {"spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}
    }}}));
    let input = obj(
        json!({"template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"x": 1}, "junk": 1}}),
    );
    let out = validate(&schema, &input, FieldValidation::Ignore).unwrap();
    assert_eq!(
        out.object["spec"]["template"],
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"x": 1}})
    );
}

#[test]
fn field_validation_query_values() {
    assert_eq!(
        FieldValidation::from_query("Warn"),
        Some(FieldValidation::Warn)
    );
    assert_eq!(FieldValidation::from_query("strict"), None);
    assert_eq!(FieldValidation::default(), FieldValidation::Warn);
}

#[test]
fn crd_version_schema_picks_the_version() {
    let crd = json!({"spec": {"versions": [
        {"name": "v1alpha3", "schema": {"openAPIV3Schema": {"type": "object", "description": "old"}}},
        {"name": "v1", "schema": {"openAPIV3Schema": {"type": "object", "description": "new"}}}
    ]}});
    assert_eq!(
        crd_version_schema(&crd, "v1").unwrap()["description"],
        "new"
    );
    assert_eq!(
        crd_version_schema(&crd, "v1alpha3").unwrap()["description"],
        "old"
    );
    assert!(crd_version_schema(&crd, "v2").is_none());
    let legacy = json!({"spec": {"validation": {"openAPIV3Schema": {"type": "object"}}}});
    assert!(crd_version_schema(&legacy, "v1beta1").is_some());
}

#[test]
fn regexes_compile_once() {
    let a = cached_regex("^x+$").unwrap();
    let b = cached_regex("^x+$").unwrap();
    assert!(Arc::ptr_eq(&a, &b));
    assert!(cached_regex("(unclosed").is_none());
}

#[test]
#[ignore = "prints timings: cargo test -p meshsim --lib timings_print_figures -- --ignored --nocapture"]
fn timings_print_figures() {
    use crate::merge::apply::{record_update, server_side_apply};
    let Some(schema) = istio_schema("DestinationRule", "v1", "timings_print_figures") else {
        return;
    };
    let obj = valid_dr();
    let t = std::time::Instant::now();
    for _ in 0..1000 {
        validate(schema, &obj, FieldValidation::Strict).unwrap();
    }
    println!("validate DR: {:?}/op", t.elapsed() / 1000);
    let crd = istio_crds("timings_print_figures")
        .unwrap()
        .iter()
        .find(|c| c.pointer("/spec/names/kind").and_then(Value::as_str) == Some("DestinationRule"))
        .unwrap();
    println!("CRD json bytes: {}", crd.to_string().len());
    let t = std::time::Instant::now();
    let mut created = Value::Null;
    for _ in 0..10 {
        created = record_update("CustomResourceDefinition", None, crd, "kubectl-create", "t");
    }
    println!(
        "record_update create CRD: {:?}/op, out bytes {}",
        t.elapsed() / 10,
        created.to_string().len()
    );
    let t = std::time::Instant::now();
    for _ in 0..10 {
        server_side_apply("CustomResourceDefinition", None, crd, "kubectl", false, "t").unwrap();
    }
    println!("ssa create CRD: {:?}/op", t.elapsed() / 10);
    let live =
        server_side_apply("CustomResourceDefinition", None, crd, "kubectl", false, "t").unwrap();
    let t = std::time::Instant::now();
    for _ in 0..10 {
        server_side_apply(
            "CustomResourceDefinition",
            Some(&live),
            crd,
            "kubectl",
            false,
            "t2",
        )
        .unwrap();
    }
    println!("ssa re-apply CRD: {:?}/op", t.elapsed() / 10);
}
