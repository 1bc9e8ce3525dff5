//! The harness for runs against meshsim: simulated clusters in the test
//! process, a spec pointing at their contexts, the real `migrate` binary
//! with a private state directory (or, on the Kubernetes backend, a
//! namespace of one more simulated cluster), normalised dumps of every
//! migrated cluster, a readable diff of two dumps, and a scan of every
//! output for secrets.
#![allow(dead_code)]

use meshsim::{Sim, SimConfig};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Where the `migrate` runs of a test keep their state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The local state directory (sled), `--state-dir`.
    Sled,
    /// A namespace of one more simulated cluster, `--state kubernetes://CONTEXT/NAMESPACE`.
    Kubernetes,
}

/// The namespace holding the state on the Kubernetes backend.
pub const STATE_NAMESPACE: &str = "team-state";

/// The Lease guarding a Kubernetes store (the product's name for it).
const STATE_LEASE: &str = "migrate-state";

/// Simulated clusters plus a scratch directory for one test.
pub struct SimEnv {
    // Field order matters: the sim's tasks are aborted before the runtime goes.
    pub sim: Sim,
    pub rt: tokio::runtime::Runtime,
    pub dir: tempfile::TempDir,
    pub state_dir: PathBuf,
    pub cert_dir: PathBuf,
    /// On the Kubernetes backend: the cluster holding the state's namespace (the last one, not migrated).
    state_cluster: Option<String>,
    /// Every stdout/stderr the binary produced in this test, for the secret scan.
    outputs: Mutex<Vec<(String, String)>>,
}

/// One run of the binary.
pub struct Run {
    pub args: Vec<String>,
    pub stdout: String,
    pub stderr: String,
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

impl Run {
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }

    /// Panics with the whole output unless the run exited 0.
    pub fn expect_ok(self) -> Run {
        assert!(self.ok(), "{}", self.describe("expected success"));
        self
    }

    pub fn describe(&self, what: &str) -> String {
        format!(
            "{what}: migrate {} ended with code {:?} signal {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.args.join(" "),
            self.code,
            self.signal,
            self.stdout,
            self.stderr
        )
    }
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

impl SimEnv {
    /// `clusters` simulated clusters serving the Istio kinds.
    pub fn start(clusters: usize) -> SimEnv {
        Self::start_on(clusters, Backend::Sled)
    }

    /// `clusters` simulated clusters serving the Istio kinds, the state on `backend`.
    pub fn start_on(clusters: usize, backend: Backend) -> SimEnv {
        // The example plans' localities for the first two clusters.
        let localities = crate::specs::TWO_CLUSTER_LOCALITIES
            .iter()
            .map(|(region, zone)| meshsim::mesh::Locality::new(region, zone, ""))
            .collect();
        Self::start_with_state(
            SimConfig {
                clusters,
                ready_delay: Duration::from_millis(10),
                localities,
                ..Default::default()
            },
            backend,
        )
    }

    pub fn start_with(config: SimConfig) -> SimEnv {
        Self::start_with_state(config, Backend::Sled)
    }

    /// The clusters of `config`, and on the Kubernetes backend one more (the team's management cluster) holding
    /// the state's namespace: every state-using command then gets `--state kubernetes://...`, and dumps leave
    /// that cluster out (it changes with every run).
    pub fn start_with_state(mut config: SimConfig, backend: Backend) -> SimEnv {
        let state_cluster = match backend {
            Backend::Sled => None,
            Backend::Kubernetes => {
                config.clusters += 1;
                Some(format!("cluster{}", config.clusters))
            }
        };
        let rt = runtime();
        let sim = rt.block_on(Sim::start(config)).expect("meshsim starts");
        let dir = tempfile::tempdir().expect("a temp dir");
        let state_dir = dir.path().join("state");
        let cert_dir = dir.path().join("certs");
        let env = SimEnv {
            sim,
            rt,
            state_dir,
            cert_dir,
            dir,
            state_cluster,
            outputs: Mutex::new(Vec::new()),
        };
        if let Some(cluster) = env.state_cluster() {
            // Straight into the store: kubectl would cost a process per test for nothing tested.
            let store = cluster.store();
            let rt = store
                .resolve_kind("v1", "Namespace")
                .expect("Namespaces are served");
            let ns = serde_json::json!({"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": STATE_NAMESPACE}});
            store
                .create(&rt, ns, &Default::default())
                .expect("the state's namespace");
        }
        env
    }

