//! The string formats the spec's values must follow: Kubernetes names and
//! labels, hostnames, Go/Istio durations, Istio versions. Each check returns
//! what is wrong in words a user can act on.

/// A DNS-1123 label (`cluster1`): Kubernetes namespace names, Istio cluster IDs.
pub fn dns_label(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    if s.len() > 63 {
        return Err(format!(
            "is {} characters long; at most 63 allowed",
            s.len()
        ));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(format!(
            "contains `{c}`; only lowercase letters, digits and `-` are allowed (a DNS-1123 label)"
        ));
    }
    if s.starts_with('-') || s.ends_with('-') {
        return Err("must start and end with a letter or digit (a DNS-1123 label)".into());
    }
    Ok(())
}

/// A DNS-1123 subdomain (`prometheus.v1`): Kubernetes object names.
pub fn dns_subdomain(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    if s.len() > 253 {
        return Err(format!(
            "is {} characters long; at most 253 allowed",
            s.len()
        ));
    }
    for label in s.split('.') {
        dns_label(label).map_err(|e| format!("is not a DNS-1123 subdomain: part `{label}` {e}"))?;
    }
    Ok(())
}

/// A Kubernetes label value (`us-west-1a`); `allow_empty` for optional ones.
pub fn label_value(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    if s.len() > 63 {
        return Err(format!(
            "is {} characters long; at most 63 allowed",
            s.len()
        ));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(format!(
            "contains `{c}`; a label value allows letters, digits, `-`, `_` and `.`"
        ));
    }
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if !edge(s.chars().next()) || !edge(s.chars().last()) {
        return Err("must start and end with a letter or digit".into());
    }
    Ok(())
}

/// A label key (`topology.kubernetes.io/region`), optionally `key=value` as
/// `failoverPriority` accepts.
pub fn label_selector_term(s: &str) -> Result<(), String> {
    let (key, value) = match s.split_once('=') {
        Some((k, v)) => (k, Some(v)),
        None => (s, None),
    };
    let name = match key.rsplit_once('/') {
        Some((prefix, name)) => {
            dns_subdomain(prefix).map_err(|e| format!("label prefix `{prefix}` {e}"))?;
            name
        }
        None => key,
    };
    label_value(name).map_err(|e| format!("label name `{name}` {e}"))?;
    if let Some(v) = value {
        label_value(v).map_err(|e| format!("label value `{v}` {e}"))?;
    }
    Ok(())
}

/// A hostname, optionally with a leading `*.` wildcard, or `*` alone.
pub fn host(s: &str) -> Result<(), String> {
    if s == "*" {
        return Ok(());
    }
    let rest = s.strip_prefix("*.").unwrap_or(s);
    if rest.is_empty() {
        return Err("must not be empty".into());
    }
    if rest.contains('*') {
        return Err("a wildcard `*` is only allowed as the first label (`*.example.com`)".into());
    }
    dns_subdomain(rest.strip_suffix('.').unwrap_or(rest))
}

