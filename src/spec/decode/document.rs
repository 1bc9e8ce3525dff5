//! The MeshMigration document, field by field. The field lists are the YAML
//! names of `mesh_migration.rs` (a round-trip test keeps them in step with serde).

use super::{Decoder, child};
use crate::spec::mesh_migration::*;
use crate::spec::suggest;
use crate::spec::yaml::{YamlNode, shorten};
use std::collections::BTreeMap;

const DOCUMENT: &[&str] = &["apiVersion", "kind", "metadata", "spec"];
const METADATA: &[&str] = &["name"];
const SPEC: &[&str] = &[
    "mesh",
    "topology",
    "installer",
    "clusters",
    "trust",
    "routing",
    "observability",
    "workloads",
    "failoverTest",
    "state",
];
const STATE: &[&str] = &["kubernetes"];
const KUBERNETES_STATE: &[&str] = &["context", "namespace"];
const MESH: &[&str] = &[
    "id",
    "trustDomain",
    "trustDomainAliases",
    "istioVersion",
    "revision",
];
const INSTALLER: &[&str] = &["kind", "path", "charts", "releases"];
const CHARTS: &[&str] = &["repo", "dir"];
const RELEASES: &[&str] = &["base", "istiod", "eastwest"];
const CLUSTER: &[&str] = &[
    "name",
    "context",
    "kubeconfig",
    "network",
    "source",
    "role",
    "primary",
    "locality",
    "existingMesh",
    "apiServer",
    "tlsServerName",
    "simulated",
];
const LOCALITY: &[&str] = &["region", "zone", "subzone"];
const TRUST: &[&str] = &["root", "intermediateValidityDays", "certDir"];
const ROOT: &[&str] = &["adopt", "generate", "files"];
const GENERATE: &[&str] = &["algorithm", "validityDays", "org", "transition"];
const FILES: &[&str] = &["cert", "key"];
const ROUTING: &[&str] = &[
    "exposeHosts",
    "destinationRules",
    "virtualServices",
    "serviceEntries",
    "authorizationPolicies",
    "strictMtls",
];
const AUTHORIZATION_POLICY: &[&str] = &["name", "namespace", "clusters", "selector", "allow"];
const DESTINATION_RULE: &[&str] = &[
    "host",
    "namespace",
    "clusters",
    "localityLb",
    "outlierDetection",
];
const LOCALITY_LB: &[&str] = &["failoverPriority", "failover"];
const FAILOVER_RULE: &[&str] = &["from", "to"];
const OUTLIER: &[&str] = &[
    "consecutive5xxErrors",
    "consecutiveGatewayErrors",
    "consecutiveErrors",
    "interval",
    "baseEjectionTime",
    "maxEjectionPercent",
];
const OBJECT: &[&str] = &["name", "namespace", "clusters", "spec"];
const OBSERVABILITY: &[&str] = &["prometheus", "tracing"];
const PROMETHEUS: &[&str] = &["federate", "namespace", "configMap"];
const TRACING: &[&str] = &["zipkin", "sampling"];
const WORKLOADS: &[&str] = &["restartNamespaces", "perCluster"];
const FAILOVER_TEST: &[&str] = &["service", "from", "drain", "requests"];
const SERVICE: &[&str] = &["namespace", "name", "port", "path"];

pub(crate) fn document(d: &mut Decoder, root: &YamlNode) -> Option<MeshMigration> {
    d.locs.record("", None, root.pos);
    let f = d.fields(
        root,
        "",
        "a MeshMigration document (a mapping with apiVersion, kind, metadata and spec)",
        DOCUMENT,
    )?;
    let api_version = d.req(&f, "apiVersion", |d, n, p| {
        let v = d.string(n, p)?;
        if v != API_VERSION {
            d.report.error_hint(
                n.pos,
                p,
                format!("unsupported apiVersion `{}`", shorten(&v)),
                Some(format!("this version of migrate reads `{API_VERSION}`")),
            );
            return None;
        }
        Some(v)
    });
    let kind = d.req(&f, "kind", |d, n, p| {
        let v = d.string(n, p)?;
        if v != KIND {
            let hint = match suggest::closest(&v, &[KIND]) {
                Some(k) => format!("did you mean `{k}`?"),
                None => format!("a spec file holds a `{KIND}`"),
            };
            d.report.error_hint(
                n.pos,
                p,
                format!("expected kind `{KIND}`, found `{}`", shorten(&v)),
                Some(hint),
            );
            return None;
        }
        Some(v)
    });
    let metadata = d.req(&f, "metadata", metadata);
    let spec = d.req(&f, "spec", spec);
    Some(MeshMigration {
        api_version: api_version?,
        kind: kind?,
        metadata: metadata?,
        spec: spec?,
    })
}

