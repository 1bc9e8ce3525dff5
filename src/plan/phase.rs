//! The seven phases, numbered as users type them.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A phase of the migration. The order of the variants is the order in which
/// phases run; `number()` is what `--phase` and `rollback --to` accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Preflight,
    Install,
    Trust,
    Discovery,
    Routing,
    Observability,
    Failover,
}

impl Phase {
    /// Every phase, in run order.
    pub const ALL: [Phase; 7] = [
        Phase::Preflight,
        Phase::Install,
        Phase::Trust,
        Phase::Discovery,
        Phase::Routing,
        Phase::Observability,
        Phase::Failover,
    ];

    /// The phase's number, 0 to 6.
    pub fn number(self) -> u8 {
        self as u8
    }

    /// The phase's name: `preflight`, `install`, ...
    pub fn name(self) -> &'static str {
        match self {
            Phase::Preflight => "preflight",
            Phase::Install => "install",
            Phase::Trust => "trust",
            Phase::Discovery => "discovery",
            Phase::Routing => "routing",
            Phase::Observability => "observability",
            Phase::Failover => "failover",
        }
    }

    /// The phase of that number.
    pub fn from_number(n: u8) -> Option<Phase> {
        Phase::ALL.get(usize::from(n)).copied()
    }
}

/// `phase3 discovery`.
impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "phase{} {}", self.number(), self.name())
    }
}

/// A phase given on the command line that names none.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown phase `{given}`: expected 0-6, phase0-phase6 or one of preflight, install, trust, discovery, routing, observability, failover"
)]
pub struct UnknownPhase {
    pub given: String,
}

/// Accepts `3`, `phase3` and `discovery` (any case, surrounding blanks ignored).
impl FromStr for Phase {
    type Err = UnknownPhase;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.trim().to_ascii_lowercase();
        let digits = text.strip_prefix("phase").unwrap_or(&text);
        let by_number = digits.parse::<u8>().ok().and_then(Phase::from_number);
        by_number
            .or_else(|| Phase::ALL.into_iter().find(|p| p.name() == text))
            .ok_or_else(|| UnknownPhase { given: s.into() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_spellings_mean_the_same_phase() {
        for text in ["3", "phase3", "discovery", " Discovery ", "PHASE3"] {
            assert_eq!(text.parse::<Phase>(), Ok(Phase::Discovery), "{text}");
        }
        assert_eq!("0".parse::<Phase>(), Ok(Phase::Preflight));
        assert_eq!("phase6".parse::<Phase>(), Ok(Phase::Failover));
    }

    #[test]
    fn unknown_phases_are_rejected_with_the_choices() {
        for text in ["7", "phase", "phase-1", "", "discover"] {
            let err = text.parse::<Phase>().unwrap_err();
            assert!(err.to_string().contains("preflight"), "{err}");
        }
    }

    #[test]
    fn numbers_follow_the_run_order() {
        for (i, p) in Phase::ALL.iter().enumerate() {
            assert_eq!(usize::from(p.number()), i);
        }
        assert_eq!(Phase::Trust.to_string(), "phase2 trust");
    }
}
