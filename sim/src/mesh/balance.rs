//! N requests over a route: Envoy's round robin, priorities, retries and outlier
//! ejection (or kube-proxy's plain balancing), made deterministic.

use super::respond::{self, Failure};
use super::route::{self, Endpoint, Hop, LbPolicy, MeshError, Request, Route};
use super::view::MeshView;
use std::collections::{BTreeMap, BTreeSet};

/// curl's `--max-time` when none is given: the probe script's `PROBE_TIMEOUT_SECONDS` default.
pub const DEFAULT_TIMEOUT_SECS: u32 = 10;

/// Knobs a test or the kubelet sets; the defaults are Istio's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Where round robin starts (Envoy starts at a random host per worker).
    pub seed: u64,
    /// Retries after the first attempt. Istio's default route retry policy: 2, on
    /// `connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes`, choosing a
    /// host not tried before (`previous_hosts`, up to 5 reselections).
    pub retries: u32,
    /// curl's `--max-time`.
    pub timeout_secs: u32,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            seed: 0,
            retries: 2,
            timeout_secs: DEFAULT_TIMEOUT_SECS,
        }
    }
}

/// One response, as the probe's curl got it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// What curl printed: the body, or curl's own error line.
    pub output: String,
    /// The HTTP status, `None` when curl itself failed.
    pub status: Option<u16>,
    /// The pod whose application answered, `None` when none did.
    pub served_by: Option<ServedBy>,
    /// Every upstream attempt Envoy made (empty for plain Kubernetes and early failures).
    pub attempts: Vec<Attempt>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedBy {
    /// Sim cluster.
    pub cluster: String,
    pub namespace: String,
    pub pod: String,
    pub version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub cluster: String,
    pub pod: String,
    pub gateway: Option<String>,
    /// `None` when the attempt got an answer from the app.
    pub failure: Option<Failure>,
}

/// What `count` requests from `req.client` to `req.url` get back, in order.
pub fn answer(
    view: &MeshView,
    req: &Request,
    count: u32,
    opts: &Options,
) -> Result<Vec<Answer>, MeshError> {
    let route = route::route(view, req)?;
    Ok(run(&route, count, opts))
}

/// Plays `count` requests over a decided route.
pub fn run(route: &Route, count: u32, opts: &Options) -> Vec<Answer> {
    match route {
        Route::Fails(line) => (0..count).map(|_| curl_failed(line.clone())).collect(),
        Route::Plain { target, endpoints } => (0..count as usize)
            .map(|i| {
                if endpoints.is_empty() {
                    // No endpoints: kube-proxy rejects the ClusterIP connection.
                    return curl_failed(respond::curl_refused(&target.host, target.port));
                }
                let ep = &endpoints[(opts.seed as usize + i) % endpoints.len()];
                match &ep.hop {
                    Hop::Reply(r) => served(ep, r.status, r.body.clone(), Vec::new()),
                    Hop::PlainReset => curl_failed(respond::CURL_RESET.into()),
                    Hop::Fail(_) => curl_failed(respond::curl_refused(&target.host, target.port)),
                }
            })
            .collect(),
        Route::Mesh {
            endpoints, policy, ..
        } => {
            let mut lb = Envoy::new(endpoints, policy, opts);
            (0..count).map(|_| lb.request()).collect()
        }
    }
}

fn curl_failed(line: String) -> Answer {
    Answer {
        output: line,
        status: None,
        served_by: None,
        attempts: Vec::new(),
    }
}

fn served(ep: &Endpoint, status: u16, body: String, attempts: Vec<Attempt>) -> Answer {
    Answer {
        output: body,
        status: Some(status),
        served_by: Some(ServedBy {
            cluster: ep.cluster.clone(),
            namespace: ep.namespace.clone(),
            pod: ep.pod.clone(),
            version: ep.version.clone(),
        }),
        attempts,
    }
}

/// One client sidecar's view of one outbound cluster, kept across the probe's requests.
struct Envoy<'r> {
    endpoints: &'r [Endpoint],
    policy: &'r LbPolicy,
    opts: Options,
    /// Round-robin position per priority (and locality, under `distribute`).
    rr: BTreeMap<String, u64>,
    /// Smooth weighted round robin credit per priority, for split priority loads.
    credit: BTreeMap<u32, i64>,
    /// The same per locality, for `distribute` weights.
    locality_credit: BTreeMap<String, i64>,
    consecutive_5xx: BTreeMap<&'r str, u32>,
    /// Ejections last the whole probe: `baseEjectionTime` (30s default) outlives it.
    ejected: BTreeSet<&'r str>,
}

impl<'r> Envoy<'r> {
    fn new(endpoints: &'r [Endpoint], policy: &'r LbPolicy, opts: &Options) -> Self {
        Self {
            endpoints,
            policy,
            opts: *opts,
            rr: BTreeMap::new(),
            credit: BTreeMap::new(),
            locality_credit: BTreeMap::new(),
            consecutive_5xx: BTreeMap::new(),
            ejected: BTreeSet::new(),
        }
    }

