//! A routed request ([`Ctx`]) and what every handler reads from it: write options, the
//! field manager, field validation and selectors.

use crate::cluster::ClusterInner;
use crate::http::Req;
use crate::resource_path::ResourcePath;
use crate::resources::ResourceType;
use crate::schema::FieldValidation;
use crate::selector::{FieldSelector, LabelSelector};
use crate::status::ApiError;
use crate::store::{StatusPolicy, WriteOptions};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Everything a handler needs.
pub(super) struct Ctx<'a> {
    pub cluster: &'a Arc<ClusterInner>,
    pub req: &'a Req,
    pub rt: ResourceType,
    pub target: ResourcePath,
}

/// Writes to the main resource of a type with a status subresource keep its status.
pub(super) fn main_status_policy(rt: &ResourceType) -> StatusPolicy {
    if rt.has_subresource("status") {
        StatusPolicy::KeepStatus
    } else {
        StatusPolicy::All
    }
}

pub(super) fn write_options(req: &Req, status: StatusPolicy) -> Result<WriteOptions, ApiError> {
    Ok(WriteOptions {
        dry_run: dry_run(req)?,
        status,
    })
}

pub(super) fn dry_run(req: &Req) -> Result<bool, ApiError> {
    match req.param("dryRun") {
        None | Some("") => Ok(false),
        Some("All") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!(
            "Invalid dry run value {other:?}: the only supported value is \"All\""
        ))),
    }
}

pub(super) fn field_validation(req: &Req) -> Result<FieldValidation, ApiError> {
    match req.param("fieldValidation") {
        None | Some("") => Ok(FieldValidation::Warn),
        Some(v) => FieldValidation::from_query(v).ok_or_else(|| {
            ApiError::bad_request(format!(
                "fieldValidation must be one of \"Strict\", \"Warn\" or \"Ignore\", got {v:?}"
            ))
        }),
    }
}

/// The manager a non-apply write is recorded under.
pub(super) fn field_manager(req: &Req) -> Result<String, ApiError> {
    if let Some(m) = req.param("fieldManager").filter(|m| !m.is_empty()) {
        if m.len() > 128 || m.chars().any(|c| c.is_control()) {
            return Err(ApiError::bad_request(
                "fieldManager must be at most 128 printable characters",
            ));
        }
        return Ok(m.to_string());
    }
    let agent = req.header("user-agent").unwrap_or("unknown");
    Ok(agent.split('/').next().unwrap_or("unknown").to_string())
}

/// Label and field selectors of a list or watch.
pub(super) struct Selectors {
    label: Option<LabelSelector>,
    field: Option<FieldSelector>,
}

impl Selectors {
    pub fn from_req(req: &Req) -> Result<Self, ApiError> {
        let label = match req.param("labelSelector").filter(|s| !s.is_empty()) {
            Some(s) => {
                Some(LabelSelector::parse(s).map_err(|e| ApiError::bad_request(e.to_string()))?)
            }
            None => None,
        };
        let field = match req.param("fieldSelector").filter(|s| !s.is_empty()) {
            Some(s) => {
                Some(FieldSelector::parse(s).map_err(|e| ApiError::bad_request(e.to_string()))?)
            }
            None => None,
        };
        Ok(Selectors { label, field })
    }

    pub fn matches(&self, obj: &Value) -> bool {
        if let Some(label) = &self.label {
            let labels: BTreeMap<String, String> = obj
                .pointer("/metadata/labels")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                        .collect()
                })
                .unwrap_or_default();
            if !label.matches(&labels) {
                return false;
            }
        }
        self.field.as_ref().is_none_or(|f| f.matches(obj))
    }
}