fn metadata(d: &mut Decoder, n: &YamlNode, p: &str) -> Option<Metadata> {
    let f = d.fields(n, p, "a mapping with the migration's name", METADATA)?;
    let name = d.req(&f, "name", Decoder::string);
    Some(Metadata { name: name? })
}

fn spec(d: &mut Decoder, n: &YamlNode, p: &str) -> Option<Spec> {
    let f = d.fields(n, p, "a mapping (the migration spec)", SPEC)?;
    let mesh = d.req(&f, "mesh", mesh);
    let topology = d.req(&f, "topology", |d, n, p| {
        d.one_of(
            n,
            p,
            &[
                ("multi-primary", Topology::MultiPrimary),
                ("primary-remote", Topology::PrimaryRemote),
            ],
        )
    });
    let installer = d.req(&f, "installer", installer);
    let clusters = d.req(&f, "clusters", |d, n, p| {
        d.list(n, p, "a list of clusters", cluster)
    });
    let trust = d.req(&f, "trust", trust);
    let routing = d.or(&f, "routing", routing, Routing::default);
    let observability = d.or(&f, "observability", observability, Observability::default);
    let workloads = d.or(&f, "workloads", workloads, Workloads::default);
    let failover_test = d.opt(&f, "failoverTest", failover_test);
    let state = d.opt(&f, "state", state);
    Some(Spec {
        mesh: mesh?,
        topology: topology?,
        installer: installer?,
        clusters: clusters?,
        trust: trust?,
        routing: routing?,
        observability: observability?,
        workloads: workloads?,
        failover_test: failover_test?,
        state: state?,
    })
}

fn state(d: &mut Decoder, n: &YamlNode, p: &str) -> Option<StateSpec> {
    let f = d.fields(
        n,
        p,
        "a mapping naming where the state lives (kubernetes)",
        STATE,
    )?;
    let kubernetes = d.opt(&f, "kubernetes", |d, n, p| {
        let f = d.fields(
            n,
            p,
            "a mapping with the context and namespace",
            KUBERNETES_STATE,
        )?;
        let context = d.opt(&f, "context", Decoder::string);
        let namespace = d.req(&f, "namespace", Decoder::string);
        Some(KubernetesState {
            context: context?,
            namespace: namespace?,
        })
    });
    Some(StateSpec {
        kubernetes: kubernetes?,
    })
}

fn mesh(d: &mut Decoder, n: &YamlNode, p: &str) -> Option<Mesh> {
    let f = d.fields(
        n,
        p,
        "a mapping with the mesh id, trust domain and Istio version",
        MESH,
    )?;
    let id = d.req(&f, "id", Decoder::string);
    let trust_domain = d.or(&f, "trustDomain", Decoder::string, || {
        "cluster.local".into()
    });
    let trust_domain_aliases = d.or(&f, "trustDomainAliases", Decoder::strings, Vec::new);
    let istio_version = d.req(&f, "istioVersion", Decoder::string);
    let revision = d.opt(&f, "revision", Decoder::string);
    Some(Mesh {
        id: id?,
        trust_domain: trust_domain?,
        trust_domain_aliases: trust_domain_aliases?,
        istio_version: istio_version?,
        revision: revision?,
    })
}

