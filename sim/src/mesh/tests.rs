//! Acceptance for the model: correct installs answer from every cluster, and each wrong one
//! fails the way a real mesh fails.

use super::fixtures::*;
use super::*;
use std::collections::BTreeSet;

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

const V1: &str = "Hello version: v1, instance: helloworld-v1-5d4f8c7b9-cluster1";
const V2: &str = "Hello version: v2, instance: helloworld-v2-5d4f8c7b9-cluster2";

#[test]
fn multi_primary_multi_network_answers_from_both_clusters() {
    let view = multi_primary();
    let from1 = ask(&view, "cluster1", 4);
    assert_eq!(outputs(&from1), vec![V1, V2, V1, V2]);
    assert_eq!(answered_by(&from1), set(&["cluster1", "cluster2"]));
    // cluster2's endpoint is reached through cluster2's east-west gateway.
    assert_eq!(
        from1[1].attempts[0].gateway.as_deref(),
        Some("cluster2/istio-system/istio-eastwestgateway")
    );
    let from2 = ask(&view, "cluster2", 4);
    assert_eq!(answered_by(&from2), set(&["cluster1", "cluster2"]));
    assert!(failures(&from1).is_empty() && failures(&from2).is_empty());
    // The probe log carries what the docs' check looks for.
    let parsed = probe::parse_log(&probe::render_log(&from2));
    let versions: BTreeSet<_> = parsed.iter().filter_map(|p| p.version.clone()).collect();
    assert_eq!(versions, set(&["v1", "v2"]));
}

#[test]
fn the_seed_only_moves_where_round_robin_starts() {
    let view = multi_primary();
    let client = curl_pod(&view, "cluster1");
    let opts = Options {
        seed: 1,
        ..Options::default()
    };
    assert_eq!(
        outputs(&ask_as(&view, "cluster1", &client, 3, &opts)),
        vec![V2, V1, V2]
    );
}

#[test]
fn primary_remote_works_from_both_sides() {
    let view = primary_remote();
    assert_eq!(
        answered_by(&ask(&view, "cluster2", 6)),
        set(&["cluster1", "cluster2"])
    );
    assert_eq!(
        answered_by(&ask(&view, "cluster1", 6)),
        set(&["cluster1", "cluster2"])
    );
}

#[test]
fn primary_remote_without_the_remote_secret_leaves_remote_proxies_unconfigured() {
    let mut view = primary_remote();
    istiod_mut(&mut view, "cluster1").remote_clusters.clear();
    // FACTS 9 item 11: the primary rejects cluster2's proxies; their sidecar has no listeners.
    let from2 = ask(&view, "cluster2", 2);
    assert!(
        outputs(&from2)
            .iter()
            .all(|o| o.starts_with("curl: (7) Failed to connect to helloworld.sample port 5000"))
    );
    // And the primary does not know cluster2's endpoints.
    assert_eq!(answered_by(&ask(&view, "cluster1", 4)), set(&["cluster1"]));
}

#[test]
fn primary_remote_with_a_wrong_pilot_address_is_unconfigured() {
    let mut view = primary_remote();
    cluster(&mut view, "cluster2")
        .remote
        .as_mut()
        .unwrap()
        .remote_pilot_address = "10.9.9.9".into();
    let client = Pod {
        sidecar: Some(sidecar_now(&primary_remote(), "cluster2")),
        ..curl_pod(&primary_remote(), "cluster2")
    };
    let answers = ask_as(&view, "cluster2", &client, 1, &Options::default());
    assert!(
        answers[0].output.starts_with("curl: (7)"),
        "{}",
        answers[0].output
    );
}