    /// Where the runs' state is.
    pub fn backend(&self) -> Backend {
        match self.state_cluster {
            Some(_) => Backend::Kubernetes,
            None => Backend::Sled,
        }
    }

    /// The cluster holding the state on the Kubernetes backend.
    pub fn state_cluster(&self) -> Option<&meshsim::ClusterHandle> {
        self.state_cluster.as_deref().map(|c| self.sim.cluster(c))
    }

    /// The clusters a run migrates: all but the state's.
    pub fn mesh_clusters(&self) -> Vec<&meshsim::ClusterHandle> {
        self.sim
            .clusters()
            .iter()
            .filter(|c| Some(c.name()) != self.state_cluster.as_deref())
            .collect()
    }

    /// `kubernetes://CONTEXT/NAMESPACE` of the state cluster (or, on sled, of the last cluster: for tests that
    /// push there).
    pub fn state_location(&self) -> String {
        let cluster = match &self.state_cluster {
            Some(c) => self.sim.cluster(c),
            None => self.sim.clusters().last().expect("a cluster"),
        };
        format!("kubernetes://{}/{STATE_NAMESPACE}", cluster.context())
    }

    /// After a `migrate` process died without giving its lock back (killed, or its store unreachable as it
    /// ended): on sled the lock went with the process; on the Kubernetes backend its Lease stays until it
    /// lapses, so the operator who knows the process is gone frees it, as the refusal says
    /// (`migrate unlock --force ID`).
    pub fn free_lock_of_dead_run(&self) {
        let Some(cluster) = self.state_cluster() else {
            return;
        };
        let store = cluster.store();
        let rt = store
            .resolve_kind("coordination.k8s.io/v1", "Lease")
            .expect("Leases are served");
        let Some(lease) = store
            .list(&rt, Some(STATE_NAMESPACE))
            .0
            .into_iter()
            .find(|l| l.pointer("/metadata/name") == Some(&Value::from(STATE_LEASE)))
        else {
            return;
        };
        if lease
            .pointer("/spec/holderIdentity")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return;
        }
        // The holder id the refusal names, from the holder record on the Lease.
        let record = lease
            .pointer("/metadata/annotations/migrate.meshops.dev~1holder")
            .and_then(Value::as_str)
            .and_then(|r| serde_json::from_str::<Value>(r).ok())
            .unwrap_or_else(|| panic!("the Lease carries its holder record: {lease}"));
        let id = record["id"]
            .as_str()
            .unwrap_or_else(|| panic!("a holder id: {record}"))
            .to_string();
        self.migrate(&["unlock", "--force", &id]).expect_ok();
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn kubeconfig(&self) -> &Path {
        self.sim.kubeconfig_path()
    }

    /// A directory holding `istioctl`, a symlink to the migrate binary (which
    /// acts as istioctl under that name).
    pub fn istioctl(&self) -> PathBuf {
        let bin = self.path("bin");
        let link = bin.join("istioctl");
        if !link.exists() {
            std::fs::create_dir_all(&bin).unwrap();
            std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_migrate"), &link).unwrap();
        }
        link
    }

