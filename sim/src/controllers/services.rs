//! LoadBalancer services get an (unreachable) ingress address per cluster:
//! an IP, or a DNS name where the cluster is set to give those (EKS-like).

use super::objects::rt;
use crate::cluster::ClusterInner;
use crate::store::WriteOptions;
use serde_json::{Value, json};
use std::sync::atomic::Ordering;

pub(super) fn reconcile(cluster: &ClusterInner, svc: &Value, next: &mut u32) {
    let is_lb = svc.pointer("/spec/type").and_then(Value::as_str) == Some("LoadBalancer");
    let has_ip = svc.pointer("/status/loadBalancer/ingress/0").is_some();
    if is_lb == has_ip || svc.pointer("/metadata/deletionTimestamp").is_some() {
        return;
    }
    let Some(rt) = rt(&cluster.store, "", "services") else {
        return;
    };
    let mut updated = svc.clone();
    if is_lb {
        let n = *next;
        *next = if *next >= 250 { 100 } else { *next + 1 };
        let ingress = if cluster.lb_hostnames.load(Ordering::SeqCst) {
            json!({"hostname": format!("a{}{n}-{}.elb.us-east-1.amazonaws.com", cluster.index, 100 + n)})
        } else {
            json!({"ip": format!("172.18.{}.{}", cluster.index % 256, n % 256), "ipMode": "VIP"})
        };
        updated["status"] = json!({"loadBalancer": {"ingress": [ingress]}});
    } else {
        updated["status"] = json!({"loadBalancer": {}});
    }
    // A conflict means a newer version exists; its event brings us back.
    let _ = cluster.store.update(&rt, updated, &WriteOptions::default());
}
