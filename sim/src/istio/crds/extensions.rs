//! `extensions.istio.io`: WasmPlugin, TrafficExtension.

use super::common::{MATCH_LABELS, TARGET_REF};
use crate::schema::tree::Ty::*;
use crate::schema::tree::{Field, f, nullable, req};

/// The `spec` of a TrafficExtension.
pub(super) const TRAFFIC_EXTENSION_SPEC: &[Field] = &[
    f("lua", Obj(LUA)),
    f("match", List(&Obj(TRAFFIC_SELECTOR))),
    f("phase", Enum(&["UNSPECIFIED", "AUTHN", "AUTHZ", "STATS"])),
    nullable("priority", Int32),
    f("selector", Obj(MATCH_LABELS)),
    f("targetRefs", List(&Obj(TARGET_REF))),
    f("wasm", Obj(WASM_CONFIG)),
];
const WASM_CONFIG: &[Field] = &[
    f(
        "failStrategy",
        Enum(&["FAIL_CLOSE", "FAIL_OPEN", "FAIL_RELOAD"]),
    ),
    f(
        "imagePullPolicy",
        Enum(&["UNSPECIFIED_POLICY", "IfNotPresent", "Always"]),
    ),
    f("imagePullSecret", Str),
    f("pluginConfig", Open),
    f("pluginName", Str),
    f("sha256", Str),
    f(
        "type",
        Enum(&["UNSPECIFIED_PLUGIN_TYPE", "HTTP", "NETWORK"]),
    ),
    req("url", Str),
    f("verificationKey", Str),
    f("vmConfig", Obj(VM_CONFIG)),
];
const VM_CONFIG: &[Field] = &[f("env", List(&Obj(ENV_VAR)))];
const ENV_VAR: &[Field] = &[
    req("name", Str),
    f("value", Str),
    f("valueFrom", Enum(&["INLINE", "HOST"])),
];
const TRAFFIC_SELECTOR: &[Field] = &[
    f(
        "mode",
        Enum(&["UNDEFINED", "CLIENT", "SERVER", "CLIENT_AND_SERVER"]),
    ),
    f("ports", List(&Obj(REQUIRED_PORT_NUMBER))),
];
const REQUIRED_PORT_NUMBER: &[Field] = &[req("number", Int)];
const LUA: &[Field] = &[req("inlineCode", Str)];
/// The `spec` of a WasmPlugin.
pub(super) const WASM_PLUGIN_SPEC: &[Field] = &[
    f(
        "failStrategy",
        Enum(&["FAIL_CLOSE", "FAIL_OPEN", "FAIL_RELOAD"]),
    ),
    f(
        "imagePullPolicy",
        Enum(&["UNSPECIFIED_POLICY", "IfNotPresent", "Always"]),
    ),
    f("imagePullSecret", Str),
    f("match", List(&Obj(TRAFFIC_SELECTOR))),
    f(
        "phase",
        Enum(&["UNSPECIFIED_PHASE", "AUTHN", "AUTHZ", "STATS"]),
    ),
    f("pluginConfig", Open),
    f("pluginName", Str),
    nullable("priority", Int32),
    f("selector", Obj(MATCH_LABELS)),
    f("sha256", Str),
    f("targetRef", Obj(TARGET_REF)),
    f("targetRefs", List(&Obj(TARGET_REF))),
    f(
        "type",
        Enum(&["UNSPECIFIED_PLUGIN_TYPE", "HTTP", "NETWORK"]),
    ),
    req("url", Str),
    f("verificationKey", Str),
    f("vmConfig", Obj(VM_CONFIG)),
];
