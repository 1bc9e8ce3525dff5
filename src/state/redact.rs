//! Keeping Secret values out of everything the store shows.

use base64::Engine as _;
use serde_json::{Map, Value};

const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// A copy of `value` in which every Secret object (at any depth, so Lists and event details too) has its
/// `data` and `stringData` values, and its last-applied annotation (which repeats them), replaced by
/// `<redacted N bytes>`.
pub fn redact_object(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let is_secret = map.get("kind").and_then(Value::as_str) == Some("Secret");
            let mut out = Map::with_capacity(map.len());
            for (k, v) in map {
                let redacted = match (is_secret, k.as_str()) {
                    (true, "data") => redact_values(v, true),
                    (true, "stringData") => redact_values(v, false),
                    (true, "metadata") => redact_metadata(v),
                    _ => redact_object(v),
                };
                out.insert(k.clone(), redacted);
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(redact_object).collect()),
        other => other.clone(),
    }
}

fn placeholder(bytes: usize) -> Value {
    Value::String(format!("<redacted {bytes} bytes>"))
}

fn redact_values(v: &Value, base64_encoded: bool) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), placeholder(secret_len(v, base64_encoded))))
                .collect(),
        ),
        Value::Null => Value::Null,
        // Not the shape Kubernetes uses: hide all of it rather than guess.
        other => placeholder(other.to_string().len()),
    }
}

fn secret_len(v: &Value, base64_encoded: bool) -> usize {
    match v {
        Value::String(s) if base64_encoded => base64::engine::general_purpose::STANDARD
            .decode(s)
            .map(|b| b.len())
            .unwrap_or(s.len()),
        Value::String(s) => s.len(),
        other => other.to_string().len(),
    }
}

fn redact_metadata(v: &Value) -> Value {
    let mut meta = redact_object(v);
    if let Some(Value::Object(ann)) = meta.get_mut("annotations")
        && let Some(last) = ann.get_mut(LAST_APPLIED)
    {
        let len = last.as_str().map_or(0, str::len);
        *last = placeholder(len);
    }
    meta
}

/// `text` with PEM private-key blocks and bearer tokens replaced: a last line of defence for error strings and
/// journal messages, which callers are expected to have redacted already.
pub fn redact_text(text: &str) -> String {
    let mut out = scrub_pem_keys(text);
    out = scrub_bearer(&out);
    out
}

fn scrub_pem_keys(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(begin) = rest.find("-----BEGIN ") {
        let after_begin = &rest[begin..];
        let header_end = after_begin[11..].find("-----").map(|i| i + 11);
        let is_key = header_end.is_some_and(|h| after_begin[..h].ends_with("PRIVATE KEY"));
        if !is_key {
            out.push_str(&rest[..begin + 11]);
            rest = &rest[begin + 11..];
            continue;
        }
        out.push_str(&rest[..begin]);
        out.push_str("<redacted private key>");
        match after_begin.find("-----END ") {
            Some(end) => {
                let tail = &after_begin[end + 9..];
                let skip = tail.find("-----").map_or(tail.len(), |i| i + 5);
                rest = &tail[skip..];
            }
            // A truncated key: drop everything after the header.
            None => rest = "",
        }
    }
    out.push_str(rest);
    out
}

fn scrub_bearer(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("Bearer ") {
        out.push_str(&rest[..i + 7]);
        let tail = &rest[i + 7..];
        let end = tail
            .find(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == ',')
            .unwrap_or(tail.len());
        if end > 0 {
            out.push_str("<redacted>");
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_values_and_last_applied_are_replaced_at_any_depth() {
        let secret = json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "cacerts", "annotations": {LAST_APPLIED: "{\"data\":{\"ca-key.pem\":\"c2VjcmV0\"}}", "keep": "me"}},
            "data": {"ca-key.pem": "c2VjcmV0LWtleQ=="},
            "stringData": {"token": "hunter2"}
        });
        let list = json!({"kind": "List", "items": [secret.clone()]});
        for v in [
            redact_object(&secret),
            redact_object(&list)["items"][0].clone(),
        ] {
            assert_eq!(v["data"]["ca-key.pem"], "<redacted 10 bytes>");
            assert_eq!(v["stringData"]["token"], "<redacted 7 bytes>");
            assert_eq!(v["metadata"]["annotations"]["keep"], "me");
            let text = v.to_string();
            assert!(!text.contains("c2VjcmV0"), "{text}");
            assert!(!text.contains("hunter2"), "{text}");
        }
    }

    #[test]
    fn other_kinds_are_untouched() {
        let cm = json!({"kind": "ConfigMap", "data": {"mesh": "trustDomain: x"}});
        assert_eq!(redact_object(&cm), cm);
    }

    #[test]
    fn text_scrubs_private_keys_and_bearer_tokens() {
        let t = "apply failed: -----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY----- and \
                 Authorization: Bearer abc.def.ghi, cert -----BEGIN CERTIFICATE-----x";
        let r = redact_text(t);
        assert!(!r.contains("MHcCAQEE"), "{r}");
        assert!(!r.contains("abc.def.ghi"), "{r}");
        assert!(r.contains("<redacted private key> and"), "{r}");
        assert!(
            r.contains("Bearer <redacted>, cert -----BEGIN CERTIFICATE-----x"),
            "{r}"
        );
        let truncated = redact_text("x -----BEGIN PRIVATE KEY-----\nAAAA");
        assert_eq!(truncated, "x <redacted private key>");
    }
}
