//! tracing set-up: text or JSON on stderr, verbosity from `-v`.

use super::view::progress;
use super::{GlobalArgs, LogFormat};
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber (once per process). With `--log-format
/// json` stderr takes JSON records only: the command's own lines become
/// records too (target `migrate::output`, always shown) and no bar is drawn.
pub fn init(global: &GlobalArgs) {
    let default = match global.verbose {
        // kube logs every 5xx as an error; the engine retries and reports those itself.
        0 => "warn,kube_client=off",
        1 => "info,kube_client=warn",
        2 => "debug,kube_client=info,hyper=info",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_env("MIGRATE_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    match global.log_format {
        LogFormat::Text => {
            // Through the MultiProgress, so log lines print above the bars.
            let writer = tracing_indicatif::writer::IndicatifWriter::<
                tracing_indicatif::writer::Stderr,
            >::new(progress::multi().clone());
            // A second init (tests calling run twice) is harmless: keep the first.
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .with_writer(writer)
                .try_init();
        }
        LogFormat::Json => {
            // Before anything is shown: no bar, every line a record.
            progress::set_json_stderr();
            let filter = match format!("{}=info", progress::OUTPUT_TARGET).parse() {
                Ok(directive) => filter.add_directive(directive),
                Err(_) => filter,
            };
            let _ = tracing_subscriber::fmt()
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .with_span_list(false)
                .with_env_filter(filter)
                .with_ansi(false)
                .with_writer(std::io::stderr)
                .try_init();
        }
    }
}
