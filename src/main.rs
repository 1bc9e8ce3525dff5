use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // `migrate status | head` must end quietly when the reader goes away, as
    // other command-line tools do, not panic on a failed print.
    // SAFETY: called first, before any thread exists; SIG_DFL is a valid disposition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
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
