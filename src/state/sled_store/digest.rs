//! A digest of a set of records (a run's step records): the wrapping sum of a hash of each record's key and
//! bytes. A sum, so a transaction that replaces one record moves it by that record's change alone, without
//! reading the others; and any record older or newer than the one last written, missing or extra, moves it
//! (unless 64-bit hashes happen to cancel out). It detects damage, not tampering: whoever can write the
//! directory can write a matching digest.
//!
//! The hash is ours (FNV-1a, then a finaliser that spreads every input bit over the result), not std's, whose
//! hashers may change between Rust releases: digests are stored.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The digest of a set of records; `Digest::default()` is the empty set's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Digest(u64);

impl Digest {
    /// The digest of the one record `key` holding `value`.
    pub(super) fn of(key: &[u8], value: &[u8]) -> Digest {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        // The key's length first: no key/value split of the same bytes hashes alike.
        let len = u32::try_from(key.len()).unwrap_or(u32::MAX).to_be_bytes();
        for b in len.iter().chain(key).chain(value) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        // splitmix64's finaliser.
        h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Digest(h ^ (h >> 31))
    }

    /// The set with `other`'s records added.
    pub(super) fn add(self, other: Digest) -> Digest {
        Digest(self.0.wrapping_add(other.0))
    }

    /// The set with `other`'s records taken away.
    pub(super) fn sub(self, other: Digest) -> Digest {
        Digest(self.0.wrapping_sub(other.0))
    }
}

/// Stored as 16 hex digits (a JSON number above 2^53 loses digits in many readers).
impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{:016x}", self.0))
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        u64::from_str_radix(&text, 16)
            .map(Digest)
            .map_err(|e| serde::de::Error::custom(format!("bad digest {text:?}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::Digest;

    #[test]
    fn a_sum_moves_with_any_record_and_reads_back() {
        let a = Digest::of(b"k1", b"{\"status\":\"done\"}");
        let b = Digest::of(b"k2", b"{\"status\":\"done\"}");
        let stale = Digest::of(b"k1", b"{\"status\":\"running\"}");
        let set = Digest::default().add(a).add(b);
        assert_eq!(
            set,
            Digest::default().add(b).add(a),
            "order does not matter"
        );
        assert_ne!(
            set,
            Digest::default().add(stale).add(b),
            "a stale record shows"
        );
        assert_ne!(set, Digest::default().add(b), "a missing record shows");
        assert_eq!(set.sub(a).add(stale), Digest::default().add(stale).add(b));
        assert_ne!(Digest::of(b"k", b"1v"), Digest::of(b"k1", b"v"));
        let text = serde_json::to_string(&set).unwrap();
        assert_eq!(serde_json::from_str::<Digest>(&text).unwrap(), set);
        // Fixed (computed independently): stored digests must read the same in every build.
        assert_eq!(
            serde_json::to_string(&Digest::of(b"k", b"v")).unwrap(),
            "\"0cad8854ab6a45a6\""
        );
    }
}
