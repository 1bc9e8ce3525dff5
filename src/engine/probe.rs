//! `probe`: the Istio docs' own check. A Job in the client cluster calls the
//! service N times; each answer names the pod that served it
//! (`Hello version: v2, instance: helloworld-v2-...`), and the pod's cluster
//! is found by looking the name up in every cluster.

use super::context::{ActionError, StepCtx};
use super::observer::ProbeReport;
use crate::cluster::wait as w;
use crate::plan::{ObjectRef, ProbeExpect};
use crate::state::{EventKind, NewEvent};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// One line of the probe's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    Hello { version: String, instance: String },
    Error(String),
}

/// The answers a probe Job's log records, one per line.
pub(crate) fn parse_log(log: &str) -> Vec<Answer> {
    log.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|line| {
            match line
                .strip_prefix("Hello version: ")
                .and_then(|r| r.split_once(", instance: "))
            {
                Some((version, instance)) => Answer::Hello {
                    version: version.trim().to_string(),
                    instance: instance.trim().to_string(),
                },
                None => Answer::Error(line.to_string()),
            }
        })
        .collect()
}

/// Runs the probe Job and checks its answers against `expect`.
pub(crate) async fn run(
    ctx: &StepCtx,
    cluster: &str,
    job: &ObjectRef,
    manifest: &Value,
    requests: u32,
    expect: &ProbeExpect,
    timeout: Duration,
) -> Result<(), ActionError> {
    let c = ctx.cluster(cluster)?;
    // A Job left by an interrupted attempt would answer for the old state.
    if ctx.retry(|| c.delete(job)).await? {
        c.wait_for(job, "the old probe Job to be gone", timeout, w::absent())
            .await?;
    }
    ctx.retry(|| c.apply(manifest, false)).await?;
    let finished = c
        .wait_for(job, "the probe Job to finish", timeout, w::job_finished())
        .await?;
    let namespace = job.namespace.clone().unwrap_or_default();
    let selector = format!("job-name={}", job.name);
    let pods = ctx
        .retry(|| c.list("v1", "Pod", Some(&namespace), Some(&selector)))
        .await?;
    let Some(pod) = pods.last() else {
        return Err(ActionError::Failed(format!(
            "the probe Job {job} in {cluster} ran no pod"
        )));
    };
    let pod_name = pod
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let failed_job = finished
        .as_ref()
        .and_then(|j| j.pointer("/status/failed"))
        .and_then(Value::as_i64)
        .unwrap_or(0)
        > 0;
    // The probe's own container: an injected pod also runs istio-proxy, and
    // a log request must then name the container.
    let container = manifest
        .pointer("/spec/template/spec/containers/0/name")
        .and_then(Value::as_str);
    let log = ctx
        .retry(|| c.pod_log(&namespace, &pod_name, container))
        .await
        .map_err(|e| {
            ActionError::Failed(format!(
                "cannot read the log of probe pod {namespace}/{pod_name} in {cluster}: {e}"
            ))
        })?;
    if failed_job && log.trim().is_empty() {
        let why = pod
            .pointer("/status/message")
            .or_else(|| pod.pointer("/status/reason"))
            .and_then(Value::as_str)
            .unwrap_or("no reason given");
        return Err(ActionError::Failed(format!(
            "the probe Job {job} in {cluster} failed: {why}"
        )));
    }
    let answers = parse_log(&log);
    let owners = pod_owners(ctx, &namespace).await?;
    let report = judge(ctx, cluster, requests, expect, &answers, &owners);
    ctx.env.observer.probe(&report);
    let details = serde_json::to_value(&report).unwrap_or(Value::Null);
    ctx.env.store.record_event(
        ctx.run,
        NewEvent::new(
            EventKind::Note,
            Some(&ctx.step),
            format!("probe from {cluster}: {}", summary(&report)),
        )
        .with_details(details),
    )?;
    if report.passed {
        Ok(())
    } else {
        Err(ActionError::Failed(report.verdict))
    }
}

