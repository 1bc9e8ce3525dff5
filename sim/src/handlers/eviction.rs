//! `pods/eviction` (a policy/v1 Eviction POSTed to a pod): the pod is deleted gracefully
//! unless a PodDisruptionBudget selecting it has no disruption to spare, which is a 429 as
//! on a real API server.

use super::objects::grace;
use super::request::{Ctx, dry_run};
use crate::http::{Body, json_response};
use crate::selector::LabelSelector;
use crate::status::ApiError;
use crate::store::{DeleteOptions, Propagation, meta_str};
use hyper::Response;
use serde_json::{Value, json};

pub(super) fn evict(ctx: &Ctx<'_>) -> Result<Response<Body>, ApiError> {
    let name = ctx.target.name.as_deref().unwrap_or_default();
    let ns = ctx.target.namespace.as_deref().unwrap_or_default();
    let store = &ctx.cluster.store;
    let body: Value = if ctx.req.body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&ctx.req.body).map_err(|e| {
            ApiError::bad_request(format!("the Eviction body is not valid JSON: {e}"))
        })?
    };
    if let Some(n) = body.pointer("/metadata/name").and_then(Value::as_str)
        && n != name
    {
        return Err(ApiError::bad_request(format!(
            "name in URL does not match name in Eviction object: {name} != {n}"
        )));
    }
    let pod = store.get_arc(&ctx.rt, Some(ns), name)?;
    let options = body.get("deleteOptions").cloned().unwrap_or(Value::Null);
    let done = matches!(
        pod.pointer("/status/phase").and_then(Value::as_str),
        Some("Succeeded" | "Failed")
    );
    // Ended or already terminating pods disrupt nothing.
    if !done && pod.pointer("/metadata/deletionTimestamp").is_none() {
        check_budgets(ctx, ns, &pod)?;
    }
    let pre = |k: &str| {
        options
            .pointer(&format!("/preconditions/{k}"))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let opts = DeleteOptions {
        dry_run: dry_run(ctx.req)?,
        propagation: Propagation::Background,
        precondition_uid: pre("uid"),
        precondition_rv: pre("resourceVersion"),
        grace: grace(None, &options)?,
    };
    store.delete(&ctx.rt, Some(ns), name, &opts)?;
    Ok(json_response(
        201,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
    ))
}

/// The PodDisruptionBudgets that select the pod must each allow one more disruption: healthy
/// (Ready, not terminating) selected pods beyond what the budget needs.
fn check_budgets(ctx: &Ctx<'_>, ns: &str, pod: &Value) -> Result<(), ApiError> {
    let store = &ctx.cluster.store;
    let Some(pdb_rt) = store.resolve("policy", "v1", "poddisruptionbudgets") else {
        return Ok(());
    };
    let budgets: Vec<_> = store
        .list(&pdb_rt, Some(ns))
        .0
        .into_iter()
        .filter(|b| selector(b).is_some_and(|s| s.matches_object(pod)))
        .collect();
    if budgets.len() > 1 {
        return Err(ApiError::internal(
            "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
        ));
    }
    let Some(budget) = budgets.first() else {
        return Ok(());
    };
    let sel = selector(budget).unwrap_or_else(LabelSelector::nothing);
    let selected: Vec<_> = store
        .list(&ctx.rt, Some(ns))
        .0
        .into_iter()
        .filter(|p| sel.matches_object(p))
        .collect();
    let expected = selected.len() as i64;
    let healthy = selected
        .iter()
        .filter(|p| p.pointer("/metadata/deletionTimestamp").is_none() && ready(p))
        .count() as i64;
    let spec = budget.get("spec").cloned().unwrap_or_default();
    let desired = if let Some(min) = spec.get("minAvailable") {
        scaled(min, expected)
    } else if let Some(max) = spec.get("maxUnavailable") {
        expected - scaled(max, expected)
    } else {
        0
    };
    // An unready pod may go while the budget holds (IfHealthyBudget); a ready one needs a spare.
    let allowed = if ready(pod) {
        healthy - desired > 0
    } else {
        healthy >= desired
    };
    if allowed {
        return Ok(());
    }
    let budget_name = meta_str(budget, "name").unwrap_or_default();
    let mut err = ApiError::new(
        429,
        "TooManyRequests",
        "Cannot evict pod as it would violate the pod's disruption budget.",
    );
    err.details = Some(
        json!({"causes": [{"reason": "DisruptionBudget", "message": format!(
            "The disruption budget {budget_name} needs {desired} healthy pods and has {healthy} currently"
        )}]}),
    );
    Err(err)
}

fn selector(budget: &Value) -> Option<LabelSelector> {
    LabelSelector::from_label_selector_json(
        budget.pointer("/spec/selector").unwrap_or(&Value::Null),
    )
    .ok()
}

fn ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

/// An int-or-percent of `total` (percentages rounded up, as the disruption controller does).
fn scaled(v: &Value, total: i64) -> i64 {
    match v {
        Value::Number(n) => n.as_i64().unwrap_or(0),
        Value::String(s) => {
            let pct: i64 = s.trim_end_matches('%').parse().unwrap_or(0);
            let x = pct * total;
            (x + 99) / 100
        }
        _ => 0,
    }
}
