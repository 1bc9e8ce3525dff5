//! The address the other clusters use: `apiServer` must be an https URL
//! they can route to (unless the cluster is simulated on this machine), and
//! `tlsServerName` needs an Istio that writes it (1.26 and later).

use super::{Checker, formats};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub(super) fn check(c: &mut Checker) {
    let version = c.spec.spec.mesh.version();
    let version_ok = crate::spec::version::IstioVersion::parse(&c.spec.spec.mesh.istio_version)
        .is_ok_and(|v| v.is_supported());
    for (i, cl) in c.spec.spec.clusters.iter().enumerate() {
        if let Some(server) = &cl.api_server {
            let path = format!("spec.clusters[{i}].apiServer");
            match host_of(server) {
                Err(e) => c.error(
                    &path,
                    format!("apiServer `{}` {e}", crate::spec::yaml::shorten(server)),
                    Some("write the URL other clusters reach this API server at, e.g. `https://10.0.0.12:6443`".into()),
                ),
                Ok(host) => {
                    if let Some(why) = unroutable(&host).filter(|_| !cl.simulated) {
                        c.error(
                            &path,
                            format!(
                                "apiServer `{}` of cluster {} is {why}: the other clusters' istiods cannot reach it",
                                crate::spec::yaml::shorten(server),
                                cl.name
                            ),
                            Some("give the address the other clusters reach this API server at (a load balancer or routable node address); a simulated cluster on this machine is marked `simulated: true`".into()),
                        );
                    }
                }
            }
        }
        if let Some(name) = &cl.tls_server_name {
            let path = format!("spec.clusters[{i}].tlsServerName");
            if c.format(&path, name, "tlsServerName", formats::dns_subdomain)
                && version_ok
                && !version.supports_tls_server_name()
            {
                c.error(
                    &path,
                    format!(
                        "tlsServerName needs Istio 1.26 or later (create-remote-secret --tls-server-name came in 1.26); spec.mesh.istioVersion is {version}"
                    ),
                    Some("remove it and give an apiServer whose host the API server's certificate names".into()),
                );
            }
        }
    }
}

/// The host of an `https://host[:port][/path]` URL (brackets of an IPv6
/// literal removed).
fn host_of(url: &str) -> Result<String, String> {
    let Some(rest) = url.strip_prefix("https://") else {
        return Err("is not an https:// URL".into());
    };
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.contains('@') {
        return Err("must not carry credentials".into());
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| "has an unclosed `[` in its host".to_string())?;
        (h, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("has no host".into());
    }
    if let Some(p) = port
        && !matches!(p.parse::<u32>(), Ok(1..=65535))
    {
        return Err(format!("has port `{p}`, not a number in 1..65535"));
    }
    // Hostnames are case-insensitive: judge the lowercase form.
    let host = host.to_ascii_lowercase();
    if host.parse::<IpAddr>().is_err() {
        formats::dns_subdomain(&host).map_err(|e| format!("has host `{host}` that {e}"))?;
    }
    Ok(host)
}

/// Why another cluster cannot route to `host`, if it cannot.
fn unroutable(host: &str) -> Option<&'static str> {
    if host == "localhost" || host.ends_with(".localhost") {
        return Some("localhost (loopback)");
    }
    match host.parse::<IpAddr>().ok()? {
        IpAddr::V4(ip) if ip.is_loopback() => Some("a loopback address (127.0.0.0/8)"),
        IpAddr::V4(ip) if ip == Ipv4Addr::UNSPECIFIED => Some("the unspecified address 0.0.0.0"),
        IpAddr::V4(ip) if ip.is_link_local() => Some("a link-local address (169.254.0.0/16)"),
        IpAddr::V6(ip) if ip.is_loopback() => Some("the loopback address ::1"),
        IpAddr::V6(ip) if ip == Ipv6Addr::UNSPECIFIED => Some("the unspecified address ::"),
        IpAddr::V6(ip) if (ip.segments()[0] & 0xffc0) == 0xfe80 => {
            Some("a link-local address (fe80::/10)")
        }
        IpAddr::V6(ip) => ip
            .to_ipv4_mapped()
            .and_then(|v4| unroutable(&v4.to_string())),
        IpAddr::V4(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_unroutable_ones() {
        assert_eq!(host_of("https://10.0.0.1:6443").unwrap(), "10.0.0.1");
        assert_eq!(host_of("https://[::1]:6443/x").unwrap(), "::1");
        assert_eq!(
            host_of("https://API.example.com").unwrap(),
            "api.example.com"
        );
        assert!(host_of("http://10.0.0.1").is_err());
        assert!(host_of("https://10.0.0.1:0").is_err());
        assert!(host_of("https://u:p@h").is_err());
        for bad in [
            "127.0.0.1",
            "127.9.9.9",
            "localhost",
            "0.0.0.0",
            "169.254.1.1",
            "::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(unroutable(bad).is_some(), "{bad}");
        }
        for ok in ["10.0.0.1", "api.example.com", "2001:db8::1", "172.18.0.3"] {
            assert!(unroutable(ok).is_none(), "{ok}");
        }
    }
}
