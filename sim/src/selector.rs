//! Label and field selectors, as the API server parses and matches them.

use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid selector {input:?}: {reason}")]
pub struct SelectorError {
    pub input: String,
    pub reason: String,
}

/// `app=web,tier!=db,env in (a,b),!legacy,version`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    _private: (),
}

impl LabelSelector {
    pub fn parse(input: &str) -> Result<Self, SelectorError> {
        let _ = input;
        todo!("selector helper")
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let _ = labels;
        todo!("selector helper")
    }

    /// The `matchLabels` / `matchExpressions` object form (Deployment.spec.selector).
    pub fn from_label_selector_json(selector: &Value) -> Result<Self, SelectorError> {
        let _ = selector;
        todo!("selector helper")
    }
}

/// `metadata.name=web,metadata.namespace!=kube-system,status.phase=Running`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    _private: (),
}

impl FieldSelector {
    pub fn parse(input: &str) -> Result<Self, SelectorError> {
        let _ = input;
        todo!("selector helper")
    }

    /// Looks the dotted paths up in the object (`metadata.name`, `spec.nodeName`, `type`).
    pub fn matches(&self, object: &Value) -> bool {
        let _ = object;
        todo!("selector helper")
    }
}
