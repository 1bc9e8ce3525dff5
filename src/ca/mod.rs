//! The mesh CA: a root (generated, or adopted from a live cluster's
//! `istio-ca-secret`), one intermediate per cluster signed by it, and the
//! four files of Istio's `cacerts` Secret (FACTS.md 3.1, 3.5).
//!
//! Key material lives only in memory here and in files under certDir written
//! 0600; every type that holds a key redacts it in `Debug`.

mod der;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384, PKCS_RSA_SHA256, SanType, SignatureAlgorithm,
};
use std::fmt;
use std::path::{Path, PathBuf};
use time::{Duration, OffsetDateTime};

/// File names of the `cacerts` Secret keys, which istiod reads from /etc/cacerts:
/// the intermediate's certificate.
pub const CA_CERT: &str = "ca-cert.pem";
/// The intermediate's private key, in `cacerts`.
pub const CA_KEY: &str = "ca-key.pem";
/// The root every workload trusts, in `cacerts`.
pub const ROOT_CERT: &str = "root-cert.pem";
/// The intermediate followed by the root, in `cacerts`.
pub const CERT_CHAIN: &str = "cert-chain.pem";
/// Where a generated or adopted root is kept under certDir (never in a cluster).
pub const ROOT_DIR: &str = "root";
/// The root's private key, kept under certDir only.
pub const ROOT_KEY: &str = "root-key.pem";

/// Certificates are valid from a little before now, for clocks that lag.
const BACKDATE: Duration = Duration::hours(1);

/// What went wrong with a certificate, a key or their files; names which one.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("{what}: not a PEM certificate")]
    NotACertificate { what: String },
    #[error(
        "{what}: not a PEM private key (expected PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)"
    )]
    NotAKey { what: String },
    #[error("{what}: unsupported key ({detail})")]
    UnsupportedKey { what: String, detail: String },
    #[error("{what}: the private key does not belong to the certificate")]
    KeyMismatch { what: String },
    #[error("{what}: the certificate is not a CA (basicConstraints CA:TRUE missing)")]
    NotACa { what: String },
    #[error("{what}: the certificate expired on {not_after}")]
    Expired {
        what: String,
        not_after: OffsetDateTime,
    },
    #[error("cannot build certificate for {what}: {source}")]
    Build { what: String, source: rcgen::Error },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A root CA that can sign intermediates.
pub struct Root {
    cert_pem: String,
    /// Subject, key identifier and usages of the root, with its key.
    issuer: Issuer<'static, KeyPair>,
    not_after: OffsetDateTime,
}

impl fmt::Debug for Root {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Root")
            .field("not_after", &self.not_after)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl Root {
    /// A new ECDSA P-256 root: `O=<org>, CN=Root CA`.
    pub fn generate(org: &str, validity_days: u32, now: OffsetDateTime) -> Result<Root, CaError> {
        let what = || "root CA".to_string();
        let (key, mut params) =
            ca_params(org, "Root CA", BasicConstraints::Unconstrained, &what())?;
        params.not_before = now - BACKDATE;
        params.not_after = now + Duration::days(i64::from(validity_days));
        let cert = params.self_signed(&key).map_err(|source| CaError::Build {
            what: what(),
            source,
        })?;
        Ok(Root {
            cert_pem: cert.pem(),
            not_after: params.not_after,
            issuer: Issuer::new(params, key),
        })
    }

    /// An existing root from PEM: a certificate (the first of a bundle) and
    /// its key in PKCS#8, PKCS#1 (RSA, as istiod writes `istio-ca-secret`) or
    /// SEC1 (EC). `what` names the source in errors (`cluster1 istio-system/istio-ca-secret`).
    pub fn from_pem(
        cert_pem: &str,
        key_pem: &str,
        what: &str,
        now: OffsetDateTime,
    ) -> Result<Root, CaError> {
        let cert_der = first_certificate(cert_pem)
            .ok_or_else(|| CaError::NotACertificate { what: what.into() })?;
        let (_, x509) = x509_parser::parse_x509_certificate(&cert_der)
            .map_err(|_| CaError::NotACertificate { what: what.into() })?;
        let is_ca = x509
            .basic_constraints()
            .ok()
            .flatten()
            .is_some_and(|bc| bc.value.ca);
        if !is_ca {
            return Err(CaError::NotACa { what: what.into() });
        }
        let not_after = OffsetDateTime::from_unix_timestamp(x509.validity().not_after.timestamp())
            .map_err(|_| CaError::NotACertificate { what: what.into() })?;
        if not_after <= now {
            return Err(CaError::Expired {
                what: what.into(),
                not_after,
            });
        }
        let key = parse_key(
            key_pem,
            &x509.public_key().algorithm.algorithm.to_id_string(),
            what,
        )?;
        if rcgen::PublicKeyData::der_bytes(&key) != &x509.public_key().subject_public_key.data[..] {
            return Err(CaError::KeyMismatch { what: what.into() });
        }
        let cert_pem = pem_of(&cert_der);
        let issuer =
            Issuer::from_ca_cert_der(&cert_der.into(), key).map_err(|source| CaError::Build {
                what: what.into(),
                source,
            })?;
        Ok(Root {
            cert_pem,
            issuer,
            not_after,
        })
    }

    /// The certificate as PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The end of the certificate's validity.
    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    /// The root key in PKCS#8 PEM, for writing under certDir only.
    pub fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }

