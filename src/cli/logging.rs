//! tracing set-up: text or JSON on stderr, verbosity from `-v`.

use super::{GlobalArgs, LogFormat};
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber (once per process).
pub fn init(global: &GlobalArgs) {
    let default = match global.verbose {
        // kube logs every 5xx as an error; the engine retries and reports those itself.
        0 => "warn,kube_client=off",
        1 => "info,kube_client=warn",
        2 => "debug,kube_client=info,hyper=info",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_env("MIGRATE_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    // Through the MultiProgress, so log lines print above the bars.
    let writer =
        tracing_indicatif::writer::IndicatifWriter::<tracing_indicatif::writer::Stderr>::new(
            super::view::progress::multi().clone(),
        );
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(writer);
    // A second init (tests calling run twice) is harmless: keep the first.
    let _ = match global.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
