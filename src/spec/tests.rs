//! Parser-level tests: round trips, accumulation, locations, and a
//! property-style run over mangled plans that must never panic.

use super::*;
use std::path::PathBuf;

fn plans() -> Vec<(PathBuf, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans");
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p, text)
        })
        .collect();
    out.sort();
    assert!(out.len() >= 6, "the example plans are missing");
    out
}

fn errors(text: &str) -> Vec<Diagnostic> {
    match parse_str(text, Path::new("t.yaml")) {
        Ok(l) => panic!("expected errors, got a valid spec with {:?}", l.warnings),
        Err(SpecError::Invalid { diagnostics, .. }) => diagnostics,
        Err(e) => panic!("{e}"),
    }
}

const BASE: &str = "\
apiVersion: migrate.meshops.dev/v1alpha1
kind: MeshMigration
metadata: { name: t }
spec:
  mesh: { id: mesh1, istioVersion: \"1.30.3\" }
  topology: multi-primary
  installer: { kind: istioctl }
  clusters:
    - { name: c1, context: k1, source: true }
    - { name: c2, context: k2 }
  trust:
    root: { adopt: c1 }
";

#[test]
fn every_plan_is_valid_and_round_trips_through_serde() {
    for (path, text) in plans() {
        let loaded = parse_str(&text, &path).unwrap_or_else(|e| match e {
            SpecError::Invalid { diagnostics, .. } => panic!(
                "{}:\n{}",
                path.display(),
                diagnostics
                    .iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join("\n")
            ),
            e => panic!("{e}"),
        });
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        // serde's field names and the hand decoder's must agree. JSON is
        // YAML, and unlike serde_yaml it writes `root: {adopt: ..}` rather
        // than a `!adopt` tag.
        let again = serde_json::to_string_pretty(&loaded.spec).unwrap();
        let reloaded = parse_str(&again, Path::new("again.yaml")).unwrap_or_else(|e| {
            panic!(
                "{}: re-serialised spec rejected: {e:?}\n{again}",
                path.display()
            )
        });
        assert_eq!(reloaded.spec, loaded.spec, "{}", path.display());
    }
}

#[test]
fn defaults_fill_optional_fields() {
    let spec = parse_str(BASE, Path::new("t.yaml")).unwrap().spec.spec;
    assert_eq!(spec.mesh.trust_domain, "cluster.local");
    assert_eq!(spec.installer.path, "istioctl");
    assert_eq!(spec.trust.intermediate_validity_days, 730);
    assert_eq!(spec.trust.cert_dir, PathBuf::from("./migrate-certs"));
    assert_eq!(spec.clusters[1].network, None);
    assert!(spec.failover_test.is_none());
}

#[test]
fn serde_defaults_match_the_decoder() {
    let text = BASE.replace("root: { adopt: c1 }", "root: { generate: { org: Acme } }")
        + "  observability:\n    prometheus: {}\n    tracing: { zipkin: \"z.obs:9411\" }\n"
        + "  failoverTest:\n    service: { namespace: s, name: h, port: 80 }\n    from: c2\n    drain: c1\n";
    let ours = parse_str(&text, Path::new("t.yaml")).unwrap().spec;
    // Through JSON: serde_yaml 0.9 wants `!adopt` tags for enums.
    let json: serde_json::Value = serde_yaml::from_str(&text).unwrap();
    let theirs: MeshMigration = serde_json::from_value(json).unwrap();
    assert_eq!(ours, theirs);
    let TrustRoot::Generate(g) = &ours.spec.trust.root else {
        panic!("{:?}", ours.spec.trust.root)
    };
    assert_eq!(
        (g.algorithm, g.validity_days),
        (KeyAlgorithm::EcdsaP256, 3650)
    );
    let t = ours.spec.failover_test.unwrap();
    assert_eq!((t.requests, t.service.path.as_str()), (20, "/"));
}

#[test]
fn merge_keys_fill_in_fields_and_explicit_ones_win() {
    let text = BASE.replace(
        "    - { name: c1, context: k1, source: true }\n    - { name: c2, context: k2 }\n",
        "    - &first { name: c1, context: k1, source: true, locality: { region: r1 } }\n    - <<: *first\n      name: c2\n      context: k2\n      source: false\n",
    );
    let spec = parse_str(&text, Path::new("t.yaml")).unwrap().spec.spec;
    assert_eq!(spec.clusters[1].name, "c2");
    assert!(!spec.clusters[1].source);
    assert_eq!(spec.clusters[1].locality.as_ref().unwrap().region, "r1");
    // A misspelt field arriving through a merge is still reported.
    let text = text.replace("locality: { region: r1 }", "localty: { region: r1 }");
    let d = errors(&text);
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].path, "spec.clusters[0].localty");
    let d = errors(&BASE.replace(
        "{ name: c2, context: k2 }",
        "{ <<: 3, name: c2, context: k2 }",
    ));
    assert!(
        d[0].message.contains("a merge (`<<`) takes a mapping"),
        "{d:?}"
    );
}

