//! CA tests; chains are checked by the real `openssl verify`.

use super::*;
use std::process::Command;

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn openssl(args: &[&str], dir: &Path) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn verify(dir: &Path) -> String {
    let (ok, text) = openssl(&["verify", "-CAfile", ROOT_CERT, CA_CERT], dir);
    assert!(ok, "openssl verify failed: {text}");
    text
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn generated_root_signs_intermediates_that_openssl_accepts() {
    let tmp = tempfile::tempdir().unwrap();
    let root = Root::generate("Acme", 3650, now()).unwrap();
    for cluster in ["cluster1", "cluster2"] {
        let inter = root.sign_intermediate(cluster, "Acme", 730, now()).unwrap();
        assert!(!inter.capped);
        let dir = tmp.path().join(cluster);
        inter
            .cacerts(&root, &[root.cert_pem()])
            .write_to(&dir)
            .unwrap();
        assert!(verify(&dir).contains("ca-cert.pem: OK"));
        let (_, text) = openssl(&["x509", "-in", CA_CERT, "-noout", "-text"], &dir);
        assert!(text.contains("CA:TRUE, pathlen:0"), "{text}");
        assert!(text.contains(&format!("L = {cluster}")), "{text}");
        assert!(text.contains("DNS:istiod.istio-system.svc"), "{text}");
        let issuer = text
            .lines()
            .find(|l| l.trim_start().starts_with("Issuer:"))
            .unwrap();
        assert!(
            issuer.contains("O = Acme") && issuer.contains("CN = Root CA"),
            "{issuer}"
        );
        // The chain file is intermediate then root, as istio's Makefile writes it.
        let chain = std::fs::read_to_string(dir.join(CERT_CHAIN)).unwrap();
        assert!(chain.starts_with(&inter.cert_pem));
        assert!(chain.ends_with(root.cert_pem()));
        #[cfg(unix)]
        {
            assert_eq!(mode(&dir), 0o700);
            for (name, _) in inter.cacerts(&root, &[root.cert_pem()]).files() {
                assert_eq!(mode(&dir.join(name)), 0o600, "{name}");
            }
        }
    }
}

/// The self-signed root istiod writes into `istio-ca-secret` is RSA 2048 with
/// a PKCS#1 key and subject `O=cluster.local` (FACTS.md 3.2).
#[test]
fn adopts_an_istiod_style_rsa_root() {
    let tmp = tempfile::tempdir().unwrap();
    let (ok, text) = openssl(
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "k8.pem",
            "-out",
            "root.pem",
            "-days",
            "3650",
            "-subj",
            "/O=cluster.local",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
        ],
        tmp.path(),
    );
    assert!(ok, "{text}");
    let (ok, text) = openssl(
        &["rsa", "-in", "k8.pem", "-traditional", "-out", "key.pem"],
        tmp.path(),
    );
    assert!(ok, "{text}");
    let key = std::fs::read_to_string(tmp.path().join("key.pem")).unwrap();
    assert!(key.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    let cert = std::fs::read_to_string(tmp.path().join("root.pem")).unwrap();

    let root = Root::from_pem(&cert, &key, "cluster1 istio-system/istio-ca-secret", now()).unwrap();
    let inter = root
        .sign_intermediate("cluster2", "Istio", 730, now())
        .unwrap();
    let dir = tmp.path().join("cluster2");
    inter
        .cacerts(&root, &[root.cert_pem()])
        .write_to(&dir)
        .unwrap();
    verify(&dir);
    let (_, text) = openssl(&["x509", "-in", CA_CERT, "-noout", "-text"], &dir);
    assert!(text.contains("Issuer: O = cluster.local"), "{text}");
    assert!(text.contains("sha256WithRSAEncryption"), "{text}");
    // The adopted root is written back byte-for-byte equivalent.
    let (_, a) = openssl(
        &[
            "x509",
            "-in",
            "root.pem",
            "-noout",
            "-fingerprint",
            "-sha256",
        ],
        tmp.path(),
    );
    let (_, b) = openssl(
        &[
            "x509",
            "-in",
            "cluster2/root-cert.pem",
            "-noout",
            "-fingerprint",
            "-sha256",
        ],
        tmp.path(),
    );
    assert_eq!(a, b);
}

#[test]
fn adopts_a_sec1_ec_root() {
    let tmp = tempfile::tempdir().unwrap();
    let (ok, text) = openssl(
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "key.pem",
        ],
        tmp.path(),
    );
    assert!(ok, "{text}");
    let (ok, text) = openssl(
        &[
            "req",
            "-x509",
            "-key",
            "key.pem",
            "-out",
            "root.pem",
            "-days",
            "100",
            "-subj",
            "/O=Acme/CN=Root CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
        ],
        tmp.path(),
    );
    assert!(ok, "{text}");
    let key = std::fs::read_to_string(tmp.path().join("key.pem")).unwrap();
    assert!(key.contains("BEGIN EC PRIVATE KEY"));
    let cert = std::fs::read_to_string(tmp.path().join("root.pem")).unwrap();
    let root = Root::from_pem(&cert, &key, "root files", now()).unwrap();
    // 730 days asked, the root lives 100: capped to the root's end.
    let inter = root.sign_intermediate("c1", "Acme", 730, now()).unwrap();
    assert!(inter.capped);
    assert_eq!(inter.not_after, root.not_after());
    let dir = tmp.path().join("c1");
    inter
        .cacerts(&root, &[root.cert_pem()])
        .write_to(&dir)
        .unwrap();
    verify(&dir);
}

