//! `migrate demo`'s narration: banners between the acts, the clusters, the
//! plan's outline, and what to type once it is over.

use super::hints::Hints;
use crate::plan::{Phase, Plan};
use std::path::Path;

/// The title of the next act.
pub fn banner(title: &str) {
    tell!("\n==> {title}");
}

/// An indented line under a banner.
pub fn line(text: &str) {
    tell!("  {text}");
}

/// The plan, one line per phase: its steps. Then where every action is.
pub fn outline(plan: &Plan, spec: &Path) {
    for phase in Phase::ALL {
        let steps = plan.select(Some(phase));
        if steps.is_empty() {
            continue;
        }
        let ids: Vec<&str> = steps.iter().map(|s| s.id.as_str()).collect();
        let title = phase.to_string();
        tell!("  {title:<22} {}", ids.join(", "));
    }
    tell!("  (every action: migrate plan -f {})", spec.display());
}

/// The apply did not complete: where to look.
pub fn incomplete() {
    say!(
        "demo: the migration did not complete (see above); `migrate demo --keep` leaves the clusters and state to look at"
    );
}

/// The commands to look around with while the clusters stay up.
pub fn look_around(hints: &Hints) {
    banner("The clusters stay up until Ctrl-C");
    for command in hints.look_around() {
        line(&command);
    }
}
