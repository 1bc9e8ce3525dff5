//! DestinationRules: locality failover needs outlier detection (without it
//! no endpoint is ever ejected, so traffic never fails over); the obsolete
//! `consecutiveErrors` is ignored by every supported Istio.

use super::{View, ctx, obj};
use crate::check::finding::Finding;

pub(super) fn check(v: &View<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    for (c, s) in &v.clusters {
        for dr in &s.destination_rules {
            let object = obj("DestinationRule", &dr.namespace, &dr.name);
            if dr.failover && !dr.outlier_with_failover {
                out.push(Finding::new(
                    "MC601",
                    c.name(),
                    object.clone(),
                    format!("host {}: localityLbSetting fails over but no outlierDetection is set: unhealthy endpoints are never ejected, so failover never happens", dr.host),
                    format!("add spec.trafficPolicy.outlierDetection (e.g. consecutive5xxErrors: 1, interval: 1s, baseEjectionTime: 1m): kubectl {} -n {} edit destinationrule {}", ctx(c), dr.namespace, dr.name),
                ));
            }
            for path in &dr.consecutive_errors {
                out.push(Finding::new(
                    "MC602",
                    c.name(),
                    object.clone(),
                    format!("{path} is obsolete and ignored: outlier detection does not count errors as intended"),
                    "use consecutive5xxErrors (or consecutiveGatewayErrors) instead".to_string(),
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{found, healthy};
    use crate::check::Group;

    #[test]
    fn failover_without_outlier_detection_is_found() {
        let (e, mut s) = healthy();
        s[1].destination_rules[0].outlier_with_failover = false;
        s[0].destination_rules[0].consecutive_errors =
            vec!["spec.trafficPolicy.outlierDetection.consecutiveErrors".into()];
        let dr = "DestinationRule sample/helloworld".to_string();
        assert_eq!(
            found(Group::DestinationRules, &e, &s),
            vec![
                ("MC602".into(), "c1".into(), dr.clone()),
                ("MC601".into(), "c2".into(), dr)
            ]
        );
    }
}
