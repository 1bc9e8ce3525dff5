//! metadata.name rules (DNS-1123 label / subdomain, path segment).

use crate::status::Cause;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    /// Namespaces, services: `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63.
    Label,
    /// Most objects: labels joined by dots, at most 253.
    Subdomain,
    /// RBAC objects: anything but `/`, `%`, `.` and `..`.
    PathSegment,
}

/// What is wrong with `name` under `rule` (empty: valid).
pub fn name_causes(name: &str, rule: NameRule) -> Vec<Cause> {
    let message = match rule {
        NameRule::Label => check_label(name, 63).err().map(|why| {
            format!("Invalid value: \"{name}\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?'){why}")
        }),
        NameRule::Subdomain => {
            let bad = name.len() > 253 || name.split('.').any(|l| check_label(l, 253).is_err());
            bad.then(|| format!("Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"))
        }
        NameRule::PathSegment => (name == "." || name == ".." || name.contains('/') || name.contains('%'))
            .then(|| format!("Invalid value: \"{name}\": may not contain '/' or '%' and may not be '.' or '..'")),
    };
    message
        .map(|message| {
            vec![Cause {
                reason: "FieldValueInvalid".into(),
                message,
                field: "metadata.name".into(),
            }]
        })
        .unwrap_or_default()
}

fn check_label(label: &str, max: usize) -> Result<(), &'static str> {
    if label.is_empty() {
        return Err("");
    }
    if label.len() > max {
        return Err(", must be no more than 63 characters");
    }
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    let first = label.chars().next().is_some_and(|c| c != '-');
    let last = label.chars().last().is_some_and(|c| c != '-');
    if first && last && label.chars().all(ok_char) {
        Ok(())
    } else {
        Err("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(name_causes("web-1", NameRule::Label).is_empty());
        assert!(!name_causes("Web", NameRule::Label).is_empty());
        assert!(!name_causes("a.b", NameRule::Label).is_empty());
        assert!(name_causes("a.b", NameRule::Subdomain).is_empty());
        assert!(!name_causes("-a", NameRule::Subdomain).is_empty());
        assert!(!name_causes("", NameRule::Subdomain).is_empty());
        assert!(!name_causes(&"a".repeat(64), NameRule::Label).is_empty());
        assert!(name_causes("system:auth-delegator", NameRule::PathSegment).is_empty());
        assert!(!name_causes("a/b", NameRule::PathSegment).is_empty());
    }
}