fn installer(d: &mut Decoder, n: &YamlNode, p: &str) -> Option<Installer> {
    let f = d.fields(
        n,
        p,
        "a mapping with the installer kind and path",
        INSTALLER,
    )?;
    let kind = d.req(&f, "kind", |d, n, p| {
        d.one_of(
            n,
            p,
            &[
                ("istioctl", InstallerKind::Istioctl),
                ("helm", InstallerKind::Helm),
            ],
        )
    });
    // The path defaults to the kind's program (an unknown kind: istioctl's).
    let program = kind.map_or("istioctl", InstallerKind::program);
    let path = d.or(&f, "path", Decoder::string, || program.into());
    let charts = d.opt(&f, "charts", chart_source);
    let releases = d.or(&f, "releases", releases, HelmReleases::default);
    Some(Installer {
        kind: kind?,
        path: path?,
        charts: charts?,
        releases: releases?,
    })
}

fn chart_source(d: &mut Decoder, n: &YamlNode, p: &str) -> Option<ChartSource> {
    let f = d.fields(
        n,
        p,
        "a mapping with either `repo` (a chart repository URL) or `dir` (a directory holding base/, istiod/ and gateway/)",
        CHARTS,
    )?;
    let repo = d.opt(&f, "repo", Decoder::string)?;
    let dir = d.opt(&f, "dir", Decoder::path_buf)?;
    match (repo, dir) {
        (Some(url), None) => Some(ChartSource::Repo(url)),
        (None, Some(dir)) => Some(ChartSource::Dir(dir)),
        _ => {
            d.report.error_hint(
                n.pos,
                p,
                "give exactly one of `repo` and `dir`".to_string(),
                Some("`repo: https://istio-release.storage.googleapis.com/charts` or `dir: ./charts`".into()),
            );
            None
        }
    }
}

fn releases(d: &mut Decoder, n: &YamlNode, p: &str) -> Option<HelmReleases> {
    let f = d.fields(
        n,
        p,
        "a mapping with the release names base, istiod and eastwest",
        RELEASES,
    )?;
    let base = d.or(&f, "base", Decoder::string, || "istio-base".into());
    let istiod = d.or(&f, "istiod", Decoder::string, || "istiod".into());
    let eastwest = d.or(&f, "eastwest", Decoder::string, || {
        "istio-eastwestgateway".into()
    });
    Some(HelmReleases {
        base: base?,
        istiod: istiod?,
        eastwest: eastwest?,
    })
}

fn cluster(d: &mut Decoder, n: &YamlNode, p: &str) -> Option<ClusterSpec> {
    let f = d.fields(n, p, "a cluster (a mapping with name and context)", CLUSTER)?;
    let name = d.req(&f, "name", Decoder::string);
    let context = d.req(&f, "context", Decoder::string);
    let kubeconfig = d.opt(&f, "kubeconfig", Decoder::path_buf);
    let network = d.opt(&f, "network", Decoder::string);
    let source = d.or(&f, "source", Decoder::boolean, || false);
    let role = d.opt(&f, "role", |d, n, p| {
        d.one_of(
            n,
            p,
            &[("primary", Role::Primary), ("remote", Role::Remote)],
        )
    });
    let primary = d.opt(&f, "primary", Decoder::string);
    let locality = d.opt(&f, "locality", locality);
    let existing_mesh = d.opt(&f, "existingMesh", |d, n, p| {
        d.one_of(n, p, &[("adopt", ExistingMesh::Adopt)])
    });
    let api_server = d.opt(&f, "apiServer", Decoder::string);
    let tls_server_name = d.opt(&f, "tlsServerName", Decoder::string);
    let simulated = d.or(&f, "simulated", Decoder::boolean, || false);
    Some(ClusterSpec {
        name: name?,
        context: context?,
        kubeconfig: kubeconfig?,
        network: network?,
        source: source?,
        role: role?,
        primary: primary?,
        locality: locality?,
        existing_mesh: existing_mesh?,
        api_server: api_server?,
        tls_server_name: tls_server_name?,
        simulated: simulated?,
    })
}

fn locality(d: &mut Decoder, n: &YamlNode, p: &str) -> Option<Locality> {
    let f = d.fields(n, p, "a mapping with region, zone and subzone", LOCALITY)?;
    let region = d.req(&f, "region", Decoder::string);
    let zone = d.opt(&f, "zone", Decoder::string);
    let subzone = d.opt(&f, "subzone", Decoder::string);
    Some(Locality {
        region: region?,
        zone: zone?,
        subzone: subzone?,
    })
}

