use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // SIGPIPE stays ignored (Rust's default): TLS writes go through writev,
    // which raises SIGPIPE on a connection the peer closed (only send() with
    // MSG_NOSIGNAL is spared), so the default disposition would kill `migrate`
    // mid-run when an API server drops a connection. Prints to a closed stdout
    // (`migrate status | head`) fail quietly instead (`tell!`, `plan`).
    #[cfg(feature = "sim")]
    if let Some(code) = as_stand_in() {
        return code;
    }
    migrate::cli::run(migrate::cli::Cli::parse())
}

/// Busybox-style: started through a link named `istioctl` or `helm`, this
/// binary is meshsim's istioctl or Helm stand-in (tests and the demo put one
/// on PATH). None when started under any other name.
#[cfg(feature = "sim")]
fn as_stand_in() -> Option<ExitCode> {
    let mut args = std::env::args_os();
    let program = args.next();
    let name = program
        .as_deref()
        .and_then(|p| std::path::Path::new(p).file_name())?;
    let stand_in: fn(Vec<String>) -> i32 = if name == "istioctl" {
        meshsim::istioctl::main
    } else if name == "helm" {
        meshsim::helm::main
    } else {
        return None;
    };
    let rest: Vec<String> = args.map(|a| a.to_string_lossy().into_owned()).collect();
    Some(ExitCode::from(stand_in(rest).clamp(0, 255) as u8))
}
