//! Content negotiation for `/api` and `/apis`, as the kube-apiserver's
//! aggregated-discovery wrapper decides: the Accept clauses in order (higher
//! `q` first, the listed order otherwise), the first clause naming a served
//! media type with `g=apidiscovery.k8s.io;v=v2|v2beta1;as=APIGroupDiscoveryList`
//! selects the aggregated document; otherwise the legacy one answers.
//!
//! One departure: the real server can encode the aggregated document as
//! protobuf; meshsim cannot, so a protobuf clause is passed over and the next
//! clause decides (clients list JSON after protobuf).

/// The aggregated document's group.
pub(super) const GROUP: &str = "apidiscovery.k8s.io";
/// The aggregated document's kind.
pub(super) const KIND: &str = "APIGroupDiscoveryList";

/// How the aggregated document is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Media {
    /// `application/json` or `application/yaml`.
    pub mime: &'static str,
    /// `v2` or `v2beta1` (v2beta1 is still served by 1.32).
    pub version: &'static str,
}

impl Media {
    /// The Content-Type the API server answers with: the media type and the
    /// negotiated group, version and kind.
    pub fn content_type(&self) -> String {
        format!("{};g={GROUP};v={};as={KIND}", self.mime, self.version)
    }
}

/// Which discovery document answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Negotiated {
    Aggregated(Media),
    Legacy,
}

struct Clause<'a> {
    mime: (&'a str, &'a str),
    q: f64,
    params: Vec<(&'a str, &'a str)>,
}

fn parse(header: &str) -> Vec<Clause<'_>> {
    let mut clauses: Vec<Clause<'_>> = header
        .split(',')
        .filter_map(|part| {
            let mut pieces = part.split(';');
            let range = pieces.next()?.trim();
            if range.is_empty() {
                return None;
            }
            let mime = match range.split_once('/') {
                Some((t, s)) => (t.trim(), s.trim()),
                None if range == "*" => ("*", "*"),
                None => return None,
            };
            let mut q = 1.0;
            let mut params = Vec::new();
            for p in pieces {
                let Some((k, v)) = p.split_once('=') else {
                    continue;
                };
                let (k, v) = (k.trim(), v.trim().trim_matches('"'));
                if k == "q" {
                    q = v.parse().unwrap_or(0.0);
                } else {
                    params.push((k, v));
                }
            }
            Some(Clause { mime, q, params })
        })
        .collect();
    // Stable: equal clauses keep the client's order; wildcards rank after.
    clauses.sort_by(|a, b| {
        b.q.total_cmp(&a.q)
            .then_with(|| (a.mime.0 == "*").cmp(&(b.mime.0 == "*")))
            .then_with(|| (a.mime.1 == "*").cmp(&(b.mime.1 == "*")))
    });
    clauses
}

/// The served media types, in the server's order.
const SERVED: &[(&str, &str)] = &[
    ("application", "json"),
    ("application", "yaml"),
    ("application", "vnd.kubernetes.protobuf"),
];

/// Decides the document for an `Accept` header (empty: legacy).
pub(super) fn negotiate(accept: &str) -> Negotiated {
    for clause in parse(accept) {
        for served in SERVED {
            let matches = (clause.mime.0 == served.0 || clause.mime.0 == "*")
                && (clause.mime.1 == served.1 || clause.mime.1 == "*");
            if !matches {
                continue;
            }
            let param = |k: &str| {
                clause
                    .params
                    .iter()
                    .find(|(key, _)| *key == k)
                    .map(|(_, v)| *v)
            };
            // Server-version and non-watch stream requests are refused here.
            if param("sv").is_some_and(|v| !v.is_empty())
                || param("stream").is_some_and(|v| !v.is_empty() && v != "watch")
            {
                continue;
            }
            let version = match param("v") {
                Some("v2") => "v2",
                Some("v2beta1") => "v2beta1",
                _ => continue,
            };
            if param("g") != Some(GROUP) || param("as") != Some(KIND) {
                continue;
            }
            let mime = match served.1 {
                "json" => "application/json",
                "yaml" => "application/yaml",
                _ => continue,
            };
            return Negotiated::Aggregated(Media { mime, version });
        }
    }
    Negotiated::Legacy
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agg(mime: &'static str, version: &'static str) -> Negotiated {
        Negotiated::Aggregated(Media { mime, version })
    }

    #[test]
    fn kubectl_and_kube_rs_get_v2() {
        let client_go = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,\
            application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert_eq!(negotiate(client_go), agg("application/json", "v2"));
        let proto_first = "application/vnd.kubernetes.protobuf;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,\
            application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";
        assert_eq!(negotiate(proto_first), agg("application/json", "v2"));
    }

    #[test]
    fn order_q_and_parameters_decide() {
        assert_eq!(negotiate(""), Negotiated::Legacy);
        assert_eq!(negotiate("application/json"), Negotiated::Legacy);
        assert_eq!(negotiate("*/*"), Negotiated::Legacy);
        let beta = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList";
        assert_eq!(negotiate(beta), agg("application/json", "v2beta1"));
        // A plain clause first does not hide a later aggregated one (it is not a transform).
        assert_eq!(
            negotiate(&format!("application/json, {beta}")),
            agg("application/json", "v2beta1")
        );
        // q orders the clauses.
        let both = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList;q=0.5, \
            application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList;q=0.9";
        assert_eq!(negotiate(both), agg("application/json", "v2"));
        // Unknown versions, kinds or groups are not transforms the endpoint allows.
        assert_eq!(
            negotiate("application/json;g=apidiscovery.k8s.io;v=v3;as=APIGroupDiscoveryList"),
            Negotiated::Legacy
        );
        assert_eq!(
            negotiate("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupList"),
            Negotiated::Legacy
        );
        assert_eq!(
            negotiate("application/json;v=v2;as=APIGroupDiscoveryList"),
            Negotiated::Legacy
        );
        assert_eq!(
            negotiate("application/yaml;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"),
            agg("application/yaml", "v2")
        );
        assert_eq!(
            negotiate("*/*;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"),
            agg("application/json", "v2")
        );
        assert_eq!(
            negotiate("text/html;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"),
            Negotiated::Legacy
        );
    }
}
