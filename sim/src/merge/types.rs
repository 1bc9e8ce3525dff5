//! How the built-in kinds merge: which lists are keyed (and by what), which
//! are sets of primitives, which are atomic. One table serves strategic merge
//! patch (the `patchMergeKey` / `patchStrategy` tags of the Go types) and
//! server-side apply (`x-kubernetes-list-type` / `-list-map-keys` /
//! `-map-type`). Unknown kinds (custom resources) have no table: maps merge
//! key by key and every list is atomic.

/// The fields of one struct type that need more than the defaults
/// (maps merged key by key, lists atomic).
#[derive(Debug)]
pub struct TypeNode {
    fields: &'static [(&'static str, Field)],
}

#[derive(Debug, Clone, Copy)]
pub enum Field {
    /// A struct or map merged key by key; the node describes it (None: defaults below).
    Map(Option<&'static TypeNode>),
    /// A struct or map that server-side apply owns whole (`x-kubernetes-map-type: atomic`);
    /// strategic merge still merges it key by key.
    AtomicMap,
    List(ListType),
}

#[derive(Debug, Clone, Copy)]
pub enum ListType {
    /// Replaced whole.
    Atomic,
    /// Primitives merged as a set (`finalizers`).
    Set,
    /// Objects merged by key.
    Map {
        /// `patchMergeKey` (strategic merge patch uses a single key).
        key: &'static str,
        /// `x-kubernetes-list-map-keys` for server-side apply, with the default a
        /// missing key field takes (`protocol: TCP`).
        apply_keys: &'static [KeyField],
        item: Option<&'static TypeNode>,
    },
}

#[derive(Debug, Clone, Copy)]
pub struct KeyField {
    pub name: &'static str,
    pub default: Option<&'static str>,
}

impl TypeNode {
    pub fn field(&self, name: &str) -> Option<Field> {
        self.fields
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, f)| *f)
    }
}

/// The field `name` below `node` (None: no table, defaults apply).
pub fn child(node: Option<&'static TypeNode>, name: &str) -> Option<Field> {
    node.and_then(|n| n.field(name))
}

/// The node describing a map field's contents.
pub fn map_node(field: Option<Field>) -> Option<&'static TypeNode> {
    match field {
        Some(Field::Map(node)) => node,
        _ => None,
    }
}

/// The list semantics of a field (atomic when the table says nothing).
pub fn list_type(field: Option<Field>) -> ListType {
    match field {
        Some(Field::List(lt)) => lt,
        _ => ListType::Atomic,
    }
}

const fn key(name: &'static str) -> KeyField {
    KeyField {
        name,
        default: None,
    }
}

const fn by(
    key: &'static str,
    apply_keys: &'static [KeyField],
    item: Option<&'static TypeNode>,
) -> Field {
    Field::List(ListType::Map {
        key,
        apply_keys,
        item,
    })
}

const NAME: &[KeyField] = &[key("name")];
const TYPE: &[KeyField] = &[key("type")];
const IP: &[KeyField] = &[key("ip")];
const TCP: Option<&str> = Some("TCP");

static OBJECT_META: TypeNode = TypeNode {
    fields: &[
        ("ownerReferences", by("uid", &[key("uid")], None)),
        ("finalizers", Field::List(ListType::Set)),
    ],
};

static CONTAINER: TypeNode = TypeNode {
    fields: &[
        ("env", by("name", NAME, None)),
        (
            "ports",
            by(
                "containerPort",
                &[
                    key("containerPort"),
                    KeyField {
                        name: "protocol",
                        default: TCP,
                    },
                ],
                None,
            ),
        ),
        ("volumeMounts", by("mountPath", &[key("mountPath")], None)),
        (
            "volumeDevices",
            by("devicePath", &[key("devicePath")], None),
        ),
    ],
};

static POD_SPEC: TypeNode = TypeNode {
    fields: &[
        ("containers", by("name", NAME, Some(&CONTAINER))),
        ("initContainers", by("name", NAME, Some(&CONTAINER))),
        ("ephemeralContainers", by("name", NAME, Some(&CONTAINER))),
        ("volumes", by("name", NAME, None)),
        ("imagePullSecrets", by("name", NAME, None)),
        ("hostAliases", by("ip", IP, None)),
        (
            "topologySpreadConstraints",
            by(
                "topologyKey",
                &[key("topologyKey"), key("whenUnsatisfiable")],
                None,
            ),
        ),
        ("schedulingGates", by("name", NAME, None)),
        ("resourceClaims", by("name", NAME, None)),
        ("tolerations", Field::List(ListType::Atomic)),
        ("nodeSelector", Field::AtomicMap),
    ],
};

static POD_TEMPLATE: TypeNode = TypeNode {
    fields: &[
        ("metadata", Field::Map(Some(&OBJECT_META))),
        ("spec", Field::Map(Some(&POD_SPEC))),
    ],
};

static CONDITIONS: TypeNode = TypeNode {
    fields: &[("conditions", by("type", TYPE, None))],
};

static POD_STATUS: TypeNode = TypeNode {
    fields: &[
        ("conditions", by("type", TYPE, None)),
        ("podIPs", by("ip", IP, None)),
        ("hostIPs", by("ip", IP, None)),
    ],
};

static POD: TypeNode = TypeNode {
    fields: &[
        ("metadata", Field::Map(Some(&OBJECT_META))),
        ("spec", Field::Map(Some(&POD_SPEC))),
        ("status", Field::Map(Some(&POD_STATUS))),
    ],
};

static WORKLOAD_SPEC: TypeNode = TypeNode {
    fields: &[
        ("template", Field::Map(Some(&POD_TEMPLATE))),
        ("selector", Field::AtomicMap),
    ],
};

