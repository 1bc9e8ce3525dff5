//! `local` actions: the CA work on this machine, under certDir. Every
//! operation is safe to repeat after a crash: an existing root is reused
//! (other clusters may already trust it), and so is an intermediate that
//! still chains to the current root.

use super::context::{ActionError, StepCtx};
use crate::ca::{self, CA_CERT, CA_KEY, CERT_CHAIN, Cacerts, ROOT_CERT, ROOT_KEY, Root};
use crate::plan::{LocalOp, ObjectRef};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::Value;
use std::path::{Path, PathBuf};
use time::OffsetDateTime;

/// Runs one CA operation; `now` is read once, so validity windows agree.
pub(crate) async fn run(ctx: &StepCtx, op: &LocalOp) -> Result<(), ActionError> {
    let now = OffsetDateTime::now_utc();
    match op {
        LocalOp::FetchLiveRoot {
            cluster,
            secret,
            fallback,
            dir,
        } => fetch_live_root(ctx, cluster, secret, fallback, dir, now).await,
        LocalOp::GenerateRoot {
            algorithm,
            org,
            validity_days,
            dir,
        } => generate_root(algorithm, org, *validity_days, dir, now),
        LocalOp::ImportRoot { cert, key, dir } => import_root(cert, key, dir, now),
        LocalOp::SignIntermediate {
            cluster,
            root_dir,
            dir,
            org,
            validity_days,
            trusted_roots,
        } => sign_intermediate(
            ctx,
            cluster,
            root_dir,
            dir,
            org,
            *validity_days,
            trusted_roots,
            now,
        ),
        LocalOp::BundleCacerts {
            cluster: _,
            signer_dir,
            dir,
            trusted_roots,
        } => bundle_cacerts(signer_dir, dir, trusted_roots),
    }
}

/// The root a cluster's istiod already uses (read from `secret`, else from
/// `fallback`), copied to `dir`.
async fn fetch_live_root(
    ctx: &StepCtx,
    cluster: &str,
    secret: &ObjectRef,
    fallback: &ObjectRef,
    dir: &Path,
    now: OffsetDateTime,
) -> Result<(), ActionError> {
    let c = ctx.cluster(cluster)?;
    let mut found = None;
    for candidate in [secret, fallback] {
        if let Some(obj) = ctx.retry(|| c.get(candidate)).await? {
            found = Some((candidate, obj));
            break;
        }
    }
    let (which, obj) = found.ok_or_else(|| {
        ActionError::Failed(format!(
            "cluster {cluster}: neither {secret} nor {fallback} exists: is istiod running there with its own CA?"
        ))
    })?;
    let what = format!("cluster {cluster} {which}");
    let cert = secret_text(&obj, CA_CERT, &what)?;
    let key = secret_text(&obj, CA_KEY, &what)?;
    let root = Root::from_pem(&cert, &key, &what, now).map_err(ca_err)?;
    write_root(&root, dir)
}

/// A new root in `dir`, unless a readable one is there already.
fn generate_root(
    algorithm: &str,
    org: &str,
    validity_days: u32,
    dir: &Path,
    now: OffsetDateTime,
) -> Result<(), ActionError> {
    if algorithm != "ecdsa-p256" {
        return Err(ActionError::Failed(format!(
            "unsupported key algorithm {algorithm} (ecdsa-p256 is)"
        )));
    }
    if load_root(dir, now).is_err() {
        let root = Root::generate(org, validity_days, now).map_err(ca_err)?;
        write_root(&root, dir)?;
    }
    Ok(())
}

/// The user's own root, checked and copied to `dir`.
fn import_root(
    cert: &Path,
    key: &Path,
    dir: &Path,
    now: OffsetDateTime,
) -> Result<(), ActionError> {
    let root = Root::from_pem(&read(cert)?, &read(key)?, &cert.display().to_string(), now)
        .map_err(ca_err)?;
    write_root(&root, dir)
}

