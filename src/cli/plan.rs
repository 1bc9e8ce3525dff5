//! `migrate plan`.

use super::{GlobalArgs, PlanArgs};
use std::process::ExitCode;

pub fn run(_global: &GlobalArgs, _args: &PlanArgs) -> anyhow::Result<ExitCode> {
    super::not_available("plan")
}