fn trust(d: &mut Decoder, n: &YamlNode, p: &str) -> Option<Trust> {
    let f = d.fields(n, p, "a mapping with the root CA choice", TRUST)?;
    let root = d.req(&f, "root", trust_root);
    let intermediate_validity_days = d.or(&f, "intermediateValidityDays", Decoder::u32, || 730);
    let cert_dir = d.or(&f, "certDir", Decoder::path_buf, || {
        "./migrate-certs".into()
    });
    Some(Trust {
        root: root?,
        intermediate_validity_days: intermediate_validity_days?,
        cert_dir: cert_dir?,
    })
}

fn trust_root(d: &mut Decoder, n: &YamlNode, p: &str) -> Option<TrustRoot> {
    let f = d.fields(n, p, "a mapping with one of adopt, generate or files", ROOT)?;
    let given: Vec<&str> = ROOT
        .iter()
        .copied()
        .filter(|k| f.entries.contains_key(k))
        .collect();
    match given.as_slice() {
        [] => {
            d.report.error_hint(
                d.locs.key_of(p),
                p,
                "no root CA chosen",
                Some(
                    "give one of `adopt: <source cluster>`, `generate: {...}` or `files: {...}`"
                        .into(),
                ),
            );
            None
        }
        [one] => match *one {
            "adopt" => d.req(&f, "adopt", Decoder::string).map(TrustRoot::Adopt),
            "generate" => d.req(&f, "generate", generate).map(TrustRoot::Generate),
            _ => d.req(&f, "files", root_files).map(TrustRoot::Files),
        },
        [first, rest @ ..] => {
            for other in rest {
                let path = child(p, other);
                if let Some(e) = f.entries.get(other) {
                    d.report.error_hint(
                        e.key.pos,
                        &path,
                        format!("`{other}` given together with `{first}`"),
                        Some("choose one root: adopt, generate or files".into()),
                    );
                }
            }
            None
        }
    }
}

fn generate(d: &mut Decoder, n: &YamlNode, p: &str) -> Option<GenerateRoot> {
    let f = d.fields(n, p, "a mapping describing the new root CA", GENERATE)?;
    let algorithm = d.or(
        &f,
        "algorithm",
        |d, n, p| d.one_of(n, p, &[("ecdsa-p256", KeyAlgorithm::EcdsaP256)]),
        || KeyAlgorithm::EcdsaP256,
    );
    let validity_days = d.or(&f, "validityDays", Decoder::u32, || 3650);
    let org = d.req(&f, "org", Decoder::string);
    let transition = d.or(
        &f,
        "transition",
        |d, n, p| {
            d.one_of(
                n,
                p,
                &[
                    ("multi-root", RootTransition::MultiRoot),
                    ("restart-all", RootTransition::RestartAll),
                ],
            )
        },
        RootTransition::default,
    );
    Some(GenerateRoot {
        algorithm: algorithm?,
        validity_days: validity_days?,
        org: org?,
        transition: transition?,
    })
}

fn root_files(d: &mut Decoder, n: &YamlNode, p: &str) -> Option<RootFiles> {
    let f = d.fields(n, p, "a mapping with the root's cert and key files", FILES)?;
    let cert = d.req(&f, "cert", Decoder::path_buf);
    let key = d.req(&f, "key", Decoder::path_buf);
    Some(RootFiles {
        cert: cert?,
        key: key?,
    })
}

fn routing(d: &mut Decoder, n: &YamlNode, p: &str) -> Option<Routing> {
    let f = d.fields(n, p, "a mapping of routing settings", ROUTING)?;
    let expose_hosts = d.or(&f, "exposeHosts", Decoder::strings, Vec::new);
    let destination_rules = d.or(
        &f,
        "destinationRules",
        |d, n, p| d.list(n, p, "a list of destination rules", destination_rule),
        Vec::new,
    );
    let virtual_services = d.or(
        &f,
        "virtualServices",
        |d, n, p| d.list(n, p, "a list of virtual services", object),
        Vec::new,
    );
    let service_entries = d.or(
        &f,
        "serviceEntries",
        |d, n, p| d.list(n, p, "a list of service entries", object),
        Vec::new,
    );
    let authorization_policies = d.or(
        &f,
        "authorizationPolicies",
        |d, n, p| {
            d.list(
                n,
                p,
                "a list of authorization policies",
                authorization_policy,
            )
        },
        Vec::new,
    );
    let strict_mtls = d.or(&f, "strictMtls", Decoder::boolean, || false);
    Some(Routing {
        expose_hosts: expose_hosts?,
        destination_rules: destination_rules?,
        virtual_services: virtual_services?,
        service_entries: service_entries?,
        authorization_policies: authorization_policies?,
        strict_mtls: strict_mtls?,
    })
}