    fn request(&mut self) -> Answer {
        let deadline_ms = u64::from(self.opts.timeout_secs) * 1000;
        let mut elapsed = 0u64;
        let mut tried: Vec<&'r str> = Vec::new();
        let mut attempts = Vec::new();
        let mut last = None;
        for _ in 0..=self.opts.retries {
            let Some(ep) = self.pick(&tried) else {
                return Answer {
                    output: respond::NO_HEALTHY_UPSTREAM.into(),
                    status: Some(503),
                    served_by: None,
                    attempts,
                };
            };
            tried.push(&ep.host);
            let failure = match &ep.hop {
                Hop::Reply(_) => None,
                Hop::Fail(f) => Some(*f),
                Hop::PlainReset => Some(Failure::HandshakeReset),
            };
            elapsed += failure.map_or(1, Failure::elapsed_ms);
            if elapsed >= deadline_ms {
                // curl gives up first; Envoy sees a downstream reset, which outlier detection
                // does not count. Attempts that finished before stay on record.
                return Answer {
                    attempts,
                    ..curl_failed(respond::curl_timeout(self.opts.timeout_secs))
                };
            }
            attempts.push(Attempt {
                cluster: ep.cluster.clone(),
                pod: ep.pod.clone(),
                gateway: ep.gateway.clone(),
                failure,
            });
            self.record(&ep.host, failure.is_some());
            match (&ep.hop, failure) {
                (Hop::Reply(r), _) => return served(ep, r.status, r.body.clone(), attempts),
                (_, f) => last = f,
            }
        }
        let n = attempts.len();
        Answer {
            output: respond::upstream_error(last.unwrap_or(Failure::Refused), n),
            status: Some(503),
            served_by: None,
            attempts,
        }
    }