static WORKLOAD: TypeNode = TypeNode {
    fields: &[
        ("metadata", Field::Map(Some(&OBJECT_META))),
        ("spec", Field::Map(Some(&WORKLOAD_SPEC))),
        ("status", Field::Map(Some(&CONDITIONS))),
    ],
};

static JOB_TEMPLATE: TypeNode = TypeNode {
    fields: &[
        ("metadata", Field::Map(Some(&OBJECT_META))),
        ("spec", Field::Map(Some(&WORKLOAD_SPEC))),
    ],
};

static CRONJOB: TypeNode = TypeNode {
    fields: &[
        ("metadata", Field::Map(Some(&OBJECT_META))),
        (
            "spec",
            Field::Map(Some(&TypeNode {
                fields: &[("jobTemplate", Field::Map(Some(&JOB_TEMPLATE)))],
            })),
        ),
    ],
};

static POD_TEMPLATE_KIND: TypeNode = TypeNode {
    fields: &[
        ("metadata", Field::Map(Some(&OBJECT_META))),
        ("template", Field::Map(Some(&POD_TEMPLATE))),
    ],
};

static SERVICE: TypeNode = TypeNode {
    fields: &[
        ("metadata", Field::Map(Some(&OBJECT_META))),
        (
            "spec",
            Field::Map(Some(&TypeNode {
                fields: &[
                    (
                        "ports",
                        by(
                            "port",
                            &[
                                key("port"),
                                KeyField {
                                    name: "protocol",
                                    default: TCP,
                                },
                            ],
                            None,
                        ),
                    ),
                    ("selector", Field::AtomicMap),
                ],
            })),
        ),
        ("status", Field::Map(Some(&CONDITIONS))),
    ],
};

static SERVICE_ACCOUNT: TypeNode = TypeNode {
    fields: &[
        ("metadata", Field::Map(Some(&OBJECT_META))),
        ("secrets", by("name", NAME, None)),
        ("imagePullSecrets", by("name", NAME, None)),
    ],
};

static WEBHOOK_CONFIGURATION: TypeNode = TypeNode {
    fields: &[
        ("metadata", Field::Map(Some(&OBJECT_META))),
        ("webhooks", by("name", NAME, None)),
    ],
};

static NODE: TypeNode = TypeNode {
    fields: &[
        ("metadata", Field::Map(Some(&OBJECT_META))),
        (
            "spec",
            Field::Map(Some(&TypeNode {
                fields: &[("podCIDRs", Field::List(ListType::Set))],
            })),
        ),
        (
            "status",
            Field::Map(Some(&TypeNode {
                fields: &[
                    ("conditions", by("type", TYPE, None)),
                    ("addresses", by("type", TYPE, None)),
                ],
            })),
        ),
    ],
};

/// Built-in kinds with nothing special beyond metadata and status conditions.
/// RBAC `rules`/`subjects`, Endpoints `subsets` and the like are atomic.
static PLAIN: TypeNode = TypeNode {
    fields: &[
        ("metadata", Field::Map(Some(&OBJECT_META))),
        ("status", Field::Map(Some(&CONDITIONS))),
    ],
};

/// The table for a built-in kind; None for custom resources and unknown kinds.
pub fn root(kind: &str) -> Option<&'static TypeNode> {
    Some(match kind {
        "Pod" => &POD,
        "Deployment"
        | "ReplicaSet"
        | "StatefulSet"
        | "DaemonSet"
        | "Job"
        | "ReplicationController" => &WORKLOAD,
        "CronJob" => &CRONJOB,
        "PodTemplate" => &POD_TEMPLATE_KIND,
        "Service" => &SERVICE,
        "ServiceAccount" => &SERVICE_ACCOUNT,
        "MutatingWebhookConfiguration" | "ValidatingWebhookConfiguration" => &WEBHOOK_CONFIGURATION,
        "Node" => &NODE,
        "ConfigMap"
        | "Secret"
        | "Namespace"
        | "Endpoints"
        | "EndpointSlice"
        | "Role"
        | "ClusterRole"
        | "RoleBinding"
        | "ClusterRoleBinding"
        | "PersistentVolume"
        | "PersistentVolumeClaim"
        | "StorageClass"
        | "PodDisruptionBudget"
        | "HorizontalPodAutoscaler"
        | "NetworkPolicy"
        | "Ingress"
        | "IngressClass"
        | "ResourceQuota"
        | "LimitRange"
        | "PriorityClass"
        | "Lease"
        | "Event"
        | "ControllerRevision"
        | "CertificateSigningRequest"
        | "CustomResourceDefinition"
        | "APIService" => &PLAIN,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_template_containers_are_keyed_by_name() {
        let root = root("Deployment");
        let spec = map_node(child(root, "spec"));
        let tmpl = map_node(child(spec, "template"));
        let pod = map_node(child(tmpl, "spec"));
        match list_type(child(pod, "containers")) {
            ListType::Map { key, item, .. } => {
                assert_eq!(key, "name");
                match list_type(child(item, "ports")) {
                    ListType::Map {
                        key, apply_keys, ..
                    } => {
                        assert_eq!(key, "containerPort");
                        assert_eq!(apply_keys[1].default, Some("TCP"));
                    }
                    other => panic!("{other:?}"),
                }
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            list_type(child(pod, "tolerations")),
            ListType::Atomic
        ));
        assert!(matches!(
            list_type(child(pod, "unknownList")),
            ListType::Atomic
        ));
    }

    #[test]
    fn custom_resources_have_no_table() {
        assert!(root("DestinationRule").is_none());
        assert!(root("Gateway").is_none());
        assert!(matches!(
            list_type(child(None, "anything")),
            ListType::Atomic
        ));
        assert!(root("Service").is_some());
    }
}
