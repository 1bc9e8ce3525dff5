//! `migrate validate`.

use super::{GlobalArgs, SpecArgs};
use std::process::ExitCode;

pub fn run(_global: &GlobalArgs, _args: &SpecArgs) -> anyhow::Result<ExitCode> {
    super::not_available("validate")
}