fn authorization_policy(d: &mut Decoder, n: &YamlNode, p: &str) -> Option<AuthorizationPolicy> {
    let f = d.fields(
        n,
        p,
        "an authorization policy (a mapping with name, namespace and allow)",
        AUTHORIZATION_POLICY,
    )?;
    let name = d.req(&f, "name", Decoder::string);
    let namespace = d.req(&f, "namespace", Decoder::string);
    let clusters = d.or(&f, "clusters", Decoder::strings, Vec::new);
    let selector = d.or(
        &f,
        "selector",
        |d, n, p| {
            d.string_map(n, p, "a mapping of label names to values", Decoder::string)
                .map(|v| v.into_iter().collect())
        },
        BTreeMap::new,
    );
    let allow = d.req(&f, "allow", Decoder::strings);
    Some(AuthorizationPolicy {
        name: name?,
        namespace: namespace?,
        clusters: clusters?,
        selector: selector?,
        allow: allow?,
    })
}

fn destination_rule(d: &mut Decoder, n: &YamlNode, p: &str) -> Option<DestinationRule> {
    let f = d.fields(
        n,
        p,
        "a destination rule (a mapping with host)",
        DESTINATION_RULE,
    )?;
    let host = d.req(&f, "host", Decoder::string);
    let namespace = d.opt(&f, "namespace", Decoder::string);
    let clusters = d.or(&f, "clusters", Decoder::strings, Vec::new);
    let locality_lb = d.opt(&f, "localityLb", locality_lb);
    let outlier_detection = d.opt(&f, "outlierDetection", outlier_detection);
    Some(DestinationRule {
        host: host?,
        namespace: namespace?,
        clusters: clusters?,
        locality_lb: locality_lb?,
        outlier_detection: outlier_detection?,
    })
}

fn locality_lb(d: &mut Decoder, n: &YamlNode, p: &str) -> Option<LocalityLb> {
    let f = d.fields(
        n,
        p,
        "a mapping with failover or failoverPriority",
        LOCALITY_LB,
    )?;
    let failover_priority = d.or(&f, "failoverPriority", Decoder::strings, Vec::new);
    let failover = d.or(
        &f,
        "failover",
        |d, n, p| {
            d.list(n, p, "a list of {from, to} region pairs", |d, n, p| {
                let f = d.fields(n, p, "a mapping with from and to regions", FAILOVER_RULE)?;
                let from = d.req(&f, "from", Decoder::string);
                let to = d.req(&f, "to", Decoder::string);
                Some(FailoverRule {
                    from: from?,
                    to: to?,
                })
            })
        },
        Vec::new,
    );
    Some(LocalityLb {
        failover_priority: failover_priority?,
        failover: failover?,
    })
}

fn outlier_detection(d: &mut Decoder, n: &YamlNode, p: &str) -> Option<OutlierDetection> {
    let f = d.fields(n, p, "a mapping of outlier detection settings", OUTLIER)?;
    let c5xx = d.opt(&f, "consecutive5xxErrors", Decoder::u32);
    let gateway = d.opt(&f, "consecutiveGatewayErrors", Decoder::u32);
    let errors = d.opt(&f, "consecutiveErrors", Decoder::u32);
    let interval = d.opt(&f, "interval", Decoder::duration_text);
    let base = d.opt(&f, "baseEjectionTime", Decoder::duration_text);
    let max = d.opt(&f, "maxEjectionPercent", Decoder::u32);
    Some(OutlierDetection {
        consecutive5xx_errors: c5xx?,
        consecutive_gateway_errors: gateway?,
        consecutive_errors: errors?,
        interval: interval?,
        base_ejection_time: base?,
        max_ejection_percent: max?,
    })
}

