//! `edit-config`: change a YAML document kept under one key of a ConfigMap
//! (the Prometheus configuration, the `istio` mesh config), leaving the rest
//! of the document as it was.

use super::context::{ActionError, StepCtx};
use super::secrets;
use crate::plan::{ConfigEdit, ObjectRef, Substitution};
use serde_json::{Value, json};

/// Applies `edits` to the YAML under `key` of the ConfigMap, with substitutions filled in.
pub(crate) async fn run(
    ctx: &StepCtx,
    cluster: &str,
    object: &ObjectRef,
    key: &str,
    edits: &[ConfigEdit],
    substitutions: &[Substitution],
) -> Result<(), ActionError> {
    let c = ctx.cluster(cluster)?;
    let live = ctx.retry(|| c.get(object)).await?.ok_or_else(|| {
        ActionError::Failed(format!(
            "{object} not found in {cluster}: it must exist before migrate can edit {key}"
        ))
    })?;
    let text = live
        .pointer(&format!(
            "/data/{}",
            key.replace('~', "~0").replace('/', "~1")
        ))
        .and_then(Value::as_str)
        .unwrap_or("");
    let mut doc: Value = if text.trim().is_empty() {
        json!({})
    } else {
        serde_yaml::from_str(text).map_err(|e| {
            ActionError::Failed(format!(
                "{object} in {cluster}: data.{key} is not YAML: {e}"
            ))
        })?
    };
    for edit in edits {
        apply_edit(&mut doc, edit)
            .map_err(|e| ActionError::Failed(format!("{object} in {cluster}: data.{key}: {e}")))?;
    }
    let mut out = serde_yaml::to_string(&doc).map_err(|e| ActionError::Failed(e.to_string()))?;
    if !substitutions.is_empty() {
        out = secrets::substitute(ctx, &out, substitutions).await?;
    }
    if out == text {
        return Ok(());
    }
    let patch = json!({"data": {key: out}});
    ctx.retry(|| c.merge_patch(object, &patch)).await?;
    Ok(())
}

/// Applies one edit to the document.
pub(crate) fn apply_edit(doc: &mut Value, edit: &ConfigEdit) -> Result<(), String> {
    match edit {
        ConfigEdit::Set { path, value } => {
            let (last, parents) = path.split_last().ok_or("empty path")?;
            let parent = walk(doc, parents)?;
            parent.insert(last.clone(), value.clone());
            Ok(())
        }
        ConfigEdit::Upsert {
            path,
            match_key,
            item,
        } => {
            let (last, parents) = path.split_last().ok_or("empty path")?;
            let parent = walk(doc, parents)?;
            let list = parent.entry(last.clone()).or_insert_with(|| json!([]));
            if list.is_null() {
                *list = json!([]);
            }
            let items = list
                .as_array_mut()
                .ok_or_else(|| format!("{} is not a list", path.join(".")))?;
            let wanted = item.get(match_key);
            match items.iter_mut().find(|i| i.get(match_key) == wanted) {
                Some(existing) => *existing = item.clone(),
                None => items.push(item.clone()),
            }
            Ok(())
        }
    }
}

/// The map at `path`, creating maps on the way.
fn walk<'a>(
    doc: &'a mut Value,
    path: &[String],
) -> Result<&'a mut serde_json::Map<String, Value>, String> {
    let mut cur = doc;
    for (i, part) in path.iter().enumerate() {
        if cur.is_null() {
            *cur = json!({});
        }
        let map = cur
            .as_object_mut()
            .ok_or_else(|| format!("{} is not a map", path[..i].join(".")))?;
        cur = map.entry(part.clone()).or_insert_with(|| json!({}));
    }
    if cur.is_null() {
        *cur = json!({});
    }
    cur.as_object_mut()
        .ok_or_else(|| format!("{} is not a map", path.join(".")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_creates_maps_and_upsert_replaces_by_key() {
        let mut doc: Value = serde_yaml::from_str(
            "global:\n  scrape_interval: 15s\nscrape_configs:\n- job_name: a\n  x: 1\n",
        )
        .unwrap();
        apply_edit(
            &mut doc,
            &ConfigEdit::Set {
                path: vec!["global".into(), "external_labels".into(), "cluster".into()],
                value: json!("c1"),
            },
        )
        .unwrap();
        apply_edit(
            &mut doc,
            &ConfigEdit::Upsert {
                path: vec!["scrape_configs".into()],
                match_key: "job_name".into(),
                item: json!({"job_name": "a", "x": 2}),
            },
        )
        .unwrap();
        apply_edit(
            &mut doc,
            &ConfigEdit::Upsert {
                path: vec!["scrape_configs".into()],
                match_key: "job_name".into(),
                item: json!({"job_name": "b"}),
            },
        )
        .unwrap();
        assert_eq!(doc["global"]["scrape_interval"], "15s");
        assert_eq!(doc["global"]["external_labels"]["cluster"], "c1");
        assert_eq!(
            doc["scrape_configs"],
            json!([{"job_name": "a", "x": 2}, {"job_name": "b"}])
        );
        // Applying the same edits again changes nothing: resumable.
        let before = doc.clone();
        apply_edit(
            &mut doc,
            &ConfigEdit::Upsert {
                path: vec!["scrape_configs".into()],
                match_key: "job_name".into(),
                item: json!({"job_name": "b"}),
            },
        )
        .unwrap();
        assert_eq!(doc, before);
    }

    #[test]
    fn refuses_to_walk_through_a_scalar() {
        let mut doc = json!({"global": "x"});
        let err = apply_edit(
            &mut doc,
            &ConfigEdit::Set {
                path: vec!["global".into(), "a".into()],
                value: json!(1),
            },
        )
        .unwrap_err();
        assert!(err.contains("global"), "{err}");
    }
}
