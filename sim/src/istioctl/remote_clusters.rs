//! `istioctl remote-clusters`: ask istiod's debug endpoint `debug/clusterz`
//! which clusters it reads and how their sync stands, and print istioctl's
//! table `NAME SECRET STATUS ISTIOD` (FACTS 1.6). As istioctl does, through
//! a port-forward to the istiod pod's monitoring port 15014 (istiod lets
//! only localhost, or an authenticated XDS client, read its debug endpoints).

use super::{Global, IstioctlError};
use crate::istio::monitoring::MONITORING_PORT;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::{Api, Client};
use serde::Deserialize;
use std::io::Write;
use std::time::Duration;

/// One entry of istiod's `debug/clusterz` (`cluster.DebugInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ClusterInfo {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "SecretName", default)]
    pub secret_name: String,
    #[serde(rename = "SyncStatus", default)]
    pub sync_status: String,
}

pub(super) async fn run(
    client: &Client,
    global: &Global,
    out: &mut dyn Write,
) -> Result<(), IstioctlError> {
    let ns = &global.istio_namespace;
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let istiods = pods
        .list(&ListParams::default().labels("app=istiod"))
        .await
        .map_err(|e| IstioctlError::api(format!("listing istiod pods in {ns}"), e))?;
    let Some(name) = istiods
        .items
        .iter()
        .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
        .find_map(|p| p.metadata.name.clone())
    else {
        return Err(IstioctlError::NoIstiod);
    };
    let pod = format!("{name}.{ns}");
    let body = tokio::time::timeout(
        Duration::from_secs(30),
        debug_get(&pods, &name, "/debug/clusterz"),
    )
    .await
    .unwrap_or_else(|_| Err("no answer within 30s".into()))
    .map_err(|message| IstioctlError::Forward {
        pod: pod.clone(),
        message,
    })?;
    let clusters: Vec<ClusterInfo> =
        serde_json::from_slice(&body).map_err(|e| IstioctlError::BadClusterz {
            pod: pod.clone(),
            message: e.to_string(),
        })?;
    let mut rows = vec![vec![
        "NAME".to_string(),
        "SECRET".into(),
        "STATUS".into(),
        "ISTIOD".into(),
    ]];
    for c in clusters {
        rows.push(vec![c.id, c.secret_name, c.sync_status, pod.clone()]);
    }
    write!(out, "{}", table(&rows))?;
    Ok(())
}

/// `GET path` on the pod's monitoring port through a port-forward; the body of a 200.
async fn debug_get(pods: &Api<Pod>, pod: &str, path: &str) -> Result<Bytes, String> {
    let mut forward = pods
        .portforward(pod, &[MONITORING_PORT])
        .await
        .map_err(|e| e.to_string())?;
    let stream = forward
        .take_stream(MONITORING_PORT)
        .ok_or("the port-forward opened no stream")?;
    let refused = forward
        .take_error(MONITORING_PORT)
        .ok_or("the port-forward has no error channel")?;
    let exchange = async {
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(connection);
        let request = hyper::Request::get(path)
            .header(hyper::header::HOST, format!("localhost:{MONITORING_PORT}"))
            .body(Empty::<Bytes>::new())
            .map_err(|e| e.to_string())?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        if status != hyper::StatusCode::OK {
            return Err(format!(
                "{status}: {}",
                String::from_utf8_lossy(&body).trim()
            ));
        }
        Ok(body)
    };
    tokio::pin!(exchange, refused);
    let answer = tokio::select! {
        answer = &mut exchange => answer,
        Some(message) = &mut refused => Err(message),
    };
    forward.abort();
    answer
}

/// Go's `tabwriter` with minwidth 0, padding 5, spaces: every column but the
/// last as wide as its widest cell plus five.
pub fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; columns];
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut text = String::new();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            text.push_str(cell);
            if i + 1 < row.len() {
                let pad = widths[i] + 5 - cell.chars().count();
                text.extend(std::iter::repeat_n(' ', pad));
            }
        }
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_istioctl_prints() {
        let json = r#"[{"ID":"cluster2","SecretName":"istio-system/istio-remote-secret-cluster2","SyncStatus":"synced"}]"#;
        let parsed: Vec<ClusterInfo> = serde_json::from_str(json).unwrap();
        let mut rows = vec![vec![
            "NAME".into(),
            "SECRET".into(),
            "STATUS".into(),
            "ISTIOD".into(),
        ]];
        for c in parsed {
            rows.push(vec![
                c.id,
                c.secret_name,
                c.sync_status,
                "istiod-abc.istio-system".into(),
            ]);
        }
        assert_eq!(
            table(&rows),
            "NAME         SECRET                                        STATUS     ISTIOD\n\
             cluster2     istio-system/istio-remote-secret-cluster2     synced     istiod-abc.istio-system\n"
        );
    }
}