#[test]
fn different_roots_fail_the_tls_handshake() {
    let mut view = multi_primary();
    // cluster2 kept its own self-signed root: its istiod and its pods use root-c2.
    let ca = &mut istiod_mut(&mut view, "cluster2").ca;
    *ca = CaState {
        trusted_roots: vec!["root-c2".into()],
        signing_root: "root-c2".into(),
        source: CaSource::SelfSigned,
    };
    restart_pods(&mut view, "cluster2");

    // With a local endpoint, Envoy's default retry moves the failed attempts to it: every answer
    // is v1, and the handshake failures show in the attempts.
    let from1 = ask(&view, "cluster1", 4);
    assert_eq!(outputs(&from1), vec![V1; 4]);
    assert!(
        failures(&from1)
            .iter()
            .all(|(c, f)| c == "cluster2" && *f == Failure::CertificateVerifyFailed)
    );
    // Requests 2-4 each try cluster2 first (the retry also advances round robin).
    assert_eq!(failures(&from1).len(), 3);

    // With no local endpoint the error reaches the client, as Envoy prints it.
    drain(&mut view, "cluster1");
    let from1 = ask(&view, "cluster1", 2);
    for a in &from1 {
        assert_eq!(a.status, Some(503));
        assert_eq!(
            a.output,
            "upstream connect error or disconnect/reset before headers. retried and the latest reset reason: connection failure, transport failure reason: TLS_error:|268435581:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:TLS_error_end"
        );
        assert_eq!(a.attempts.len(), 3);
    }
}

#[test]
fn a_server_that_does_not_trust_the_client_root_sends_unknown_ca() {
    let mut view = multi_primary();
    // cluster2 trusts only a new root but still signs with the shared one (mid-rotation).
    let ca = &mut istiod_mut(&mut view, "cluster2").ca;
    ca.trusted_roots = vec!["root-new".into(), SHARED_ROOT.into()];
    restart_pods(&mut view, "cluster2");
    for p in &mut cluster(&mut view, "cluster2").pods {
        p.sidecar.as_mut().unwrap().trusted_roots = vec!["root-new".into()];
    }
    drain(&mut view, "cluster1");
    let a = &ask(&view, "cluster1", 1)[0];
    assert!(a.output.contains("TLSV1_ALERT_UNKNOWN_CA"), "{}", a.output);
}

#[test]
fn a_trust_domain_outside_the_aliases_fails_verification_until_aliased() {
    let mut view = multi_primary();
    istiod_mut(&mut view, "cluster2").trust_domain = "east.example".into();
    istiod_mut(&mut view, "cluster2").mesh_id = "mesh1".into();
    restart_pods(&mut view, "cluster2");
    drain(&mut view, "cluster1");
    assert!(
        ask(&view, "cluster1", 1)[0]
            .output
            .contains("CERTIFICATE_VERIFY_FAILED")
    );
    istiod_mut(&mut view, "cluster1").trust_domain_aliases = vec!["east.example".into()];
    assert_eq!(answered_by(&ask(&view, "cluster1", 2)), set(&["cluster2"]));
}

#[test]
fn missing_or_unsynced_remote_secret_means_only_local_answers() {
    let mut view = multi_primary();
    istiod_mut(&mut view, "cluster1").remote_clusters.clear();
    let from1 = ask(&view, "cluster1", 6);
    assert_eq!(outputs(&from1), vec![V1; 6]);
    assert!(
        failures(&from1).is_empty(),
        "unknown endpoints get no traffic at all"
    );
    // The other direction still has its secret.
    assert_eq!(
        answered_by(&ask(&view, "cluster2", 4)),
        set(&["cluster1", "cluster2"])
    );

    let mut view = multi_primary();
    istiod_mut(&mut view, "cluster1").remote_clusters[0].status = SyncStatus::Timeout;
    assert_eq!(answered_by(&ask(&view, "cluster1", 6)), set(&["cluster1"]));

    // A secret keyed with a name that is not the peer's CLUSTER_ID does not register it.
    let mut view = multi_primary();
    istiod_mut(&mut view, "cluster1").remote_clusters[0].cluster_id = "east".into();
    assert_eq!(answered_by(&ask(&view, "cluster1", 6)), set(&["cluster1"]));

    // A key equal to istiod's own CLUSTER_ID is ignored (both clusters left at "Kubernetes").
    let mut view = multi_primary();
    for (c, other) in [("cluster1", "cluster2"), ("cluster2", "cluster1")] {
        let i = istiod_mut(&mut view, c);
        i.cluster_id = DEFAULT_CLUSTER_ID.into();
        i.remote_clusters[0].cluster_id = DEFAULT_CLUSTER_ID.into();
        i.remote_clusters[0].target = Some(other.into());
    }
    restart_pods(&mut view, "cluster1");
    restart_pods(&mut view, "cluster2");
    assert_eq!(answered_by(&ask(&view, "cluster1", 6)), set(&["cluster1"]));
}