#[test]
fn structural_errors_are_all_reported_and_located() {
    let text = BASE
        .replace(
            "{ name: c2, context: k2 }",
            "{ name: c2, context: k2, netwrok: n2 }",
        )
        .replace("topology: multi-primary", "topology: multi-primery")
        .replace("istioVersion: \"1.30.3\"", "istioVersion: 1.30");
    let d = errors(&text);
    let shown: Vec<String> = d.iter().map(|d| d.to_string()).collect();
    assert_eq!(d.len(), 3, "{shown:#?}");
    assert_eq!(
        shown[0],
        "t.yaml:5:36: error: spec.mesh.istioVersion: expected a string, found a number `1.30` (quote it: \"1.30\")"
    );
    assert!(shown[1].starts_with(
        "t.yaml:6:13: error: spec.topology: expected one of multi-primary, primary-remote"
    ));
    assert!(shown[1].ends_with("(did you mean `multi-primary`?)"));
    assert_eq!(
        shown[2],
        "t.yaml:10:32: error: spec.clusters[1].netwrok: unknown field `netwrok` (did you mean `network`?)"
    );
}

#[test]
fn semantic_errors_are_all_reported_in_file_order() {
    let text = BASE
        .replace(
            "{ name: c2, context: k2 }",
            "{ name: c1, context: k1, source: true }",
        )
        .replace("adopt: c1", "adopt: c3");
    let d = errors(&text);
    let got: Vec<(usize, &str)> = d.iter().map(|d| (d.line, d.path.as_str())).collect();
    assert_eq!(
        got,
        [
            (10, "spec.clusters[1].name"),
            (10, "spec.clusters[1].context"),
            (10, "spec.clusters[1].source"),
            (12, "spec.trust.root.adopt"),
        ]
    );
    assert!(d[0].message.contains("used twice"));
    assert!(d[0].hint.as_deref().unwrap().contains("line 9"));
    assert!(d[3].message.contains("no cluster named `c3`"));
    assert!(d[3].hint.as_deref().unwrap().contains("c1"));
}

#[test]
fn missing_fields_point_at_their_parent() {
    let text = BASE.replace("{ kind: istioctl }", "{ path: x }");
    let d = errors(&text);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].path, "spec.installer.kind");
    assert_eq!((d[0].line, d[0].column), (7, 3));
    assert!(d[0].message.contains("missing required field `kind`"));
}

#[test]
fn warnings_do_not_fail_the_spec() {
    let text = format!(
        "{BASE}  routing:\n    destinationRules:\n      - host: a.b.svc.cluster.local\n        outlierDetection: {{ consecutiveErrors: 7 }}\n"
    );
    let loaded = parse_str(&text, Path::new("t.yaml")).unwrap();
    assert_eq!(loaded.warnings.len(), 1);
    let w = &loaded.warnings[0];
    assert_eq!(w.severity, Severity::Warning);
    assert_eq!(
        w.path,
        "spec.routing.destinationRules[0].outlierDetection.consecutiveErrors"
    );
    assert!(w.message.contains("ignored by Istio since 1.7"));
    assert!(
        w.hint
            .as_deref()
            .unwrap()
            .contains("consecutive5xxErrors: 7")
    );
    assert!(w.to_string().starts_with("t.yaml:16:"));
}

/// Every warning of `text` as (line, path, message start).
fn warnings(text: &str) -> Vec<(usize, String, String)> {
    let loaded = parse_str(text, Path::new("t.yaml")).unwrap_or_else(|e| panic!("{e:?}"));
    loaded
        .warnings
        .into_iter()
        .map(|w| {
            assert_eq!(w.severity, Severity::Warning);
            (w.line, w.path, w.message)
        })
        .collect()
}

