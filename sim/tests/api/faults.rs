//! Fault injection and counters.

use crate::common::*;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ListParams};
use meshsim::FaultConfig;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_latency_down_and_counters() {
    let sim = start(2).await;
    let c2 = sim.cluster("cluster2");
    let ns: Api<Namespace> = Api::all(client(&sim, "cluster2").await);
    ns.list(&ListParams::default()).await.expect("healthy");
    ns.get("default").await.expect("healthy get");

    for code in [503u16, 500, 429] {
        c2.faults().set(FaultConfig {
            error_rate: 1.0,
            error_codes: vec![code],
            ..Default::default()
        });
        match ns.list(&ListParams::default()).await {
            Err(kube::Error::Api(s)) => assert_eq!(s.code, code),
            other => panic!("expected {code}, got {other:?}"),
        }
    }
    c2.faults().clear();
    let counters = c2.faults().counters();
    assert_eq!(counters.code(503), 1);
    assert_eq!(counters.code(429), 1);
    assert!(counters.verb("list") >= 4, "{counters:?}");
    assert!(counters.verb("get") >= 1, "{counters:?}");
    // The other cluster is untouched.
    assert_eq!(sim.cluster("cluster1").faults().counters().code(503), 0);

    c2.faults().set(FaultConfig {
        latency: Duration::from_millis(150),
        ..Default::default()
    });
    let t = Instant::now();
    ns.get("default").await.expect("slow but fine");
    assert!(t.elapsed() >= Duration::from_millis(150));
    c2.faults().clear();

    c2.faults().set_down(true);
    eventually("connections refused", || async {
        std::net::TcpStream::connect(("127.0.0.1", c2.port())).is_err()
    })
    .await;
    assert!(matches!(ns.get("default").await, Err(e) if !matches!(e, kube::Error::Api(_))));
    c2.faults().set_down(false);
    eventually("listening again on the same port", || async {
        std::net::TcpStream::connect(("127.0.0.1", c2.port())).is_ok()
    })
    .await;
    let fresh = client(&sim, "cluster2").await;
    Api::<Namespace>::all(fresh)
        .get("default")
        .await
        .expect("back up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_carries_retry_after() {
    let sim = start(1).await;
    let c1 = sim.cluster("cluster1");
    c1.faults().set(FaultConfig {
        error_rate: 1.0,
        error_codes: vec![429],
        retry_after_secs: 7,
        ..Default::default()
    });
    let text = raw_get(c1, "/api/v1/namespaces", c1.admin_token()).await;
    assert!(text.starts_with("HTTP/1.1 429"), "{text}");
    assert!(
        text.to_ascii_lowercase().contains("retry-after: 7"),
        "{text}"
    );
    assert!(text.contains("\"reason\":\"TooManyRequests\""), "{text}");
    c1.faults().clear();
    let text = raw_get(c1, "/api/v1/namespaces/default", c1.admin_token()).await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let text = raw_get(c1, "/api/v1/namespaces/default", "wrong").await;
    assert!(
        text.starts_with("HTTP/1.1 401") && text.contains("\"reason\":\"Unauthorized\""),
        "{text}"
    );
    let text = raw_get(c1, "/version", "anyone").await;
    assert!(
        text.starts_with("HTTP/1.1 200") && text.contains(meshsim::GIT_VERSION),
        "{text}"
    );
    let text = raw_get(c1, "/apis/nope/v1/things", c1.admin_token()).await;
    assert!(
        text.starts_with("HTTP/1.1 404") && text.contains("\"kind\":\"Status\""),
        "{text}"
    );
}
