//! Keeping Secret values out of everything the store shows.

use base64::Engine as _;
use serde_json::{Map, Value};

const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// A copy of `value` in which every Secret object (at any depth, so Lists and event details too, and the items
/// of a `SecretList`, which carry no `kind`) has its `data` and `stringData` values, and its last-applied
/// annotation (which repeats them), replaced by `<redacted N bytes>`; so are the string values of credential
/// keys in any object (`token`, `password`, `client-key-data`, ...: a kubeconfig as JSON).
pub fn redact_object(value: &Value) -> Value {
    redact_as(value, false)
}

fn redact_as(value: &Value, known_secret: bool) -> Value {
    match value {
        Value::Object(map) => {
            let kind = map.get("kind").and_then(Value::as_str);
            let is_secret = known_secret || kind == Some("Secret");
            let is_secret_list = kind == Some("SecretList");
            let mut out = Map::with_capacity(map.len());
            for (k, v) in map {
                let redacted = match (is_secret, k.as_str()) {
                    (true, "data") => redact_values(v, true),
                    (true, "stringData") => redact_values(v, false),
                    (true, "metadata") => redact_metadata(v),
                    (_, "items") if is_secret_list => match v {
                        Value::Array(items) => {
                            Value::Array(items.iter().map(|i| redact_as(i, true)).collect())
                        }
                        other => redact_as(other, false),
                    },
                    (_, key) if is_credential_key(key) && v.is_string() => {
                        placeholder(v.as_str().map_or(0, str::len))
                    }
                    // A kubeconfig's exec plugin gets credentials as environment variables.
                    (_, "exec") => redact_exec(v),
                    _ => redact_as(v, false),
                };
                out.insert(k.clone(), redacted);
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(|i| redact_as(i, false)).collect()),
        other => other.clone(),
    }
}

/// Keys whose values are credentials wherever they appear: `token` (and `id-token`, `refresh-token`,
/// `access_token`, ...), `password`, `client-key-data`, `client-secret` and other `*secret*` keys
/// (`secret`, `aws_secret_access_key`, `clientSecret`), and `*-key`/`*_key`/`*Key` names (`private_key`,
/// `apiKey`), but not public material (`ca-cert`, `client-certificate-data`, `public-key`) nor names of
/// where a secret is (`secretName`, `secretKeyRef`, `tokenFile`).
fn is_credential_key(key: &str) -> bool {
    credential_key(key, false)
}

/// `is_credential_key`; `in_text`: the key was found in free text, where a lowercase hyphenated word
/// before a `:` is more often an object's name (`istio-ca-secret: not found`) than a key, so such
/// names count for `*secret*` only when they are a known kubeconfig key.
fn credential_key(key: &str, in_text: bool) -> bool {
    let k = key.to_ascii_lowercase().replace('_', "-");
    let k = k.trim_start_matches('-');
    if k == "password" || k.ends_with("-password") || k == "client-key-data" {
        return true;
    }
    if k == "token" || k.ends_with("-token") || (key.ends_with("Token") && key.len() > 5) {
        return true;
    }
    // Where a credential is, not what: names, references, files, paths.
    let locator = [
        "name",
        "names",
        "ref",
        "namespace",
        "file",
        "path",
        "kind",
        "type",
    ]
    .iter()
    .any(|s| k.ends_with(s));
    // Public halves and certificates.
    let public = k.contains("cert") || k.contains("public") || k.contains("crt");
    if locator || public {
        return false;
    }
    if k.contains("secret") {
        let name_like = !key.contains('_') && !key.chars().any(|c| c.is_ascii_uppercase());
        return !in_text
            || !name_like
            || k == "secret"
            || k == "client-secret"
            || k.ends_with("secret-key")
            || k.ends_with("secret-access-key");
    }
    k.ends_with("-key")
        || k.ends_with("-key-data")
        || (key.ends_with("Key") && key.len() > 3)
        || k == "apikey"
        || k == "privatekey"
}

/// An exec plugin's settings with every `env` item's `value` replaced.
fn redact_exec(exec: &Value) -> Value {
    let mut out = redact_as(exec, false);
    if let Some(Value::Array(env)) = out.get_mut("env") {
        for item in env {
            if let Some(value) = item.get_mut("value") {
                *value = placeholder(value.as_str().map_or(0, str::len));
            }
        }
    }
    out
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

/// `text` with credentials replaced: PEM private-key blocks, bearer tokens (any case), JWTs, the values of
/// credential keys in YAML or JSON (`token:`, `"token": "..."`, `password:`, `client-key-data:`, `client-secret:`,
/// `aws_secret_access_key=`, `private_key:`, see `credential_key`), every `value` of an `env` list (an exec
/// plugin's environment), and the values
/// of `data`/`stringData` maps when the text is about a Secret. A last line of defence for error strings and
/// journal messages, which callers are expected to have redacted already.
pub fn redact_text(text: &str) -> String {
    let mut out = scrub_pem_keys(text);
    out = scrub_bearer(&out);
    out = scrub_jwts(&out);
    out = scrub_credential_values(&out);
    if out.contains("env") {
        out = scrub_env_values(&out);
    }
    if out.contains("Secret") {
        out = scrub_secret_data(&out);
    }
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
    const WORD: &str = "bearer ";
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while let Some(found) = lower[at..].find(WORD) {
        let start = at + found + WORD.len();
        out.push_str(&text[at..start]);
        let tail = &text[start..];
        let end = tail
            .find(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == ',')
            .unwrap_or(tail.len());
        if end > 0 {
            out.push_str("<redacted>");
        }
        at = start + end;
    }
    out.push_str(&text[at..]);
    out
}

fn is_base64url(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

/// JSON Web Tokens (service account tokens among them): `eyJ` (base64url of `{"`), then three base64url
/// segments separated by dots, the last possibly empty.
fn scrub_jwts(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while let Some(found) = text[at..].find("eyJ") {
        let start = at + found;
        let boundary = text[..start]
            .chars()
            .next_back()
            .is_none_or(|c| !is_base64url(c) && c != '.');
        let mut end = start;
        let mut dots = 0;
        for (i, c) in text[start..].char_indices() {
            if is_base64url(c) {
                end = start + i + 1;
            } else if c == '.' && dots < 2 {
                dots += 1;
                end = start + i + 1;
            } else {
                break;
            }
        }
        if boundary && dots == 2 {
            out.push_str(&text[at..start]);
            out.push_str("<redacted jwt>");
            at = end;
        } else {
            out.push_str(&text[at..start + 3]);
            at = start + 3;
        }
    }
    out.push_str(&text[at..]);
    out
}

/// The value after a credential key and `:` (YAML) or `":` (JSON), to the end of its quotes, or of the line,
/// or to a `,` or `}` when unquoted. Block scalars (`|`, `>`) are cut with the lines indented under them.
fn scrub_credential_values(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    'scan: while !rest.is_empty() {
        // The next credential key followed by its separator.
        let Some(value_start) = next_credential_value(rest) else {
            break 'scan;
        };
        let value = &rest[value_start..];
        let lead = value.len() - value.trim_start_matches([' ', '\t']).len();
        let v = &value[lead..];
        let taken = match v.chars().next() {
            Some(q @ ('"' | '\'')) => {
                let mut escaped = false;
                let mut close = v.len();
                for (i, c) in v.char_indices().skip(1) {
                    if escaped {
                        escaped = false;
                    } else if c == '\\' && q == '"' {
                        escaped = true;
                    } else if c == q {
                        close = i + 1;
                        break;
                    }
                }
                close
            }
            Some('|' | '>') => block_scalar_len(v),
            _ => v
                .find(['\n', ',', '}', '\r'])
                .unwrap_or(v.len())
                .min(v.trim_end().len()),
        };
        out.push_str(&rest[..value_start + lead]);
        match v.chars().next() {
            // Quotes kept: JSON stays JSON.
            Some(q @ ('"' | '\'')) => {
                out.push(q);
                out.push_str("<redacted>");
                out.push(q);
            }
            _ if taken > 0 && !v[..taken].trim().is_empty() => out.push_str("<redacted>"),
            _ => {}
        }
        rest = &v[taken..];
    }
    out.push_str(rest);
    out
}

/// Where the value of the first credential key (`credential_key`) in `rest` starts: after `key:`,
/// `"key":` or `key=`, the key not the tail of a longer word or path (`ns/istio-ca-secret:`).
fn next_credential_value(rest: &str) -> Option<usize> {
    let bytes = rest.as_bytes();
    let is_key_char = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'-' || c == b'.';
    for (sep, _) in rest.match_indices([':', '=']) {
        // Back over a closing quote and blanks to the key's end.
        let mut end = sep;
        while end > 0 && matches!(bytes[end - 1], b' ' | b'\t') {
            end -= 1;
        }
        if end > 0 && matches!(bytes[end - 1], b'"' | b'\'') {
            end -= 1;
        }
        let mut start = end;
        while start > 0 && is_key_char(bytes[start - 1]) {
            start -= 1;
        }
        if start == end {
            continue;
        }
        let boundary = start == 0 || !matches!(bytes[start - 1], b'/' | b'@' | b':');
        if boundary && credential_key(&rest[start..end], true) {
            return Some(sep + 1);
        }
    }
    None
}

/// Every `value` of an `env` list: YAML (`env:` and the items under it, at its indentation or deeper) and JSON
/// (`"env":[...]`).
fn scrub_env_values(text: &str) -> String {
    // JSON lists.
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("\"env\"") {
        let after = &rest[i + 5..];
        let Some(list) = after.trim_start().strip_prefix(':').map(str::trim_start) else {
            out.push_str(&rest[..i + 5]);
            rest = after;
            continue;
        };
        let list_start = rest.len() - list.len();
        out.push_str(&rest[..list_start]);
        if !list.starts_with('[') {
            rest = list;
            continue;
        }
        let close = list.find(']').map_or(list.len(), |c| c + 1);
        out.push_str(&redact_json_values_of(&list[..close], "value"));
        rest = &list[close..];
    }
    out.push_str(rest);
    // YAML lists.
    let mut lines = Vec::new();
    let mut under: Option<usize> = None;
    for line in out.lines() {
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim();
        if let Some(d) = under {
            let item = indent > d || (indent == d && trimmed.starts_with("- "));
            if item && !trimmed.is_empty() {
                let field = trimmed.trim_start_matches("- ").trim_start();
                match field.strip_prefix("value:") {
                    Some(v) if !v.trim().is_empty() => {
                        let cut = line.len() - v.len();
                        lines.push(format!("{} <redacted>", &line[..cut]));
                    }
                    _ => lines.push(line.to_string()),
                }
                continue;
            }
            under = None;
        }
        if trimmed == "env:" || trimmed == "- env:" {
            under = Some(indent + usize::from(trimmed.starts_with("- ")) * 2);
        }
        lines.push(line.to_string());
    }
    let mut joined = lines.join("\n");
    if out.ends_with('\n') {
        joined.push('\n');
    }
    joined
}

/// `json` with the string value of every `"key":` replaced.
fn redact_json_values_of(json: &str, key: &str) -> String {
    let quoted = format!("\"{key}\"");
    let mut out = String::with_capacity(json.len());
    let mut rest = json;
    while let Some(i) = rest.find(&quoted) {
        let after = &rest[i + quoted.len()..];
        let Some(v) = after.trim_start().strip_prefix(':').map(str::trim_start) else {
            out.push_str(&rest[..i + quoted.len()]);
            rest = after;
            continue;
        };
        out.push_str(&rest[..rest.len() - v.len()]);
        let Some(body) = v.strip_prefix('"') else {
            rest = v;
            continue;
        };
        let mut escaped = false;
        let mut close = body.len();
        for (j, c) in body.char_indices() {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                close = j + 1;
                break;
            }
        }
        out.push_str("\"<redacted>\"");
        rest = &body[close..];
    }
    out.push_str(rest);
    out
}

/// The length of a YAML block scalar starting at its indicator: the indicator's line and every following line
/// that is blank or indented (more than nothing: the key's own indentation is not known here, so any indent).
fn block_scalar_len(v: &str) -> usize {
    let mut end = v.find('\n').unwrap_or(v.len());
    while end < v.len() {
        let next = &v[end + 1..];
        let line_end = next.find('\n').unwrap_or(next.len());
        let line = &next[..line_end];
        if !(line.trim().is_empty() || line.starts_with([' ', '\t'])) {
            break;
        }
        end = end + 1 + line_end;
    }
    end
}

/// When the text is about a Secret: the values of its `data` and `stringData` maps, as JSON
/// (`"data":{"k":"v"}`) or as YAML (`data:` and the indented lines under it).
fn scrub_secret_data(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    // JSON maps.
    loop {
        let found = ["\"data\"", "\"stringData\""]
            .iter()
            .filter_map(|k| rest.find(k).map(|i| (i, k.len())))
            .min();
        let Some((i, len)) = found else { break };
        let after = &rest[i + len..];
        let trimmed = after.trim_start();
        let Some(body) = trimmed.strip_prefix(':').map(str::trim_start) else {
            out.push_str(&rest[..i + len]);
            rest = after;
            continue;
        };
        let body_start = rest.len() - body.len();
        out.push_str(&rest[..body_start]);
        if !body.starts_with('{') {
            rest = body;
            continue;
        }
        let close = body.find('}').map_or(body.len(), |c| c + 1);
        out.push_str(&redact_json_map(&body[..close]));
        rest = &body[close..];
    }
    out.push_str(rest);
    // YAML maps.
    let mut lines = Vec::new();
    let mut under: Option<usize> = None;
    for line in out.lines() {
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim();
        match under {
            Some(d) if indent > d && !trimmed.is_empty() => {
                match line.split_once(':') {
                    Some((key, v)) if !v.trim().is_empty() => {
                        lines.push(format!("{key}: <redacted>"));
                    }
                    _ => lines.push(line.to_string()),
                }
                continue;
            }
            _ => under = None,
        }
        if trimmed == "data:" || trimmed == "stringData:" {
            under = Some(indent);
        }
        lines.push(line.to_string());
    }
    let mut joined = lines.join("\n");
    if out.ends_with('\n') {
        joined.push('\n');
    }
    joined
}

/// `{"k":"v",...}` with every value replaced (keys are file names, not secret).
fn redact_json_map(map: &str) -> String {
    let mut out = String::with_capacity(map.len());
    let mut in_value = false;
    let mut chars = map.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ':' if !in_value => {
                out.push(':');
                in_value = true;
                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                    chars.next();
                }
                if chars.peek() == Some(&'"') {
                    chars.next();
                    let mut escaped = false;
                    for c in chars.by_ref() {
                        if escaped {
                            escaped = false;
                        } else if c == '\\' {
                            escaped = true;
                        } else if c == '"' {
                            break;
                        }
                    }
                    out.push_str("\"<redacted>\"");
                }
            }
            ',' | '}' => {
                in_value = false;
                out.push(c);
            }
            '"' if !in_value => {
                out.push('"');
                for c in chars.by_ref() {
                    out.push(c);
                    if c == '"' {
                        break;
                    }
                }
            }
            _ if in_value => {}
            _ => out.push(c),
        }
    }
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

    const TOKEN: &str = "sha256~Zk3QaLkXw9pT0mZr";
    const JWT: &str =
        "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJzdWIiOiJzeXN0ZW06YWRtaW4ifQ.c2lnbmF0dXJlLWJ5dGVz";

    fn clean(text: &str, secrets: &[&str]) -> String {
        let r = redact_text(text);
        for s in secrets {
            assert!(!r.contains(s), "{s:?} survived in {r:?}");
        }
        r
    }

    #[test]
    fn yaml_token_values() {
        let r = clean(
            "users:\n- name: admin\n  user:\n    token: sha256~Zk3QaLkXw9pT0mZr\n    oops: : :\n",
            &[TOKEN],
        );
        assert!(r.contains("    token: <redacted>\n    oops: : :"), "{r}");
        let r = clean(
            "refresh-token: abc123def\nid-token: 'quoted-value'",
            &["abc123def", "quoted-value"],
        );
        assert!(r.contains("refresh-token: <redacted>"), "{r}");
        // Words that only contain the key stay.
        assert_eq!(
            redact_text("tokens: 3, tokenFile: /var/run/t"),
            "tokens: 3, tokenFile: /var/run/t"
        );
    }

    #[test]
    fn json_token_values() {
        let r = clean(
            r#"{"user":{"token":"sha256~Zk3QaLkXw9pT0mZr","access_token": "a\"b-c"},"name":"admin"}"#,
            &[TOKEN, "b-c"],
        );
        assert!(r.contains(r#""token":"<redacted>""#), "{r}");
        assert!(r.contains(r#""name":"admin""#), "{r}");
    }

    #[test]
    fn client_key_data_but_not_certificate_data() {
        let r = clean(
            "client-certificate-data: Q0VSVERBVEE=\nclient-key-data: S0VZREFUQQ==\n",
            &["S0VZREFUQQ"],
        );
        assert!(r.contains("client-certificate-data: Q0VSVERBVEE="), "{r}");
    }

    #[test]
    fn jwts_anywhere() {
        let r = clean(
            &format!("remote secret carries {JWT}. next"),
            &["c2lnbmF0dXJl", "eyJzdWIi"],
        );
        assert_eq!(r, "remote secret carries <redacted jwt>. next");
        // Not a JWT: one dot only, or inside a longer word.
        assert_eq!(redact_text("eyJhbGci.only"), "eyJhbGci.only");
    }

    #[test]
    fn bearer_in_any_case() {
        clean(
            "authorization: bearer abc.def.ghi and BEARER xyz",
            &["abc.def.ghi", "xyz"],
        );
    }

    #[test]
    fn password_values() {
        let r = clean(
            "password: hunter2\nurl: https://u:pw@h?password=s3cret&x=1",
            &["hunter2", "s3cret&x"],
        );
        assert!(r.contains("password: <redacted>"), "{r}");
    }

    #[test]
    fn secret_data_maps_in_text() {
        let json = r#"Secret "cacerts" is invalid: {"kind":"Secret","data":{"ca-key.pem":"S0VZS0VZ","ca-cert.pem":"Q0VSVA=="},"type":"Opaque"}"#;
        let r = clean(json, &["S0VZS0VZ", "Q0VSVA"]);
        assert!(
            r.contains(r#""ca-key.pem":"<redacted>""#) && r.contains(r#""type":"Opaque""#),
            "{r}"
        );
        let yaml = "kind: Secret\ndata:\n  ca-key.pem: S0VZS0VZ\n  root-cert.pem: Q0VSVA==\ntype: Opaque\n";
        let r = clean(yaml, &["S0VZS0VZ", "Q0VSVA"]);
        assert!(r.ends_with("type: Opaque\n"), "{r}");
    }

    #[test]
    fn secret_list_items_have_no_kind_but_are_secrets() {
        let list = json!({"apiVersion": "v1", "kind": "SecretList", "items": [
            {"metadata": {"name": "cacerts"}, "data": {"ca-key.pem": "S0VZS0VZ"}},
        ]});
        let r = redact_object(&list);
        assert_eq!(r["items"][0]["data"]["ca-key.pem"], "<redacted 6 bytes>");
        assert_eq!(r["items"][0]["metadata"]["name"], "cacerts");
    }

    #[test]
    fn credential_keys_in_any_object() {
        let kubeconfig =
            json!({"users": [{"name": "a", "user": {"token": TOKEN, "client-key-data": "S0VZ"}}]});
        let text = redact_object(&kubeconfig).to_string();
        assert!(!text.contains(TOKEN) && !text.contains("S0VZ"), "{text}");
    }

    /// Generated credentials in every shape above, surrounded by generated text: none survives, and the text
    /// around them does.
    #[test]
    fn generated_inputs_never_leak() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let word = |n: usize, next: &mut dyn FnMut() -> u64| -> String {
            (0..n)
                .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize] as char)
                .collect()
        };
        for round in 0..500 {
            let secret = format!("S{}", word(12 + (next() % 40) as usize, &mut next));
            let around = format!("ctx{}", word(6, &mut next));
            let shapes = [
                format!("{around}\n  token: {secret}\n{around}"),
                format!(r#"{{"{around}":1,"token":"{secret}","b":2}}"#),
                format!("{around} Bearer {secret} {around}"),
                format!("{around} bearer {secret}"),
                format!("{around} eyJ{secret}.eyJ{secret}.{secret} {around}"),
                format!("client-key-data: {secret}\n{around}: x"),
                format!("{around}\npassword: \"{secret}\"\n"),
                format!("Secret {around}: {{\"data\":{{\"k\":\"{secret}\"}}}}"),
                format!(
                    "-----BEGIN RSA PRIVATE KEY-----\n{secret}\n-----END RSA PRIVATE KEY----- {around}"
                ),
            ];
            for text in &shapes {
                let r = redact_text(text);
                assert!(!r.contains(&secret), "round {round}: {text:?} -> {r:?}");
                assert!(r.contains(&around), "round {round}: {text:?} -> {r:?}");
            }
        }
    }

    #[test]
    fn client_secret_and_secret_keys() {
        let r = clean(
            "auth-provider:\n  config:\n    client-secret: cs-9f8e7d\n    secret: plain-s3\naws_secret_access_key=AKsecret42\n",
            &["cs-9f8e7d", "plain-s3", "AKsecret42"],
        );
        assert!(r.contains("client-secret: <redacted>"), "{r}");
        let r = clean(
            r#"{"clientSecret":"json-cs-1","secretName":"cacerts"}"#,
            &["json-cs-1"],
        );
        assert!(r.contains(r#""secretName":"cacerts""#), "{r}");
        // An object's name before a colon is not a key.
        let msg = "cluster c1: Secret istio-system/istio-ca-secret: forbidden";
        assert_eq!(redact_text(msg), msg);
        assert_eq!(
            redact_text("cannot read istio-ca-secret: not found"),
            "cannot read istio-ca-secret: not found"
        );
        let obj = redact_object(&json!({"config": {"client-secret": "obj-cs", "secretName": "x"}}));
        assert_eq!(obj["config"]["client-secret"], "<redacted 6 bytes>");
        assert_eq!(obj["config"]["secretName"], "x");
    }

    #[test]
    fn key_named_values_but_not_public_material() {
        let r = clean(
            "private_key: pk-0a1b\napi-key: ak-2c3d\nsigningKey: sk-4e5f\nca-cert: Q0FDRVJU\npublic-key: cHVi\nclient-certificate-data: Q0VSVA==\n",
            &["pk-0a1b", "ak-2c3d", "sk-4e5f"],
        );
        for kept in [
            "ca-cert: Q0FDRVJU",
            "public-key: cHVi",
            "client-certificate-data: Q0VSVA==",
        ] {
            assert!(r.contains(kept), "{kept}: {r}");
        }
        let obj = redact_object(&json!({"private_key": "pk", "ca-cert": "c", "key": "app"}));
        assert_eq!(obj["private_key"], "<redacted 2 bytes>");
        assert_eq!(obj["ca-cert"], "c");
        // A selector's or secretKeyRef's `key` names a key, it holds none.
        assert_eq!(obj["key"], "app");
    }

    #[test]
    fn exec_plugin_env_values() {
        let yaml = "users:\n- name: eks\n  user:\n    exec:\n      command: aws\n      env:\n      - name: AWS_PROFILE\n        value: prod-env-1\n      - name: VAULT_TOKEN\n        value: \"vt-env-2\"\n      args: [eks]\n";
        let r = clean(yaml, &["prod-env-1", "vt-env-2"]);
        assert!(
            r.contains("- name: AWS_PROFILE") && r.contains("args: [eks]"),
            "{r}"
        );
        let json =
            r#"{"exec":{"command":"aws","env":[{"name":"A","value":"json-env-3"}],"args":["x"]}}"#;
        let r = clean(json, &["json-env-3"]);
        assert!(r.contains(r#""args":["x"]"#), "{r}");
        let obj = redact_object(&serde_json::from_str(json).unwrap());
        assert_eq!(obj["exec"]["env"][0]["value"], "<redacted 10 bytes>");
        assert_eq!(obj["exec"]["env"][0]["name"], "A");
    }
}
