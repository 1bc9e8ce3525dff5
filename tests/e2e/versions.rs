//! Istio versions (issue 13 items 4 and 5), through the real binary: the
//! plans for the same spec at 1.26 and 1.31 differ exactly in the
//! version-gated steps; versions outside 1.24.0..1.31.x, a loopback
//! `apiServer` of a real cluster and `tlsServerName` below 1.26 are refused
//! by `validate`; apply on a 1.26.4 meshsim mesh completes and writes
//! `apiServer` into the remote secret. istiod is restarted after a remote
//! secret (before 1.31) only when the write replaced a different one: not
//! for new ones, forward or back; once where a half-done manual migration
//! left a stale one, and once more when rollback puts that one back.

use crate::apply::step_statuses;
use crate::sim_support::SimEnv;
use crate::specs::two_cluster;
use crate::support::{migrate, repo_root};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const INVALID_INPUT: i32 = 2;

/// `migrate plan --offline -o json` of a spec file: step id -> step.
fn plan_steps(spec: &Path) -> BTreeMap<String, Value> {
    let out = migrate(&[
        "plan",
        "--offline",
        "-o",
        "json",
        "-f",
        &spec.to_string_lossy(),
    ]);
    assert!(
        out.status.success(),
        "plan {}: {}",
        spec.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).expect("plan JSON");
    doc["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| (s["id"].as_str().unwrap().to_string(), s.clone()))
        .collect()
}

/// The 1.26 step with its version written as 1.31's: what remains different
/// is what the version gates, not the version string itself.
fn as_if_1_31(step: &Value) -> Value {
    serde_json::from_str(&step.to_string().replace("1.26.4", "1.31.0")).unwrap()
}

/// The kinds of the actions of a step's `forward` list (`apply`, `wait`, ...).
fn action_kinds(step: &Value, list: &str) -> Vec<String> {
    step[list]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let kind = a.get("action").or_else(|| a.get("type")).cloned();
            format!("{}", kind.unwrap_or_else(|| a.clone()))
        })
        .collect()
}

#[test]
fn plans_for_1_26_and_1_31_differ_exactly_in_the_version_gated_steps() {
    let root = repo_root();
    let old = plan_steps(&root.join("plans/istio-1-26.yaml"));
    let new = plan_steps(&root.join("plans/istio-1-31.yaml"));
    assert_eq!(
        old.keys().collect::<Vec<_>>(),
        new.keys().collect::<Vec<_>>(),
        "the same steps"
    );
    let differing: BTreeSet<&str> = old
        .iter()
        .filter(|(id, s)| as_if_1_31(s) != new[*id])
        .map(|(id, _)| id.as_str())
        .collect();
    let want: BTreeSet<&str> = [
        // before 1.31: istiod restarted after the remote secret
        "discovery/cluster1<-cluster2",
        "discovery/cluster2<-cluster1",
        // 1.30: enableReaderRBAC (description only: applied on both sides)
        "discovery/cluster1/reader",
        "discovery/cluster2/reader",
        // 1.27: cacerts' four keys checked before istiod restarts
        "trust/cluster1",
        "trust/cluster2",
        // the permissions check names the steps that need each access: the
        // restarts above need `patch deployments` in discovery, the check `get secrets` in trust
        "preflight/cluster1",
        "preflight/cluster2",
    ]
    .into();
    assert_eq!(differing, want);

    for pair in [
        "discovery/cluster1<-cluster2",
        "discovery/cluster2<-cluster1",
    ] {
        let (o, n) = (&old[pair], &new[pair]);
        assert!(
            o["description"]
                .as_str()
                .unwrap()
                .contains("Istio before 1.31 keeps a stale view"),
            "{o}"
        );
        assert!(!n["description"].as_str().unwrap().contains("stale"), "{n}");
        // Two more actions forward (restart, wait for the rollout) and back.
        let (of, nf) = (action_kinds(o, "forward"), action_kinds(n, "forward"));
        assert_eq!(of.len(), nf.len() + 2, "{of:?} vs {nf:?}");
        assert_eq!(
            action_kinds(o, "rollback").len(),
            action_kinds(n, "rollback").len() + 2
        );
        let text = o["forward"].to_string();
        assert!(text.contains("restart"), "{text}");
        // apiServer and tlsServerName go into the remote secret's kubeconfig.
        assert!(text.contains("https://10.0."), "{text}");
        assert!(text.contains("kubernetes.default.svc"), "{text}");
    }
    for trust in ["trust/cluster1", "trust/cluster2"] {
        let (o, n) = (&old[trust], &new[trust]);
        assert_eq!(
            action_kinds(n, "forward").len(),
            action_kinds(o, "forward").len() + 1
        );
        assert!(n["forward"].to_string().contains("ca-key.pem"));
        assert!(
            n["description"]
                .as_str()
                .unwrap()
                .contains("Istio 1.27 and later refuse to start on an incomplete cacerts"),
            "{n}"
        );
        assert!(
            o["description"]
                .as_str()
                .unwrap()
                .contains("before 1.27 silently falls back"),
            "{o}"
        );
    }
}