/// Pod name -> cluster, over every cluster of the plan.
async fn pod_owners(
    ctx: &StepCtx,
    namespace: &str,
) -> Result<BTreeMap<String, String>, ActionError> {
    let mut owners = BTreeMap::new();
    for name in ctx.plan_clusters.iter() {
        let c = ctx.cluster(name)?;
        let pods = match ctx
            .retry(|| c.list("v1", "Pod", Some(namespace), None))
            .await
        {
            Ok(p) => p,
            // A cluster we cannot list cannot be credited with answers; the verdict says so.
            Err(_) => continue,
        };
        for p in pods {
            if let Some(n) = p.pointer("/metadata/name").and_then(Value::as_str) {
                owners.insert(n.to_string(), name.clone());
            }
        }
    }
    Ok(owners)
}

fn summary(report: &ProbeReport) -> String {
    let parts: Vec<String> = report
        .answers
        .iter()
        .map(|(c, n)| format!("{c}={n}"))
        .collect();
    let errors: u32 = report.errors.iter().map(|(_, n)| n).sum();
    format!(
        "{} answers ({}), {errors} errors",
        report.requests,
        parts.join(", ")
    )
}

fn judge(
    ctx: &StepCtx,
    from: &str,
    requests: u32,
    expect: &ProbeExpect,
    answers: &[Answer],
    owners: &BTreeMap<String, String>,
) -> ProbeReport {
    let mut per_cluster: BTreeMap<&str, u32> =
        ctx.plan_clusters.iter().map(|c| (c.as_str(), 0)).collect();
    let mut errors: BTreeMap<String, u32> = BTreeMap::new();
    let mut versions: BTreeMap<(&str, &str), u32> = BTreeMap::new();
    for a in answers {
        match a {
            Answer::Hello { instance, version } => match owners.get(instance) {
                Some(c) => {
                    *per_cluster.entry(c.as_str()).or_default() += 1;
                    *versions.entry((c.as_str(), version.as_str())).or_default() += 1;
                }
                None => {
                    *errors
                        .entry(format!("answer from unknown pod {instance}"))
                        .or_default() += 1
                }
            },
            Answer::Error(e) => *errors.entry(e.clone()).or_default() += 1,
        }
    }
    let answered: u32 = per_cluster.values().sum();
    let clusters_answering = per_cluster.values().filter(|n| **n > 0).count() as u32;
    let mut problems = Vec::new();
    if expect.all_answered && (answered < requests || !errors.is_empty()) {
        let first = errors
            .keys()
            .next()
            .cloned()
            .unwrap_or_else(|| "missing answers".into());
        problems.push(format!(
            "{answered} of {requests} requests answered (first error: {first})"
        ));
    }
    if clusters_answering < expect.min_clusters {
        problems.push(format!(
            "answers came from {clusters_answering} cluster(s), at least {} expected: cross-cluster traffic is not flowing \
             (check remote secrets, the shared root, network labels and the east-west gateway)",
            expect.min_clusters
        ));
    }
    for drained in &expect.not_from {
        let n = per_cluster.get(drained.as_str()).copied().unwrap_or(0);
        if n > 0 {
            problems.push(format!(
                "{n} answer(s) still came from drained cluster {drained}"
            ));
        }
    }
    ProbeReport {
        step: ctx.step.clone(),
        from: from.to_string(),
        requests,
        answers: per_cluster
            .into_iter()
            .map(|(c, n)| (c.to_string(), n))
            .collect(),
        versions: versions
            .into_iter()
            .map(|((c, v), n)| (c.to_string(), v.to_string(), n))
            .collect(),
        errors: errors.into_iter().collect(),
        passed: problems.is_empty(),
        verdict: problems.join("; "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hello_lines_and_errors() {
        let log = "Hello version: v1, instance: helloworld-v1-776f57d5f6-s7zfc\nno healthy upstream\n\nHello version: v2, instance: helloworld-v2-54df5f84b-9hxgww\n";
        let answers = parse_log(log);
        assert_eq!(answers.len(), 3);
        assert_eq!(
            answers[0],
            Answer::Hello {
                version: "v1".into(),
                instance: "helloworld-v1-776f57d5f6-s7zfc".into()
            }
        );
        assert_eq!(answers[1], Answer::Error("no healthy upstream".into()));
    }
}