fn object(d: &mut Decoder, n: &YamlNode, p: &str) -> Option<ObjectSpec> {
    let f = d.fields(n, p, "a mapping with name, namespace and spec", OBJECT)?;
    let name = d.req(&f, "name", Decoder::string);
    let namespace = d.req(&f, "namespace", Decoder::string);
    let clusters = d.or(&f, "clusters", Decoder::strings, Vec::new);
    let spec = d.req(&f, "spec", |d, n, p| {
        if !matches!(n.value, crate::spec::yaml::Value::Map(_)) {
            d.report.error(
                n.pos,
                p,
                format!(
                    "expected the Istio resource's spec (a mapping), found {}",
                    n.describe()
                ),
            );
            return None;
        }
        d.json(n, p)
    });
    Some(ObjectSpec {
        name: name?,
        namespace: namespace?,
        clusters: clusters?,
        spec: spec?,
    })
}

fn observability(d: &mut Decoder, n: &YamlNode, p: &str) -> Option<Observability> {
    let f = d.fields(n, p, "a mapping with prometheus and tracing", OBSERVABILITY)?;
    let prometheus = d.opt(&f, "prometheus", |d, n, p| {
        let f = d.fields(n, p, "a mapping of Prometheus settings", PROMETHEUS)?;
        let federate = d.or(&f, "federate", Decoder::boolean, || false);
        let namespace = d.or(&f, "namespace", Decoder::string, || "istio-system".into());
        let config_map = d.or(&f, "configMap", Decoder::string, || "prometheus".into());
        Some(Prometheus {
            federate: federate?,
            namespace: namespace?,
            config_map: config_map?,
        })
    });
    let tracing = d.opt(&f, "tracing", |d, n, p| {
        let f = d.fields(n, p, "a mapping with zipkin and sampling", TRACING)?;
        let zipkin = d.req(&f, "zipkin", Decoder::string);
        let sampling = d.or(&f, "sampling", Decoder::f64, || 1.0);
        Some(Tracing {
            zipkin: zipkin?,
            sampling: sampling?,
        })
    });
    Some(Observability {
        prometheus: prometheus?,
        tracing: tracing?,
    })
}

fn workloads(d: &mut Decoder, n: &YamlNode, p: &str) -> Option<Workloads> {
    let f = d.fields(n, p, "a mapping of workload settings", WORKLOADS)?;
    let restart_namespaces = d.or(&f, "restartNamespaces", Decoder::strings, Vec::new);
    let per_cluster = d.or(
        &f,
        "perCluster",
        |d, n, p| {
            d.string_map(
                n,
                p,
                "a mapping from cluster name to a list of namespaces",
                Decoder::strings,
            )
        },
        Vec::new,
    );
    Some(Workloads {
        restart_namespaces: restart_namespaces?,
        per_cluster: per_cluster?.into_iter().collect(),
    })
}

fn failover_test(d: &mut Decoder, n: &YamlNode, p: &str) -> Option<FailoverTest> {
    let f = d.fields(
        n,
        p,
        "a mapping describing the failover test",
        FAILOVER_TEST,
    )?;
    let service = d.req(&f, "service", |d, n, p| {
        let f = d.fields(
            n,
            p,
            "a mapping with namespace, name, port and path",
            SERVICE,
        )?;
        let namespace = d.req(&f, "namespace", Decoder::string);
        let name = d.req(&f, "name", Decoder::string);
        let port = d.req(&f, "port", Decoder::u16);
        let path = d.or(&f, "path", Decoder::string, || "/".into());
        Some(ServiceRef {
            namespace: namespace?,
            name: name?,
            port: port?,
            path: path?,
        })
    });
    let from = d.req(&f, "from", Decoder::string);
    let drain = d.req(&f, "drain", Decoder::string);
    let requests = d.or(&f, "requests", Decoder::u32, || 20);
    Some(FailoverTest {
        service: service?,
        from: from?,
        drain: drain?,
        requests: requests?,
    })
}