/// plans/istio-1-26.yaml with `edits` applied, written into `dir`.
fn variant(dir: &Path, name: &str, edits: &[(&str, &str)]) -> String {
    let mut text = std::fs::read_to_string(repo_root().join("plans/istio-1-26.yaml")).unwrap();
    for (from, to) in edits {
        assert!(text.contains(from), "{from:?}");
        text = text.replacen(from, to, 1);
    }
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

/// The 1-based line of the first line of `file` containing `needle`.
fn line_of(file: &str, needle: &str) -> usize {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .position(|l| l.contains(needle))
        .expect(needle)
        + 1
}

fn validate(file: &str) -> (Option<i32>, String) {
    let out = migrate(&["validate", "-f", file]);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn versions_outside_1_24_to_1_31_are_refused_with_the_range() {
    let dir = tempfile::tempdir().unwrap();
    for version in ["1.23.9", "1.32.0"] {
        let file = variant(
            dir.path(),
            &format!("v{version}.yaml"),
            &[("\"1.26.4\"", &format!("\"{version}\""))],
        );
        let (code, err) = validate(&file);
        assert_eq!(code, Some(INVALID_INPUT), "{err}");
        let line = line_of(&file, "istioVersion: \"");
        assert!(
            err.contains(&format!("{file}:{line}:")),
            "located at line {line}: {err}"
        );
        assert!(
            err.contains(&format!(
                "spec.mesh.istioVersion: Istio {version} is not supported: migrate plans for Istio 1.24.0 to 1.31.x"
            )),
            "{err}"
        );
    }
    // The range's ends (1.24 has no tlsServerName yet).
    for version in ["1.24.0", "1.31.7"] {
        let quoted = format!("\"{version}\"");
        let tls = " tlsServerName: kubernetes.default.svc,";
        let file = variant(
            dir.path(),
            &format!("v{version}.yaml"),
            &[("\"1.26.4\"", &quoted), (tls, ""), (tls, "")],
        );
        let (code, err) = validate(&file);
        assert_eq!(code, Some(0), "{version}: {err}");
    }
}

#[test]
fn an_unroutable_api_server_of_a_real_cluster_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (i, server) in [
        "https://127.0.0.1:6443",
        "https://localhost:6443",
        "https://[::1]:6443",
        "https://0.0.0.0:6443",
        "https://169.254.10.1:6443",
    ]
    .iter()
    .enumerate()
    {
        let file = variant(
            dir.path(),
            &format!("loopback{i}.yaml"),
            &[("https://10.0.2.10:6443", server)],
        );
        let (code, err) = validate(&file);
        assert_eq!(code, Some(INVALID_INPUT), "{server}: {err}");
        let line = line_of(&file, server);
        assert!(
            err.contains(&format!("{file}:{line}:")) && err.contains("spec.clusters[1].apiServer"),
            "located at the field, line {line}: {err}"
        );
        assert!(
            err.contains("the other clusters' istiods cannot reach it"),
            "{err}"
        );
    }
    // The same address on a cluster meshsim serves is fine.
    let file = variant(
        dir.path(),
        "simulated.yaml",
        &[(
            "apiServer: \"https://10.0.2.10:6443\",",
            "apiServer: \"https://127.0.0.1:6443\", simulated: true,",
        )],
    );
    let (code, err) = validate(&file);
    assert_eq!(code, Some(0), "{err}");
    // Not a URL at all.
    let file = variant(
        dir.path(),
        "http.yaml",
        &[("https://10.0.2.10:6443", "10.0.2.10:6443")],
    );
    let (code, err) = validate(&file);
    assert_eq!(code, Some(INVALID_INPUT), "{err}");
    assert!(err.contains("is not an https:// URL"), "{err}");
}

#[test]
fn tls_server_name_needs_istio_1_26() {
    let dir = tempfile::tempdir().unwrap();
    let file = variant(dir.path(), "v1.25.yaml", &[("\"1.26.4\"", "\"1.25.2\"")]);
    let (code, err) = validate(&file);
    assert_eq!(code, Some(INVALID_INPUT), "{err}");
    let tls: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("tlsServerName: tlsServerName needs Istio 1.26 or later"))
        .collect();
    assert_eq!(tls.len(), 2, "one per cluster: {err}");
    assert!(err.contains("spec.clusters[0].tlsServerName"), "{err}");
}

