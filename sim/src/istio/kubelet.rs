//! The probe kubelet: the sim's default [`JobRunner`]. It runs only the documented probe
//! program (`mesh::probe`): the mesh is viewed at the moment the Job's pod runs, the pod (as
//! injected) is the client, and its log is exactly what the curl loop prints. Any other Job's
//! pod fails with a message saying what the sim expected.

use super::view::{build_view, pod_view};
use crate::jobs::{JobContext, JobOutcome, JobRunner};
use crate::mesh::probe::{recognise, recognise_pod, run_probe};
use sha2::{Digest, Sha256};

/// Runs probe Jobs against the mesh model.
#[derive(Debug, Clone, Copy, Default)]
pub struct MeshJobRunner;

fn failed(message: String) -> JobOutcome {
    JobOutcome {
        succeeded: false,
        log: format!("{message}\n"),
        message,
    }
}

impl JobRunner for MeshJobRunner {
    fn run(&self, ctx: &JobContext<'_>) -> JobOutcome {
        let spec = match recognise(ctx.job).and_then(|_| recognise_pod(ctx.pod)) {
            Ok(spec) => spec,
            Err(why) => {
                return failed(format!(
                    "meshsim runs only the probe program (a batch/v1 Job of the shape documented in \
                     meshsim::mesh::probe, as migrate's failover drill builds it: one curlimages/curl \
                     container running PROBE_SCRIPT with PROBE_URL and PROBE_COUNT): {why}"
                ));
            }
        };
        let view = build_view(ctx.clusters);
        let client = pod_view(ctx.pod);
        // A per-Job seed: repeated probes start round robin at different endpoints.
        let uid = ctx
            .job
            .pointer("/metadata/uid")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default();
        let digest = Sha256::digest(uid.as_bytes());
        let mut seed_bytes = [0u8; 8];
        seed_bytes.copy_from_slice(&digest[..8]);
        let seed = u64::from_le_bytes(seed_bytes);
        match run_probe(&view, ctx.cluster, &client, &spec, seed) {
            Ok(run) => JobOutcome {
                succeeded: true,
                log: run.log,
                message: String::new(),
            },
            Err(e) => failed(format!("probe could not run: {e}")),
        }
    }
}
