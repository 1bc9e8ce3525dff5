//! Strategic merge patch (`application/strategic-merge-patch+json`) for the
//! built-in kinds kubectl patches: lists merged by their merge key
//! (containers by `name`, env by `name`, ports by `containerPort`/`port`,
//! volumes by `name`, ...), `$patch: delete|replace`, `$retainKeys`,
//! `$deleteFromPrimitiveList/<field>`, `$setElementOrder/<field>`.

use super::PatchError;
use super::types::{self, Field, ListType, TypeNode};
use serde_json::{Map, Value};

const PATCH: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const DELETE_FROM: &str = "$deleteFromPrimitiveList/";
const SET_ORDER: &str = "$setElementOrder/";

/// Whether the server accepts strategic merge patches for `kind` (built-in
/// kinds). Custom resources get 415 Unsupported Media Type from a real server.
pub fn supports_strategic(kind: &str) -> bool {
    types::root(kind).is_some()
}

/// `kind` is the object's kind (`Deployment`, `Service`, ...); unknown kinds
/// (custom resources) get RFC 7386 merge semantics, as the real server does.
pub fn strategic_merge_patch(
    kind: &str,
    target: &Value,
    patch: &Value,
) -> Result<Value, PatchError> {
    let Some(root) = types::root(kind) else {
        return Ok(super::merge_patch(target, patch));
    };
    let Value::Object(patch) = patch else {
        return Err(PatchError::BadPatch(
            "a strategic merge patch must be a JSON object".into(),
        ));
    };
    let mut out = target.clone();
    if !out.is_object() {
        out = Value::Object(Map::new());
    }
    if patch_directive(patch)? == Some(Directive::Delete) {
        return Ok(Value::Object(Map::new()));
    }
    merge_object(&mut out, patch, Some(root))?;
    Ok(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Directive {
    Replace,
    Delete,
    Merge,
}

fn patch_directive(patch: &Map<String, Value>) -> Result<Option<Directive>, PatchError> {
    match patch.get(PATCH) {
        None => Ok(None),
        Some(v) => match v.as_str() {
            Some("replace") => Ok(Some(Directive::Replace)),
            Some("delete") => Ok(Some(Directive::Delete)),
            Some("merge") => Ok(Some(Directive::Merge)),
            _ => Err(PatchError::BadPatch(format!(
                "unknown patch type {v} in {}",
                Value::Object(patch.clone())
            ))),
        },
    }
}

fn is_directive(key: &str) -> bool {
    key == PATCH || key == RETAIN_KEYS || key.starts_with(DELETE_FROM) || key.starts_with(SET_ORDER)
}

fn string_list<'a>(value: &'a Value, what: &str) -> Result<&'a [Value], PatchError> {
    match value {
        Value::Array(items) => Ok(items),
        _ => Err(PatchError::BadPatch(format!(
            "{what} must be a list, got {value}"
        ))),
    }
}

/// Merges the object `patch` into `orig` (made an object if it is not one).
/// The caller has handled `$patch: delete`.
fn merge_object(
    orig: &mut Value,
    patch: &Map<String, Value>,
    node: Option<&'static TypeNode>,
) -> Result<(), PatchError> {
    let directive = patch_directive(patch)?;
    if directive == Some(Directive::Replace) || !orig.is_object() {
        *orig = Value::Object(Map::new());
    }
    let Value::Object(o) = orig else {
        unreachable!("made an object above")
    };

    if let Some(keys) = patch.get(RETAIN_KEYS) {
        let keys = string_list(keys, RETAIN_KEYS)?;
        for k in patch.keys().filter(|k| !is_directive(k)) {
            if !keys.iter().any(|x| x.as_str() == Some(k)) {
                return Err(PatchError::BadPatch(format!(
                    "key {k:?} is not listed in {RETAIN_KEYS} {}",
                    Value::Array(keys.to_vec())
                )));
            }
        }
        o.retain(|k, _| keys.iter().any(|x| x.as_str() == Some(k)));
    }

    // Identities of the live items of lists that get reordered, taken before merging.
    let mut orders = Vec::new();
    for (k, v) in patch {
        if let Some(field) = k.strip_prefix(DELETE_FROM) {
            let remove = string_list(v, k)?;
            if let Some(Value::Array(list)) = o.get_mut(field) {
                list.retain(|x| !remove.contains(x));
            }
        } else if let Some(field) = k.strip_prefix(SET_ORDER) {
            let order = string_list(v, k)?;
            let lt = types::list_type(types::child(node, field));
            let live: Vec<Value> = match o.get(field) {
                Some(Value::Array(list)) => list
                    .iter()
                    .filter_map(|x| identity(x, lt).cloned())
                    .collect(),
                _ => Vec::new(),
            };
            orders.push((field, order, lt, live));
        }
    }

    for (k, pv) in patch {
        if is_directive(k) {
            continue;
        }
        if pv.is_null() {
            o.remove(k);
            continue;
        }
        let field = types::child(node, k);
        match o.get_mut(k) {
            Some(ov) => {
                if merge_value(ov, pv, field)? {
                    o.remove(k);
                }
            }
            None => {
                if let Some(v) = fresh(pv, field)? {
                    o.insert(k.clone(), v);
                }
            }
        }
    }

    for (field, order, lt, live) in orders {
        if let Some(Value::Array(list)) = o.get_mut(field) {
            reorder(list, order, lt, &live);
        }
    }
    Ok(())
}