/// The two-cluster spec at 1.26.4, cluster2 read at `localhost` (its
/// kubeconfig says 127.0.0.1) so that the remote secret shows `apiServer`.
fn spec_1_26_4(env: &SimEnv) -> std::path::PathBuf {
    let port = env
        .sim
        .cluster("cluster2")
        .server_url()
        .rsplit(':')
        .next()
        .unwrap()
        .to_string();
    let mut text = two_cluster().replace("istioVersion: \"1.30.3\"", "istioVersion: \"1.26.4\"");
    let from = "- { name: cluster2, context: sim-cluster2,";
    assert!(text.contains(from));
    text = text.replace(
        from,
        &format!("- {{ name: cluster2, context: sim-cluster2, apiServer: \"https://localhost:{port}\", simulated: true,"),
    );
    env.write_spec("spec-1.26.4.yaml", &text)
}

const ISTIOCTL_1_26_4: [(&str, &str); 1] = [("MESHSIM_ISTIOCTL_VERSION", "1.26.4")];

/// A 1.26.4 source mesh on cluster1 and helloworld v2 on cluster2, and its spec.
fn seeded_1_26_4() -> (SimEnv, std::path::PathBuf) {
    let env = SimEnv::start(2);
    env.rt.block_on(async {
        let mesh = meshsim::seed::SourceMesh {
            istio_version: "1.26.4".into(),
            ..Default::default()
        };
        meshsim::seed::seed_mesh(&env.sim, "cluster1", &mesh)
            .await
            .expect("a 1.26.4 source mesh");
        meshsim::seed::deploy_helloworld(&env.sim, "cluster2", "v2")
            .await
            .expect("helloworld v2 on cluster2");
        meshsim::seed::deploy_prometheus(&env.sim, "cluster2")
            .await
            .expect("prometheus on cluster2");
    });
    let spec = spec_1_26_4(&env);
    (env, spec)
}

/// `migrate` with the istioctl stand-in playing 1.26.4 (preflight checks its version).
fn migrate_1_26_4(env: &SimEnv, args: &[&str]) -> crate::sim_support::Run {
    env.migrate_env(args, &ISTIOCTL_1_26_4).expect_ok()
}

