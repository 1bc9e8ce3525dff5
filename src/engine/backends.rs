//! Which Deployments a scale names: the object itself, or the backends of a
//! Service (scale actions and the backends-drained/available waits share it).

use super::context::{ActionError, StepCtx};
use crate::plan::{ObjectRef, ScaleTarget};
use serde_json::Value;

/// The Deployments a scale acts on: the object itself, or every Deployment
/// of the Service's namespace whose pod template its selector matches.
pub(crate) async fn scale_targets(
    ctx: &StepCtx,
    cluster: &str,
    target: &ScaleTarget,
) -> Result<Vec<ObjectRef>, ActionError> {
    match target {
        ScaleTarget::Object(o) => Ok(vec![o.clone()]),
        ScaleTarget::ServiceBackends(service) => {
            let c = ctx.cluster(cluster)?;
            let svc = ctx
                .retry(|| c.get(service))
                .await?
                .ok_or_else(|| ActionError::Failed(format!("{service} not found in {cluster}")))?;
            let ns = service.namespace.clone().unwrap_or_default();
            let deployments = ctx
                .retry(|| c.list("apps/v1", "Deployment", Some(&ns), None))
                .await?;
            Ok(backends_of(&svc, &deployments)
                .into_iter()
                .map(|name| ObjectRef::namespaced("apps/v1", "Deployment", &ns, &name))
                .collect())
        }
    }
}

/// Names of the Deployments whose pod template labels match the Service's selector.
fn backends_of(service: &Value, deployments: &[Value]) -> Vec<String> {
    let Some(selector) = service.pointer("/spec/selector").and_then(Value::as_object) else {
        return Vec::new();
    };
    if selector.is_empty() {
        return Vec::new();
    }
    let mut names: Vec<String> = deployments
        .iter()
        .filter(|d| {
            let labels = d.pointer("/spec/template/metadata/labels");
            selector
                .iter()
                .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
        })
        .filter_map(|d| {
            d.pointer("/metadata/name")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .collect();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn backends_are_deployments_whose_template_matches_the_selector() {
        let svc = json!({"spec": {"selector": {"app": "helloworld"}}});
        let deps = vec![
            json!({"metadata": {"name": "helloworld-v2"}, "spec": {"template": {"metadata": {"labels": {"app": "helloworld", "version": "v2"}}}}}),
            json!({"metadata": {"name": "curl"}, "spec": {"template": {"metadata": {"labels": {"app": "curl"}}}}}),
            json!({"metadata": {"name": "helloworld-v1"}, "spec": {"template": {"metadata": {"labels": {"app": "helloworld", "version": "v1"}}}}}),
        ];
        assert_eq!(
            backends_of(&svc, &deps),
            vec!["helloworld-v1", "helloworld-v2"]
        );
        assert!(backends_of(&json!({"spec": {"selector": {}}}), &deps).is_empty());
    }
}