/// A cluster's intermediate and its cacerts files, unless those in `dir`
/// still chain to the root.
#[allow(clippy::too_many_arguments)]
fn sign_intermediate(
    ctx: &StepCtx,
    cluster: &str,
    root_dir: &Path,
    dir: &Path,
    org: &str,
    validity_days: u32,
    trusted_roots: &[PathBuf],
    now: OffsetDateTime,
) -> Result<(), ActionError> {
    let root = load_root(root_dir, now)?;
    if still_valid(dir, &root) {
        return Ok(());
    }
    let intermediate = root
        .sign_intermediate(cluster, org, validity_days, now)
        .map_err(ca_err)?;
    if intermediate.capped {
        ctx.env.observer.warning(
            &ctx.step,
            &format!(
                "the intermediate of {cluster} expires with its root on {}",
                intermediate.not_after.date()
            ),
        );
    }
    let roots = read_all(trusted_roots)?;
    let refs: Vec<&str> = roots.iter().map(String::as_str).collect();
    intermediate
        .cacerts(&root, &refs)
        .write_to(dir)
        .map_err(ca_err)
}

/// cacerts files in `dir` from a signer (a root or an intermediate) and the
/// roots to trust.
fn bundle_cacerts(
    signer_dir: &Path,
    dir: &Path,
    trusted_roots: &[PathBuf],
) -> Result<(), ActionError> {
    let roots: String = read_all(trusted_roots)?.concat();
    let bundle = if signer_dir.join(ROOT_KEY).exists() {
        // The root signs directly (the first step of a multi-root transition).
        let cert = read(&signer_dir.join(ROOT_CERT))?;
        let key = read(&signer_dir.join(ROOT_KEY))?;
        Cacerts::from_parts(cert.clone(), key, roots, cert)
    } else {
        Cacerts::from_parts(
            read(&signer_dir.join(CA_CERT))?,
            read(&signer_dir.join(CA_KEY))?,
            roots,
            read(&signer_dir.join(CERT_CHAIN))?,
        )
    };
    bundle.write_to(dir).map_err(ca_err)
}

fn ca_err(e: ca::CaError) -> ActionError {
    ActionError::Failed(e.to_string())
}

fn read(path: &Path) -> Result<String, ActionError> {
    std::fs::read_to_string(path)
        .map_err(|e| ActionError::Failed(format!("cannot read {}: {e}", path.display())))
}

fn read_all(paths: &[PathBuf]) -> Result<Vec<String>, ActionError> {
    paths
        .iter()
        .map(|p| {
            read(p).map(|t| {
                if t.ends_with('\n') {
                    t
                } else {
                    format!("{t}\n")
                }
            })
        })
        .collect()
}

fn secret_text(secret: &Value, key: &str, what: &str) -> Result<String, ActionError> {
    let encoded = secret
        .get("data")
        .and_then(|d| d.get(key))
        .and_then(Value::as_str)
        .ok_or_else(|| ActionError::Failed(format!("{what} has no {key}")))?;
    B64.decode(encoded)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| ActionError::Failed(format!("{what}: {key} is not base64 PEM text")))
}

fn write_root(root: &Root, dir: &Path) -> Result<(), ActionError> {
    ca::create_private_dir(dir).map_err(ca_err)?;
    ca::write_private(&dir.join(ROOT_CERT), root.cert_pem().as_bytes()).map_err(ca_err)?;
    ca::write_private(&dir.join(ROOT_KEY), root.key_pem().as_bytes()).map_err(ca_err)
}

fn load_root(dir: &Path, now: OffsetDateTime) -> Result<Root, ActionError> {
    let cert = read(&dir.join(ROOT_CERT))?;
    let key = read(&dir.join(ROOT_KEY))?;
    Root::from_pem(&cert, &key, &dir.display().to_string(), now).map_err(ca_err)
}

/// The four cacerts files are there and their chain ends in this root.
fn still_valid(dir: &Path, root: &Root) -> bool {
    let Ok(existing) = Cacerts::read_from(dir) else {
        return false;
    };
    let chain = crate::ca::cert_bodies(&existing.cert_chain);
    let root_body = crate::ca::cert_bodies(root.cert_pem());
    chain.len() >= 2 && chain.last() == root_body.first()
}
