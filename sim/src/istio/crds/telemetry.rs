//! `telemetry.istio.io`: Telemetry.

use super::common::{MATCH_LABELS, TARGET_REF};
use crate::schema::tree::Ty::*;
use crate::schema::tree::{Field, f, nullable, req};

/// The `spec` of a Telemetry.
pub(super) const TELEMETRY_SPEC: &[Field] = &[
    f("accessLogging", List(&Obj(ACCESS_LOGGING))),
    f("metrics", List(&Obj(METRICS))),
    f("selector", Obj(MATCH_LABELS)),
    f("targetRef", Obj(TARGET_REF)),
    f("targetRefs", List(&Obj(TARGET_REF))),
    f("tracing", List(&Obj(TRACING))),
];
const TRACING: &[Field] = &[
    f("customTags", Map(&Obj(CUSTOM_TAG))),
    nullable("disableContextPropagation", Bool),
    nullable("disableSpanReporting", Bool),
    nullable("enableIstioTags", Bool),
    f("match", Obj(ACCESS_LOGGING_MATCH)),
    f("providers", List(&Obj(REQUIRED_NAME))),
    nullable("randomSamplingPercentage", Double),
    nullable("useRequestIdForTraceSampling", Bool),
];
const CUSTOM_TAG: &[Field] = &[
    f("environment", Obj(ENVIRONMENT)),
    f("formatter", Obj(FORMATTER)),
    f("header", Obj(ENVIRONMENT)),
    f("literal", Obj(FORMATTER)),
];
const FORMATTER: &[Field] = &[req("value", Str)];
const ENVIRONMENT: &[Field] = &[f("defaultValue", Str), req("name", Str)];
const METRICS: &[Field] = &[
    f("overrides", List(&Obj(METRICS_OVERRIDE))),
    f("providers", List(&Obj(REQUIRED_NAME))),
    f("reportingInterval", Str),
];
const METRICS_OVERRIDE: &[Field] = &[
    nullable("disabled", Bool),
    f("match", Obj(METRIC_SELECTOR)),
    f("tagOverrides", Map(&Obj(TAG_OVERRIDE))),
];
const TAG_OVERRIDE: &[Field] = &[f("operation", Enum(&["UPSERT", "REMOVE"])), f("value", Str)];
const METRIC_SELECTOR: &[Field] = &[
    f("customMetric", Str),
    f(
        "metric",
        Enum(&[
            "ALL_METRICS",
            "REQUEST_COUNT",
            "REQUEST_DURATION",
            "REQUEST_SIZE",
            "RESPONSE_SIZE",
            "TCP_OPENED_CONNECTIONS",
            "TCP_CLOSED_CONNECTIONS",
            "TCP_SENT_BYTES",
            "TCP_RECEIVED_BYTES",
            "GRPC_REQUEST_MESSAGES",
            "GRPC_RESPONSE_MESSAGES",
        ]),
    ),
    f("mode", Enum(&["CLIENT_AND_SERVER", "CLIENT", "SERVER"])),
];
const ACCESS_LOGGING: &[Field] = &[
    nullable("disabled", Bool),
    f("filter", Obj(ACCESS_LOGGING_FILTER)),
    f("match", Obj(ACCESS_LOGGING_MATCH)),
    f("providers", List(&Obj(REQUIRED_NAME))),
];
const REQUIRED_NAME: &[Field] = &[req("name", Str)];
const ACCESS_LOGGING_MATCH: &[Field] =
    &[f("mode", Enum(&["CLIENT_AND_SERVER", "CLIENT", "SERVER"]))];
const ACCESS_LOGGING_FILTER: &[Field] = &[f("expression", Str)];
