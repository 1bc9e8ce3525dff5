//! tracing set-up: text or JSON on stderr, verbosity from `-v`.

use super::{GlobalArgs, LogFormat};
use tracing_subscriber::EnvFilter;

pub fn init(global: &GlobalArgs) {
    let default = match global.verbose {
        0 => "warn",
        1 => "info,kube_client=warn",
        2 => "debug,kube_client=info,hyper=info",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_env("MIGRATE_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (tests calling run twice) is harmless: keep the first.
    let _ = match global.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
