//! Who holds a state directory (the `lock.json` record), and what opening
//! tells the user when it takes over from a holder that is gone.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::model::Timestamp;

/// Who holds (or held) a state directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// Names this holding: removing a stale lock by force must give it.
    pub id: String,
    pub pid: u32,
    pub host: String,
    pub command: String,
    pub since: Timestamp,
}

/// What `open` tells the user when it takes over from a holder that is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockNotice {
    PreviousHolderGone(Holder),
    UnreadableHolderRecord(String),
}

impl fmt::Display for LockNotice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockNotice::PreviousHolderGone(h) => write!(
                f,
                "previous holder pid {} on host {} (`{}`) since {} is gone; taking over",
                h.pid, h.host, h.command, h.since
            ),
            LockNotice::UnreadableHolderRecord(why) => write!(
                f,
                "the previous holder left an unreadable lock record ({why}) and no longer holds the lock; taking over"
            ),
        }
    }
}