#[test]
fn missing_network_label_on_istio_system_sends_traffic_straight_at_unroutable_pods() {
    let mut view = multi_primary();
    cluster(&mut view, "cluster2").network = None;
    // cluster2's endpoints now have network "": istiod treats them as reachable directly.
    let client = curl_pod(&view, "cluster1");
    let opts = Options {
        timeout_secs: 5,
        ..Options::default()
    };
    let from1 = ask_as(&view, "cluster1", &client, 4, &opts);
    assert_eq!(
        outputs(&from1),
        vec![
            V1,
            "curl: (28) Operation timed out after 5000 milliseconds with 0 bytes received",
            V1,
            "curl: (28) Operation timed out after 5000 milliseconds with 0 bytes received",
        ]
    );
    // With a longer client timeout Envoy's 10 s connect timeout fires and the retry lands locally.
    let opts = Options {
        timeout_secs: 30,
        ..Options::default()
    };
    let from1 = ask_as(&view, "cluster1", &client, 2, &opts);
    assert_eq!(outputs(&from1), vec![V1, V1]);
    assert_eq!(
        failures(&from1),
        vec![("cluster2".to_string(), Failure::ConnectTimeout)]
    );
}

#[test]
fn a_client_baked_without_a_network_skips_the_gateway() {
    // FACTS 9 item 9: a pod injected before the network was set looks like network "".
    let mut view = multi_primary();
    let mut client = curl_pod(&view, "cluster1");
    client.sidecar.as_mut().unwrap().network = String::new();
    drain(&mut view, "cluster1");
    let answers = ask_as(
        &view,
        "cluster1",
        &client,
        1,
        &Options {
            timeout_secs: 5,
            ..Options::default()
        },
    );
    assert_eq!(
        answers[0].output,
        "curl: (28) Operation timed out after 5000 milliseconds with 0 bytes received"
    );
    // Restarted (re-injected), it goes through the gateway.
    assert_eq!(answered_by(&ask(&view, "cluster1", 2)), set(&["cluster2"]));
}

#[test]
fn east_west_gateway_without_address_label_or_port_sends_traffic_at_unroutable_pods() {
    // istiod finds no gateway for network2, so it hands out cluster2's pod IPs as if they were
    // reachable (ep_filters.go: `InNetwork(epNetwork) || len(gateways) == 0`).
    const TIMED_OUT: &str =
        "curl: (28) Operation timed out after 10000 milliseconds with 0 bytes received";
    for broken in ["address", "label", "port"] {
        let mut view = multi_primary();
        let gw = &mut cluster(&mut view, "cluster2").gateways[0];
        match broken {
            "address" => gw.addresses.clear(),
            "label" => gw.network = None,
            _ => gw.ports.retain(|p| *p != 15443),
        }
        let from1 = ask(&view, "cluster1", 4);
        assert_eq!(
            outputs(&from1),
            vec![V1, TIMED_OUT, V1, TIMED_OUT],
            "{broken}"
        );
        assert!(from1[1].attempts.is_empty(), "{broken}: curl gave up first");
        // A client that waits longer sees Envoy's own verdict after three connect timeouts.
        drain(&mut view, "cluster1");
        let client = curl_pod(&view, "cluster1");
        let patient = Options {
            timeout_secs: 60,
            ..Options::default()
        };
        let a = &ask_as(&view, "cluster1", &client, 1, &patient)[0];
        assert_eq!(
            (a.status, a.output.as_str()),
            (
                Some(503),
                "upstream connect error or disconnect/reset before headers. retried and the latest reset reason: connection timeout"
            ),
            "{broken}"
        );
        assert!(a.attempts.iter().all(|t| t.gateway.is_none()));
    }
}