    /// Writes `text` as a spec file in the scratch directory, with
    /// `@ISTIOCTL@` and `@CERTS@` replaced, and returns its path.
    pub fn write_spec(&self, name: &str, text: &str) -> PathBuf {
        let text = text
            .replace("@ISTIOCTL@", &self.istioctl().to_string_lossy())
            .replace("@CERTS@", &self.cert_dir.to_string_lossy());
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Runs the real binary with the sim's kubeconfig; `--state-dir` (or on
    /// the Kubernetes backend `--state LOCATION`) is added for the commands
    /// that take it, unless the arguments name a state already.
    pub fn migrate(&self, args: &[&str]) -> Run {
        self.migrate_env(args, &[])
    }

    pub fn migrate_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        if matches!(
            args.first(),
            Some(&"apply" | &"status" | &"rollback" | &"unlock")
        ) && !args.contains(&"--state-dir")
            && !args.contains(&"--state")
        {
            if self.state_cluster.is_some() {
                all.push("--state".into());
                all.push(self.state_location());
            } else {
                all.push("--state-dir".into());
                all.push(self.state_dir.to_string_lossy().into_owned());
            }
        }
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_migrate"));
        cmd.args(&all)
            .current_dir(self.dir.path())
            .env("KUBECONFIG", self.kubeconfig())
            .env("PATH", path_with(&self.path("bin")))
            .env_remove(migrate::engine::failpoint::ENV)
            .env_remove("RUST_LOG");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out: Output = cmd.output().expect("the migrate binary runs");
        let run = Run {
            args: all,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            code: out.status.code(),
            signal: out.status.signal(),
        };
        let mut outputs = self.outputs.lock().unwrap();
        let label = run.args.join(" ");
        outputs.push((format!("stdout of migrate {label}"), run.stdout.clone()));
        outputs.push((format!("stderr of migrate {label}"), run.stderr.clone()));
        run
    }

    /// Records output the test produced some other way (kubectl), for the scan.
    pub fn record_output(&self, label: &str, text: &str) {
        self.outputs
            .lock()
            .unwrap()
            .push((label.to_string(), text.to_string()));
    }

    /// The real kubectl against one simulated cluster.
    pub fn kubectl(&self, cluster: &str, args: &[&str]) -> Output {
        let out = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(self.kubeconfig())
            .arg("--context")
            .arg(self.sim.cluster(cluster).context())
            .args(args)
            .output()
            .expect("kubectl runs (it must be on PATH)");
        self.record_output(
            &format!("kubectl {}", args.join(" ")),
            &String::from_utf8_lossy(&out.stdout),
        );
        out
    }

    /// Every migrated cluster's objects, normalised (see `normalise`): the
    /// state's cluster is left out.
    pub fn dump(&self) -> Dump {
        let mut clusters = BTreeMap::new();
        for c in self.mesh_clusters() {
            clusters.insert(c.name().to_string(), dump_store(c.store()));
        }
        Dump { clusters }
    }

    /// The dump once every Deployment has rolled out (its current
    /// generation observed, every replica updated and available): a run
    /// killed mid-rollout leaves status that is still moving.
    pub fn settled_dump(&self) -> Dump {
        let rolled_out = |d: &Value| {
            let n = |p: &str| d.pointer(p).and_then(Value::as_i64);
            let want = n("/spec/replicas").unwrap_or(1);
            n("/status/observedGeneration") >= n("/metadata/generation")
                && n("/status/replicas").unwrap_or(0) == want
                && n("/status/updatedReplicas").unwrap_or(0) == want
                && n("/status/availableReplicas").unwrap_or(0) == want
        };
        self.wait_for(
            "every Deployment rolled out",
            Duration::from_secs(30),
            || {
                self.mesh_clusters().iter().all(|c| {
                    let Some(rt) = c.store().resolve_kind("apps/v1", "Deployment") else {
                        return true;
                    };
                    c.store().list(&rt, None).0.iter().all(|d| rolled_out(d))
                })
            },
        );
        self.dump()
    }