    /// Round robin within the chosen priority over hosts not ejected; on a retry, hosts already
    /// tried are skipped when another is available (`previous_hosts`, 5 reselections).
    fn pick(&mut self, tried: &[&str]) -> Option<&'r Endpoint> {
        let healthy: Vec<&'r Endpoint> = self
            .endpoints
            .iter()
            .filter(|e| !self.ejected.contains(e.host.as_str()))
            .collect();
        let priority = self.priority(&healthy)?;
        let mut pool: Vec<&'r Endpoint> = healthy
            .into_iter()
            .filter(|e| e.priority == priority)
            .collect();
        let mut key = priority.to_string();
        if let Some(locality) = self.locality(&pool) {
            pool.retain(|e| e.locality == locality);
            key = format!("{priority}/{locality}");
        }
        let mut chosen = None;
        for _ in 0..6 {
            let pos = self.rr.entry(key.clone()).or_insert(self.opts.seed);
            let ep = pool[(*pos % pool.len() as u64) as usize];
            *pos += 1;
            chosen = Some(ep);
            if !tried.contains(&ep.host.as_str()) {
                break;
            }
        }
        chosen
    }

    /// Locality-weighted pick under `distribute`: each locality's weight scaled by
    /// min(1, 1.4 x its healthy share), by smooth weighted round robin. `None` when localities
    /// are not weighted.
    fn locality(&mut self, pool: &[&Endpoint]) -> Option<String> {
        let mut groups: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
        for e in pool {
            let weight = i64::from(e.locality_weight?);
            groups.entry(e.locality.as_str()).or_insert((weight, 0)).1 += 1;
        }
        let weighted: Vec<(&str, i64)> = groups
            .iter()
            .map(|(l, (w, healthy))| {
                let all = self.endpoints.iter().filter(|e| e.locality == *l).count() as i64;
                (*l, w * (140 * healthy / all.max(1)).min(100))
            })
            .filter(|(_, w)| *w > 0)
            .collect();
        let sum: i64 = weighted.iter().map(|(_, w)| w).sum();
        for (l, w) in &weighted {
            *self.locality_credit.entry(l.to_string()).or_default() += w;
        }
        let (best, _) = weighted
            .iter()
            .max_by_key(|(l, _)| (self.locality_credit[*l], std::cmp::Reverse(*l)))?;
        *self.locality_credit.entry(best.to_string()).or_default() -= sum;
        Some(best.to_string())
    }

    /// Envoy's priority load: each level takes min(100, 1.4 x its healthy share) of what is left,
    /// normalised when the total is under 100 (no panic mode: Istio sets the threshold to 0 with
    /// outlier detection). Split loads are served by smooth weighted round robin.
    fn priority(&mut self, healthy: &[&Endpoint]) -> Option<u32> {
        let levels: BTreeSet<u32> = self.endpoints.iter().map(|e| e.priority).collect();
        let mut loads: Vec<(u32, i64)> = Vec::new();
        let mut left = 100i64;
        let mut total_health = 0i64;
        for p in &levels {
            let all = self.endpoints.iter().filter(|e| e.priority == *p).count() as i64;
            let ok = healthy.iter().filter(|e| e.priority == *p).count() as i64;
            let health = (140 * ok / all).min(100);
            total_health += health;
            let load = health.min(left);
            left -= load;
            loads.push((*p, load));
        }
        if total_health == 0 {
            return None;
        }
        if total_health < 100 {
            for (p, load) in loads.iter_mut() {
                let all = self.endpoints.iter().filter(|e| e.priority == *p).count() as i64;
                let ok = healthy.iter().filter(|e| e.priority == *p).count() as i64;
                *load = (140 * ok / all).min(100) * 100 / total_health;
            }
        }
        let loads: Vec<(u32, i64)> = loads.into_iter().filter(|(_, l)| *l > 0).collect();
        if loads.len() == 1 {
            return Some(loads[0].0);
        }
        let sum: i64 = loads.iter().map(|(_, l)| l).sum();
        for (p, l) in &loads {
            *self.credit.entry(*p).or_default() += l;
        }
        let (best, _) = *loads
            .iter()
            .max_by_key(|(p, _)| (self.credit[p], std::cmp::Reverse(*p)))?;
        *self.credit.entry(best).or_default() -= sum;
        Some(best)
    }

    /// Outlier detection: local-origin failures count as 5xx (split_external_local_origin_errors
    /// is off); `consecutive5xxErrors` in a row ejects the host, up to `maxEjectionPercent`
    /// of hosts but always at least one.
    fn record(&mut self, host: &'r str, failed: bool) {
        let Some(od) = &self.policy.outlier else {
            return;
        };
        if !failed {
            self.consecutive_5xx.remove(host);
            return;
        }
        let threshold = od.consecutive_5xx_errors.unwrap_or(5);
        let n = self.consecutive_5xx.entry(host).or_default();
        *n += 1;
        if threshold == 0 || *n < threshold || self.ejected.contains(host) {
            return;
        }
        let hosts: BTreeSet<&str> = self.endpoints.iter().map(|e| e.host.as_str()).collect();
        let pct = od.max_ejection_percent.unwrap_or(10) as usize;
        let max = (hosts.len() * pct / 100).max(1);
        if self.ejected.len() < max {
            self.ejected.insert(host);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::respond::AppReply;
    use crate::mesh::target::Target;
    use crate::mesh::view::OutlierDetection;

    fn ep(pod: &str, priority: u32, hop: Hop) -> Endpoint {
        Endpoint {
            cluster: "c".into(),
            cluster_id: "c".into(),
            namespace: "ns".into(),
            pod: pod.into(),
            network: String::new(),
            gateway: None,
            host: pod.into(),
            priority,
            locality: String::new(),
            locality_weight: None,
            hop,
            version: None,
        }
    }

    fn ok() -> Hop {
        Hop::Reply(AppReply {
            status: 200,
            body: "ok".into(),
        })
    }

    #[test]
    fn a_partly_ejected_priority_spills_over_by_envoy_priority_load() {
        let route = Route::Mesh {
            target: Target {
                host: "h".into(),
                port: 80,
                path: "/".into(),
            },
            endpoints: vec![
                ep("a", 0, ok()),
                ep("b", 0, Hop::Fail(Failure::Refused)),
                ep("c", 1, ok()),
            ],
            policy: LbPolicy {
                outlier: Some(OutlierDetection {
                    consecutive_5xx_errors: Some(1),
                    max_ejection_percent: Some(100),
                }),
                locality_failover: true,
                rule: None,
            },
        };
        let opts = Options {
            retries: 0,
            ..Options::default()
        };
        let answers = run(&route, 12, &opts);
        let pods: Vec<&str> = answers
            .iter()
            .map(|a| a.served_by.as_ref().map_or("-", |s| s.pod.as_str()))
            .collect();
        // a, then b fails once and is ejected; P0 is then 1.4 x 50% = 70% healthy, so 70% of the
        // load stays on P0 (a) and 30% spills to P1 (c).
        assert_eq!(&pods[..2], &["a", "-"]);
        let rest = &pods[2..];
        assert_eq!(rest.iter().filter(|p| **p == "a").count(), 7);
        assert_eq!(rest.iter().filter(|p| **p == "c").count(), 3);
    }

    #[test]
    fn max_ejection_percent_keeps_the_last_hosts_in() {
        let route = Route::Mesh {
            target: Target {
                host: "h".into(),
                port: 80,
                path: "/".into(),
            },
            endpoints: vec![
                ep("a", 0, Hop::Fail(Failure::Refused)),
                ep("b", 0, Hop::Fail(Failure::Refused)),
            ],
            policy: LbPolicy {
                outlier: Some(OutlierDetection {
                    consecutive_5xx_errors: Some(1),
                    max_ejection_percent: None,
                }),
                locality_failover: false,
                rule: None,
            },
        };
        // 10% of two hosts rounds to zero, but Envoy always ejects one: b keeps failing, and
        // the client never sees "no healthy upstream".
        let answers = run(&route, 4, &Options::default());
        assert!(
            answers
                .iter()
                .all(|a| a.output.contains("delayed connect error: 111"))
        );
    }
}