#[test]
fn nothing_left_to_route_to_is_no_healthy_upstream() {
    let mut view = multi_primary();
    drain(&mut view, "cluster1");
    drain(&mut view, "cluster2");
    let a = &ask(&view, "cluster1", 1)[0];
    assert_eq!(
        (a.status, a.output.as_str()),
        (Some(503), NO_HEALTHY_UPSTREAM)
    );
    // Cross-network endpoints without mTLS are dropped by istiod, leaving nothing either.
    let mut view = multi_primary();
    drain(&mut view, "cluster1");
    cluster(&mut view, "cluster2")
        .peer_authentications
        .push(PeerAuthentication {
            namespace: "sample".into(),
            mode: MtlsMode::Disable,
        });
    assert_eq!(ask(&view, "cluster1", 1)[0].output, NO_HEALTHY_UPSTREAM);
}

#[test]
fn missing_auto_passthrough_gateway_refuses_at_the_east_west_gateway() {
    let mut view = multi_primary();
    cluster(&mut view, "cluster2").istio_gateways.clear();
    drain(&mut view, "cluster1");
    let a = &ask(&view, "cluster1", 1)[0];
    assert_eq!(
        a.output,
        "upstream connect error or disconnect/reset before headers. retried and the latest reset reason: remote connection failure, transport failure reason: delayed connect error: 111"
    );
    // Hosts that do not cover the service: the gateway has no SNI route and resets.
    let mut view = multi_primary();
    let mut gw = cross_network_gateway();
    gw.servers[0].hosts = vec!["*.example.com".into()];
    cluster(&mut view, "cluster2").istio_gateways = vec![gw];
    drain(&mut view, "cluster1");
    assert!(
        ask(&view, "cluster1", 1)[0]
            .output
            .contains("Connection reset by peer")
    );
    // ISTIO_MUTUAL instead of AUTO_PASSTHROUGH (FACTS 9 item 13) is no passthrough listener either.
    let mut view = multi_primary();
    let mut gw = cross_network_gateway();
    gw.servers[0].tls_mode = Some("ISTIO_MUTUAL".into());
    cluster(&mut view, "cluster2").istio_gateways = vec![gw];
    assert_eq!(
        failures(&ask(&view, "cluster1", 2)),
        vec![("cluster2".to_string(), Failure::Refused)]
    );
}

#[test]
fn pods_not_restarted_after_a_cluster_name_change_lose_cross_cluster_traffic() {
    // cluster1 ran with the default clusterName; the install phase set it to cluster1 and
    // restarted istiod, but not the workloads.
    let mut view = multi_primary();
    istiod_mut(&mut view, "cluster1").cluster_id = DEFAULT_CLUSTER_ID.into();
    restart_pods(&mut view, "cluster1");
    istiod_mut(&mut view, "cluster1").cluster_id = "cluster1".into();
    let stale_client = curl_pod(&multi_primary_with_default_name(), "cluster1");

    let from1 = ask_as(&view, "cluster1", &stale_client, 4, &Options::default());
    assert_eq!(outputs(&from1), vec![V1; 4]);
    assert!(
        failures(&from1)
            .iter()
            .all(|(c, f)| c == "cluster2" && *f == Failure::IdentityUnknown)
    );
    // From cluster2, the stale v1 pod fails the same way and retries land on v2.
    let from2 = ask(&view, "cluster2", 4);
    assert_eq!(answered_by(&from2), set(&["cluster2"]));
    assert!(!failures(&from2).is_empty());

    restart_pods(&mut view, "cluster1");
    assert_eq!(
        answered_by(&ask(&view, "cluster2", 4)),
        set(&["cluster1", "cluster2"])
    );
}

fn multi_primary_with_default_name() -> MeshView {
    let mut view = multi_primary();
    istiod_mut(&mut view, "cluster1").cluster_id = DEFAULT_CLUSTER_ID.into();
    view
}

#[test]
fn mismatched_mesh_id_keeps_each_cluster_to_itself() {
    let mut view = multi_primary();
    istiod_mut(&mut view, "cluster2").mesh_id = "mesh2".into();
    restart_pods(&mut view, "cluster2");
    assert_eq!(answered_by(&ask(&view, "cluster1", 4)), set(&["cluster1"]));
    assert_eq!(answered_by(&ask(&view, "cluster2", 4)), set(&["cluster2"]));
}

#[test]
fn locality_failover_with_outlier_detection_keeps_traffic_local_then_fails_over() {
    let mut view = multi_primary();
    failover_rule(&mut view, "cluster1", Some(OutlierDetection::default()));
    assert_eq!(outputs(&ask(&view, "cluster1", 6)), vec![V1; 6]);
    drain(&mut view, "cluster1");
    assert_eq!(outputs(&ask(&view, "cluster1", 6)), vec![V2; 6]);
}

