//! What `plan --out` and `apply --plan` say about a saved plan.

use crate::engine::saved_plan::{Change, SavedPlan};
use crate::state::Left;
use std::path::Path;

/// The plan was saved.
pub fn saved(path: &Path, saved: &SavedPlan) {
    let secrets = saved
        .objects
        .iter()
        .filter(|f| f.key.object.kind == "Secret")
        .count();
    let absent = saved
        .objects
        .iter()
        .filter(|f| f.found == Left::Absent)
        .count();
    say!(
        "plan saved to {} ({}): {} live objects fingerprinted ({} absent, {} Secrets by hash and key names only), \
         {} Helm releases and {} local files by hash; \
         `migrate apply --plan {}` applies exactly this plan while they stay as they are",
        path.display(),
        saved.plan.fingerprint,
        saved.objects.len(),
        absent,
        secrets,
        saved.releases.len(),
        saved.files.len(),
        path.display()
    );
}

/// The plan was refused: not saved (`out` is left as it was).
pub fn not_saved(out: &Path) {
    say!(
        "error: not saved to {}: the plan is refused (what the file held, if anything, is left as it was)",
        out.display()
    );
}

/// Nothing the plan reads moved: it runs.
pub fn unchanged(path: &Path, saved: &SavedPlan) {
    say!(
        "saved plan {} (saved {}): the {} objects, {} Helm releases and {} local files it reads are as they were",
        path.display(),
        saved.saved,
        saved.objects.len(),
        saved.releases.len(),
        saved.files.len()
    );
}

/// The refusal: everything that moved.
pub fn moved(path: &Path, saved: &SavedPlan, moved: &[Change]) {
    say!(
        "error: the clusters changed since {} was saved ({}); nothing was applied:",
        path.display(),
        saved.saved
    );
    for m in moved {
        say!("  {m}");
    }
    say!(
        "hint: plan again (`migrate plan -f {} --out {}`), review, then apply the new plan",
        saved.spec_file.display(),
        path.display()
    );
}
