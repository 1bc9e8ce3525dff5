//! `migrate completion SHELL`: the shell's completion script on stdout,
//! generated from the command line's own definition (so it never lags it).

use super::{Cli, CompletionArgs};
use clap::CommandFactory;
use std::io::Write;
use std::process::ExitCode;

/// Writes the completion script for `args.shell`.
pub fn run(args: &CompletionArgs) -> anyhow::Result<ExitCode> {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "migrate", &mut script);
    match std::io::stdout().lock().write_all(&script) {
        // `migrate completion bash | head` closes the pipe early: not an error.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(ExitCode::SUCCESS),
    }
}
