//! Parts shared by the kinds of several API groups: the status Istio writes,
//! target references, label selectors.

use crate::schema::tree::Ty::*;
use crate::schema::tree::{Field, f, req};

/// The `status` istiod writes (conditions, analysis messages).
pub(super) const STATUS: &[Field] = &[
    f("conditions", List(&Obj(CONDITION))),
    f("observedGeneration", IntOrStr),
    f("validationMessages", List(&Obj(VALIDATION_MESSAGE))),
];
pub(super) const VALIDATION_MESSAGE: &[Field] = &[
    f("documentationUrl", Str),
    f("level", Enum(&["UNKNOWN", "ERROR", "WARNING", "INFO"])),
    f("type", Obj(MESSAGE_TYPE)),
];
pub(super) const MESSAGE_TYPE: &[Field] = &[f("code", Str), f("name", Str)];
pub(super) const CONDITION: &[Field] = &[
    f("lastProbeTime", Time),
    f("lastTransitionTime", Time),
    f("message", Str),
    f("observedGeneration", IntOrStr),
    f("reason", Str),
    f("status", Str),
    f("type", Str),
];
pub(super) const TARGET_REF: &[Field] = &[
    f("group", Str),
    req("kind", Str),
    req("name", Str),
    f("namespace", Str),
];
pub(super) const MATCH_LABELS: &[Field] = &[f("matchLabels", Map(&Str))];
pub(super) const NAME: &[Field] = &[f("name", Str)];
