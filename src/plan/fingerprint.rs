//! The plan fingerprint: sha256 over a canonical serialisation.

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::{self, Write};

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

/// Streams values into a sha256 in canonical JSON: compact, object keys
/// sorted by their bytes, strings escaped as serde_json escapes them.
pub struct CanonicalHasher(Hasher);

impl Default for CanonicalHasher {
    fn default() -> Self {
        CanonicalHasher(Hasher(Sha256::new()))
    }
}

impl CanonicalHasher {
    /// Adds one value; values are separated so `["a","b"]` never hashes as `["ab"]`.
    pub fn add<T: Serialize + ?Sized>(&mut self, value: &T) {
        // Serialising our own plain data types to a Value cannot fail (no
        // non-string map keys, no failing Serialize impls); Null stands in
        // if it ever did, and still changes the hash.
        let value = serde_json::to_value(value).unwrap_or(Value::Null);
        write_canonical(&value, &mut self.0);
        self.0.0.update(b"\n");
    }

    /// `sha256:<hex>`.
    pub fn finish(self) -> String {
        format!("sha256:{}", hex::encode(self.0.0.finalize()))
    }
}

fn write_canonical(value: &Value, out: &mut Hasher) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.0.update(b"{");
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.0.update(b",");
                }
                write_scalar(key.as_str(), out);
                out.0.update(b":");
                if let Some(v) = map.get(key) {
                    write_canonical(v, out);
                }
            }
            out.0.update(b"}");
        }
        Value::Array(items) => {
            out.0.update(b"[");
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.0.update(b",");
                }
                write_canonical(v, out);
            }
            out.0.update(b"]");
        }
        scalar => write_scalar(scalar, out),
    }
}

fn write_scalar<T: Serialize + ?Sized>(value: &T, out: &mut Hasher) {
    // Writing into a hasher cannot fail.
    let _ = serde_json::to_writer(out, value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hash(v: &Value) -> String {
        let mut h = CanonicalHasher::default();
        h.add(v);
        h.finish()
    }

    #[test]
    fn key_order_does_not_matter_content_does() {
        let a = json!({"b": 1, "a": [1, {"y": "z", "x": null}]});
        let b: Value = serde_json::from_str(r#"{"a":[1,{"x":null,"y":"z"}],"b":1}"#).unwrap();
        assert_eq!(hash(&a), hash(&b));
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
