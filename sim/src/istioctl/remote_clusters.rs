//! `istioctl remote-clusters`: ask istiod's debug endpoint `debug/clusterz`
//! (through the API server's service proxy) which clusters it reads and
//! how their sync stands, and print istioctl's table
//! `NAME SECRET STATUS ISTIOD` (FACTS 1.6).

use super::{Global, IstioctlError};
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::{Api, Client};
use serde::Deserialize;
use std::io::Write;

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
    let Some(istiod) = istiods
        .items
        .iter()
        .find(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
    else {
        return Err(IstioctlError::NoIstiod);
    };
    let pod = format!(
        "{}.{ns}",
        istiod.metadata.name.as_deref().unwrap_or("istiod")
    );
    let path = format!("/api/v1/namespaces/{ns}/services/http:istiod:15014/proxy/debug/clusterz");
    let request =
        http::Request::get(&path)
            .body(Vec::new())
            .map_err(|e| IstioctlError::BadClusterz {
                pod: pod.clone(),
                message: e.to_string(),
            })?;
    let body = client
        .request_text(request)
        .await
        .map_err(|e| IstioctlError::api(format!("asking {pod} for debug/clusterz"), e))?;
    let clusters: Vec<ClusterInfo> =
        serde_json::from_str(&body).map_err(|e| IstioctlError::BadClusterz {
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
