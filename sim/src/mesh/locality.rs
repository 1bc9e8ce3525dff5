//! Locality failover priorities, as istiod computes them for a client proxy
//! (istio: `pilot/pkg/networking/core/loadbalancer/loadbalancer.go`,
//! `applyLocalityFailover` and `applyPriorityFailover`).

use super::view::{
    DestinationRule, Locality, LocalityLbSetting, REGION_LABEL, SUBZONE_LABEL, ZONE_LABEL,
};
use std::collections::BTreeMap;

/// The locality-related facts about one side of a connection.
#[derive(Debug, Clone, Default)]
pub struct Place {
    /// `None` when istiod does not know it (no node, or a proxy it cannot find).
    pub locality: Option<Locality>,
    /// Pod labels plus the labels istiod derives (cluster, network, region/zone/subzone).
    pub labels: BTreeMap<String, String>,
}

/// Whether istiod would program priorities for this rule: only with outlier detection
/// ("Failover should only be applied with outlier detection, or traffic will never failover",
/// FACTS 6), unless the rule disables locality LB. `distribute` is weighted, not prioritised.
pub fn failover_applies(rule: Option<&DestinationRule>) -> bool {
    let Some(rule) = rule else { return false };
    if rule.outlier_detection.is_none() {
        return false;
    }
    match &rule.locality_lb {
        None => true,
        Some(s) => s.enabled != Some(false) && s.distribute.is_empty(),
    }
}

/// Compacted priorities (0 = preferred), one per endpoint. `failoverPriority` labels rank
/// first; `failover` region rules (or the default region/zone/subzone ordering when there are
/// no labels) refine each label level, as istiod multiplies the label priority by 5.
pub fn priorities(
    setting: Option<&LocalityLbSetting>,
    client: &Place,
    endpoints: &[Place],
) -> Vec<u32> {
    let labels = setting.map_or(&[][..], |s| s.failover_priority.as_slice());
    let failover = setting.map_or(&[][..], |s| s.failover.as_slice());
    let raw: Vec<u32> = endpoints
        .iter()
        .map(|ep| {
            if labels.is_empty() {
                locality_priority(failover, client.locality.as_ref(), ep.locality.as_ref())
            } else if failover.is_empty() {
                label_priority(labels, client, ep)
            } else {
                label_priority(labels, client, ep) * 5
                    + locality_priority(failover, client.locality.as_ref(), ep.locality.as_ref())
            }
        })
        .collect();
    compact(&raw)
}

/// 0: same region/zone/subzone; 1: same region/zone; 2: same region; 3: elsewhere;
/// 4: elsewhere and not the `to` region of a `failover` rule for the client's region.
fn locality_priority(
    failover: &[(String, String)],
    client: Option<&Locality>,
    ep: Option<&Locality>,
) -> u32 {
    let (Some(c), Some(e)) = (client, ep) else {
        return 3;
    };
    let p = if c.region != e.region {
        3
    } else if c.zone != e.zone {
        2
    } else if c.subzone != e.subzone {
        1
    } else {
        0
    };
    if p == 3
        && let Some((_, to)) = failover.iter().find(|(from, _)| *from == c.region)
        && e.region != *to
    {
        return 4;
    }
    p
}

/// Whether istiod weights localities by `distribute` (no outlier detection needed).
pub fn distribute_applies(rule: Option<&DestinationRule>) -> bool {
    rule.and_then(|r| r.locality_lb.as_ref())
        .is_some_and(|s| s.enabled != Some(false) && !s.distribute.is_empty())
}