#[test]
fn without_outlier_detection_failover_settings_do_nothing() {
    let mut view = multi_primary();
    failover_rule(&mut view, "cluster1", None);
    assert_eq!(
        answered_by(&ask(&view, "cluster1", 6)),
        set(&["cluster1", "cluster2"])
    );
}

#[test]
fn outlier_detection_ejects_a_failing_local_endpoint_and_fails_over() {
    let mut view = multi_primary();
    failover_rule(
        &mut view,
        "cluster1",
        Some(OutlierDetection {
            consecutive_5xx_errors: Some(5),
            max_ejection_percent: None,
        }),
    );
    // v1's listeners are drained: its port refuses.
    for p in &mut cluster(&mut view, "cluster1").pods {
        p.app = App::Other;
    }
    let answers = ask(&view, "cluster1", 5);
    // Request 1: three refused attempts at the only priority-0 host. Request 2: the fifth
    // consecutive failure ejects it and the retry goes to cluster2. Then only v2.
    assert_eq!(answers[0].status, Some(503));
    assert!(answers[0].output.contains("delayed connect error: 111"));
    assert_eq!(answers[1].output.trim_end(), V2);
    assert_eq!(answers[1].attempts.len(), 3);
    assert_eq!(outputs(&answers[2..]), vec![V2; 3]);
    assert!(answers[2..].iter().all(|a| a.attempts.len() == 1));
}

#[test]
fn without_outlier_detection_a_failing_endpoint_keeps_its_share() {
    let mut view = multi_primary();
    for p in &mut cluster(&mut view, "cluster1").pods {
        p.app = App::Other;
    }
    let client = curl_pod(&view, "cluster1");
    let no_retry = Options {
        retries: 0,
        ..Options::default()
    };
    let answers = ask_as(&view, "cluster1", &client, 6, &no_retry);
    let errors = answers.iter().filter(|a| a.status == Some(503)).count();
    assert_eq!(errors, 3);
    assert_eq!(answered_by(&answers), set(&["cluster2"]));
    assert!(
        answers[0].output.starts_with(
            "upstream connect error or disconnect/reset before headers. reset reason:"
        )
    );
}

#[test]
fn without_a_local_service_the_name_does_not_resolve() {
    let mut view = multi_primary();
    cluster(&mut view, "cluster1").services.clear();
    let answers = ask(&view, "cluster1", 2);
    assert_eq!(
        outputs(&answers),
        vec!["curl: (6) Could not resolve host: helloworld.sample"; 2]
    );
    assert!(answers.iter().all(|a| a.status.is_none()));
}

#[test]
fn a_non_injected_client_stays_in_its_cluster() {
    let view = multi_primary();
    let mut client = curl_pod(&view, "cluster1");
    client.sidecar = None;
    let answers = ask_as(&view, "cluster1", &client, 4, &Options::default());
    assert_eq!(outputs(&answers), vec![V1; 4]);
    // STRICT mTLS refuses its plaintext.
    let mut view = multi_primary();
    cluster(&mut view, "cluster1")
        .peer_authentications
        .push(PeerAuthentication {
            namespace: "istio-system".into(),
            mode: MtlsMode::Strict,
        });
    let answers = ask_as(&view, "cluster1", &client, 1, &Options::default());
    assert_eq!(
        answers[0].output,
        "curl: (56) Recv failure: Connection reset by peer"
    );
    // No local endpoint: nothing behind the ClusterIP.
    let mut view = multi_primary();
    drain(&mut view, "cluster1");
    let answers = ask_as(&view, "cluster1", &client, 1, &Options::default());
    assert!(answers[0].output.starts_with("curl: (7)"));
}

#[test]
fn cross_network_needs_mtls() {
    // PeerAuthentication DISABLE in cluster2's namespace: istiod drops its cross-network endpoints.
    let mut view = multi_primary();
    cluster(&mut view, "cluster2")
        .peer_authentications
        .push(PeerAuthentication {
            namespace: "sample".into(),
            mode: MtlsMode::Disable,
        });
    assert_eq!(answered_by(&ask(&view, "cluster1", 4)), set(&["cluster1"]));
}

