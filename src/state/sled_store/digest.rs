//! A digest of a set of records (a run's step records): the wrapping sum of a hash of each record's key and
//! bytes. A sum, so a transaction that replaces one record moves it by that record's change alone, without
//! reading the others; and any record older or newer than the one last written, missing or extra, moves it
//! (unless 64-bit hashes happen to cancel out). It detects damage, not tampering: whoever can write the
//! directory can write a matching digest.
//!
//! The hash is ours (FNV-1a's multiply, a word at a time, then a finaliser that spreads every input bit over the
//! result), not std's, whose hashers may change between Rust releases: digests are stored.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The digest of a set of records; `Digest::default()` is the empty set's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Digest(u64);

impl Digest {
    /// The digest of the one record `key` holding `value`.
    pub(super) fn of(key: &[u8], value: &[u8]) -> Digest {
        // The key's length first: no key/value split of the same bytes hashes alike.
        let len = u64::try_from(key.len()).unwrap_or(u64::MAX);
        let h = fold(fold(mix(0xcbf2_9ce4_8422_2325 ^ len), key), value);
        Digest(finish(h))
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

/// FNV-1a's step, taken eight bytes at a time (a resume hashes every step record), the last word padded with
/// zeros after the length of what it holds.
fn fold(mut h: u64, bytes: &[u8]) -> u64 {
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        h = mix(h ^ u64::from_le_bytes(w));
    }
    let rest = words.remainder();
    let mut w = [0u8; 8];
    w[..rest.len()].copy_from_slice(rest);
    // The length tells `ab` from `ab\0`.
    mix(h ^ u64::from_le_bytes(w) ^ ((rest.len() as u64) << 59))
}

/// One multiply (FNV's prime) and a rotation, so high bits feed back into low ones.
fn mix(h: u64) -> u64 {
    h.wrapping_mul(0x0100_0000_01b3).rotate_left(29)
}

/// splitmix64's finaliser: every input bit moves about half the output bits.
fn finish(mut h: u64) -> u64 {
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
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
        assert_ne!(Digest::of(b"k", b"ab"), Digest::of(b"k", b"ab\0"));
        assert_ne!(
            Digest::of(b"k", b"12345678"),
            Digest::of(b"k", b"12345678\0")
        );
        let text = serde_json::to_string(&set).unwrap();
        assert_eq!(serde_json::from_str::<Digest>(&text).unwrap(), set);
        // Fixed (computed independently): stored digests must read the same in every build.
        assert_eq!(
            serde_json::to_string(&Digest::of(b"k", b"v")).unwrap(),
            "\"98634e53be589111\""
        );
    }
}