    /// Waits until `cond` holds, polling every 20 ms, or panics after `limit`.
    pub fn wait_for(&self, what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + limit;
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Secret bytes this test may have met: the clusters' admin tokens,
    /// every Secret value that is not a certificate, and the bodies of the
    /// private keys under the cert dir. Named by where they come from.
    pub fn secrets(&self) -> Vec<(String, String)> {
        let mut found = Vec::new();
        for c in self.sim.clusters() {
            found.push((
                format!("admin token of {}", c.name()),
                c.admin_token().to_string(),
            ));
            let Some(rt) = c.store().resolve_kind("v1", "Secret") else {
                continue;
            };
            let (items, _) = c.store().list(&rt, None);
            for s in items {
                let name = format!(
                    "{}/{}",
                    s.pointer("/metadata/namespace")
                        .and_then(Value::as_str)
                        .unwrap_or(""),
                    s.pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                );
                for field in ["data", "stringData"] {
                    let Some(data) = s.get(field).and_then(Value::as_object) else {
                        continue;
                    };
                    for (key, value) in data {
                        let Some(text) = value.as_str() else { continue };
                        let decoded = if field == "data" {
                            use base64::Engine;
                            base64::engine::general_purpose::STANDARD
                                .decode(text)
                                .ok()
                                .and_then(|b| String::from_utf8(b).ok())
                        } else {
                            Some(text.to_string())
                        };
                        let plain = decoded.unwrap_or_default();
                        if plain.contains("-----BEGIN CERTIFICATE")
                            && !plain.contains("PRIVATE KEY")
                        {
                            continue;
                        }
                        for piece in secret_pieces(&plain) {
                            found.push((
                                format!("{field}.{key} of Secret {name} in {}", c.name()),
                                piece,
                            ));
                        }
                        if field == "data" && text.len() >= 16 {
                            found.push((
                                format!("{field}.{key} (base64) of Secret {name} in {}", c.name()),
                                text.to_string(),
                            ));
                        }
                    }
                }
            }
        }
        if let Ok(walk) = walk_files(&self.cert_dir) {
            for file in walk {
                if file.to_string_lossy().contains("key")
                    && let Ok(text) = std::fs::read_to_string(&file)
                {
                    for piece in secret_pieces(&text) {
                        found.push((format!("key file {}", file.display()), piece));
                    }
                }
            }
        }
        found
    }

    /// Panics naming the output and the secret's origin (never its value)
    /// if any secret from `secrets()` appears in any recorded output or in
    /// the files of the state directory's logs.
    pub fn assert_no_secrets_in_outputs(&self) {
        let secrets = self.secrets();
        assert!(
            !secrets.is_empty(),
            "the secret scan found nothing to look for"
        );
        let outputs = self.outputs.lock().unwrap();
        let mut leaks = BTreeSet::new();
        for (label, text) in outputs.iter() {
            for (origin, secret) in &secrets {
                if text.contains(secret.as_str()) {
                    leaks.insert(format!("{origin} appears in {label}"));
                }
            }
        }
        assert!(
            leaks.is_empty(),
            "secrets leaked:\n{}",
            leaks.into_iter().collect::<Vec<_>>().join("\n")
        );
    }
}

/// Lines of a secret long enough to be telling: PEM body lines, or the
/// whole value when it is not PEM (tokens, kubeconfig tokens).
fn secret_pieces(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    if text.contains("-----BEGIN") {
        let mut in_key = false;
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with("-----BEGIN") {
                in_key = line.contains("PRIVATE KEY");
            } else if line.starts_with("-----END") {
                in_key = false;
            } else if in_key && line.len() >= 16 {
                out.push(line.to_string());
            }
        }
    } else if text.contains("token:") {
        // A kubeconfig: its token lines.
        for line in text.lines() {
            if let Some(t) = line.trim().strip_prefix("token:") {
                let t = t.trim().trim_matches('"');
                if t.len() >= 16 {
                    out.push(t.to_string());
                }
            }
        }
    } else if text.trim().len() >= 16 {
        out.push(text.trim().to_string());
    }
    out
}

fn walk_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            out.extend(walk_files(&path)?);
        } else {
            out.push(path);
        }
    }
    Ok(out)
}

fn path_with(dir: &Path) -> String {
    match std::env::var("PATH") {
        Ok(p) => format!("{}:{p}", dir.display()),
        Err(_) => dir.display().to_string(),
    }
}