    /// Signs the intermediate CA of one cluster, shaped like Istio's
    /// `tools/certs` intermediates: `O=<org>, CN=Intermediate CA, L=<cluster>`,
    /// CA:TRUE pathlen 0, SAN `istiod.istio-system.svc`. Its validity is capped at
    /// the root's (`Intermediate::capped` says so).
    pub fn sign_intermediate(
        &self,
        cluster: &str,
        org: &str,
        validity_days: u32,
        now: OffsetDateTime,
    ) -> Result<Intermediate, CaError> {
        let what = || format!("intermediate CA of {cluster}");
        let (key, mut params) = ca_params(
            org,
            "Intermediate CA",
            BasicConstraints::Constrained(0),
            &what(),
        )?;
        params
            .distinguished_name
            .push(DnType::LocalityName, cluster);
        let san = "istiod.istio-system.svc"
            .try_into()
            .map_err(|source| CaError::Build {
                what: what(),
                source,
            })?;
        params.subject_alt_names = vec![SanType::DnsName(san)];
        params.use_authority_key_identifier_extension = true;
        params.not_before = now - BACKDATE;
        let wanted = now + Duration::days(i64::from(validity_days));
        let capped = wanted > self.not_after;
        params.not_after = if capped { self.not_after } else { wanted };
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|source| CaError::Build {
                what: what(),
                source,
            })?;
        Ok(Intermediate {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            not_after: params.not_after,
            capped,
        })
    }
}

/// One cluster's signing CA.
pub struct Intermediate {
    pub cert_pem: String,
    key_pem: String,
    pub not_after: OffsetDateTime,
    /// The requested validity went past the root's and was shortened.
    pub capped: bool,
}

impl fmt::Debug for Intermediate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Intermediate")
            .field("not_after", &self.not_after)
            .field("capped", &self.capped)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl Intermediate {
    /// The four `cacerts` files: this intermediate, its key, the trusted
    /// roots (one, or old+new during a multi-root transition) and the chain
    /// intermediate + signing root.
    pub fn cacerts(&self, signing_root: &Root, trusted_roots: &[&str]) -> Cacerts {
        let roots: String = trusted_roots.iter().map(|r| ensure_newline(r)).collect();
        Cacerts {
            ca_cert: self.cert_pem.clone(),
            ca_key: self.key_pem.clone(),
            root_cert: roots,
            cert_chain: format!(
                "{}{}",
                ensure_newline(&self.cert_pem),
                ensure_newline(signing_root.cert_pem())
            ),
        }
    }
}

/// The content of Istio's `cacerts` Secret, key by key.
#[derive(Clone, PartialEq, Eq)]
pub struct Cacerts {
    pub ca_cert: String,
    ca_key: String,
    pub root_cert: String,
    pub cert_chain: String,
}

impl fmt::Debug for Cacerts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cacerts")
            .field("ca_key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl Cacerts {
    /// A bundle from its four parts (a signer taken from files).
    pub fn from_parts(
        ca_cert: String,
        ca_key: String,
        root_cert: String,
        cert_chain: String,
    ) -> Cacerts {
        Cacerts {
            ca_cert,
            ca_key,
            root_cert,
            cert_chain,
        }
    }

    /// (file name, content) for the four keys, in Secret order.
    pub fn files(&self) -> [(&'static str, &str); 4] {
        [
            (CA_CERT, &self.ca_cert),
            (CA_KEY, &self.ca_key),
            (ROOT_CERT, &self.root_cert),
            (CERT_CHAIN, &self.cert_chain),
        ]
    }

    /// Writes the four files into `dir` (created 0700), each 0600, each
    /// replaced atomically so a crash never leaves half a key.
    pub fn write_to(&self, dir: &Path) -> Result<(), CaError> {
        create_private_dir(dir)?;
        for (name, content) in self.files() {
            write_private(&dir.join(name), content.as_bytes())?;
        }
        Ok(())
    }

    /// Reads the four files back (for the engine to build the Secret).
    pub fn read_from(dir: &Path) -> Result<Cacerts, CaError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path).map_err(|source| CaError::Io { path, source })
        };
        Ok(Cacerts {
            ca_cert: read(CA_CERT)?,
            ca_key: read(CA_KEY)?,
            root_cert: read(ROOT_CERT)?,
            cert_chain: read(CERT_CHAIN)?,
        })
    }
}

/// Creates `dir` and its parents, and makes `dir` itself 0700.
pub fn create_private_dir(dir: &Path) -> Result<(), CaError> {
    std::fs::create_dir_all(dir).map_err(|source| CaError::Io {
        path: dir.into(),
        source,
    })?;
    set_mode(dir, 0o700)
}