#[test]
fn same_flat_network_reaches_pods_directly() {
    let mut view = multi_primary();
    for c in &mut view.clusters {
        c.pod_network = "flat".into();
        c.network = Some("network1".into());
        c.gateways.clear();
        c.istio_gateways.clear();
    }
    restart_pods(&mut view, "cluster1");
    restart_pods(&mut view, "cluster2");
    let from1 = ask(&view, "cluster1", 4);
    assert_eq!(answered_by(&from1), set(&["cluster1", "cluster2"]));
    assert!(
        from1
            .iter()
            .flat_map(|a| &a.attempts)
            .all(|t| t.gateway.is_none())
    );
}

#[test]
fn unknown_client_cluster_is_an_error() {
    let view = multi_primary();
    let client = curl_pod(&view, "cluster1");
    let req = Request {
        cluster: "nope",
        client: &client,
        url: "http://helloworld.sample:5000/hello",
    };
    assert_eq!(
        answer(&view, &req, 1, &Options::default()),
        Err(MeshError::UnknownCluster("nope".into()))
    );
}

#[test]
fn control_plane_helpers_for_the_builder() {
    let mut view = primary_remote();
    assert_eq!(configured_by(&view, "cluster2").as_deref(), Ok("cluster1"));
    assert_eq!(configured_by(&view, "cluster1").as_deref(), Ok("cluster1"));
    assert!(leads(&view, "cluster2"));
    cluster(&mut view, "cluster2")
        .control_plane_clusters
        .clear();
    assert!(!leads(&view, "cluster2"), "no annotation, no leadership");
    cluster(&mut view, "cluster2").control_plane_clusters = vec!["*".into()];
    istiod_mut(&mut view, "cluster1").external_istiod = false;
    assert!(
        !leads(&view, "cluster2"),
        "checkShouldLead needs EXTERNAL_ISTIOD"
    );
    istiod_mut(&mut view, "cluster1").remote_clusters.clear();
    let err = configured_by(&view, "cluster2").unwrap_err();
    assert!(err.contains("no synced remote secret"), "{err}");
    assert!(configured_by(&view, "nope").is_err());
}

#[test]
fn a_client_that_cannot_verify_istiod_gets_no_configuration() {
    // The pod started with a root bundle that lacks the root istiod now signs with (istiod
    // restarted onto a new cacerts root while the namespace still carried the old bundle).
    let view = multi_primary();
    let mut client = curl_pod(&view, "cluster1");
    client.sidecar.as_mut().unwrap().trusted_roots = vec!["root-old".into()];
    let answers = ask_as(&view, "cluster1", &client, 1, &Options::default());
    assert_eq!(
        answers[0].output,
        "curl: (7) Failed to connect to helloworld.sample port 5000 after 0 ms: Couldn't connect to server"
    );
}

#[test]
fn a_recognised_probe_job_runs_against_the_model() {
    let view = multi_primary();
    let job = probe::probe_job(
        "failover-probe",
        "sample",
        "http://helloworld.sample:5000/hello",
        4,
        5,
    );
    let spec = probe::recognise(&job).unwrap();
    let run = probe::run_probe(&view, "cluster2", &curl_pod(&view, "cluster2"), &spec, 0).unwrap();
    assert_eq!(run.answers.len(), 4);
    assert_eq!(run.log, format!("{V1}\n{V2}\n{V1}\n{V2}\n"));
    let parsed = probe::parse_log(&run.log);
    assert_eq!(
        parsed[1].instance.as_deref(),
        Some("helloworld-v2-5d4f8c7b9-cluster2")
    );
}

/// The fixtures stand for Istio's own samples: check them against the saved copies.
mod samples {
    use super::*;
    use serde::Deserialize;
    use serde_json::Value;

    /// The documents of one of Istio's samples; `None` (the test skips) where they are absent.
    fn docs(rel: &str, test: &str) -> Option<Vec<Value>> {
        let path = crate::testdata::istio_file(&format!("samples/{rel}"), test)?;
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let docs = serde_yaml::Deserializer::from_str(&text)
            .map(|d| serde_json::to_value(serde_yaml::Value::deserialize(d).unwrap()).unwrap())
            .filter(|v| !v.is_null())
            .collect();
        Some(docs)
    }