// ---- dumps ----

/// Objects of every cluster: cluster -> "apiVersion Kind ns/name" -> object.
#[derive(Debug, Clone, PartialEq)]
pub struct Dump {
    pub clusters: BTreeMap<String, BTreeMap<String, Value>>,
}

/// Kinds left out of dumps: what controllers derive, with generated names
/// and a count that depends on how many rollouts happened.
const DERIVED: &[&str] = &[
    "Pod",
    "ReplicaSet",
    "Event",
    "Endpoints",
    "EndpointSlice",
    "ControllerRevision",
    "Lease",
];

fn dump_store(store: &meshsim::Store) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for rt in store.types() {
        if DERIVED.contains(&rt.kind.as_str()) {
            continue;
        }
        let (items, _) = store.list(&rt, None);
        let mut entries: Vec<(String, Value)> = items
            .iter()
            .map(|o| {
                let v = normalise(o);
                let ns = v
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let name = v
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let key = if ns.is_empty() {
                    format!("{} {} {name}", rt.api_version(), rt.kind)
                } else {
                    format!("{} {} {ns}/{name}", rt.api_version(), rt.kind)
                };
                (key, v)
            })
            .collect();
        entries.sort_by(|a, b| (&a.0, a.1.to_string()).cmp(&(&b.0, b.1.to_string())));
        for (key, v) in entries {
            let mut k = key.clone();
            let mut n = 1;
            while out.contains_key(&k) {
                n += 1;
                k = format!("{key} #{n}");
            }
            out.insert(k, v);
        }
    }
    out
}

/// Annotations that record when or how often something happened.
const VOLATILE_ANNOTATIONS: &[&str] = &[
    "kubectl.kubernetes.io/restartedAt",
    "migrate.meshops.dev/restart",
    "deployment.kubernetes.io/revision",
    // The uid of the ServiceAccount a token Secret belongs to.
    "kubernetes.io/service-account.uid",
];

/// An object minus what differs between two equal runs: identity and
/// timing metadata, generated name suffixes, restart stamps, API server
/// ports, and secret material (Secret data by key set; PEM certificates by
/// subject; keys and tokens dropped).
pub fn normalise(object: &Value) -> Value {
    let mut v = object.clone();
    let is_secret = v.get("kind").and_then(Value::as_str) == Some("Secret");
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in [
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "managedFields",
            "generation",
            "selfLink",
        ] {
            meta.remove(k);
        }
        if let Some(generate) = meta
            .get("generateName")
            .and_then(Value::as_str)
            .map(str::to_string)
        {
            meta.insert("name".into(), Value::String(format!("{generate}*")));
        }
        if let Some(refs) = meta
            .get_mut("ownerReferences")
            .and_then(Value::as_array_mut)
        {
            for r in refs {
                if let Some(r) = r.as_object_mut() {
                    r.remove("uid");
                }
            }
        }
        strip_annotations(meta);
    }
    if let Some(tmeta) = v
        .pointer_mut("/spec/template/metadata")
        .and_then(Value::as_object_mut)
    {
        strip_annotations(tmeta);
    }
    if let Some(status) = v.get_mut("status").and_then(Value::as_object_mut) {
        status.remove("observedGeneration");
        // How many ReplicaSets a rollout went through is not a result.
        status.remove("collisionCount");
        // Messages name generated ReplicaSets; type, status and reason stay.
        if let Some(conditions) = status.get_mut("conditions").and_then(Value::as_array_mut) {
            for c in conditions.iter_mut().filter_map(Value::as_object_mut) {
                c.remove("message");
            }
        }
    }
    // Cluster IPs are handed out in creation order, which parallel steps vary.
    if let Some(spec) = v.get_mut("spec").and_then(Value::as_object_mut)
        && spec
            .get("clusterIP")
            .and_then(Value::as_str)
            .is_some_and(|ip| ip != "None")
    {
        spec.insert("clusterIP".into(), Value::String("<allocated>".into()));
        spec.insert("clusterIPs".into(), serde_json::json!(["<allocated>"]));
    }
    if is_secret {
        for field in ["data", "stringData"] {
            if let Some(data) = v.get_mut(field).and_then(Value::as_object_mut) {
                for value in data.values_mut() {
                    *value = Value::String("<secret>".into());
                }
            }
        }
    }
    scrub(&mut v);
    v
}

