//! `security.istio.io`: AuthorizationPolicy, PeerAuthentication,
//! RequestAuthentication.

use super::common::{MATCH_LABELS, NAME, TARGET_REF};
use crate::schema::tree::Ty::*;
use crate::schema::tree::{Field, f, req};

/// The `spec` of an AuthorizationPolicy.
pub(super) const AUTHORIZATION_POLICY_SPEC: &[Field] = &[
    f("action", Enum(&["ALLOW", "DENY", "AUDIT", "CUSTOM"])),
    f("provider", Obj(NAME)),
    f("rules", List(&Obj(RULE))),
    f("selector", Obj(MATCH_LABELS)),
    f("targetRef", Obj(TARGET_REF)),
    f("targetRefs", List(&Obj(TARGET_REF))),
];
const RULE: &[Field] = &[
    f("from", List(&Obj(RULE_FROM))),
    f("to", List(&Obj(RULE_TO))),
    f("when", List(&Obj(RULE_CONDITION))),
];
const RULE_CONDITION: &[Field] = &[
    req("key", Str),
    f("notValues", List(&Str)),
    f("values", List(&Str)),
];
const RULE_TO: &[Field] = &[f("operation", Obj(OPERATION))];
const OPERATION: &[Field] = &[
    f("hosts", List(&Str)),
    f("methods", List(&Str)),
    f("notHosts", List(&Str)),
    f("notMethods", List(&Str)),
    f("notPaths", List(&Str)),
    f("notPorts", List(&Str)),
    f("paths", List(&Str)),
    f("ports", List(&Str)),
];
const RULE_FROM: &[Field] = &[f("source", Obj(SOURCE))];
const SOURCE: &[Field] = &[
    f("ipBlocks", List(&Str)),
    f("namespaces", List(&Str)),
    f("notIpBlocks", List(&Str)),
    f("notNamespaces", List(&Str)),
    f("notPrincipals", List(&Str)),
    f("notRemoteIpBlocks", List(&Str)),
    f("notRequestPrincipals", List(&Str)),
    f("notServiceAccounts", List(&Str)),
    f("notTrustDomains", List(&Str)),
    f("principals", List(&Str)),
    f("remoteIpBlocks", List(&Str)),
    f("requestPrincipals", List(&Str)),
    f("serviceAccounts", List(&Str)),
    f("trustDomains", List(&Str)),
];
/// The `spec` of a PeerAuthentication.
pub(super) const PEER_AUTHENTICATION_SPEC: &[Field] = &[
    f("mtls", Obj(MUTUAL_TLS)),
    f("portLevelMtls", Map(&Obj(MUTUAL_TLS))),
    f("selector", Obj(MATCH_LABELS)),
];
const MUTUAL_TLS: &[Field] = &[f(
    "mode",
    Enum(&["UNSET", "DISABLE", "PERMISSIVE", "STRICT"]),
)];
/// The `spec` of a RequestAuthentication.
pub(super) const REQUEST_AUTHENTICATION_SPEC: &[Field] = &[
    f("jwtRules", List(&Obj(JWT_RULE))),
    f("selector", Obj(MATCH_LABELS)),
    f("targetRef", Obj(TARGET_REF)),
    f("targetRefs", List(&Obj(TARGET_REF))),
];
const JWT_RULE: &[Field] = &[
    f("audiences", List(&Str)),
    f("forwardOriginalToken", Bool),
    f("fromCookies", List(&Str)),
    f("fromHeaders", List(&Obj(JWT_HEADER))),
    f("fromParams", List(&Str)),
    f("issuer", Str),
    f("jwks", Str),
    f("jwks_uri", Str),
    f("jwksUri", Str),
    f("outputClaimToHeaders", List(&Obj(CLAIM_TO_HEADER))),
    f("outputPayloadToHeader", Str),
    f("spaceDelimitedClaims", List(&Str)),
    f("timeout", Str),
];
const CLAIM_TO_HEADER: &[Field] = &[req("claim", Str), req("header", Str)];
const JWT_HEADER: &[Field] = &[req("name", Str), f("prefix", Str)];
