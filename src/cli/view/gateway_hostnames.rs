//! `migrate plan`'s word on east-west gateway addresses that are hostnames
//! (`crate::plan::gateway_hostnames`), on stderr beside the plan.

use crate::plan::gateway_hostnames::{HostnameFinding, Weight};

/// Each finding on its own lines: `error:` for what the plan cannot do,
/// `warning:` for what it likely cannot, `note:` for what Istio supports.
pub fn show(findings: &[HostnameFinding]) {
    for f in findings {
        let label = match f.weight {
            Weight::Refuse => "error",
            Weight::Warning => "warning",
            Weight::Note => "note",
        };
        say!("{label}: {}", f.message);
        say!("  fix: {}", f.fix);
    }
    if findings.iter().any(|f| f.weight == Weight::Refuse) {
        say!(
            "error: the plan is refused: apply would leave a remote whose sidecar injection fails"
        );
    }
}