/// A trust domain: a DNS name, as in SPIFFE IDs (`cluster.local`).
pub fn trust_domain(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    if s.len() > 255 {
        return Err("is longer than 255 characters".into());
    }
    for label in s.split('.') {
        if label.is_empty() {
            return Err("has an empty part between dots".into());
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_')))
        {
            return Err(format!(
                "contains `{c}`; a trust domain is a lowercase DNS name such as `cluster.local`"
            ));
        }
    }
    Ok(())
}

/// `1.30.3`, optionally with a pre-release suffix (`1.31.0-beta.1`).
pub fn istio_version(s: &str) -> Result<(), String> {
    let core = s.split_once('-').map_or(s, |(c, _)| c);
    let parts: Vec<&str> = core.split('.').collect();
    let numeric = |p: &&str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if parts.len() == 3 && parts.iter().all(numeric) && parts[0] == "1" {
        return Ok(());
    }
    if s.starts_with('v') && istio_version(&s[1..]).is_ok() {
        return Err("has a leading `v`; Istio versions are written `1.30.3`".into());
    }
    Err("is not an Istio version such as `1.30.3` (1.minor.patch)".into())
}

/// `host:port` with a port in 1..=65535.
pub fn host_port(s: &str) -> Result<(), String> {
    let Some((h, p)) = s.rsplit_once(':') else {
        return Err("is not `host:port`".into());
    };
    host(h).map_err(|e| format!("host `{h}` {e}"))?;
    match p.parse::<u32>() {
        Ok(1..=65535) => Ok(()),
        _ => Err(format!("port `{p}` is not a number in 1..65535")),
    }
}

/// Parses a Go `time.ParseDuration` string (`30s`, `1m30s`, `500ms`, `1.5h`),
/// the syntax Istio accepts for durations, into nanoseconds. Signs are
/// refused: no spec duration may be negative.
pub fn duration_nanos(s: &str) -> Result<f64, String> {
    const UNITS: &[(&str, f64)] = &[
        ("ns", 1.0),
        ("us", 1e3),
        ("µs", 1e3),
        ("μs", 1e3),
        ("ms", 1e6),
        ("s", 1e9),
        ("m", 60e9),
        ("h", 3600e9),
    ];
    let expected = "is not a duration such as `30s`, `1m30s`, `500ms` or `1h`";
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    if s == "0" {
        return Ok(0.0);
    }
    let mut rest = s;
    let mut total = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num = &rest[..num_len];
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return Err(expected.into());
        }
        let value: f64 = num.parse().map_err(|_| expected.to_string())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        let Some(&(_, scale)) = UNITS.iter().find(|(u, _)| *u == unit) else {
            return Err(if unit.is_empty() {
                format!("{expected}: `{num}` has no unit (ns, us, ms, s, m, h)")
            } else {
                format!("{expected}: unknown unit `{unit}` (ns, us, ms, s, m, h)")
            });
        };
        total += value * scale;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_names() {
        assert!(dns_label("cluster-1").is_ok());
        assert!(dns_label("Cluster1").unwrap_err().contains("`C`"));
        assert!(dns_label("-a").is_err());
        assert!(dns_label(&"a".repeat(64)).is_err());
        assert!(dns_subdomain("prom.v1").is_ok());
        assert!(dns_subdomain("prom..v1").is_err());
        assert!(label_value("us-west-1a").is_ok());
        assert!(label_value("US_West.1").is_ok());
        assert!(label_value("us west").is_err());
        assert!(label_value("_x").is_err());
        assert!(label_selector_term("topology.kubernetes.io/region").is_ok());
        assert!(label_selector_term("version=v1").is_ok());
        assert!(label_selector_term("topology.istio.io/").is_err());
        assert!(label_selector_term("Bad Prefix/x").is_err());
    }

    #[test]
    fn hosts() {
        assert!(host("helloworld.sample.svc.cluster.local").is_ok());
        assert!(host("*.local").is_ok());
        assert!(host("*").is_ok());
        assert!(host("a.*.local").is_err());
        assert!(host("hello_world.sample").is_err());
        assert!(host_port("jaeger-collector.istio-system:9411").is_ok());
        assert!(host_port("jaeger:0").is_err());
        assert!(host_port("jaeger").is_err());
        assert!(trust_domain("cluster.local").is_ok());
        assert!(trust_domain("Cluster.local").is_err());
        assert!(trust_domain("a..b").is_err());
    }

    #[test]
    fn versions() {
        assert!(istio_version("1.30.3").is_ok());
        assert!(istio_version("1.31.0-beta.1").is_ok());
        assert!(
            istio_version("v1.30.3")
                .unwrap_err()
                .contains("leading `v`")
        );
        assert!(istio_version("1.30").is_err());
        assert!(istio_version("2.0.0").is_err());
    }

    #[test]
    fn go_durations() {
        assert_eq!(duration_nanos("30s"), Ok(30e9));
        assert_eq!(duration_nanos("1m30s"), Ok(90e9));
        assert_eq!(duration_nanos("500ms"), Ok(500e6));
        assert_eq!(duration_nanos("1.5h"), Ok(5400e9));
        assert_eq!(duration_nanos("0"), Ok(0.0));
        assert!(duration_nanos("30").unwrap_err().contains("no unit"));
        assert!(
            duration_nanos("30sec")
                .unwrap_err()
                .contains("unknown unit `sec`")
        );
        assert!(duration_nanos("-1s").is_err());
        assert!(duration_nanos("1..2s").is_err());
        assert!(duration_nanos("s").is_err());
        assert!(duration_nanos("").is_err());
    }
}
