use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // `migrate status | head` must end quietly when the reader goes away, as
    // other command-line tools do, not panic on a failed print.
    // SAFETY: called first, before any thread exists; SIG_DFL is a valid disposition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // Busybox-style: started through a link named `istioctl`, this binary is
    // meshsim's istioctl stand-in (tests and the demo put one on PATH).
    let mut args = std::env::args_os();
    let program = args.next();
    if program
        .as_deref()
        .and_then(|p| std::path::Path::new(p).file_name())
        .is_some_and(|name| name == "istioctl")
    {
        let rest: Vec<String> = args.map(|a| a.to_string_lossy().into_owned()).collect();
        return ExitCode::from(meshsim::istioctl::main(rest).clamp(0, 255) as u8);
    }
    migrate::cli::run(migrate::cli::Cli::parse())
}
