//! The probe URL, read the way curl and cluster DNS read it.

/// `http://<svc>.<ns>[.svc[.cluster.local]]:<port>/<path>`, split into parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The host as written in the URL (curl prints it in its errors).
    pub host: String,
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

/// Parses an `http://` URL. The error is the line curl prints for it.
pub fn parse_url(url: &str) -> Result<Target, String> {
    let Some(rest) = url.strip_prefix("http://") else {
        return match url.split_once("://") {
            Some((scheme, _)) => Err(format!(
                "curl: (1) Protocol \"{scheme}\" not supported or disabled in libcurl"
            )),
            // curl guesses http:// for a bare host.
            None => parse_url(&format!("http://{url}")),
        };
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_string()),
        Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
        None => (rest, "/".to_string()),
    };
    let malformed = || "curl: (3) URL rejected: Malformed input to a URL function".to_string();
    if authority.contains('@') || authority.is_empty() {
        return Err(malformed());
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().map_err(|_| malformed())?),
        None => (authority, 80),
    };
    if host.is_empty()
        || !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    {
        return Err(malformed());
    }
    Ok(Target {
        host: host.to_string(),
        port,
        path,
    })
}

/// The Service a host names from a pod in `client_ns`, as the cluster's DNS search path
/// (`<ns>.svc.cluster.local svc.cluster.local cluster.local`) resolves it: `(namespace, name)`
/// candidates in lookup order.
pub fn service_candidates(host: &str, client_ns: &str) -> Vec<(String, String)> {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let mut out = Vec::new();
    let labels: Vec<&str> = host.split('.').collect();
    match labels.as_slice() {
        [svc] => out.push((client_ns.to_string(), svc.to_string())),
        [svc, ns] => out.push((ns.to_string(), svc.to_string())),
        [svc, ns, "svc"] => out.push((ns.to_string(), svc.to_string())),
        [svc, ns, "svc", "cluster", "local"] => out.push((ns.to_string(), svc.to_string())),
        _ => {}
    }
    out
}

/// `<svc>.<ns>.svc.cluster.local`: the host Istio keys services and rules by.
pub fn fqdn(namespace: &str, name: &str) -> String {
    format!("{name}.{namespace}.svc.cluster.local")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_docs_url_with_and_without_scheme() {
        let t = parse_url("http://helloworld.sample:5000/hello").unwrap();
        assert_eq!(
            t,
            Target {
                host: "helloworld.sample".into(),
                port: 5000,
                path: "/hello".into()
            }
        );
        assert_eq!(parse_url("helloworld.sample:5000/hello").unwrap(), t);
        assert_eq!(parse_url("http://web").unwrap().port, 80);
        assert_eq!(parse_url("http://web?x=1").unwrap().path, "/?x=1");
    }

    #[test]
    fn rejects_what_curl_rejects() {
        assert!(parse_url("http://web:99999/").unwrap_err().contains("(3)"));
        assert!(parse_url("ftp://web/").unwrap_err().contains("(1)"));
        assert!(parse_url("http:///x").unwrap_err().contains("(3)"));
    }

    #[test]
    fn dns_forms_name_one_service() {
        for host in [
            "helloworld.sample",
            "helloworld.sample.svc",
            "helloworld.sample.svc.cluster.local",
            "helloworld.sample.svc.cluster.local.",
        ] {
            assert_eq!(
                service_candidates(host, "other"),
                vec![("sample".to_string(), "helloworld".to_string())],
                "{host}"
            );
        }
        assert_eq!(
            service_candidates("helloworld", "sample"),
            vec![("sample".to_string(), "helloworld".to_string())]
        );
        assert!(service_candidates("example.com.io", "sample").is_empty());
    }
}