fn strip_annotations(meta: &mut Map<String, Value>) {
    if let Some(ann) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
        for k in VOLATILE_ANNOTATIONS {
            ann.remove(*k);
        }
        if ann.is_empty() {
            meta.remove("annotations");
        }
    }
}

/// Recursively: timestamps -> `<time>`, `127.0.0.1:<port>` -> `127.0.0.1:PORT`,
/// PEM -> its certificates' subjects.
fn scrub(v: &mut Value) {
    match v {
        Value::String(s) => {
            if is_timestamp(s) {
                *s = "<time>".into();
            } else if s.contains("-----BEGIN") {
                *s = describe_pem(s);
            } else if s.contains("127.0.0.1:") {
                *s = mask_ports(s);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(scrub),
        Value::Object(m) => m.values_mut().for_each(scrub),
        _ => {}
    }
}

fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 20
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && (s.ends_with('Z') || s.contains('+'))
}

fn mask_ports(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("127.0.0.1:") {
        out.push_str(&rest[..i + 10]);
        rest = &rest[i + 10..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        out.push_str(if digits > 0 { "PORT" } else { "" });
        rest = &rest[digits..];
    }
    out.push_str(rest);
    out
}

/// `<pem: CERTIFICATE(subject) ..., PRIVATE KEY>`: what a PEM bundle holds,
/// by a fact stable across runs.
pub fn describe_pem(text: &str) -> String {
    let mut parts = Vec::new();
    match pem::parse_many(text.as_bytes()) {
        Ok(blocks) => {
            for b in blocks {
                if b.tag() == "CERTIFICATE" {
                    let subject = x509_parser::parse_x509_certificate(b.contents())
                        .map(|(_, c)| c.subject().to_string())
                        .unwrap_or_else(|_| "unparsable".into());
                    parts.push(format!("CERTIFICATE({subject})"));
                } else {
                    parts.push(b.tag().to_string());
                }
            }
        }
        Err(_) => parts.push("unparsable".into()),
    }
    format!("<pem: {}>", parts.join(", "))
}

impl Dump {
    /// Panics with a readable account of how `self` differs from `want`.
    pub fn assert_eq(&self, want: &Dump, context: &str) {
        let diff = self.diff(want);
        assert!(
            diff.is_empty(),
            "{context}: cluster objects differ (left: got, right: want)\n{diff}"
        );
    }

    /// Every difference, one line per missing or extra object and per
    /// changed field; empty when equal.
    pub fn diff(&self, want: &Dump) -> String {
        let mut out = Vec::new();
        let names: BTreeSet<&String> = self.clusters.keys().chain(want.clusters.keys()).collect();
        let empty = BTreeMap::new();
        for cluster in names {
            let got = self.clusters.get(cluster).unwrap_or(&empty);
            let exp = want.clusters.get(cluster).unwrap_or(&empty);
            for (key, w) in exp {
                match got.get(key) {
                    None => out.push(format!("{cluster}: missing {key}")),
                    Some(g) if g != w => {
                        let mut fields = Vec::new();
                        value_diff("", g, w, &mut fields);
                        for f in fields.iter().take(12) {
                            out.push(format!("{cluster}: {key}: {f}"));
                        }
                        if fields.len() > 12 {
                            out.push(format!("{cluster}: {key}: ... {} more", fields.len() - 12));
                        }
                    }
                    Some(_) => {}
                }
            }
            for key in got.keys().filter(|k| !exp.contains_key(*k)) {
                out.push(format!("{cluster}: unexpected {key}"));
            }
        }
        out.join("\n")
    }

    /// The keys of one cluster's objects, for quick checks.
    pub fn keys(&self, cluster: &str) -> Vec<&str> {
        self.clusters
            .get(cluster)
            .map(|m| m.keys().map(String::as_str).collect())
            .unwrap_or_default()
    }
}

fn value_diff(path: &str, got: &Value, want: &Value, out: &mut Vec<String>) {
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => {
            let keys: BTreeSet<&String> = g.keys().chain(w.keys()).collect();
            for k in keys {
                let p = format!("{path}/{k}");
                match (g.get(k), w.get(k)) {
                    (Some(a), Some(b)) => value_diff(&p, a, b, out),
                    (Some(a), None) => out.push(format!("{p}: unexpected {}", short(a))),
                    (None, Some(b)) => out.push(format!("{p}: missing (want {})", short(b))),
                    (None, None) => {}
                }
            }
        }
        (Value::Array(g), Value::Array(w)) if g.len() == w.len() => {
            for (i, (a, b)) in g.iter().zip(w).enumerate() {
                value_diff(&format!("{path}/{i}"), a, b, out);
            }
        }
        (a, b) if a != b => out.push(format!("{path}: got {} want {}", short(a), short(b))),
        _ => {}
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 160 {
        format!(
            "{}...",
            &s[..s.char_indices().nth(157).map_or(s.len(), |(i, _)| i)]
        )
    } else {
        s
    }
}

#[test]
fn dumps_of_two_fresh_sims_are_equal_and_a_change_is_reported() {
    let a = SimEnv::start(2);
    let b = SimEnv::start(2);
    // Each sim's namespace controller fills in default ServiceAccounts and
    // kube-root-ca.crt on its own task: compare once both have.
    a.wait_for("both fresh sims to settle", Duration::from_secs(10), || {
        a.dump().diff(&b.dump()).is_empty()
    });
    let (da, db) = (a.dump(), b.dump());
    da.assert_eq(&db, "two fresh simulations");
    assert!(!da.keys("cluster1").is_empty());
    // A change shows up, by object and field.
    let rt = a
        .sim
        .cluster("cluster2")
        .store()
        .resolve_kind("v1", "ConfigMap")
        .unwrap();
    let cm = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "probe-me", "namespace": "default"}, "data": {"k": "v"}});
    a.sim
        .cluster("cluster2")
        .store()
        .create(&rt, cm, &Default::default())
        .unwrap();
    let diff = a.dump().diff(&db);
    assert!(
        diff.contains("cluster2: unexpected v1 ConfigMap default/probe-me"),
        "{diff}"
    );
}