/// `distribute` (istio: `applyLocalityWeights`): the first rule whose `from` matches the client
/// gives each `to` pattern's weight to the localities it matches (split by their endpoint count,
/// rounded up); localities no `to` matches get no traffic (`None`). Without a matching rule every
/// locality keeps its endpoint count as weight.
pub fn locality_weights(
    distribute: &[(String, BTreeMap<String, u32>)],
    client: Option<&Locality>,
    endpoints: &[Place],
) -> Vec<Option<u32>> {
    let mut groups: BTreeMap<Option<&Locality>, u32> = BTreeMap::new();
    for ep in endpoints {
        *groups.entry(ep.locality.as_ref()).or_default() += 1;
    }
    let Some((_, to)) = distribute
        .iter()
        .find(|(from, _)| locality_match(client, from))
    else {
        return endpoints
            .iter()
            .map(|ep| groups.get(&ep.locality.as_ref()).copied())
            .collect();
    };
    let mut weights: BTreeMap<Option<&Locality>, u32> = BTreeMap::new();
    for (pattern, weight) in to {
        let matched: Vec<(Option<&Locality>, u32)> = groups
            .iter()
            .filter(|(l, _)| !weights.contains_key(*l) && locality_match(**l, pattern))
            .map(|(l, n)| (*l, *n))
            .collect();
        let total: u32 = matched.iter().map(|(_, n)| n).sum();
        for (l, n) in matched {
            weights.insert(l, (n * weight).div_ceil(total.max(1)));
        }
    }
    endpoints
        .iter()
        .map(|ep| {
            weights
                .get(&ep.locality.as_ref())
                .copied()
                .filter(|w| *w > 0)
        })
        .collect()
}

/// `region/zone/subzone` with `*` for any and missing parts matching anything
/// (istio: `util.LocalityMatch`).
fn locality_match(locality: Option<&Locality>, pattern: &str) -> bool {
    let mut parts = pattern.splitn(3, '/');
    let (r, z, s) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    );
    let get = |f: fn(&Locality) -> &str| locality.map(f);
    let region = r == "*" || get(|l| &l.region) == Some(r);
    let zone = z == "*" || z.is_empty() || get(|l| &l.zone) == Some(z);
    let subzone = s == "*" || s.is_empty() || get(|l| &l.subzone) == Some(s);
    region && zone && subzone
}

/// `len - j` for the first label `j` that differs from the client's (or the `key=value`
/// override); 0 when all match (istio: `applyFailoverPriorityPerLocality`).
fn label_priority(keys: &[String], client: &Place, ep: &Place) -> u32 {
    let mut matched = 0;
    for key in keys {
        let (key, want) = match key.split_once('=') {
            Some((k, v)) => (k, Some(v.to_string())),
            None => (key.as_str(), client.labels.get(key.as_str()).cloned()),
        };
        // A label missing on both sides matches (istiod compares the empty strings).
        if want.unwrap_or_default() == ep.labels.get(key).cloned().unwrap_or_default() {
            matched += 1;
        } else {
            break;
        }
    }
    (keys.len() - matched) as u32
}

fn compact(raw: &[u32]) -> Vec<u32> {
    let mut distinct: Vec<u32> = raw.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    raw.iter()
        .map(|p| distinct.iter().position(|d| d == p).unwrap_or(0) as u32)
        .collect()
}

