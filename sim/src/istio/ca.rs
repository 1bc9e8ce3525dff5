//! istiod's certificate authority as far as the sim needs it: which CA a starting istiod
//! chooses (FACTS 3.1-3.3), the self-signed `istio-ca-secret` it creates, and fingerprints.
//!
//! Certificates are named by the lower-case hex SHA-256 of their DER (what the mesh model
//! compares). Workload certificates are never issued: a proxy only remembers which roots it
//! trusts and which root its certificate would chain to.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The plugged-in CA Secret (FACTS 3.1).
pub const CACERTS: &str = "cacerts";
/// The self-signed CA Secret (FACTS 3.2).
pub const CA_SECRET: &str = "istio-ca-secret";
pub const CA_SECRET_TYPE: &str = "istio.io/ca-root";
/// The four keys a plugged-in bundle needs since 1.27 (FACTS 3.1).
pub const CACERTS_KEYS: [&str; 4] = [
    "ca-cert.pem",
    "ca-key.pem",
    "root-cert.pem",
    "cert-chain.pem",
];
/// istiod's message for a partial `cacerts` (PR #55696).
pub const INCOMPLETE_BUNDLE: &str =
    "failed to create an istiod CA: incomplete signing CA bundle detected";

/// What a starting istiod decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaChoice {
    /// Serving with this CA.
    Ready(CaMaterial),
    /// istiod exits with this message.
    Failed(String),
}

/// The CA istiod serves with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaMaterial {
    pub plugged_in: bool,
    /// The bundle it distributes (`istio-ca-root-cert` `root-cert.pem`), as PEM.
    pub root_bundle_pem: String,
    /// Fingerprints of every root in that bundle.
    pub trusted_roots: Vec<String>,
    /// Fingerprint of the root its signing chain ends in.
    pub signing_root: String,
}