    fn gateway(doc: &Value) -> IstioGateway {
        let map = |v: &Value| {
            v.as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                        .collect()
                })
                .unwrap_or_default()
        };
        IstioGateway {
            namespace: "istio-system".into(),
            name: doc["metadata"]["name"].as_str().unwrap().into(),
            selector: map(&doc["spec"]["selector"]),
            servers: doc["spec"]["servers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| GatewayServer {
                    port: s["port"]["number"].as_u64().unwrap() as u16,
                    protocol: s["port"]["protocol"].as_str().unwrap().into(),
                    tls_mode: s["tls"]["mode"].as_str().map(|m| m.trim().to_string()),
                    hosts: s["hosts"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|h| h.as_str().unwrap().to_string())
                        .collect(),
                })
                .collect(),
        }
    }

    #[test]
    fn cross_network_gateway_is_expose_services_yaml() {
        let Some(d) = docs(
            "multicluster/expose-services.yaml",
            "cross_network_gateway_is_expose_services_yaml",
        ) else {
            return;
        };
        assert_eq!(gateway(&d[0]), cross_network_gateway());
    }

    #[test]
    fn primary_remote_fixture_uses_expose_istiod_yaml() {
        let Some(d) = docs(
            "multicluster/expose-istiod.yaml",
            "primary_remote_fixture_uses_expose_istiod_yaml",
        ) else {
            return;
        };
        let sample = gateway(d.iter().find(|d| d["kind"] == "Gateway").unwrap());
        let view = primary_remote();
        let c1 = view.cluster("cluster1").unwrap();
        assert!(c1.istio_gateways.contains(&sample));
    }

    #[test]
    fn helloworld_fixture_matches_the_sample() {
        let Some(d) = docs(
            "helloworld/helloworld.yaml",
            "helloworld_fixture_matches_the_sample",
        ) else {
            return;
        };
        let svc = d.iter().find(|d| d["kind"] == "Service").unwrap();
        let view = multi_primary();
        let fixture = &view.cluster("cluster1").unwrap().services[0];
        assert_eq!(svc["metadata"]["name"], fixture.name.as_str());
        assert_eq!(svc["spec"]["ports"][0]["port"], u64::from(fixture.ports[0]));
        assert_eq!(
            svc["spec"]["selector"]["app"],
            fixture.selector["app"].as_str()
        );
        for version in ["v1", "v2"] {
            let dep = d
                .iter()
                .find(|d| d["metadata"]["name"] == format!("helloworld-{version}").as_str())
                .unwrap();
            let labels = &dep["spec"]["template"]["metadata"]["labels"];
            let cluster_name = if version == "v1" {
                "cluster1"
            } else {
                "cluster2"
            };
            let pod = &view.cluster(cluster_name).unwrap().pods[0];
            assert_eq!(labels["app"], pod.labels["app"].as_str());
            assert_eq!(labels["version"], pod.labels["version"].as_str());
        }
    }
}

#[test]
fn distribute_weights_localities_without_outlier_detection() {
    let mut view = multi_primary();
    cluster(&mut view, "cluster1")
        .destination_rules
        .push(DestinationRule {
            namespace: "sample".into(),
            name: "helloworld".into(),
            host: "helloworld".into(),
            locality_lb: Some(LocalityLbSetting {
                distribute: vec![(
                    "us-west/*".into(),
                    [("us-west/*".to_string(), 80), ("us-east/*".to_string(), 20)].into(),
                )],
                ..Default::default()
            }),
            outlier_detection: None,
        });
    let answers = ask(&view, "cluster1", 10);
    let v1 = outputs(&answers).iter().filter(|o| *o == V1).count();
    assert_eq!((v1, answers.len() - v1), (8, 2));
    // Only us-east listed: cluster1's own endpoints get nothing.
    cluster(&mut view, "cluster1").destination_rules[0].locality_lb = Some(LocalityLbSetting {
        distribute: vec![("us-west/*".into(), [("us-east/*".to_string(), 100)].into())],
        ..Default::default()
    });
    assert_eq!(outputs(&ask(&view, "cluster1", 4)), vec![V2; 4]);
}
