//! Hosts in link text and their registrable domains, as the tokenizer and the link
//! checks read them.

/// The host of `https://host/...`, `www.host/...` or `host.tld`; None for other text.
pub fn host_of(s: &str) -> Option<String> {
    let lower = s.to_ascii_lowercase();
    let rest = lower.strip_prefix("https://").or_else(|| lower.strip_prefix("http://")).unwrap_or(&lower);
    if lower == rest && !rest.starts_with("www.") && rest.contains(|c: char| c == '/' || c.is_whitespace()) {
        return None;
    }
    let host = rest.split(['/', '?', '#', ':']).next()?.trim_end_matches('.');
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let valid = !host.is_empty() && host.contains('.') && host.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
    let tld_is_alpha = host.rsplit('.').next().is_some_and(|t| t.len() >= 2 && t.chars().all(|c| c.is_ascii_alphabetic()));
    (valid && tld_is_alpha).then(|| host.to_string())
}

/// The last two labels, or three under common second-level suffixes (co.uk, com.au…).
pub fn registrable(host: &str) -> String {
    let labels: Vec<&str> = host.split('.').collect();
    let n = labels.len();
    let second_level =
        n >= 3 && ["co", "com", "net", "org", "gov", "ac", "edu", "gouv", "asso"].contains(&labels[n - 2]) && labels[n - 1].len() == 2;
    let keep = if second_level { 3 } else { 2 };
    labels[n.saturating_sub(keep)..].join(".")
}
