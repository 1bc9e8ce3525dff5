//! Istio versions: parse, compare, and one predicate per behaviour that
//! changes what the plan must do (issue 13's table, drawn from istio/istio
//! `releasenotes/notes/`; each predicate says where the row is confirmed:
//! FACTS.md, a PR, or the release announcement). The phases call the
//! predicates, never compare versions themselves.

use std::fmt;

/// The oldest release `migrate` plans for.
pub const MIN_SUPPORTED: IstioVersion = IstioVersion::new(1, 24, 0);
/// The newest minor `migrate` plans for (every patch of it).
pub const MAX_SUPPORTED_MINOR: u32 = 31;

/// An Istio release `1.minor.patch`; a pre-release suffix (`-beta.1`) is
/// ignored: it behaves as its release does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IstioVersion {
    /// Always 1.
    pub major: u32,
    /// The minor release, e.g. 26.
    pub minor: u32,
    /// The patch release, e.g. 4.
    pub patch: u32,
}

/// A version `migrate` could not read or does not support.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    /// Not of the form `1.minor.patch`.
    #[error("`{0}` is not an Istio version such as `1.30.3` (1.minor.patch)")]
    Malformed(String),
    /// Outside 1.24.0 to 1.31.x.
    #[error("Istio {0} is not supported: migrate plans for Istio {range}", range = supported_range())]
    Unsupported(IstioVersion),
}

/// "1.24.0 to 1.31.x", as messages say it.
pub fn supported_range() -> String {
    format!("{MIN_SUPPORTED} to 1.{MAX_SUPPORTED_MINOR}.x")
}

impl IstioVersion {
    /// `1.minor.patch`.
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        IstioVersion {
            major,
            minor,
            patch,
        }
    }

    /// Reads `1.26.4` (or `1.31.0-beta.1`).
    pub fn parse(s: &str) -> Result<Self, VersionError> {
        let core = s.split_once('-').map_or(s, |(c, _)| c);
        let nums: Vec<u32> = core
            .split('.')
            .map(|p| {
                if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) {
                    p.parse::<u32>().ok()
                } else {
                    None
                }
            })
            .collect::<Option<_>>()
            .ok_or_else(|| VersionError::Malformed(s.to_string()))?;
        match nums.as_slice() {
            [1, minor, patch] => Ok(IstioVersion::new(1, *minor, *patch)),
            _ => Err(VersionError::Malformed(s.to_string())),
        }
    }

    /// Reads a version and refuses one outside [`supported_range`].
    pub fn parse_supported(s: &str) -> Result<Self, VersionError> {
        let v = Self::parse(s)?;
        if v.is_supported() {
            Ok(v)
        } else {
            Err(VersionError::Unsupported(v))
        }
    }

    /// Within 1.24.0 to 1.31.x.
    pub fn is_supported(self) -> bool {
        self >= MIN_SUPPORTED && self.major == 1 && self.minor <= MAX_SUPPORTED_MINOR
    }

    fn at_least(self, minor: u32, patch: u32) -> bool {
        self >= IstioVersion::new(1, minor, patch)
    }

    /// From 1.24 a remote cluster installs the `istiod` chart with
    /// `profile=remote` (the `istiod-remote` chart is gone) and needs
    /// `base` (issue 13's table; the Helm steps in FACTS 7).
    /// True for every supported version: the plan only installs that way.
    pub fn remote_uses_istiod_chart_profile(self) -> bool {
        self.at_least(24, 0)
    }

    /// From 1.26 `istioctl create-remote-secret --tls-server-name` exists:
    /// the remote secret's TLS server name may differ from its address
    /// (issue 13's table; the `tls-server-name` field, FACTS 1.2).
    pub fn supports_tls_server_name(self) -> bool {
        self.at_least(26, 0)
    }

    /// From 1.27 an incomplete `cacerts` is a hard error at istiod start
    /// ("incomplete signing CA bundle detected", PR #55696, FACTS 3.1);
    /// before, a `cacerts` without `ca-key.pem` fell back to self-signed.
    pub fn incomplete_cacerts_is_fatal(self) -> bool {
        self.at_least(27, 0)
    }

    /// From 1.30 `global.enableReaderRBAC` decides whether the charts
    /// render the reader ServiceAccount and ClusterRole (FACTS 1.5); before,
    /// they were always rendered.
    pub fn reader_rbac_is_optional(self) -> bool {
        self.at_least(30, 0)
    }

    /// Before 1.31 istiod keeps the client it built from a remote secret
    /// after that Secret changes, until it restarts: rotating one needs an
    /// istiod restart (issue 13's table, the 1.31 release notes).
    pub fn needs_istiod_restart_after_remote_secret(self) -> bool {
        !self.at_least(31, 0)
    }
}

impl fmt::Display for IstioVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> IstioVersion {
        IstioVersion::parse(s).expect(s)
    }

    #[test]
    fn parses_and_orders() {
        assert_eq!(v("1.26.4"), IstioVersion::new(1, 26, 4));
        assert_eq!(v("1.31.0-beta.1"), IstioVersion::new(1, 31, 0));
        assert!(v("1.9.0") < v("1.10.0"), "numeric, not textual");
        assert!(v("1.27.6") < v("1.27.7"));
        for bad in ["1.30", "v1.30.3", "2.0.0", "1.x.0", "", "1..3"] {
            assert!(IstioVersion::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(v("1.26.4").to_string(), "1.26.4");
    }

    #[test]
    fn supported_range_is_1_24_0_to_1_31_x() {
        for ok in ["1.24.0", "1.26.4", "1.30.3", "1.31.0", "1.31.9"] {
            assert!(v(ok).is_supported(), "{ok}");
        }
        for no in ["1.23.9", "1.32.0", "1.20.1"] {
            let err = IstioVersion::parse_supported(no).unwrap_err();
            assert!(err.to_string().contains("1.24.0 to 1.31.x"), "{err}");
        }
    }

    #[test]
    fn tls_server_name_from_1_26_0() {
        assert!(!v("1.25.9").supports_tls_server_name());
        assert!(v("1.26.0").supports_tls_server_name());
        assert!(v("1.31.0").supports_tls_server_name());
        assert!(v("1.24.0").remote_uses_istiod_chart_profile());
    }

    #[test]
    fn incomplete_cacerts_fatal_from_1_27_0() {
        assert!(!v("1.26.9").incomplete_cacerts_is_fatal());
        assert!(v("1.27.0").incomplete_cacerts_is_fatal());
    }

    #[test]
    fn reader_rbac_optional_from_1_30() {
        assert!(!v("1.29.9").reader_rbac_is_optional());
        assert!(v("1.30.0").reader_rbac_is_optional());
        assert!(v("1.30.3").reader_rbac_is_optional());
    }

    #[test]
    fn istiod_restart_after_remote_secret_before_1_31() {
        assert!(v("1.26.0").needs_istiod_restart_after_remote_secret());
        assert!(v("1.30.9").needs_istiod_restart_after_remote_secret());
        assert!(!v("1.31.0").needs_istiod_restart_after_remote_secret());
    }
}
