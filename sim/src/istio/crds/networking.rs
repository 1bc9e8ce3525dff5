//! `networking.istio.io`: DestinationRule, VirtualService, Gateway,
//! ServiceEntry, Sidecar, EnvoyFilter, WorkloadEntry, WorkloadGroup, ProxyConfig.

use super::common::{MATCH_LABELS, NAME, TARGET_REF};
use crate::schema::tree::Ty::*;
use crate::schema::tree::{Field, f, nullable, req};

/// The `spec` of a DestinationRule.
pub(super) const DESTINATION_RULE_SPEC: &[Field] = &[
    f("exportTo", List(&Str)),
    req("host", Str),
    f("subsets", List(&Obj(SUBSET))),
    f("trafficPolicy", Obj(TRAFFIC_POLICY)),
    f("workloadSelector", Obj(MATCH_LABELS)),
];
const SUBSET: &[Field] = &[
    f("labels", Map(&Str)),
    req("name", Str),
    f("trafficPolicy", Obj(TRAFFIC_POLICY)),
];
const TRAFFIC_POLICY: &[Field] = &[
    f("connectionPool", Obj(CONNECTION_POOL)),
    f("loadBalancer", Obj(LOAD_BALANCER)),
    f("outlierDetection", Obj(OUTLIER_DETECTION)),
    f("portLevelSettings", List(&Obj(PORT_TRAFFIC_POLICY))),
    f("proxyProtocol", Obj(PROXY_PROTOCOL)),
    f("retryBudget", Obj(RETRY_BUDGET)),
    f("tls", Obj(CLIENT_TLS)),
    f("tunnel", Obj(TUNNEL)),
];
const TUNNEL: &[Field] = &[
    f("protocol", Str),
    req("targetHost", Str),
    req("targetPort", Int),
];
const RETRY_BUDGET: &[Field] = &[f("minRetryConcurrency", Int), nullable("percent", Double)];
const PROXY_PROTOCOL: &[Field] = &[f("version", Enum(&["V1", "V2"]))];
const PORT_TRAFFIC_POLICY: &[Field] = &[
    f("connectionPool", Obj(CONNECTION_POOL)),
    f("loadBalancer", Obj(LOAD_BALANCER)),
    f("outlierDetection", Obj(OUTLIER_DETECTION)),
    f("port", Obj(PORT_NUMBER)),
    f("tls", Obj(CLIENT_TLS)),
];
const CLIENT_TLS: &[Field] = &[
    f("caCertificates", Str),
    f("caCrl", Str),
    f("clientCertificate", Str),
    f("credentialName", Str),
    nullable("insecureSkipVerify", Bool),
    f(
        "mode",
        Enum(&["DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL"]),
    ),
    f("privateKey", Str),
    f("sni", Str),
    f("subjectAltNames", List(&Str)),
];
const PORT_NUMBER: &[Field] = &[f("number", Int)];
const OUTLIER_DETECTION: &[Field] = &[
    f("baseEjectionTime", Str),
    nullable("consecutive5xxErrors", Int),
    f("consecutiveErrors", Int32),
    nullable("consecutiveGatewayErrors", Int),
    nullable("consecutiveLocalOriginFailures", Int),
    f("interval", Str),
    f("maxEjectionPercent", Int32),
    f("minHealthPercent", Int32),
    f("splitExternalLocalOriginErrors", Bool),
];
const LOAD_BALANCER: &[Field] = &[
    f("consistentHash", Obj(CONSISTENT_HASH)),
    f("localityLbSetting", Obj(LOCALITY_LB_SETTING)),
    f(
        "simple",
        Enum(&[
            "UNSPECIFIED",
            "LEAST_CONN",
            "RANDOM",
            "PASSTHROUGH",
            "ROUND_ROBIN",
            "LEAST_REQUEST",
        ]),
    ),
    f("warmup", Obj(WARMUP)),
    f("warmupDurationSecs", Str),
];
const WARMUP: &[Field] = &[
    nullable("aggression", Double),
    req("duration", Str),
    nullable("minimumPercent", Double),
];
const LOCALITY_LB_SETTING: &[Field] = &[
    f("distribute", List(&Obj(LOCALITY_WEIGHTS))),
    nullable("enabled", Bool),
    f("failover", List(&Obj(LOCALITY_FAILOVER))),
    f("failoverPriority", List(&Str)),
];
const LOCALITY_FAILOVER: &[Field] = &[f("from", Str), f("to", Str)];
const LOCALITY_WEIGHTS: &[Field] = &[f("from", Str), f("to", Map(&Int))];
const CONSISTENT_HASH: &[Field] = &[
    f("httpCookie", Obj(HTTP_COOKIE)),
    f("httpHeaderName", Str),
    f("httpQueryParameterName", Str),
    f("maglev", Obj(MAGLEV)),
    f("minimumRingSize", Int),
    f("ringHash", Obj(RING_HASH)),
    f("useSourceIp", Bool),
];
const RING_HASH: &[Field] = &[f("minimumRingSize", Int)];
const MAGLEV: &[Field] = &[f("tableSize", Int)];
const HTTP_COOKIE: &[Field] = &[
    f("attributes", List(&Obj(COOKIE_ATTRIBUTE))),
    req("name", Str),
    f("path", Str),
    f("ttl", Str),
];
const COOKIE_ATTRIBUTE: &[Field] = &[req("name", Str), f("value", Str)];
const CONNECTION_POOL: &[Field] = &[f("http", Obj(HTTP_POOL)), f("tcp", Obj(TCP_POOL))];
const TCP_POOL: &[Field] = &[
    f("connectTimeout", Str),
    f("idleTimeout", Str),
    f("maxConnectionDuration", Str),
    f("maxConnections", Int32),
    f("tcpKeepalive", Obj(TCP_KEEPALIVE)),
];
const TCP_KEEPALIVE: &[Field] = &[f("interval", Str), f("probes", Int), f("time", Str)];
const HTTP_POOL: &[Field] = &[
    f(
        "h2UpgradePolicy",
        Enum(&["DEFAULT", "DO_NOT_UPGRADE", "UPGRADE"]),
    ),
    f("http1MaxPendingRequests", Int32),
    f("http2MaxRequests", Int32),
    f("idleTimeout", Str),
    f("maxConcurrentStreams", Int32),
    f("maxRequestsPerConnection", Int32),
    f("maxRetries", Int32),
    f("useClientProtocol", Bool),
];
/// The `spec` of an EnvoyFilter.
pub(super) const ENVOY_FILTER_SPEC: &[Field] = &[
    f("configPatches", List(&Obj(CONFIG_PATCH))),
    f("priority", Int32),
    f("targetRefs", List(&Obj(TARGET_REF))),
    f("workloadSelector", Obj(LABELS)),
];
const LABELS: &[Field] = &[f("labels", Map(&Str))];
const CONFIG_PATCH: &[Field] = &[
    f(
        "applyTo",
        Enum(&[
            "INVALID",
            "LISTENER",
            "FILTER_CHAIN",
            "NETWORK_FILTER",
            "HTTP_FILTER",
            "ROUTE_CONFIGURATION",
            "VIRTUAL_HOST",
            "HTTP_ROUTE",
            "CLUSTER",
            "EXTENSION_CONFIG",
            "BOOTSTRAP",
            "LISTENER_FILTER",
        ]),
    ),
    f("match", Obj(CONFIG_PATCH_MATCH)),
    f("patch", Obj(PATCH)),
];
const PATCH: &[Field] = &[
    f(
        "filterClass",
        Enum(&["UNSPECIFIED", "AUTHN", "AUTHZ", "STATS"]),
    ),
    f(
        "operation",
        Enum(&[
            "INVALID",
            "MERGE",
            "ADD",
            "REMOVE",
            "INSERT_BEFORE",
            "INSERT_AFTER",
            "INSERT_FIRST",
            "REPLACE",
        ]),
    ),
    f("value", Open),
];
const CONFIG_PATCH_MATCH: &[Field] = &[
    f("cluster", Obj(CLUSTER_MATCH)),
    f(
        "context",
        Enum(&[
            "ANY",
            "SIDECAR_INBOUND",
            "SIDECAR_OUTBOUND",
            "GATEWAY",
            "WAYPOINT",
        ]),
    ),
    f("listener", Obj(LISTENER_MATCH)),
    f("proxy", Obj(PROXY_MATCH)),
    f("routeConfiguration", Obj(ROUTE_CONFIGURATION_MATCH)),
    f("waypoint", Obj(WAYPOINT_MATCH)),
];
const WAYPOINT_MATCH: &[Field] = &[
    f("filter", Obj(FILTER_MATCH)),
    f("portNumber", Int),
    f("route", Obj(NAME)),
];
const ROUTE_CONFIGURATION_MATCH: &[Field] = &[
    f("gateway", Str),
    f("name", Str),
    f("portName", Str),
    f("portNumber", Int),
    f("vhost", Obj(VIRTUAL_HOST_MATCH)),
];
const VIRTUAL_HOST_MATCH: &[Field] = &[
    f("domainName", Str),
    f("name", Str),
    f("route", Obj(ROUTE_MATCH)),
];
const ROUTE_MATCH: &[Field] = &[
    f(
        "action",
        Enum(&["ANY", "ROUTE", "REDIRECT", "DIRECT_RESPONSE"]),
    ),
    f("name", Str),
];
const PROXY_MATCH: &[Field] = &[f("metadata", Map(&Str)), f("proxyVersion", Str)];
const LISTENER_MATCH: &[Field] = &[
    f("filterChain", Obj(FILTER_CHAIN_MATCH)),
    f("listenerFilter", Str),
    f("name", Str),
    f("portName", Str),
    f("portNumber", Int),
];
const FILTER_CHAIN_MATCH: &[Field] = &[
    f("applicationProtocols", Str),
    f("destinationPort", Int),
    f("filter", Obj(FILTER_MATCH)),
    f("name", Str),
    f("sni", Str),
    f("transportProtocol", Str),
];
const FILTER_MATCH: &[Field] = &[f("name", Str), f("subFilter", Obj(NAME))];
const CLUSTER_MATCH: &[Field] = &[
    f("name", Str),
    f("portNumber", Int),
    f("service", Str),
    f("subset", Str),
];
/// The `spec` of a Gateway.
pub(super) const GATEWAY_SPEC: &[Field] =
    &[f("selector", Map(&Str)), f("servers", List(&Obj(SERVER)))];