#[test]
fn normalise_drops_identity_and_masks_secret_material() {
    let s = serde_json::json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "x", "namespace": "n", "uid": "u", "resourceVersion": "7",
            "creationTimestamp": "2026-11-21T19:00:00Z", "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-11-21T19:00:00Z"}},
        "data": {"token": "c2VjcmV0LXRva2Vu"}, "status": {"x": "https://127.0.0.1:41234/api"}});
    let n = normalise(&s);
    assert_eq!(
        n,
        serde_json::json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x", "namespace": "n"},
            "data": {"token": "<secret>"}, "status": {"x": "https://127.0.0.1:PORT/api"}})
    );
}

#[test]
fn the_secret_scan_finds_a_token_and_a_key_line_in_output() {
    let env = SimEnv::start(1);
    env.assert_no_secrets_in_outputs();
    let token = env.sim.cluster("cluster1").admin_token().to_string();
    env.record_output("a log line", &format!("Authorization: Bearer {token}"));
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        env.assert_no_secrets_in_outputs()
    }));
    let message = caught.expect_err("the leaked token is found");
    let text = message
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(
        text.contains("admin token of cluster1 appears in a log line"),
        "{text}"
    );
    assert!(
        !text.contains(&token),
        "the report names the secret, never shows it"
    );
    let key = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n";
    assert_eq!(
        secret_pieces(key),
        vec!["MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg"]
    );
}