/// The labels istiod gives an endpoint or proxy for `failoverPriority`.
pub fn place(
    pod_labels: &BTreeMap<String, String>,
    locality: Option<&Locality>,
    cluster_id: &str,
    network: &str,
) -> Place {
    let mut labels = pod_labels.clone();
    labels.insert(super::view::CLUSTER_LABEL.into(), cluster_id.into());
    if !network.is_empty() {
        labels.insert(super::view::NETWORK_LABEL.into(), network.into());
    }
    if let Some(l) = locality {
        labels.insert(REGION_LABEL.into(), l.region.clone());
        labels.insert(ZONE_LABEL.into(), l.zone.clone());
        labels.insert(SUBZONE_LABEL.into(), l.subzone.clone());
    }
    Place {
        locality: locality.cloned(),
        labels,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::view::OutlierDetection;

    fn at(region: &str, zone: &str) -> Place {
        place(
            &BTreeMap::new(),
            Some(&Locality::new(region, zone, "")),
            "c",
            "n",
        )
    }

    #[test]
    fn default_ordering_prefers_zone_then_region() {
        let client = at("r1", "z1");
        let eps = [at("r2", "z9"), at("r1", "z2"), at("r1", "z1")];
        assert_eq!(priorities(None, &client, &eps), vec![2, 1, 0]);
    }

    #[test]
    fn failover_rule_ranks_the_target_region_before_others() {
        let s = LocalityLbSetting {
            failover: vec![("r1".into(), "r3".into())],
            ..Default::default()
        };
        let eps = [at("r2", "a"), at("r3", "a"), at("r1", "a")];
        assert_eq!(priorities(Some(&s), &at("r1", "a"), &eps), vec![2, 1, 0]);
    }

    #[test]
    fn failover_priority_counts_leading_matching_labels() {
        let s = LocalityLbSetting {
            failover_priority: vec![
                "topology.istio.io/network".into(),
                "topology.kubernetes.io/region".into(),
            ],
            ..Default::default()
        };
        let client = place(
            &BTreeMap::new(),
            Some(&Locality::new("r1", "", "")),
            "c1",
            "n1",
        );
        let same_net_other_region = place(
            &BTreeMap::new(),
            Some(&Locality::new("r2", "", "")),
            "c2",
            "n1",
        );
        let other_net_same_region = place(
            &BTreeMap::new(),
            Some(&Locality::new("r1", "", "")),
            "c2",
            "n2",
        );
        let both = place(
            &BTreeMap::new(),
            Some(&Locality::new("r1", "", "")),
            "c1",
            "n1",
        );
        let pr = priorities(
            Some(&s),
            &client,
            &[same_net_other_region, other_net_same_region, both],
        );
        assert_eq!(pr, vec![1, 2, 0]);
    }

    #[test]
    fn failover_priority_with_region_failover_refines_each_label_level() {
        let mut labels = BTreeMap::new();
        labels.insert("tier".to_string(), "gold".to_string());
        let s = LocalityLbSetting {
            failover_priority: vec!["tier".into()],
            failover: vec![("r1".into(), "r3".into())],
            ..Default::default()
        };
        let client = place(&labels, Some(&Locality::new("r1", "a", "")), "c", "n");
        let gold_r2 = place(&labels, Some(&Locality::new("r2", "a", "")), "c", "n");
        let gold_r3 = place(&labels, Some(&Locality::new("r3", "a", "")), "c", "n");
        let plain_r1 = place(
            &BTreeMap::new(),
            Some(&Locality::new("r1", "a", "")),
            "c",
            "n",
        );
        let pr = priorities(Some(&s), &client, &[gold_r2, gold_r3, plain_r1]);
        assert_eq!(pr, vec![1, 0, 2]);
    }

    #[test]
    fn distribute_splits_weight_and_drops_unlisted_localities() {
        let eps = [
            at("r1", "a"),
            at("r1", "b"),
            at("r1", "b"),
            at("r2", "a"),
            at("r3", "a"),
        ];
        let rule = vec![(
            "r1/*".to_string(),
            BTreeMap::from([("r1/*".to_string(), 80), ("r2/a".to_string(), 20)]),
        )];
        let w = locality_weights(&rule, Some(&Locality::new("r1", "a", "")), &eps);
        // r1/a holds 1 of r1's 3 endpoints: ceil(80/3) = 27; r1/b: ceil(160/3) = 54.
        assert_eq!(w, vec![Some(27), Some(54), Some(54), Some(20), None]);
        // A client the rule does not match keeps plain per-locality weights.
        let w = locality_weights(&rule, Some(&Locality::new("r9", "a", "")), &eps);
        assert_eq!(w, vec![Some(1), Some(2), Some(2), Some(1), Some(1)]);
    }

    #[test]
    fn failover_needs_outlier_detection() {
        let mut dr = DestinationRule {
            locality_lb: Some(LocalityLbSetting::default()),
            ..Default::default()
        };
        assert!(!failover_applies(Some(&dr)));
        dr.outlier_detection = Some(OutlierDetection::default());
        assert!(failover_applies(Some(&dr)));
        dr.locality_lb = Some(LocalityLbSetting {
            enabled: Some(false),
            ..Default::default()
        });
        assert!(!failover_applies(Some(&dr)));
    }
}