/// Merges `patch` into `orig`; true when the field is to be removed (`$patch: delete`).
fn merge_value(orig: &mut Value, patch: &Value, field: Option<Field>) -> Result<bool, PatchError> {
    match patch {
        Value::Object(p) => {
            if patch_directive(p)? == Some(Directive::Delete) {
                return Ok(true);
            }
            merge_object(orig, p, types::map_node(field))?;
        }
        Value::Array(p) => {
            let lt = types::list_type(field);
            match orig {
                Value::Array(o) => merge_list(o, p, lt)?,
                _ => {
                    let mut list = Vec::new();
                    merge_list(&mut list, p, lt)?;
                    *orig = Value::Array(list);
                }
            }
        }
        _ => *orig = patch.clone(),
    }
    Ok(false)
}

/// A patch value for a field the object does not have: merged into nothing,
/// so directives and nulls never reach the result. None: nothing to add.
fn fresh(patch: &Value, field: Option<Field>) -> Result<Option<Value>, PatchError> {
    let mut v = match patch {
        Value::Object(_) => Value::Object(Map::new()),
        Value::Array(_) => Value::Array(Vec::new()),
        _ => return Ok(Some(patch.clone())),
    };
    if merge_value(&mut v, patch, field)? {
        return Ok(None);
    }
    Ok(Some(v))
}

/// What identifies an item for `$setElementOrder` and set semantics.
fn identity(item: &Value, lt: ListType) -> Option<&Value> {
    match lt {
        ListType::Map { key, .. } => item.get(key),
        _ => Some(item),
    }
}

fn merge_list(orig: &mut Vec<Value>, patch: &[Value], lt: ListType) -> Result<(), PatchError> {
    // Directive elements (`{"$patch": "replace"}`, `{"name": "x", "$patch": "delete"}`).
    let mut replace = false;
    let mut has_directives = false;
    for item in patch {
        let Value::Object(m) = item else { continue };
        match patch_directive(m)? {
            None => {}
            Some(Directive::Replace) => {
                replace = true;
                has_directives = true;
            }
            Some(Directive::Merge) => has_directives = true,
            Some(Directive::Delete) => {
                has_directives = true;
                match lt {
                    ListType::Map { key, .. } => {
                        let Some(k) = m.get(key) else {
                            return Err(PatchError::BadPatch(format!(
                                "{} does not contain declared merge key {key:?}",
                                item
                            )));
                        };
                        orig.retain(|x| x.get(key) != Some(k));
                    }
                    _ => {
                        return Err(PatchError::BadPatch(format!(
                            "$patch: delete in a list without merge key: {item}"
                        )));
                    }
                }
            }
        }
    }
    let plain =
        |item: &&Value| !has_directives || !item.as_object().is_some_and(|m| m.contains_key(PATCH));
    if replace || matches!(lt, ListType::Atomic) {
        orig.clear();
        for item in patch.iter().filter(plain) {
            if let Some(v) = fresh(item, None)? {
                orig.push(v);
            }
        }
        return Ok(());
    }
    match lt {
        ListType::Atomic => unreachable!("handled above"),
        ListType::Set => {
            for item in patch.iter().filter(plain) {
                if !orig.contains(item) {
                    orig.push(item.clone());
                }
            }
        }
        ListType::Map {
            key, item: node, ..
        } => {
            for item in patch.iter().filter(plain) {
                let Value::Object(p) = item else {
                    return Err(PatchError::BadPatch(format!(
                        "list items merged by {key:?} must be objects, got {item}"
                    )));
                };
                let Some(k) = p.get(key) else {
                    return Err(PatchError::BadPatch(format!(
                        "{item} does not contain declared merge key {key:?}"
                    )));
                };
                match orig.iter_mut().find(|x| x.get(key) == Some(k)) {
                    Some(existing) => merge_object(existing, p, node)?,
                    None => {
                        let mut v = Value::Object(Map::new());
                        merge_object(&mut v, p, node)?;
                        orig.push(v);
                    }
                }
            }
        }
    }
    Ok(())
}