/// The `data` of a Secret, base64-decoded to text (keys whose value is not base64 UTF-8 are
/// kept as absent values).
pub fn secret_data(secret: &Value) -> Vec<(String, Option<String>)> {
    secret
        .get("data")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let text = v
                        .as_str()
                        .and_then(|s| STANDARD.decode(s).ok())
                        .and_then(|b| String::from_utf8(b).ok());
                    (k.clone(), text)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn data_key(data: &[(String, Option<String>)], key: &str) -> Option<String> {
    data.iter()
        .find(|(k, _)| k == key)
        .and_then(|(_, v)| v.clone())
        .filter(|v| !v.trim().is_empty())
}

/// The choice istiod makes from the `cacerts` Secret, if any (FACTS 3.1, 3.3). `None` means
/// self-signed mode (no `cacerts`, or one with none of the signing keys).
pub fn from_cacerts(cacerts: Option<&Value>) -> Option<CaChoice> {
    let cacerts = cacerts?;
    let data = secret_data(cacerts);
    // USE_CACERTS_FOR_SELF_SIGNED_CA: istiod's own self-signed root kept in cacerts (FACTS 3.2).
    if data.iter().any(|(k, _)| k == "istio-generated") {
        return Some(match from_ca_secret(cacerts) {
            Some(m) => CaChoice::Ready(m),
            None => CaChoice::Failed(INCOMPLETE_BUNDLE.into()),
        });
    }
    // cert-manager's kubernetes.io/tls layout: tls.crt signs, ca.crt is the root.
    let (cert, key, roots, chain) = if data.iter().any(|(k, _)| k == "tls.crt") {
        let cert = data_key(&data, "tls.crt");
        let roots = data_key(&data, "ca.crt");
        let chain = match (&cert, &roots) {
            (Some(c), Some(r)) => Some(format!("{}\n{}", c.trim_end(), r)),
            _ => None,
        };
        (cert, data_key(&data, "tls.key"), roots, chain)
    } else {
        let present = CACERTS_KEYS
            .iter()
            .filter(|k| data.iter().any(|(d, _)| d == *k))
            .count();
        if present == 0 {
            return None;
        }
        (
            data_key(&data, "ca-cert.pem"),
            data_key(&data, "ca-key.pem"),
            data_key(&data, "root-cert.pem"),
            data_key(&data, "cert-chain.pem"),
        )
    };
    let (Some(cert), Some(_key), Some(roots), Some(chain)) = (cert, key, roots, chain) else {
        return Some(CaChoice::Failed(INCOMPLETE_BUNDLE.into()));
    };
    Some(match plugged_in(&cert, &roots, &chain) {
        Ok(m) => CaChoice::Ready(m),
        Err(e) => CaChoice::Failed(format!("failed to create an istiod CA: {e}")),
    })
}

fn plugged_in(cert: &str, roots_pem: &str, chain_pem: &str) -> Result<CaMaterial, String> {
    let roots = pem_certificates(roots_pem);
    if roots.is_empty() {
        return Err("root-cert.pem holds no PEM certificate".into());
    }
    if pem_certificates(cert).is_empty() {
        return Err("ca-cert.pem holds no PEM certificate".into());
    }
    let chain = pem_certificates(chain_pem);
    let last = chain
        .last()
        .ok_or("cert-chain.pem holds no PEM certificate")?;
    let names = |der: &[u8]| names(der).ok_or("cert-chain.pem: unreadable certificate");
    let (issuer, subject) = names(last)?;
    // The chain ends in a root (self-issued) or in a certificate a bundled root issued.
    let signing_root = if issuer == subject {
        last.clone()
    } else {
        roots
            .iter()
            .find(|r| names(r).is_ok_and(|(_, s)| s == issuer))
            .cloned()
            .ok_or("cannot verify the cert with the provided root chain and cert pool")?
    };
    let trusted_roots: Vec<String> = roots.iter().map(|r| fingerprint(r)).collect();
    let signing_root = fingerprint(&signing_root);
    if !trusted_roots.contains(&signing_root) {
        return Err("cannot verify the cert with the provided root chain and cert pool".into());
    }
    Ok(CaMaterial {
        plugged_in: true,
        root_bundle_pem: roots_pem.to_string(),
        trusted_roots,
        signing_root,
    })
}

/// Self-signed mode from an existing `istio-ca-secret`; `None` when it is unusable.
pub fn from_ca_secret(secret: &Value) -> Option<CaMaterial> {
    let data = secret_data(secret);
    let root_pem = data_key(&data, "root-cert.pem").or_else(|| data_key(&data, "ca-cert.pem"))?;
    let root = pem_certificates(&root_pem).into_iter().next()?;
    let fp = fingerprint(&root);
    Some(CaMaterial {
        plugged_in: false,
        root_bundle_pem: root_pem,
        trusted_roots: vec![fp.clone()],
        signing_root: fp,
    })
}

/// A new `istio-ca-secret` for `trust_domain` (FACTS 3.2) and the CA it holds. Real istiod uses
/// RSA 2048; the sim uses ECDSA P-256 (what rcgen's ring backend generates), which Istio also
/// accepts for a CA. The key is stored in SEC1 `EC PRIVATE KEY` form, as Go's x509 writes it.
pub fn new_ca_secret(trust_domain: &str) -> Result<(Value, CaMaterial), rcgen::Error> {
    use rcgen::{
        BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair,
        KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
    };
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, trust_domain);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::minutes(1);
    // CITADEL_SELF_SIGNED_CA_CERT_TTL: 10 years.
    params.not_after = now + time::Duration::days(3650);
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let cert = params.self_signed(&key)?;
    let cert_pem = cert.pem();
    let key_pem = sec1_pem(&key.serialize_der()).unwrap_or_else(|| key.serialize_pem());
    let fp = fingerprint(cert.der());
    let b64 = |s: &str| STANDARD.encode(s);
    let secret = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": CA_SECRET, "namespace": super::install::ISTIO_NAMESPACE},
        "type": CA_SECRET_TYPE,
        "data": {
            "ca-cert.pem": b64(&cert_pem),
            "ca-key.pem": b64(&key_pem),
            "root-cert.pem": b64(&cert_pem),
            "cert-chain.pem": "",
            "key.pem": "",
        },
    });
    Ok((
        secret,
        CaMaterial {
            plugged_in: false,
            root_bundle_pem: cert_pem,
            trusted_roots: vec![fp.clone()],
            signing_root: fp,
        },
    ))
}

/// Hex SHA-256 of a certificate's DER.
pub fn fingerprint(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

/// The DER of every `CERTIFICATE` block in `pem` (unreadable blocks are skipped).
pub fn pem_certificates(pem: &str) -> Vec<Vec<u8>> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let mut out = Vec::new();
    let mut rest = pem;
    while let Some(start) = rest.find(BEGIN) {
        let after = &rest[start + BEGIN.len()..];
        let Some(end) = after.find(END) else { break };
        let body: String = after[..end].split_whitespace().collect();
        if let Ok(der) = STANDARD.decode(body) {
            out.push(der);
        }
        rest = &after[end + END.len()..];
    }
    out
}

// ---- minimal DER reading (certificate names, PKCS#8 -> SEC1) ----

