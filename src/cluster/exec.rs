//! Running an installer (istioctl) with a generated file.

use super::ClusterError;
use std::path::Path;
use std::time::Duration;

/// A file the command reads, written to a private temporary directory; the
/// argument `{file}` is replaced by its path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputFile {
    pub name: String,
    pub content: String,
}

/// What a command printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    pub stdout: String,
    pub stderr: String,
}

/// Runs `program args...` (the file placeholder substituted), with a timeout.
/// A non-zero exit is an error carrying the end of stderr.
pub async fn run_command(
    program: &str,
    args: &[String],
    file: Option<&InputFile>,
    env: &[(String, String)],
    timeout: Duration,
) -> Result<ExecOutput, ClusterError> {
    let fail = |status: Option<i32>, message: String| ClusterError::Exec {
        program: program.to_string(),
        status,
        message,
    };
    let dir = tempfile::Builder::new()
        .prefix("migrate-exec-")
        .tempdir()
        .map_err(|e| fail(None, format!("cannot create a temporary directory: {e}")))?;
    let mut args = args.to_vec();
    if let Some(file) = file {
        let path = dir.path().join(safe_name(&file.name));
        std::fs::write(&path, &file.content)
            .map_err(|e| fail(None, format!("cannot write {}: {e}", path.display())))?;
        for arg in &mut args {
            *arg = arg.replace("{file}", &path.to_string_lossy());
        }
    }
    let child = tokio::process::Command::new(program)
        .args(&args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(timeout, child)
        .await
        .map_err(|_| fail(None, format!("no answer after {}s", timeout.as_secs())))?
        .map_err(|e| {
            fail(
                None,
                format!("cannot run it: {e} (is it installed and on PATH?)"),
            )
        })?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if !output.status.success() {
        return Err(fail(output.status.code(), tail(&stderr, 20)));
    }
    Ok(ExecOutput { stdout, stderr })
}

fn safe_name(name: &str) -> String {
    Path::new(name)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "input.yaml".into())
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn substitutes_the_generated_file() {
        let file = InputFile {
            name: "../../iop.yaml".into(),
            content: "spec: {}\n".into(),
        };
        let out = run_command(
            "cat",
            &["{file}".into()],
            Some(&file),
            &[],
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        assert_eq!(out.stdout, "spec: {}\n");
    }

    #[tokio::test]
    async fn failures_carry_status_and_stderr() {
        let err = run_command(
            "sh",
            &["-c".into(), "echo boom >&2; exit 3".into()],
            None,
            &[],
            Duration::from_secs(10),
        )
        .await
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("exited with 3") && text.contains("boom"),
            "{text}"
        );
        let err = run_command(
            "/nonexistent/istioctl",
            &[],
            None,
            &[],
            Duration::from_secs(10),
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("PATH"), "{err}");
    }
}
