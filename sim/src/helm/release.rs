//! Helm 3's release record and its storage as a Secret, as `pkg/release` and
//! `pkg/storage/driver` (secrets.go, util.go) define them: the record is JSON,
//! gzipped, then base64 (standard alphabet); the Secret
//! `sh.helm.release.v1.<release>.v<N>` of type `helm.sh/release.v1` holds it
//! under data key `release` (so the API shows it base64 once more) and is
//! labelled `name`, `owner=helm`, `status`, `version`, and `createdAt` (Unix
//! seconds) when created or `modifiedAt` when rewritten.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::io::{Read, Write};

/// The Secret type Helm 3 stores releases as.
pub const SECRET_TYPE: &str = "helm.sh/release.v1";
/// The `owner` label of every release Secret.
pub const OWNER: &str = "helm";

/// Release states (`pkg/release/status.go`).
pub mod status {
    /// The release in the cluster now.
    pub const DEPLOYED: &str = "deployed";
    /// A release a later one replaced.
    pub const SUPERSEDED: &str = "superseded";
    /// Uninstalled with `--keep-history`.
    pub const UNINSTALLED: &str = "uninstalled";
    /// A release whose install or upgrade failed.
    pub const FAILED: &str = "failed";
    /// Installing, not yet done.
    pub const PENDING_INSTALL: &str = "pending-install";
    /// Upgrading, not yet done.
    pub const PENDING_UPGRADE: &str = "pending-upgrade";
    /// Rolling back, not yet done.
    pub const PENDING_ROLLBACK: &str = "pending-rollback";
}

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("the release record is not base64: {0}")]
    Base64(#[from] base64::DecodeError),
    #[error("the release record does not decompress: {0}")]
    Gzip(#[source] std::io::Error),
    #[error("the release record is not a release: {0}")]
    Json(#[from] serde_json::Error),
}

/// `pkg/release.Release`, with the fields Helm writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Release {
    pub name: String,
    pub info: Info,
    pub chart: Chart,
    /// The values the user supplied (`-f`, `--set`), not the chart's defaults.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub config: Value,
    /// The rendered YAML, documents separated by `---`.
    #[serde(default)]
    pub manifest: String,
    pub version: u32,
    pub namespace: String,
}

/// `pkg/release.Info`; times are RFC 3339 as Go's `time.Time` marshals them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Info {
    pub first_deployed: String,
    pub last_deployed: String,
    pub deleted: String,
    #[serde(default)]
    pub description: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub notes: String,
}

/// `pkg/chart.Chart` as it is stored in a release: metadata, and the chart's default values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chart {
    pub metadata: Metadata,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub values: Value,
}

/// `pkg/chart.Metadata` (the fields a release needs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    pub name: String,
    pub version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub app_version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
}

/// `encodeRelease`: JSON, gzip at best compression, base64.
pub fn encode(release: &Release) -> Result<String, CodecError> {
    let json = serde_json::to_vec(release)?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&json).map_err(CodecError::Gzip)?;
    let bytes = gz.finish().map_err(CodecError::Gzip)?;
    Ok(STANDARD.encode(bytes))
}

/// `decodeRelease`: base64, then gunzip when the bytes start with gzip's magic, then JSON.
pub fn decode(text: &str) -> Result<Release, CodecError> {
    let bytes = STANDARD.decode(text.trim())?;
    let json = if bytes.starts_with(&[0x1f, 0x8b, 0x08]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes.as_slice())
            .read_to_end(&mut out)
            .map_err(CodecError::Gzip)?;
        out
    } else {
        bytes
    };
    Ok(serde_json::from_slice(&json)?)
}

/// `sh.helm.release.v1.<release>.v<version>`.
pub fn secret_name(release: &str, version: u32) -> String {
    format!("sh.helm.release.v1.{release}.v{version}")
}

/// The Secret that stores `release`; `created` picks the `createdAt` label (a new
/// record) or `modifiedAt` (a rewritten one), as the driver's Create and Update do.
pub fn to_secret(release: &Release, created: bool, now_unix: i64) -> Result<Value, CodecError> {
    let encoded = encode(release)?;
    let stamp = if created { "createdAt" } else { "modifiedAt" };
    Ok(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": secret_name(&release.name, release.version),
            "namespace": release.namespace,
            "labels": {
                "name": release.name,
                "owner": OWNER,
                "status": release.info.status,
                "version": release.version.to_string(),
                stamp: now_unix.to_string(),
            },
        },
        "type": SECRET_TYPE,
        // Secret data is base64 on the wire: the record's own base64, encoded again.
        "data": {"release": STANDARD.encode(encoded)},
    }))
}