#[test]
fn valid_but_suspicious_settings_warn_at_their_field() {
    let w = warnings(&format!(
        "{}  routing:\n    exposeHosts: [\"*.local\"]\n",
        BASE.replace(
            "{ name: c2, context: k2 }",
            "{ name: c2, context: k2, role: primary }"
        )
    ));
    assert_eq!(w.len(), 2, "{w:?}");
    assert_eq!((w[0].0, w[0].1.as_str()), (10, "spec.clusters[1].role"));
    assert!(w[0].2.contains("redundant in multi-primary"));
    assert_eq!((w[1].0, w[1].1.as_str()), (14, "spec.routing.exposeHosts"));
    assert!(w[1].2.contains("every cluster is on one network"));

    let w = warnings(&BASE.replace(
        "root: { adopt: c1 }",
        "root: { files: { cert: /nonexistent/root-cert.pem, key: /nonexistent/root-key.pem } }",
    ));
    let paths: Vec<&str> = w.iter().map(|w| w.1.as_str()).collect();
    assert_eq!(
        paths,
        ["spec.trust.root.files.cert", "spec.trust.root.files.key"]
    );

    let w = warnings(&BASE.replace(
        "root: { adopt: c1 }",
        "root: { generate: { org: Acme, transition: restart-all } }",
    ));
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].2
            .contains("`restart-all` switches to the new root at once")
    );

    // Locality load balancing keeps c2's calls in c2: draining c1 shows nothing.
    let drill = |from: &str, drain: &str| {
        format!(
            "{BASE}  routing:\n    destinationRules:\n      - host: hello.sample.svc.cluster.local\n        localityLb: {{ failoverPriority: [topology.kubernetes.io/region] }}\n        outlierDetection: {{ consecutive5xxErrors: 1 }}\n  workloads:\n    restartNamespaces: [sample]\n  failoverTest:\n    service: {{ namespace: sample, name: hello, port: 5000 }}\n    from: {from}\n    drain: {drain}\n"
        )
    };
    let w = warnings(&drill("c2", "c1"));
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(w[0].2.contains("have no locality"), "{w:?}");
    assert_eq!((w[1].0, w[1].1.as_str()), (23, "spec.failoverTest.drain"));
    assert!(w[1].2.contains("draining `c1` shows no failover"), "{w:?}");
    assert_eq!(warnings(&drill("c1", "c1")).len(), 1);
    // A drill over pods that keep their old identity cannot pass.
    let w = warnings(
        &drill("c1", "c1").replace("restartNamespaces: [sample]", "restartNamespaces: []"),
    );
    assert_eq!(w.len(), 2, "{w:?}");
    assert_eq!(w[1].1, "spec.failoverTest.service.namespace");
    assert!(w[1].2.contains("not restarted in `c1`"), "{w:?}");
}

#[test]
fn syntax_errors_are_located() {
    let text = BASE.replace("  topology: multi-primary", "\ttopology: multi-primary");
    let d = errors(&text);
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].line, 6);
    assert!(d[0].message.starts_with("invalid YAML"));
    let d = errors("");
    assert!(d[0].message.contains("no YAML document"));
    let d = errors("- a\n- b\n");
    assert!(d[0].message.contains("expected a MeshMigration document"));
}