/// A `kubectl get` jsonpath of istiod in `cluster`.
fn istiod_field(env: &SimEnv, cluster: &str, jsonpath: &str) -> String {
    let out = env.kubectl(
        cluster,
        &[
            "get",
            "deployment",
            "istiod",
            "-n",
            "istio-system",
            "-o",
            &format!("jsonpath={jsonpath}"),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// istiod's rollout revision in each cluster: one more per rollout.
fn istiod_revisions(env: &SimEnv) -> [u64; 2] {
    ["cluster1", "cluster2"].map(|c| {
        let text = istiod_field(
            env,
            c,
            "{.metadata.annotations.deployment\\.kubernetes\\.io/revision}",
        );
        text.parse()
            .unwrap_or_else(|_| panic!("{c}: revision {text:?}"))
    })
}

/// istiod's restart stamp in `cluster` (the last restart `migrate` made).
fn istiod_stamp(env: &SimEnv, cluster: &str) -> String {
    istiod_field(
        env,
        cluster,
        "{.spec.template.metadata.annotations.migrate\\.meshops\\.dev/restart}",
    )
}

/// The journal's notes on istiod restarts after remote secrets, in order.
fn restart_notes(env: &SimEnv) -> Vec<String> {
    let events = migrate_1_26_4(env, &["status", "--events"]).stdout;
    events
        .lines()
        .filter(|l| {
            l.contains("Deployment istio-system/istiod @") && l.contains("restarted: Secret")
        })
        .map(str::to_string)
        .collect()
}

/// Applies up to the trust phase, then the rest: istiod's revisions after
/// trust and at the end.
fn apply_around_discovery(env: &SimEnv, spec: &Path) -> ([u64; 2], [u64; 2]) {
    let spec = spec.to_string_lossy();
    migrate_1_26_4(env, &["apply", "-f", &spec, "--until", "trust"]);
    let after_trust = istiod_revisions(env);
    let run = migrate_1_26_4(env, &["apply", "-f", &spec, "--resume"]);
    let statuses = step_statuses(env);
    assert!(
        statuses.iter().all(|(_, s)| s == "done"),
        "{statuses:?}\n{}",
        run.stderr
    );
    (after_trust, istiod_revisions(env))
}

#[test]
fn new_remote_secrets_on_1_26_4_restart_no_istiod_forward_or_back() {
    let (env, spec) = seeded_1_26_4();
    let (after_trust, at_end) = apply_around_discovery(&env, &spec);
    assert_eq!(after_trust, at_end, "no istiod rolled out after trust");
    for cluster in ["cluster1", "cluster2"] {
        let stamp = istiod_stamp(&env, cluster);
        assert!(
            stamp.contains("/trust/") && !stamp.contains("/discovery/"),
            "{cluster}: {stamp:?}"
        );
    }
    let notes = restart_notes(&env);
    assert_eq!(notes.len(), 2, "{notes:#?}");
    assert!(
        notes
            .iter()
            .all(|n| n.contains("not restarted") && n.contains("was new (none before)")),
        "{notes:#?}"
    );
    env.assert_no_secrets_in_outputs();
    // cluster1 reads cluster2 at its apiServer, not at its kubeconfig's server
    // (read last before the rollback: this output holds the remote secret).
    let out = env.kubectl(
        "cluster1",
        &[
            "get",
            "secret",
            "istio-remote-secret-cluster2",
            "-n",
            "istio-system",
            "-o",
            "jsonpath={.data.cluster2}",
        ],
    );
    use base64::Engine;
    let kubeconfig = base64::engine::general_purpose::STANDARD
        .decode(String::from_utf8_lossy(&out.stdout).trim())
        .expect("base64");
    let kubeconfig = String::from_utf8(kubeconfig).unwrap();
    assert!(
        kubeconfig.contains("server: https://localhost:"),
        "the remote secret's server is apiServer"
    );

    // Rollback deletes the Secrets it created: istiod drops those clients, no restart.
    migrate_1_26_4(&env, &["rollback", "--to", "trust"]);
    assert_eq!(
        istiod_revisions(&env),
        at_end,
        "no istiod rolled out by the rollback"
    );
    let notes = restart_notes(&env);
    assert_eq!(notes.len(), 4, "{notes:#?}");
    assert!(
        notes[2..]
            .iter()
            .all(|n| n.contains("not restarted") && n.contains("was deleted by the restore")),
        "{notes:#?}"
    );
}

/// What a half-done manual migration left in cluster1: a remote secret for
/// cluster2 whose kubeconfig is not the one `migrate` writes.
const STALE_KUBECONFIG: &str = "apiVersion: v1\nkind: Config\nclusters:\n- name: cluster2\n  cluster: {server: \"https://10.9.9.9:6443\"}\ncontexts:\n- name: cluster2\n  context: {cluster: cluster2, user: cluster2}\ncurrent-context: cluster2\nusers:\n- name: cluster2\n  user: {}\n";

fn create_stale_remote_secret(env: &SimEnv) {
    let secret = "istio-remote-secret-cluster2";
    let steps: [Vec<String>; 3] = [
        vec![
            "create".into(),
            "secret".into(),
            "generic".into(),
            secret.into(),
            "-n".into(),
            "istio-system".into(),
            format!("--from-literal=cluster2={STALE_KUBECONFIG}"),
        ],
        vec![
            "label".into(),
            "secret".into(),
            secret.into(),
            "-n".into(),
            "istio-system".into(),
            "istio/multiCluster=true".into(),
        ],
        vec![
            "annotate".into(),
            "secret".into(),
            secret.into(),
            "-n".into(),
            "istio-system".into(),
            "networking.istio.io/cluster=cluster2".into(),
        ],
    ];
    for args in &steps {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = env.kubectl("cluster1", &args);
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn remote_secret_data(env: &SimEnv) -> String {
    let out = env.kubectl(
        "cluster1",
        &[
            "get",
            "secret",
            "istio-remote-secret-cluster2",
            "-n",
            "istio-system",
            "-o",
            "jsonpath={.data.cluster2}",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn a_replaced_stale_remote_secret_restarts_istiod_once_forward_and_once_back() {
    let (env, spec) = seeded_1_26_4();
    create_stale_remote_secret(&env);
    let stale = remote_secret_data(&env);
    let (after_trust, at_end) = apply_around_discovery(&env, &spec);
    // cluster1's istiod held the stale Secret: exactly one rollout, by the
    // discovery step; cluster2's got a new Secret: none.
    assert_eq!(at_end, [after_trust[0] + 1, after_trust[1]]);
    let stamp = istiod_stamp(&env, "cluster1");
    assert!(
        stamp.contains("/discovery/cluster1<-cluster2/forward."),
        "{stamp:?}"
    );
    assert_ne!(
        remote_secret_data(&env),
        stale,
        "the stale Secret was replaced"
    );
    let notes = restart_notes(&env);
    assert_eq!(notes.len(), 2, "{notes:#?}");
    let (restarted, not): (Vec<&String>, Vec<&String>) =
        notes.iter().partition(|n| !n.contains(" not restarted: "));
    assert_eq!(restarted.len(), 1, "{notes:#?}");
    assert!(
        restarted[0].contains("@cluster1")
            && restarted[0].contains("replaced one with different data"),
        "{notes:#?}"
    );
    assert!(
        not[0].contains("@cluster2") && not[0].contains("was new"),
        "{notes:#?}"
    );

    // Rollback puts the stale Secret back: istiod must drop the migrated
    // client, so cluster1's istiod rolls out once more.
    migrate_1_26_4(&env, &["rollback", "--to", "trust"]);
    assert_eq!(istiod_revisions(&env), [at_end[0] + 1, at_end[1]]);
    let stamp = istiod_stamp(&env, "cluster1");
    assert!(
        stamp.contains("/discovery/cluster1<-cluster2/rollback."),
        "{stamp:?}"
    );
    assert_eq!(remote_secret_data(&env), stale, "the manual Secret is back");
}

#[test]
fn sigkill_around_the_conditional_restart_still_rolls_istiod_out_once_each_way() {
    let (env, spec) = seeded_1_26_4();
    create_stale_remote_secret(&env);
    let stale = remote_secret_data(&env);
    let spec = spec.to_string_lossy();
    migrate_1_26_4(&env, &["apply", "-f", &spec, "--until", "trust"]);
    let after_trust = istiod_revisions(&env);
    let step = "discovery/cluster1<-cluster2";
    // Killed after the apply (before the decision), then after the restart
    // (before it is journalled done): each re-run decides the same and
    // stamps the same value.
    for k in [1, 2] {
        let failpoint = format!("inside-step:{step}:{k}");
        let run = env.migrate_env(
            &["apply", "-f", &spec, "--resume"],
            &[ISTIOCTL_1_26_4[0], ("MIGRATE_FAILPOINT", &failpoint)],
        );
        crate::apply::killed(run, &failpoint);
    }
    migrate_1_26_4(&env, &["apply", "-f", &spec, "--resume"]);
    let at_end = istiod_revisions(&env);
    assert_eq!(at_end, [after_trust[0] + 1, after_trust[1]]);
    // The same in the rollback: after the restore, after the restart.
    for k in [1, 2] {
        let failpoint = format!("inside-step:{step}:{k}");
        let run = env.migrate_env(
            &["rollback", "--to", "trust"],
            &[ISTIOCTL_1_26_4[0], ("MIGRATE_FAILPOINT", &failpoint)],
        );
        crate::apply::killed(run, &failpoint);
    }
    migrate_1_26_4(&env, &["rollback", "--to", "trust"]);
    assert_eq!(istiod_revisions(&env), [at_end[0] + 1, at_end[1]]);
    assert_eq!(remote_secret_data(&env), stale, "the manual Secret is back");
}