/// One TLV: (tag, content, the rest after it).
fn tlv(data: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = data.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// The raw issuer and subject Names of a certificate.
fn names(der: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let (_, cert, _) = tlv(der)?;
    let (_, tbs, _) = tlv(cert)?;
    let mut rest = tbs;
    let (tag, _, r) = tlv(rest)?;
    // Optional [0] version.
    if tag == 0xa0 {
        rest = r;
    }
    let (_, _serial, r) = tlv(rest)?;
    let (_, _sigalg, r) = tlv(r)?;
    let (_, issuer, r) = tlv(r)?;
    let (_, _validity, r) = tlv(r)?;
    let (_, subject, _) = tlv(r)?;
    Some((issuer.to_vec(), subject.to_vec()))
}

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .iter()
            .copied()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// A P-256 PKCS#8 key as SEC1 `EC PRIVATE KEY` PEM (with the curve parameters).
fn sec1_pem(pkcs8: &[u8]) -> Option<String> {
    // OID 1.2.840.10045.3.1.7 (prime256v1).
    const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    let (_, info, _) = tlv(pkcs8)?;
    let (_, _version, r) = tlv(info)?;
    let (_, _alg, r) = tlv(r)?;
    let (_, octets, _) = tlv(r)?;
    let (_, ec, _) = tlv(octets)?;
    let (_, _v1, r) = tlv(ec)?;
    let (tag, private, mut r) = tlv(r)?;
    if tag != 0x04 {
        return None;
    }
    let mut public = None;
    while !r.is_empty() {
        let (tag, content, next) = tlv(r)?;
        if tag == 0xa1 {
            public = Some(content.to_vec());
        }
        r = next;
    }
    let mut body = der(0x02, &[1]);
    body.extend(der(0x04, private));
    body.extend(der(0xa0, P256));
    if let Some(p) = public {
        body.extend(der(0xa1, &p));
    }
    let encoded = STANDARD.encode(der(0x30, &body));
    let mut pem = String::from("-----BEGIN EC PRIVATE KEY-----\n");
    for chunk in encoded.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(chunk).ok()?);
        pem.push('\n');
    }
    pem.push_str("-----END EC PRIVATE KEY-----\n");
    Some(pem)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(data: &[(&str, &str)]) -> Value {
        let m: serde_json::Map<String, Value> = data
            .iter()
            .map(|(k, v)| (k.to_string(), json!(STANDARD.encode(v))))
            .collect();
        json!({"data": m})
    }

    #[test]
    fn self_signed_secret_has_the_istio_layout() {
        let (s, ca) = new_ca_secret("cluster.local").unwrap();
        assert_eq!(s["type"], CA_SECRET_TYPE);
        assert_eq!(s["data"]["cert-chain.pem"], "");
        let key = String::from_utf8(
            STANDARD
                .decode(s["data"]["ca-key.pem"].as_str().unwrap())
                .unwrap(),
        )
        .unwrap();
        assert!(key.starts_with("-----BEGIN EC PRIVATE KEY-----\n"), "{key}");
        let again = from_ca_secret(&s).unwrap();
        assert_eq!(again, ca);
        assert_eq!(ca.trusted_roots, vec![ca.signing_root.clone()]);
        let root = &pem_certificates(&ca.root_bundle_pem)[0];
        let (issuer, subject) = names(root).unwrap();
        assert_eq!(issuer, subject);
    }

    #[test]
    fn partial_cacerts_fail_and_empty_ones_fall_back() {
        let partial = secret(&[("ca-cert.pem", "x"), ("ca-key.pem", "y")]);
        assert_eq!(
            from_cacerts(Some(&partial)),
            Some(CaChoice::Failed(INCOMPLETE_BUNDLE.into()))
        );
        assert_eq!(from_cacerts(Some(&secret(&[("other", "x")]))), None);
        assert_eq!(from_cacerts(None), None);
        // istiod's own self-signed root kept in cacerts is self-signed mode.
        let (generated, ca) = new_ca_secret("cluster.local").unwrap();
        let mut generated = generated.clone();
        generated["data"]["istio-generated"] = json!("");
        assert_eq!(from_cacerts(Some(&generated)), Some(CaChoice::Ready(ca)));
    }

    #[test]
    fn plugged_in_chain_ends_in_its_root() {
        let (root_secret, root) = new_ca_secret("root").unwrap();
        let (_, other) = new_ca_secret("other").unwrap();
        let root_pem = root.root_bundle_pem.clone();
        // A chain that is just the root itself is self-issued and in the bundle.
        let ok = secret(&[
            ("ca-cert.pem", &root_pem),
            ("ca-key.pem", "k"),
            (
                "root-cert.pem",
                &format!("{root_pem}{}", other.root_bundle_pem),
            ),
            ("cert-chain.pem", &root_pem),
        ]);
        let Some(CaChoice::Ready(m)) = from_cacerts(Some(&ok)) else {
            panic!("expected a plugged-in CA");
        };
        assert!(m.plugged_in);
        assert_eq!(m.signing_root, root.signing_root);
        assert_eq!(m.trusted_roots.len(), 2);
        // A chain ending in a root that the bundle lacks is refused.
        let bad = secret(&[
            ("ca-cert.pem", &root_pem),
            ("ca-key.pem", "k"),
            ("root-cert.pem", &other.root_bundle_pem),
            ("cert-chain.pem", &root_pem),
        ]);
        assert!(
            matches!(from_cacerts(Some(&bad)), Some(CaChoice::Failed(m)) if m.contains("cannot verify"))
        );
        let _ = root_secret;
    }
}