/// A tiny deterministic generator; the point is breadth, not randomness.
struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Truncations and single-character edits of every
/// plan: parsing must return (valid or invalid), never panic, and every
/// error must be located inside the text.
#[test]
fn mangled_plans_never_panic() {
    const NOISE: &[&str] = &[
        "",
        " ",
        "\t",
        ":",
        "-",
        "[",
        "]",
        "{",
        "}",
        "\"",
        "'",
        "#",
        "&a",
        "*a",
        "!!str",
        "\n",
        "? ",
        "|",
        ">",
        "0",
        "x",
        "---\n",
        "...",
        "%YAML 1.2\n",
        "\u{feff}",
        "é",
    ];
    // SPEC_MANGLE_ROUNDS=50000 for a longer hunt; the default keeps the suite quick.
    let rounds: usize = std::env::var("SPEC_MANGLE_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400);
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut runs = 0;
    for (path, text) in plans() {
        let lines = text.lines().count();
        let mut check = |t: &str| {
            runs += 1;
            if let Err(SpecError::Invalid { diagnostics, .. }) = parse_str(t, &path) {
                assert!(!diagnostics.is_empty());
                for d in diagnostics {
                    assert!(d.line >= 1 && d.line <= lines + 2, "{d} in\n{t}");
                }
            }
        };
        let cuts: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
        // Every cut in the first and last few lines (document head and tail),
        // every seventh elsewhere: the debug build parses about 1000 a second.
        for (n, &i) in cuts.iter().enumerate() {
            if n < 400 || n + 200 > cuts.len() || n % 7 == 0 {
                check(&text[..i]);
            }
        }
        for _ in 0..rounds {
            let at = cuts[rng.below(cuts.len())];
            let end = cuts
                .get(cuts.partition_point(|&c| c < at) + rng.below(4))
                .copied()
                .unwrap_or(text.len());
            let noise = NOISE[rng.below(NOISE.len())];
            check(&format!("{}{noise}{}", &text[..at], &text[end..]));
        }
        // Swap two lines: breaks indentation and structure at once.
        let all: Vec<&str> = text.lines().collect();
        for _ in 0..100 {
            let mut l = all.clone();
            let (a, b) = (rng.below(l.len()), rng.below(l.len()));
            l.swap(a, b);
            check(&l.join("\n"));
        }
    }
    assert!(runs > 5_000, "{runs}");
}

#[test]
fn existing_mesh_adopt_is_for_primaries_other_than_the_source() {
    let adopted = parse_str(
        &BASE.replace(
            "{ name: c2, context: k2 }",
            "{ name: c2, context: k2, existingMesh: adopt }",
        ),
        Path::new("t.yaml"),
    )
    .unwrap();
    assert!(adopted.spec.spec.clusters[1].adopts_existing_mesh());
    assert!(!adopted.spec.spec.clusters[0].adopts_existing_mesh());
    let unknown = errors(&BASE.replace(
        "{ name: c2, context: k2 }",
        "{ name: c2, context: k2, existingMesh: purge }",
    ));
    assert!(
        unknown[0].path == "spec.clusters[1].existingMesh" && unknown[0].message.contains("adopt"),
        "{unknown:?}"
    );
    let on_source = warnings(&BASE.replace(
        "{ name: c1, context: k1, source: true }",
        "{ name: c1, context: k1, source: true, existingMesh: adopt }",
    ));
    assert_eq!(on_source[0].1, "spec.clusters[0].existingMesh");
    let remote = errors(&BASE.replace("multi-primary", "primary-remote").replace(
        "{ name: c1, context: k1, source: true }\n    - { name: c2, context: k2 }",
        "{ name: c1, context: k1, source: true, role: primary }\n    - { name: c2, context: k2, role: remote, primary: c1, existingMesh: adopt }",
    ));
    assert!(
        remote
            .iter()
            .any(|d| d.path == "spec.clusters[1].existingMesh"),
        "{remote:?}"
    );
}

#[test]
fn a_helm_installer_defaults_to_helm_and_istios_release_names() {
    let text = BASE
        .replace("{ kind: istioctl }", "{ kind: helm }")
        .replace(
            "istioVersion: \"1.30.3\" }",
            "istioVersion: \"1.26.4\", revision: 1-26-4 }",
        );
    let spec = parse_str(&text, Path::new("t.yaml")).unwrap().spec.spec;
    assert_eq!(spec.installer.kind, InstallerKind::Helm);
    assert_eq!(spec.installer.path, "helm");
    assert_eq!(spec.installer.charts, None);
    assert_eq!(spec.installer.releases, HelmReleases::default());
    assert_eq!(spec.installer.releases.eastwest, "istio-eastwestgateway");
    assert_eq!(spec.mesh.revision(), "1-26-4");
    let text = text.replace(
        "{ kind: helm }",
        "{ kind: helm, path: /opt/helm, charts: { dir: ./charts }, releases: { istiod: cp } }",
    );
    let spec = parse_str(&text, Path::new("t.yaml")).unwrap().spec.spec;
    assert_eq!(spec.installer.path, "/opt/helm");
    assert_eq!(
        spec.installer.charts,
        Some(ChartSource::Dir("./charts".into()))
    );
    assert_eq!(spec.installer.releases.istiod, "cp");
    assert_eq!(spec.installer.releases.base, "istio-base");
}

#[test]
fn helm_and_revision_mistakes_are_refused_where_they_are() {
    let text = BASE
        .replace(
            "{ kind: istioctl }",
            "{ kind: helm, charts: { repo: r, dir: d }, releases: { base: Bad_Name } }",
        )
        .replace(
            "istioVersion: \"1.30.3\" }",
            "istioVersion: \"1.30.3\", revision: Bad.Rev }",
        );
    let d = errors(&text);
    let paths: Vec<&str> = d.iter().map(|d| d.path.as_str()).collect();
    assert!(paths.contains(&"spec.installer.charts"), "{paths:?}");
    let text = BASE
        .replace(
            "{ kind: istioctl }",
            "{ kind: helm, releases: { base: Bad_Name } }",
        )
        .replace(
            "istioVersion: \"1.30.3\" }",
            "istioVersion: \"1.30.3\", revision: Bad.Rev }",
        )
        .replace("topology: multi-primary", "topology: primary-remote");
    let d = errors(&text);
    let paths: Vec<&str> = d.iter().map(|d| d.path.as_str()).collect();
    for want in ["spec.mesh.revision", "spec.installer.releases.base"] {
        assert!(paths.contains(&want), "{want} not in {paths:?}");
    }
    // Helm carries out primary-remote too (a remote's charts with profile=remote).
    assert!(!paths.contains(&"spec.installer.kind"), "{paths:?}");
    // Helm's settings under istioctl are ignored, with a warning.
    let text = BASE.replace(
        "{ kind: istioctl }",
        "{ kind: istioctl, charts: { dir: d } }",
    );
    let loaded = parse_str(&text, Path::new("t.yaml")).unwrap();
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
}