const SERVER: &[Field] = &[
    f("bind", Str),
    f("defaultEndpoint", Str),
    req("hosts", List(&Str)),
    f("name", Str),
    req("port", Obj(SERVER_PORT)),
    f("tls", Obj(SERVER_TLS)),
];
const SERVER_TLS: &[Field] = &[
    f("caCertCredentialName", Str),
    f("caCertificates", Str),
    f("caCrl", Str),
    f("cipherSuites", List(&Str)),
    f("credentialName", Str),
    f("credentialNames", List(&Str)),
    f("httpsRedirect", Bool),
    f(
        "maxProtocolVersion",
        Enum(&["TLS_AUTO", "TLSV1_0", "TLSV1_1", "TLSV1_2", "TLSV1_3"]),
    ),
    f(
        "minProtocolVersion",
        Enum(&["TLS_AUTO", "TLSV1_0", "TLSV1_1", "TLSV1_2", "TLSV1_3"]),
    ),
    f(
        "mode",
        Enum(&[
            "PASSTHROUGH",
            "SIMPLE",
            "MUTUAL",
            "AUTO_PASSTHROUGH",
            "ISTIO_MUTUAL",
            "OPTIONAL_MUTUAL",
        ]),
    ),
    f("privateKey", Str),
    f("serverCertificate", Str),
    f("subjectAltNames", List(&Str)),
    f("tlsCertificates", List(&Obj(TLS_CERTIFICATE))),
    f("verifyCertificateHash", List(&Str)),
    f("verifyCertificateSpki", List(&Str)),
];
const TLS_CERTIFICATE: &[Field] = &[
    f("caCertificates", Str),
    f("privateKey", Str),
    f("serverCertificate", Str),
];
const SERVER_PORT: &[Field] = &[
    req("name", Str),
    req("number", Int),
    req("protocol", Str),
    f("targetPort", Int),
];
/// The `spec` of a ProxyConfig.
pub(super) const PROXY_CONFIG_SPEC: &[Field] = &[
    nullable("concurrency", Int32),
    f("environmentVariables", Map(&Str)),
    f("image", Obj(IMAGE)),
    f("selector", Obj(MATCH_LABELS)),
];
const IMAGE: &[Field] = &[f("imageType", Str)];
/// The `spec` of a ServiceEntry.
pub(super) const SERVICE_ENTRY_SPEC: &[Field] = &[
    f("addresses", List(&Str)),
    f("endpoints", List(&Obj(WORKLOAD_ENTRY))),
    f("exportTo", List(&Str)),
    req("hosts", List(&Str)),
    f("location", Enum(&["MESH_EXTERNAL", "MESH_INTERNAL"])),
    f("ports", List(&Obj(SERVICE_PORT))),
    f(
        "resolution",
        Enum(&["NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN", "DYNAMIC_DNS"]),
    ),
    f("subjectAltNames", List(&Str)),
    f("workloadSelector", Obj(LABELS)),
];
const SERVICE_PORT: &[Field] = &[
    req("name", Str),
    req("number", Int),
    f("protocol", Str),
    f("targetPort", Int),
];
/// The `spec` of a WorkloadEntry (also a ServiceEntry endpoint).
pub(super) const WORKLOAD_ENTRY: &[Field] = &[
    f("address", Str),
    f("labels", Map(&Str)),
    f("locality", Str),
    f("network", Str),
    f("ports", Map(&Int)),
    f("serviceAccount", Str),
    f("weight", Int),
];
/// The `spec` of a Sidecar.
pub(super) const SIDECAR_SPEC: &[Field] = &[
    f("egress", List(&Obj(EGRESS_LISTENER))),
    f("inboundConnectionPool", Obj(CONNECTION_POOL)),
    f("ingress", List(&Obj(INGRESS_LISTENER))),
    f("outboundTrafficPolicy", Obj(OUTBOUND_TRAFFIC_POLICY)),
    f("workloadSelector", Obj(LABELS)),
];
const OUTBOUND_TRAFFIC_POLICY: &[Field] = &[
    f("egressProxy", Obj(DESTINATION)),
    f("mode", Enum(&["REGISTRY_ONLY", "ALLOW_ANY"])),
];
const DESTINATION: &[Field] = &[
    req("host", Str),
    f("port", Obj(PORT_NUMBER)),
    f("subset", Str),
];
const INGRESS_LISTENER: &[Field] = &[
    f("bind", Str),
    f("captureMode", Enum(&["DEFAULT", "IPTABLES", "NONE"])),
    f("connectionPool", Obj(CONNECTION_POOL)),
    f("defaultEndpoint", Str),
    req("port", Obj(SIDECAR_PORT)),
    f("tls", Obj(SERVER_TLS)),
];
const EGRESS_LISTENER: &[Field] = &[
    f("bind", Str),
    f("captureMode", Enum(&["DEFAULT", "IPTABLES", "NONE"])),
    req("hosts", List(&Str)),
    f("port", Obj(SIDECAR_PORT)),
];
const SIDECAR_PORT: &[Field] = &[
    f("name", Str),
    f("number", Int),
    f("protocol", Str),
    f("targetPort", Int),
];
/// The `spec` of a VirtualService.
pub(super) const VIRTUAL_SERVICE_SPEC: &[Field] = &[
    f("exportTo", List(&Str)),
    f("gateways", List(&Str)),
    f("hosts", List(&Str)),
    f("http", List(&Obj(HTTP_ROUTE))),
    f("tcp", List(&Obj(TCP_ROUTE))),
    f("tls", List(&Obj(TLS_ROUTE))),
];
const TLS_ROUTE: &[Field] = &[
    req("match", List(&Obj(TLS_MATCH_ATTRIBUTES))),
    f("route", List(&Obj(ROUTE_DESTINATION))),
];
const TLS_MATCH_ATTRIBUTES: &[Field] = &[
    f("destinationSubnets", List(&Str)),
    f("gateways", List(&Str)),
    f("port", Int),
    req("sniHosts", List(&Str)),
    f("sourceLabels", Map(&Str)),
    f("sourceNamespace", Str),
];
const TCP_ROUTE: &[Field] = &[
    f("match", List(&Obj(L4_MATCH_ATTRIBUTES))),
    f("route", List(&Obj(ROUTE_DESTINATION))),
];
const ROUTE_DESTINATION: &[Field] = &[req("destination", Obj(DESTINATION)), f("weight", Int32)];
const L4_MATCH_ATTRIBUTES: &[Field] = &[
    f("destinationSubnets", List(&Str)),
    f("gateways", List(&Str)),
    f("port", Int),
    f("sourceLabels", Map(&Str)),
    f("sourceNamespace", Str),
    f("sourceSubnet", Str),
];
const HTTP_ROUTE: &[Field] = &[
    f("corsPolicy", Obj(CORS_POLICY)),
    f("delegate", Obj(DELEGATE)),
    f("directResponse", Obj(DIRECT_RESPONSE)),
    f("fault", Obj(FAULT)),
    f("headers", Obj(HEADERS)),
    f("match", List(&Obj(HTTP_MATCH_REQUEST))),
    f("mirror", Obj(DESTINATION)),
    nullable("mirror_percent", Int),
    nullable("mirrorPercent", Int),
    f("mirrorPercentage", Obj(PERCENTAGE)),
    f("mirrors", List(&Obj(MIRROR))),
    f("name", Str),
    f("redirect", Obj(REDIRECT)),
    f("retries", Obj(RETRIES)),
    f("rewrite", Obj(REWRITE)),
    f("route", List(&Obj(HTTP_ROUTE_DESTINATION))),
    f("timeout", Str),
];
const HTTP_ROUTE_DESTINATION: &[Field] = &[
    req("destination", Obj(DESTINATION)),
    f("headers", Obj(HEADERS)),
    f("weight", Int32),
];
const REWRITE: &[Field] = &[
    f("authority", Str),
    f("uri", Str),
    f("uriRegexRewrite", Obj(URI_REGEX_REWRITE)),
];
const URI_REGEX_REWRITE: &[Field] = &[f("match", Str), f("rewrite", Str)];
const RETRIES: &[Field] = &[
    f("attempts", Int32),
    f("backoff", Str),
    f("perTryTimeout", Str),
    nullable("retryIgnorePreviousHosts", Bool),
    f("retryOn", Str),
    nullable("retryRemoteLocalities", Bool),
];
const REDIRECT: &[Field] = &[
    f("authority", Str),
    f(
        "derivePort",
        Enum(&["FROM_PROTOCOL_DEFAULT", "FROM_REQUEST_PORT"]),
    ),
    f("port", Int),
    f("redirectCode", Int),
    f("scheme", Str),
    f("uri", Str),
];
const MIRROR: &[Field] = &[
    req("destination", Obj(DESTINATION)),
    f("percentage", Obj(PERCENTAGE)),
];
const HTTP_MATCH_REQUEST: &[Field] = &[
    f("authority", Obj(STRING_MATCH)),
    f("gateways", List(&Str)),
    f("headers", Map(&Obj(STRING_MATCH))),
    f("ignoreUriCase", Bool),
    f("method", Obj(STRING_MATCH)),
    f("name", Str),
    f("port", Int),
    f("queryParams", Map(&Obj(STRING_MATCH))),
    f("scheme", Obj(STRING_MATCH)),
    f("sourceLabels", Map(&Str)),
    f("sourceNamespace", Str),
    f("statPrefix", Str),
    f("uri", Obj(STRING_MATCH)),
    f("withoutHeaders", Map(&Obj(STRING_MATCH))),
];
const HEADERS: &[Field] = &[
    f("request", Obj(HEADER_OPERATIONS)),
    f("response", Obj(HEADER_OPERATIONS)),
];
const HEADER_OPERATIONS: &[Field] = &[
    f("add", Map(&Str)),
    f("remove", List(&Str)),
    f("set", Map(&Str)),
];
const FAULT: &[Field] = &[f("abort", Obj(ABORT)), f("delay", Obj(DELAY))];
const DELAY: &[Field] = &[
    f("exponentialDelay", Str),
    f("fixedDelay", Str),
    f("percent", Int32),
    f("percentage", Obj(PERCENTAGE)),
];
const ABORT: &[Field] = &[
    f("grpcStatus", Str),
    f("http2Error", Str),
    f("httpStatus", Int32),
    f("percentage", Obj(PERCENTAGE)),
];
const PERCENTAGE: &[Field] = &[f("value", Double)];
const DIRECT_RESPONSE: &[Field] = &[f("body", Obj(BODY)), req("status", Int)];
const BODY: &[Field] = &[f("bytes", Bytes), f("string", Str)];
const DELEGATE: &[Field] = &[f("name", Str), f("namespace", Str)];
const CORS_POLICY: &[Field] = &[
    nullable("allowCredentials", Bool),
    f("allowHeaders", List(&Str)),
    f("allowMethods", List(&Str)),
    f("allowOrigin", List(&Str)),
    f("allowOrigins", List(&Obj(STRING_MATCH))),
    f("exposeHeaders", List(&Str)),
    f("maxAge", Str),
    f(
        "unmatchedPreflights",
        Enum(&["UNSPECIFIED", "FORWARD", "IGNORE"]),
    ),
];
const STRING_MATCH: &[Field] = &[f("exact", Str), f("prefix", Str), f("regex", Str)];
/// The `spec` of a WorkloadGroup.
pub(super) const WORKLOAD_GROUP_SPEC: &[Field] = &[
    f("metadata", Obj(WORKLOAD_METADATA)),
    f("probe", Obj(PROBE)),
    req("template", Obj(WORKLOAD_ENTRY)),
];
const PROBE: &[Field] = &[
    f("exec", Obj(EXEC)),
    f("failureThreshold", Int32),
    f("grpc", Obj(GRPC)),
    f("httpGet", Obj(HTTP_GET)),
    f("initialDelaySeconds", Int32),
    f("periodSeconds", Int32),
    f("successThreshold", Int32),
    f("tcpSocket", Obj(TCP_SOCKET)),
    f("timeoutSeconds", Int32),
];
const TCP_SOCKET: &[Field] = &[f("host", Str), req("port", Int)];
const HTTP_GET: &[Field] = &[
    f("host", Str),
    f("httpHeaders", List(&Obj(HTTP_HEADERS))),
    f("path", Str),
    req("port", Int),
    f("scheme", Str),
];
const HTTP_HEADERS: &[Field] = &[f("name", Str), f("value", Str)];
const GRPC: &[Field] = &[f("port", Int), f("service", Str)];
const EXEC: &[Field] = &[req("command", List(&Str))];
const WORKLOAD_METADATA: &[Field] = &[f("annotations", Map(&Str)), f("labels", Map(&Str))];