#[test]
fn multi_root_bundle_still_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    let old = Root::generate("Old", 3650, now()).unwrap();
    let new = Root::generate("New", 3650, now()).unwrap();
    let inter = new
        .sign_intermediate("cluster1", "New", 365, now())
        .unwrap();
    let cacerts = inter.cacerts(&new, &[old.cert_pem(), new.cert_pem()]);
    assert_eq!(cacerts.root_cert.matches("BEGIN CERTIFICATE").count(), 2);
    cacerts.write_to(tmp.path()).unwrap();
    verify(tmp.path());
    assert_eq!(Cacerts::read_from(tmp.path()).unwrap(), cacerts);
}

#[test]
fn refuses_a_key_of_another_certificate() {
    let a = Root::generate("A", 10, now()).unwrap();
    let b = Root::generate("B", 10, now()).unwrap();
    let err = Root::from_pem(a.cert_pem(), &b.key_pem(), "root files", now()).unwrap_err();
    assert!(matches!(err, CaError::KeyMismatch { .. }), "{err}");
    assert!(err.to_string().contains("root files"));
}

#[test]
fn refuses_a_leaf_as_root() {
    let root = Root::generate("A", 10, now()).unwrap();
    let inter = root.sign_intermediate("c1", "A", 5, now()).unwrap();
    // An intermediate is a CA; a plain leaf is not.
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["example.com".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let err = Root::from_pem(&leaf.pem(), &key.serialize_pem(), "leaf", now()).unwrap_err();
    assert!(matches!(err, CaError::NotACa { .. }), "{err}");
    assert!(Root::from_pem(&inter.cert_pem, &inter.key_pem, "inter", now()).is_ok());
}

#[test]
fn refuses_garbage_and_expired_roots() {
    let root = Root::generate("A", 1, now()).unwrap();
    let err = Root::from_pem("hello", &root.key_pem(), "x", now()).unwrap_err();
    assert!(matches!(err, CaError::NotACertificate { .. }), "{err}");
    let err = Root::from_pem(
        root.cert_pem(),
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        "x",
        now(),
    )
    .unwrap_err();
    assert!(matches!(err, CaError::NotAKey { .. }), "{err}");
    let err = Root::from_pem(
        root.cert_pem(),
        &root.key_pem(),
        "x",
        now() + Duration::days(3),
    )
    .unwrap_err();
    assert!(matches!(err, CaError::Expired { .. }), "{err}");
}

#[test]
fn debug_never_shows_key_material() {
    let root = Root::generate("A", 10, now()).unwrap();
    let inter = root.sign_intermediate("c1", "A", 5, now()).unwrap();
    let cacerts = inter.cacerts(&root, &[root.cert_pem()]);
    for text in [
        format!("{root:?}"),
        format!("{inter:?}"),
        format!("{cacerts:?}"),
    ] {
        assert!(!text.contains("PRIVATE KEY"), "{text}");
        assert!(text.contains("redacted"));
    }
}

#[test]
fn roots_are_described_by_subject_and_fingerprint() {
    let a = Root::generate("Acme", 3650, now()).unwrap();
    let b = Root::generate("Other", 3650, now()).unwrap();
    let bodies = |pem: &str| cert_bodies(pem);
    let text = describe_roots(&[bodies(a.cert_pem()), bodies(b.cert_pem())].concat());
    assert!(text.contains("O=Acme"), "{text}");
    assert!(text.contains("O=Other"), "{text}");
    assert_eq!(text.matches("sha256:").count(), 2, "{text}");
    assert_eq!(describe_roots(&[]), "no root");
    assert_eq!(
        describe_roots(&["not base64!".into()]),
        "an unreadable certificate"
    );
}

#[test]
fn certificate_bodies_ignore_wrapping() {
    let a = "-----BEGIN CERTIFICATE-----\nAAAA\nBBBB\n-----END CERTIFICATE-----\n";
    let b = "x\n-----BEGIN CERTIFICATE-----\nAAAABBBB\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nCC\n-----END CERTIFICATE-----";
    assert_eq!(cert_bodies(a), vec!["AAAABBBB"]);
    assert_eq!(cert_bodies(b), vec!["AAAABBBB", "CC"]);
}