/// The release a Secret (as the API returns it) stores.
pub fn from_secret(secret: &Value) -> Result<Release, CodecError> {
    let wire = secret
        .pointer("/data/release")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let record = STANDARD.decode(wire)?;
    decode(&String::from_utf8_lossy(&record))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Release {
        Release {
            name: "istiod".into(),
            info: Info {
                first_deployed: "2026-01-02T03:04:05Z".into(),
                last_deployed: "2026-01-02T03:04:05Z".into(),
                deleted: String::new(),
                description: "Install complete".into(),
                status: status::DEPLOYED.into(),
                notes: String::new(),
            },
            chart: Chart {
                metadata: Metadata {
                    name: "istiod".into(),
                    version: "1.26.4".into(),
                    app_version: "1.26.4".into(),
                    api_version: "v2".into(),
                    description: String::new(),
                },
                values: json!({"revision": ""}),
            },
            config: json!({"revision": "1-26-4", "global": {"meshID": "mesh1"}}),
            manifest:
                "---\n# Source: istiod/templates/service.yaml\napiVersion: v1\nkind: Service\n"
                    .into(),
            version: 1,
            namespace: "istio-system".into(),
        }
    }

    #[test]
    fn a_record_round_trips_through_gzip_and_base64() {
        let r = sample();
        let text = encode(&r).unwrap();
        // gzip's magic (1f 8b 08) in base64.
        assert!(text.starts_with("H4sI"), "{text}");
        assert_eq!(decode(&text).unwrap(), r);
        // Helm also reads records written before compression (plain JSON in base64).
        let plain = STANDARD.encode(serde_json::to_vec(&r).unwrap());
        assert_eq!(decode(&plain).unwrap(), r);
        assert!(decode("not base64!").is_err());
    }

    #[test]
    fn the_secret_carries_helms_name_type_and_labels() {
        let r = sample();
        let s = to_secret(&r, true, 1_767_000_000).unwrap();
        assert_eq!(s["metadata"]["name"], "sh.helm.release.v1.istiod.v1");
        assert_eq!(s["type"], SECRET_TYPE);
        let labels = &s["metadata"]["labels"];
        assert_eq!(labels["owner"], "helm");
        assert_eq!(labels["status"], "deployed");
        assert_eq!(labels["version"], "1");
        assert_eq!(labels["name"], "istiod");
        assert_eq!(labels["createdAt"], "1767000000");
        assert_eq!(from_secret(&s).unwrap(), r);
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(STANDARD.decode(encode(&r).unwrap()).unwrap().as_slice())
            .read_to_end(&mut raw)
            .unwrap();
        let json: Value = serde_json::from_slice(&raw).unwrap();
        // The JSON field names Helm's Go structs use.
        for key in [
            "name",
            "info",
            "chart",
            "config",
            "manifest",
            "version",
            "namespace",
        ] {
            assert!(json.get(key).is_some(), "{key} in {json}");
        }
        assert!(json["info"].get("first_deployed").is_some());
        assert_eq!(json["chart"]["metadata"]["appVersion"], "1.26.4");
    }

    /// A Secret's `data.release` written by Helm 3's own storage driver (a dry-run release of a
    /// two-template chart, from the test data of replicatedhq/kots, pkg/base): it decodes, and
    /// the fields Helm writes beyond ours (`chart.templates`, `lock`, ...) are passed over.
    #[test]
    fn a_record_written_by_helm_itself_decodes() {
        let wire = concat!(
            "SDRzSUFBQUFBQUFDLzdTU1gydmJNQlRGdjRxNGU1VVQyeU9EQ3Zvd3Qyc29iQWx0V2V4NEhrT1JsVVNM",
            "L21ISlRrM3dkeDl1NXFTdzVXR3d2dWtlWGM3OWNlNDlnS2FLQXdIUG5RL1lsbFllTUFpOU5rQU9zQmFW",
            "OHo5S2JxVnBlUWtFQUlPa2YwZ2xsOXlmQzhjcVliMHdHZ2pjVmkycWFvMllVYlp2QWd6T1UxODdJSEF5",
            "NlRBY0o1TURLTzVwU1QzdDMzOURhM2psanRiaEtCcUZnSUZhc1RpSlRkUzdTY04yUUhRdEpRYlBsWlhV",
            "Y3dmazJ5dkwzK0w0Q0JGRW81WXEyZU8veklabGx0aUZXclFzbHMzcXA5a3NzMlRQMnF2NHk0T3RhRHJa",
            "elVYeUtjOFN0M292Zlo1T3doc1Z5WEo2dDF0bWo5djV4bXp1cDVQdEt2MzY0WDc2S05uMHVlRlA0Zk9O",
            "K0xoWnFUdWZaN1A5TXAzSnVVakNQSnVGbjlPck9uKzR2b1lPWHdhTTN4NndoZTQ3aG9iS3VnL3JtSjVq",
            "VzY3b1VLMkZITDQ2RElwcXNlYk9BNEVnQ0FyOURqMlp1bUtjb1BQR3hoZVNMdlI1YlFSUmE5MjRpUXE5",
            "RTdvazZQYWxVM0h0Q3ozY0F5azBRbjA0QkExR2crSXNQUTAxbWhmNkgyamkvMFVURi9yMWRVWVlUbWpE",
            "Q2Z1OWdlNVhBQUFBLy8rVzFhd1RjUU1BQUE9PQ==",
        );
        let secret = json!({"data": {"release": wire}});
        let r = from_secret(&secret).unwrap();
        assert_eq!(r.name, "test-chart");
        assert_eq!(r.namespace, "test-two");
        assert_eq!(r.version, 1);
        assert_eq!(r.info.status, "deployed");
        assert_eq!(r.info.description, "Dry run complete");
        assert_eq!(r.chart.metadata.name, "test-chart");
        assert_eq!(r.chart.metadata.version, "0.1.0");
        assert_eq!(r.config, Value::Null);
        assert!(
            r.manifest
                .starts_with("---\n# Source: test-chart/templates/deploy-1.yaml\n")
        );
        // Our encoding of it decodes to the same release.
        assert_eq!(decode(&encode(&r).unwrap()).unwrap(), r);
    }
}