/// `$setElementOrder`: items named in `order` take that order; the others keep
/// their place relative to the live list (as the API server interleaves them).
fn reorder(list: &mut Vec<Value>, order: &[Value], lt: ListType, live: &[Value]) {
    let order_id = |o: &Value| -> Option<Value> {
        match lt {
            ListType::Map { key, .. } => o.get(key).cloned(),
            _ => Some(o.clone()),
        }
    };
    let wanted: Vec<Value> = order.iter().filter_map(order_id).collect();
    let rank = |item: &Value| identity(item, lt).and_then(|id| wanted.iter().position(|w| w == id));
    let live_pos =
        |item: &Value| identity(item, lt).and_then(|id| live.iter().position(|w| w == id));

    let items = std::mem::take(list);
    let (mut ordered, others): (Vec<Value>, Vec<Value>) =
        items.into_iter().partition(|x| rank(x).is_some());
    ordered.sort_by_key(|x| rank(x));
    let mut ordered = ordered.into_iter().peekable();
    let mut others = others.into_iter().peekable();
    loop {
        let take_ordered = match (ordered.peek(), others.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(p), Some(s)) => match (live_pos(p), live_pos(s)) {
                (Some(a), Some(b)) => a < b,
                (None, _) => true,
                (Some(_), None) => true,
            },
        };
        let next = if take_ordered {
            ordered.next()
        } else {
            others.next()
        };
        list.extend(next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}, "finalizers": ["a", "b"]},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "containers": [
                            {"name": "web", "image": "nginx:1", "env": [{"name": "A", "value": "1"}],
                             "ports": [{"containerPort": 80}]},
                            {"name": "sidecar", "image": "proxy:1"}
                        ],
                        "volumes": [{"name": "data", "emptyDir": {}}],
                        "tolerations": [{"key": "a", "operator": "Exists"}]
                    }
                }
            }
        })
    }

    fn smp(target: &Value, patch: Value) -> Value {
        strategic_merge_patch("Deployment", target, &patch).unwrap()
    }

    #[test]
    fn rollout_restart_adds_template_annotation() {
        let d = deployment();
        let out = smp(
            &d,
            json!({"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":"2026-11-21T17:00:00Z"}}}}}),
        );
        assert_eq!(
            out["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"],
            "2026-11-21T17:00:00Z"
        );
        assert_eq!(
            out["spec"]["template"]["spec"],
            d["spec"]["template"]["spec"]
        );
        assert_eq!(
            out["spec"]["template"]["metadata"]["labels"],
            json!({"app": "web"})
        );
    }

    #[test]
    fn containers_merge_by_name() {
        let out = smp(
            &deployment(),
            json!({"spec":{"template":{"spec":{"containers":[
                {"name":"sidecar","image":"proxy:2"},
                {"name":"new","image":"busybox"}
            ]}}}}),
        );
        let cs = &out["spec"]["template"]["spec"]["containers"];
        assert_eq!(cs.as_array().unwrap().len(), 3);
        assert_eq!(cs[0]["image"], "nginx:1");
        assert_eq!(cs[0]["env"], json!([{"name": "A", "value": "1"}]));
        assert_eq!(cs[1], json!({"name": "sidecar", "image": "proxy:2"}));
        assert_eq!(cs[2], json!({"name": "new", "image": "busybox"}));
    }

    #[test]
    fn env_and_ports_merge_by_key() {
        let out = smp(
            &deployment(),
            json!({"spec":{"template":{"spec":{"containers":[
                {"name":"web","env":[{"name":"B","value":"2"},{"name":"A","value":"9"}],
                 "ports":[{"containerPort":80,"name":"http"},{"containerPort":443}]}
            ]}}}}),
        );
        let c = &out["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(
            c["env"],
            json!([{"name": "A", "value": "9"}, {"name": "B", "value": "2"}])
        );
        assert_eq!(
            c["ports"],
            json!([{"containerPort": 80, "name": "http"}, {"containerPort": 443}])
        );
    }

    #[test]
    fn atomic_lists_are_replaced() {
        let out = smp(
            &deployment(),
            json!({"spec":{"template":{"spec":{"tolerations":[{"key":"b","operator":"Exists"}]}}}}),
        );
        assert_eq!(
            out["spec"]["template"]["spec"]["tolerations"],
            json!([{"key": "b", "operator": "Exists"}])
        );
    }

    #[test]
    fn patch_delete_in_list_and_map() {
        let out = smp(
            &deployment(),
            json!({"spec":{"template":{"spec":{"containers":[{"name":"sidecar","$patch":"delete"}]}},
                   "strategy":{"$patch":"delete"}}}),
        );
        let cs = out["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap();
        assert_eq!(cs.len(), 1);
        assert_eq!(cs[0]["name"], "web");
        assert!(out["spec"].get("strategy").is_none());
        let e = strategic_merge_patch(
            "Deployment",
            &deployment(),
            &json!({"spec":{"template":{"spec":{"containers":[{"$patch":"delete"}]}}}}),
        )
        .unwrap_err();
        assert!(matches!(e, PatchError::BadPatch(_)));
    }

    #[test]
    fn patch_replace_in_list_and_map() {
        let out = smp(
            &deployment(),
            json!({"spec":{"template":{"spec":{"containers":[{"name":"only","image":"x"},{"$patch":"replace"}]}},
                   "strategy":{"$patch":"replace","type":"Recreate"}}}),
        );
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"],
            json!([{"name": "only", "image": "x"}])
        );
        assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
    }

    #[test]
    fn kubectl_apply_removals_and_volume_source_switch() {
        let mut d = deployment();
        d["spec"]["template"]["spec"]["containers"][0]["env"] =
            json!([{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]);
        // As kubectl apply computes it: drop env B and the sidecar, switch the volume to a ConfigMap.
        let out = smp(
            &d,
            json!({"spec":{"template":{"spec":{
                "$setElementOrder/containers":[{"name":"web"}],
                "containers":[
                    {"$setElementOrder/env":[{"name":"A"}],"env":[{"$patch":"delete","name":"B"}],"name":"web"},
                    {"$patch":"delete","name":"sidecar"}
                ],
                "$setElementOrder/volumes":[{"name":"data"}],
                "volumes":[{"$retainKeys":["configMap","name"],"configMap":{"name":"cfg"},"name":"data"}]
            }}}}),
        );
        let spec = &out["spec"]["template"]["spec"];
        assert_eq!(spec["containers"].as_array().unwrap().len(), 1);
        assert_eq!(
            spec["containers"][0]["env"],
            json!([{"name": "A", "value": "1"}])
        );
        assert_eq!(
            spec["volumes"],
            json!([{"name": "data", "configMap": {"name": "cfg"}}])
        );
        assert!(!out.to_string().contains('$'), "{out}");
    }

    #[test]
    fn top_level_directives() {
        let out = smp(
            &deployment(),
            json!({"$patch": "replace", "kind": "Deployment", "spec": {"replicas": 1}}),
        );
        assert_eq!(out, json!({"kind": "Deployment", "spec": {"replicas": 1}}));
        assert_eq!(smp(&deployment(), json!({"$patch": "delete"})), json!({}));
    }

    #[test]
    fn patch_merge_directive_is_a_plain_merge() {
        let out = smp(
            &deployment(),
            json!({"spec":{"strategy":{"$patch":"merge","type":"Recreate"}}}),
        );
        assert_eq!(
            out["spec"]["strategy"],
            json!({"type": "Recreate", "rollingUpdate": {"maxSurge": 1}})
        );
        let e = strategic_merge_patch(
            "Deployment",
            &deployment(),
            &json!({"spec":{"$patch":"explode"}}),
        );
        assert!(matches!(e, Err(PatchError::BadPatch(_))));
    }

    #[test]
    fn retain_keys_clears_unlisted_fields() {
        let out = smp(
            &deployment(),
            json!({"spec":{"strategy":{"$retainKeys":["type"],"type":"Recreate"}}}),
        );
        assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
        let e = strategic_merge_patch(
            "Deployment",
            &deployment(),
            &json!({"spec":{"strategy":{"$retainKeys":["type"],"rollingUpdate":{}}}}),
        );
        assert!(matches!(e, Err(PatchError::BadPatch(_))));
    }

    #[test]
    fn finalizers_are_a_set() {
        let out = smp(
            &deployment(),
            json!({"metadata":{"finalizers":["b","c"],"$deleteFromPrimitiveList/finalizers":["a"]}}),
        );
        assert_eq!(out["metadata"]["finalizers"], json!(["b", "c"]));
    }

    #[test]
    fn set_element_order_is_honoured_and_not_leaked() {
        let out = smp(
            &deployment(),
            json!({"spec":{"template":{"spec":{
                "$setElementOrder/containers":[{"name":"sidecar"},{"name":"web"}],
                "containers":[{"name":"web","image":"nginx:2"}]
            }}}}),
        );
        let spec = &out["spec"]["template"]["spec"];
        let names: Vec<_> = spec["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].clone())
            .collect();
        assert_eq!(names, vec![json!("sidecar"), json!("web")]);
        assert_eq!(spec["containers"][1]["image"], "nginx:2");
        assert!(!out.to_string().contains('$'), "{out}");
        // primitive list order
        let out = smp(
            &deployment(),
            json!({"metadata":{"$setElementOrder/finalizers":["c","b","a"],"finalizers":["c"]}}),
        );
        assert_eq!(out["metadata"]["finalizers"], json!(["c", "b", "a"]));
    }

    #[test]
    fn server_only_items_keep_their_place() {
        // live [a, b, c]; the patch orders [c, a]; b is only on the server.
        let target = json!({"spec":{"containers":[{"name":"a"},{"name":"b"},{"name":"c"}]}});
        let out = strategic_merge_patch(
            "Pod",
            &target,
            &json!({"spec":{"$setElementOrder/containers":[{"name":"c"},{"name":"a"}]}}),
        )
        .unwrap();
        let names: Vec<_> = out["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].clone())
            .collect();
        assert_eq!(names, vec![json!("b"), json!("c"), json!("a")]);
    }

    #[test]
    fn client_side_apply_patch() {
        // What kubectl apply sends when it changes an image and drops a label.
        let out = smp(
            &deployment(),
            json!({
                "metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{}"},"labels":{"app":null}},
                "spec":{"template":{"spec":{
                    "$setElementOrder/containers":[{"name":"web"},{"name":"sidecar"}],
                    "containers":[{"name":"web","image":"nginx:3","$setElementOrder/env":[{"name":"A"}],"env":[{"name":"A","value":"2"}]}]
                }}}
            }),
        );
        assert_eq!(out["metadata"]["labels"], json!({}));
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"][0]["image"],
            "nginx:3"
        );
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"][0]["env"],
            json!([{"name":"A","value":"2"}])
        );
        assert!(!out.to_string().contains("$setElementOrder"));
    }

    #[test]
    fn new_fields_drop_directives_and_nulls() {
        let out = strategic_merge_patch(
            "Pod",
            &json!({"spec":{}}),
            &json!({"spec":{"containers":[{"name":"a","env":[{"name":"X","$patch":"delete"}],"image":null}],
                    "$setElementOrder/volumes":[{"name":"v"}],"volumes":[{"name":"v","x":{"$patch":"replace","y":1}}]}}),
        )
        .unwrap();
        assert_eq!(
            out,
            json!({"spec":{"containers":[{"name":"a","env":[]}],"volumes":[{"name":"v","x":{"y":1}}]}})
        );
    }

    #[test]
    fn service_ports_by_port_and_service_account_secrets() {
        let svc = json!({"spec":{"ports":[{"port":80,"targetPort":8080},{"port":443}]}});
        let out = strategic_merge_patch(
            "Service",
            &svc,
            &json!({"spec":{"ports":[{"port":80,"targetPort":9090}]}}),
        )
        .unwrap();
        assert_eq!(
            out["spec"]["ports"],
            json!([{"port":80,"targetPort":9090},{"port":443}])
        );
        let sa = json!({"secrets":[{"name":"a"}]});
        let out = strategic_merge_patch("ServiceAccount", &sa, &json!({"secrets":[{"name":"b"}]}))
            .unwrap();
        assert_eq!(out["secrets"], json!([{"name":"a"},{"name":"b"}]));
    }

    #[test]
    fn rbac_rules_replace_and_webhooks_merge() {
        let role = json!({"rules":[{"verbs":["get"]}]});
        let out =
            strategic_merge_patch("ClusterRole", &role, &json!({"rules":[{"verbs":["list"]}]}))
                .unwrap();
        assert_eq!(out["rules"], json!([{"verbs":["list"]}]));
        let wh = json!({"webhooks":[{"name":"a","x":1},{"name":"b"}]});
        let out = strategic_merge_patch(
            "MutatingWebhookConfiguration",
            &wh,
            &json!({"webhooks":[{"name":"a","y":2}]}),
        )
        .unwrap();
        assert_eq!(
            out["webhooks"],
            json!([{"name":"a","x":1,"y":2},{"name":"b"}])
        );
    }

    #[test]
    fn owner_references_and_conditions() {
        let pod = json!({"metadata":{"ownerReferences":[{"uid":"1","name":"rs"}]},
                         "status":{"conditions":[{"type":"Ready","status":"False"},{"type":"Init","status":"True"}]}});
        let out = strategic_merge_patch(
            "Pod",
            &pod,
            &json!({
            "metadata":{"ownerReferences":[{"uid":"2","name":"other"}]},
            "status":{"conditions":[{"type":"Ready","status":"True"}]}}),
        )
        .unwrap();
        assert_eq!(
            out["metadata"]["ownerReferences"].as_array().unwrap().len(),
            2
        );
        assert_eq!(
            out["status"]["conditions"],
            json!([{"type":"Ready","status":"True"},{"type":"Init","status":"True"}])
        );
    }

    #[test]
    fn custom_resources_use_merge_patch() {
        assert!(!supports_strategic("DestinationRule"));
        assert!(supports_strategic("Deployment"));
        let dr = json!({"spec":{"subsets":[{"name":"v1"}],"host":"a"}});
        let out = strategic_merge_patch(
            "DestinationRule",
            &dr,
            &json!({"spec":{"subsets":[{"name":"v2"}],"host":null}}),
        )
        .unwrap();
        assert_eq!(out, json!({"spec":{"subsets":[{"name":"v2"}]}}));
    }

    #[test]
    fn malformed_patches() {
        for p in [
            json!([1]),
            json!("x"),
            json!({"spec":{"template":{"spec":{"containers":[{"image":"no-name"}]}}}}),
            json!({"spec":{"template":{"spec":{"containers":["web"]}}}}),
            json!({"metadata":{"$deleteFromPrimitiveList/finalizers":"a"}}),
            json!({"spec":{"strategy":{"$retainKeys":"type"}}}),
        ] {
            assert!(
                matches!(
                    strategic_merge_patch("Deployment", &deployment(), &p),
                    Err(PatchError::BadPatch(_))
                ),
                "{p}"
            );
        }
    }

    #[test]
    fn scale_and_label_patches() {
        let out = smp(
            &deployment(),
            json!({"spec":{"replicas":5},"metadata":{"labels":{"tier":"front"}}}),
        );
        assert_eq!(out["spec"]["replicas"], 5);
        assert_eq!(
            out["metadata"]["labels"],
            json!({"app":"web","tier":"front"})
        );
        let out = smp(&deployment(), json!({"spec":{"replicas":null}}));
        assert!(out["spec"].get("replicas").is_none());
    }
}
