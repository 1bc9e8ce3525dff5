use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    migrate::cli::run(migrate::cli::Cli::parse())
}
