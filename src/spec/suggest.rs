//! "did you mean ...?" for misspelt field names and enum values.

/// The candidate closest to `word`, if it is close enough to be a likely typo.
pub fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let norm = normalize(word);
    let mut best: Option<(&'a str, f64)> = None;
    for &c in candidates {
        let cn = normalize(c);
        // trust_domain, TrustDomain, trust-domain all mean trustDomain.
        if cn == norm {
            return Some(c);
        }
        let score = strsim::normalized_damerau_levenshtein(&norm, &cn);
        if best.is_none_or(|(_, s)| score > s) {
            best = Some((c, score));
        }
    }
    best.filter(|&(c, score)| score >= 0.6 || (c.len() >= 4 && norm.contains(&normalize(c))))
        .map(|(c, _)| c)
}

/// `did you mean `x`?`, or the list of what is accepted.
pub fn hint(word: &str, candidates: &[&str]) -> String {
    match closest(word, candidates) {
        Some(c) => format!("did you mean `{c}`?"),
        None => format!("expected one of: {}", candidates.join(", ")),
    }
}

fn normalize(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, '_' | '-'))
        .flat_map(char::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLUSTER: &[&str] = &["name", "context", "network", "source", "locality"];

    #[test]
    fn typos_find_their_field() {
        assert_eq!(closest("netwrok", CLUSTER), Some("network"));
        assert_eq!(closest("Network", CLUSTER), Some("network"));
        assert_eq!(closest("contxt", CLUSTER), Some("context"));
        assert_eq!(
            closest("multi-primery", &["multi-primary", "primary-remote"]),
            Some("multi-primary")
        );
        assert_eq!(
            closest("trust_domain", &["id", "trustDomain"]),
            Some("trustDomain")
        );
    }

    #[test]
    fn unrelated_words_get_the_list() {
        assert_eq!(closest("replicas", CLUSTER), None);
        assert!(hint("replicas", CLUSTER).starts_with("expected one of: name, context"));
    }
}
