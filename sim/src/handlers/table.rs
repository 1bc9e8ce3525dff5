//! Server-side printing (`Accept: ...;as=Table;g=meta.k8s.io;v=v1`): the
//! columns `kubectl get` shows.

use super::body::for_version;
use super::request::Ctx;
use crate::http::Req;
use crate::resources::ResourceType;
use serde_json::{Value, json};
use std::sync::Arc;

pub(super) fn wants_table(req: &Req) -> bool {
    req.header("accept").is_some_and(|a| a.contains("as=Table"))
}

type Column = (&'static str, &'static str, fn(&Value) -> Value);

fn s(v: Option<&Value>) -> Value {
    v.cloned().unwrap_or(json!(""))
}

fn i(obj: &Value, ptr: &str) -> i64 {
    obj.pointer(ptr).and_then(Value::as_i64).unwrap_or(0)
}

fn builtin_columns(kind: &str) -> Vec<Column> {
    match kind {
        "Namespace" => vec![("Status", "string", |o| s(o.pointer("/status/phase")))],
        "Deployment" => vec![
            ("Ready", "string", |o| {
                json!(format!(
                    "{}/{}",
                    i(o, "/status/readyReplicas"),
                    i(o, "/spec/replicas")
                ))
            }),
            ("Up-to-date", "integer", |o| {
                json!(i(o, "/status/updatedReplicas"))
            }),
            ("Available", "integer", |o| {
                json!(i(o, "/status/availableReplicas"))
            }),
        ],
        "Pod" => vec![
            ("Ready", "string", |o| {
                let total = o
                    .pointer("/spec/containers")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len);
                let ready = o
                    .pointer("/status/containerStatuses")
                    .and_then(Value::as_array)
                    .map_or(0, |c| {
                        c.iter()
                            .filter(|c| c.get("ready") == Some(&json!(true)))
                            .count()
                    });
                json!(format!("{ready}/{total}"))
            }),
            ("Status", "string", |o| s(o.pointer("/status/phase"))),
            ("Restarts", "integer", |_| json!(0)),
        ],
        "Service" => vec![
            ("Type", "string", |o| s(o.pointer("/spec/type"))),
            ("Cluster-IP", "string", |o| s(o.pointer("/spec/clusterIP"))),
            ("External-IP", "string", |o| {
                o.pointer("/status/loadBalancer/ingress/0/ip")
                    .cloned()
                    .unwrap_or(json!(
                        if o.pointer("/spec/type") == Some(&json!("LoadBalancer")) {
                            "<pending>"
                        } else {
                            "<none>"
                        }
                    ))
            }),
            ("Port(s)", "string", |o| {
                let ports: Vec<String> = o
                    .pointer("/spec/ports")
                    .and_then(Value::as_array)
                    .map(|ps| {
                        ps.iter()
                            .map(|p| {
                                format!(
                                    "{}/{}",
                                    p.get("port").and_then(Value::as_i64).unwrap_or(0),
                                    p.get("protocol").and_then(Value::as_str).unwrap_or("TCP")
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                json!(if ports.is_empty() {
                    "<none>".to_string()
                } else {
                    ports.join(",")
                })
            }),
        ],
        "Job" => vec![
            ("Status", "string", |o| {
                let complete = o
                    .pointer("/status/conditions")
                    .and_then(Value::as_array)
                    .and_then(|cs| cs.iter().find(|c| c.get("status") == Some(&json!("True"))))
                    .and_then(|c| c.get("type").cloned());
                complete.unwrap_or(json!("Running"))
            }),
            ("Completions", "string", |o| {
                json!(format!(
                    "{}/{}",
                    i(o, "/status/succeeded"),
                    o.pointer("/spec/completions")
                        .and_then(Value::as_i64)
                        .unwrap_or(1)
                ))
            }),
        ],
        "Secret" => vec![
            ("Type", "string", |o| s(o.get("type"))),
            ("Data", "integer", |o| {
                json!(
                    o.get("data")
                        .and_then(Value::as_object)
                        .map_or(0, |m| m.len())
                )
            }),
        ],
        // As the node printer: Ready (or NotReady), then SchedulingDisabled when cordoned.
        "Node" => vec![
            ("Status", "string", |o| {
                let ready = o
                    .pointer("/status/conditions")
                    .and_then(Value::as_array)
                    .and_then(|cs| cs.iter().find(|c| c.get("type") == Some(&json!("Ready"))))
                    .map(|c| c.get("status") == Some(&json!("True")));
                let mut status = match ready {
                    Some(true) => "Ready".to_string(),
                    Some(false) => "NotReady".to_string(),
                    None => "Unknown".to_string(),
                };
                if o.pointer("/spec/unschedulable") == Some(&json!(true)) {
                    status.push_str(",SchedulingDisabled");
                }
                json!(status)
            }),
            ("Roles", "string", |o| {
                let roles: Vec<&str> = o
                    .pointer("/metadata/labels")
                    .and_then(Value::as_object)
                    .map(|m| {
                        m.keys()
                            .filter_map(|k| k.strip_prefix("node-role.kubernetes.io/"))
                            .collect()
                    })
                    .unwrap_or_default();
                json!(if roles.is_empty() {
                    "<none>".to_string()
                } else {
                    roles.join(",")
                })
            }),
        ],
        // As the APIService printer: `Local` without a service, else namespace/name.
        "APIService" => vec![
            ("Service", "string", |o| match o.pointer("/spec/service") {
                Some(svc) if !svc.is_null() => json!(format!(
                    "{}/{}",
                    svc.get("namespace")
                        .and_then(Value::as_str)
                        .unwrap_or_default(),
                    svc.get("name").and_then(Value::as_str).unwrap_or_default()
                )),
                _ => json!("Local"),
            }),
            ("Available", "string", |o| {
                let cond = o
                    .pointer("/status/conditions")
                    .and_then(Value::as_array)
                    .and_then(|cs| {
                        cs.iter()
                            .find(|c| c.get("type") == Some(&json!("Available")))
                    });
                json!(match cond {
                    None => "Unknown".to_string(),
                    Some(c) if c.get("status") == Some(&json!("True")) => "True".to_string(),
                    Some(c) => format!(
                        "{} ({})",
                        c.get("status").and_then(Value::as_str).unwrap_or("Unknown"),
                        c.get("reason").and_then(Value::as_str).unwrap_or_default()
                    ),
                })
            }),
        ],
        "ConfigMap" => vec![("Data", "integer", |o| {
            json!(
                o.get("data")
                    .and_then(Value::as_object)
                    .map_or(0, |m| m.len())
            )
        })],
        _ => Vec::new(),
    }
}

/// Evaluates the simple `.a.b.c` JSONPaths of printer columns.
fn json_path(obj: &Value, path: &str) -> Value {
    let mut cur = obj;
    for part in path
        .trim_start_matches('.')
        .split('.')
        .filter(|p| !p.is_empty())
    {
        match cur.get(part) {
            Some(v) => cur = v,
            None => return Value::Null,
        }
    }
    cur.clone()
}

pub(super) fn table(ctx: &Ctx<'_>, items: &[Arc<Value>], rv: &str) -> Value {
    let include_object = ctx
        .req
        .param("includeObject")
        .unwrap_or("PartialObjectMetadata");
    table_for(&ctx.rt, items, rv, include_object, true)
}

/// A Table of `items`; watches send the column definitions only once.
pub(super) fn table_for(
    rt: &ResourceType,
    items: &[Arc<Value>],
    rv: &str,
    include_object: &str,
    with_columns: bool,
) -> Value {
    let builtin = builtin_columns(&rt.kind);
    let mut defs = vec![
        json!({"name": "Name", "type": "string", "format": "name", "description": "Name must be unique within a namespace.", "priority": 0}),
    ];
    for (name, ty, _) in &builtin {
        defs.push(
            json!({"name": name, "type": ty, "format": "", "description": "", "priority": 0}),
        );
    }
    let custom: Vec<&Value> = rt.printer_columns.iter().collect();
    for c in &custom {
        defs.push(json!({
            "name": c.get("name").cloned().unwrap_or(json!("")),
            "type": c.get("type").cloned().unwrap_or(json!("string")),
            "format": "", "description": c.get("description").cloned().unwrap_or(json!("")),
            "priority": c.get("priority").cloned().unwrap_or(json!(0)),
        }));
    }
    let has_age = custom.iter().any(|c| c.get("name") == Some(&json!("Age")));
    if !has_age {
        defs.push(json!({"name": "Age", "type": "string", "format": "", "description": "", "priority": 0}));
    }
    let rows: Vec<Value> = items
        .iter()
        .map(|o| {
            let mut cells = vec![s(o.pointer("/metadata/name"))];
            for (_, _, f) in &builtin {
                cells.push(f(o));
            }
            for c in &custom {
                let path = c
                    .get("jsonPath")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let v = json_path(o, path);
                let is_date = c.get("type") == Some(&json!("date"));
                cells.push(match (is_date, &v) {
                    (true, Value::String(ts)) => json!(age(ts)),
                    (_, Value::Null) => json!("<none>"),
                    _ => v,
                });
            }
            if !has_age {
                cells.push(json!(age(o
                    .pointer("/metadata/creationTimestamp")
                    .and_then(Value::as_str)
                    .unwrap_or_default())));
            }
            let object = match include_object {
                "None" => Value::Null,
                "Object" => for_version(rt, o),
                _ => json!({
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": o.get("metadata").cloned().unwrap_or_default(),
                }),
            };
            json!({"cells": cells, "object": object})
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": rv},
        "columnDefinitions": if with_columns { defs } else { Vec::new() },
        "rows": rows,
    })
}

/// kubectl's short age: `42s`, `5m`, `3h`, `2d`.
fn age(ts: &str) -> String {
    let Ok(t) = time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339)
    else {
        return "<unknown>".into();
    };
    let secs = (time::OffsetDateTime::now_utc() - t).whole_seconds().max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 3600 * 3 => format!("{}m", s / 60),
        s if s < 86400 * 2 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}