/// Writes `content` to `path` with mode 0600 through a temporary file and a rename.
pub fn write_private(path: &Path, content: &[u8]) -> Result<(), CaError> {
    use std::io::Write;
    let io = |source| CaError::Io {
        path: path.into(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp).map_err(io)?;
    set_mode(&tmp, 0o600)?;
    file.write_all(content).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

fn set_mode(path: &Path, mode: u32) -> Result<(), CaError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(
            |source| CaError::Io {
                path: path.into(),
                source,
            },
        )?;
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

/// A fresh ECDSA P-256 key and the parameters every CA certificate here
/// shares: `O=<org>, CN=<cn>`, CA with `constraint`, cert and CRL signing.
fn ca_params(
    org: &str,
    cn: &str,
    constraint: BasicConstraints,
    what: &str,
) -> Result<(KeyPair, CertificateParams), CaError> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|source| CaError::Build {
        what: what.to_string(),
        source,
    })?;
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::OrganizationName, org);
    params.distinguished_name.push(DnType::CommonName, cn);
    params.is_ca = IsCa::Ca(constraint);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok((key, params))
}

fn ensure_newline(pem: &str) -> String {
    if pem.ends_with('\n') {
        pem.to_string()
    } else {
        format!("{pem}\n")
    }
}

fn first_certificate(pem_text: &str) -> Option<Vec<u8>> {
    pem::parse_many(pem_text)
        .ok()?
        .into_iter()
        .find(|p| p.tag() == "CERTIFICATE")
        .map(|p| p.into_contents())
}

fn pem_of(der: &[u8]) -> String {
    pem::encode_config(
        &pem::Pem::new("CERTIFICATE", der.to_vec()),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

const OID_RSA: &str = "1.2.840.113549.1.1.1";
const OID_EC: &str = "1.2.840.10045.2.1";

/// Reads a private key in any of the three encodings into a ring-backed key pair.
fn parse_key(key_pem: &str, cert_key_oid: &str, what: &str) -> Result<KeyPair, CaError> {
    let not_a_key = || CaError::NotAKey { what: what.into() };
    let block = pem::parse_many(key_pem)
        .map_err(|_| not_a_key())?
        .into_iter()
        .find(|p| p.tag().ends_with("PRIVATE KEY"))
        .ok_or_else(not_a_key)?;
    let pkcs8 = match block.tag() {
        "PRIVATE KEY" => block.contents().to_vec(),
        "RSA PRIVATE KEY" => der::pkcs1_to_pkcs8(block.contents()),
        "EC PRIVATE KEY" => der::sec1_to_pkcs8(block.contents()).ok_or_else(not_a_key)?,
        other => {
            return Err(CaError::UnsupportedKey {
                what: what.into(),
                detail: format!("PEM block {other}"),
            });
        }
    };
    let candidates: &[&'static SignatureAlgorithm] = match cert_key_oid {
        OID_RSA => &[&PKCS_RSA_SHA256],
        OID_EC => &[&PKCS_ECDSA_P256_SHA256, &PKCS_ECDSA_P384_SHA384],
        other => {
            return Err(CaError::UnsupportedKey {
                what: what.into(),
                detail: format!("public key algorithm {other}"),
            });
        }
    };
    let der = rustls::pki_types::PrivatePkcs8KeyDer::from(pkcs8);
    candidates
        .iter()
        .find_map(|alg| KeyPair::from_pkcs8_der_and_sign_algo(&der, alg).ok())
        .ok_or_else(|| CaError::UnsupportedKey {
            what: what.into(),
            detail: "the key could not be read (RSA keys must be at least 2048 bits)".into(),
        })
}

#[cfg(test)]
mod tests;

/// Names root certificates for messages: subject and a short SHA-256
/// fingerprint of each, from the base64 bodies of their PEM blocks.
/// Certificates are public; nothing secret is printed.
pub fn describe_roots(bodies: &[String]) -> String {
    use base64::Engine;
    use sha2::Digest;
    if bodies.is_empty() {
        return "no root".into();
    }
    let named: Vec<String> = bodies
        .iter()
        .map(|body| {
            let Ok(der) = base64::engine::general_purpose::STANDARD.decode(body) else {
                return "an unreadable certificate".into();
            };
            let digest = sha2::Sha256::digest(&der);
            let short: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
            match x509_parser::parse_x509_certificate(&der) {
                Ok((_, cert)) => format!("\"{}\" sha256:{short}", cert.subject()),
                Err(_) => format!("a certificate sha256:{short}"),
            }
        })
        .collect();
    named.join(", ")
}

/// The base64 bodies of the PEM certificates in `text`, whitespace removed,
/// so line wrapping never matters.
pub fn cert_bodies(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if line == "-----BEGIN CERTIFICATE-----" {
            current = Some(String::new());
        } else if line == "-----END CERTIFICATE-----" {
            if let Some(body) = current.take() {
                out.push(body);
            }
        } else if let Some(body) = current.as_mut() {
            body.push_str(line);
        }
    }
    out
}
