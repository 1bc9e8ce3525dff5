//! The plan fingerprint: sha256 over a canonical serialisation.

use serde::Serialize;
use sha2::{Digest, Sha256};
use std::io::{self, BufWriter, Write};

struct Hasher(Sha256);

impl Write for Hasher {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Streams values into a sha256 as compact JSON, exactly as serde_json
/// writes them: struct fields in declaration order, `BTreeMap`s sorted, and
/// JSON objects (manifests) in the order the planner built them, which a
/// round trip through JSON keeps. Writing straight into the hasher keeps
/// fingerprinting a 100,000-action plan cheap.
pub struct CanonicalHasher(BufWriter<Hasher>);

impl Default for CanonicalHasher {
    fn default() -> Self {
        // serde_json writes token by token: buffer so sha256 sees blocks.
        CanonicalHasher(BufWriter::with_capacity(64 * 1024, Hasher(Sha256::new())))
    }
}

impl CanonicalHasher {
    /// Adds one value; values are separated so `["a","b"]` never hashes as `["ab"]`.
    pub fn add<T: Serialize + ?Sized>(&mut self, value: &T) {
        // Serialising our own plain data types cannot fail (no non-string
        // map keys, no failing Serialize impls) and writing into a hasher
        // cannot fail; should it ever, the marker still changes the hash.
        // Writing into a hasher cannot fail, so neither can these writes.
        if serde_json::to_writer(&mut self.0, value).is_err() {
            let _ = self.0.write_all(b"\0unserialisable");
        }
        let _ = self.0.write_all(b"\n");
    }

    /// `sha256:<hex>`.
    pub fn finish(mut self) -> String {
        let _ = self.0.flush();
        let (hasher, _) = self.0.into_parts();
        format!("sha256:{}", hex::encode(hasher.0.finalize()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn hash(v: &Value) -> String {
        let mut h = CanonicalHasher::default();
        h.add(v);
        h.finish()
    }

    #[test]
    fn a_json_round_trip_keeps_the_hash_and_content_changes_it() {
        let a = json!({"b": 1, "a": [1, {"y": "z", "x": null}]});
        let text = serde_json::to_string(&a).unwrap();
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(hash(&a), hash(&back));
        assert_ne!(
            hash(&a),
            hash(&json!({"b": 2, "a": [1, {"y": "z", "x": null}]}))
        );
        assert!(hash(&a).starts_with("sha256:"));
        assert_eq!(hash(&a).len(), "sha256:".len() + 64);
    }

    #[test]
    fn values_are_separated() {
        let mut one = CanonicalHasher::default();
        one.add("ab");
        let mut two = CanonicalHasher::default();
        two.add("a");
        two.add("b");
        assert_ne!(one.finish(), two.finish());
    }
}
