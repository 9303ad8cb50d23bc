//! Envelope paths (`MAIL FROM:<…>`, `RCPT TO:<…>`) and their ESMTP parameters.

/// A parsed reverse- or forward-path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    /// `@a,@b:` was given before the mailbox (RFC 5321 source route).
    pub source_route: bool,
    /// `None` for the null path `<>`.
    pub mailbox: Option<Mailbox>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    /// The local part with quotes and escapes removed.
    pub local: String,
    pub quoted: bool,
    /// Lower-cased, trailing dot removed.
    pub domain: String,
}

impl Mailbox {
    pub fn address(&self) -> String {
        let local = if self.quoted { format!("\"{}\"", self.local.replace('\\', "\\\\").replace('"', "\\\"")) } else { self.local.clone() };
        format!("{local}@{}", self.domain)
    }

    /// `postmaster` (any case, unquoted): it exists in every domain (RFC 5321 §4.5.1).
    pub fn is_postmaster(&self) -> bool {
        !self.quoted && self.local.eq_ignore_ascii_case("postmaster")
    }

    /// Local parts that route mail elsewhere once they reach a naive MTA: `%`-hack,
    /// UUCP bang paths, or a quoted `@`.
    pub fn hides_another_route(&self) -> bool {
        self.local.contains(['%', '!']) || (self.quoted && self.local.contains('@'))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("no address given (the null sender is written <>)")]
    Missing,
    #[error("address is missing its closing '>'")]
    Unclosed,
    #[error("malformed address")]
    Malformed,
    #[error("address has no domain")]
    NoDomain,
    #[error("invalid domain")]
    BadDomain,
    #[error("non-ASCII address without SMTPUTF8")]
    NeedsUtf8,
}

/// Splits `<path> params…` (the text after `FROM:` / `TO:`) into the path and the rest.
/// No path at all (`MAIL FROM:` alone) is a syntax error, not the null path `<>`.
pub fn parse_path(arg: &str, utf8_allowed: bool) -> Result<(Path, &str), PathError> {
    let arg = arg.trim_start();
    if arg.is_empty() {
        return Err(PathError::Missing);
    }
    let (inner, rest) = if let Some(after) = arg.strip_prefix('<') {
        let end = find_closing(after).ok_or(PathError::Unclosed)?;
        (&after[..end], &after[end + 1..])
    } else {
        // Tolerate a bare address (no brackets), as many MTAs do.
        match arg.split_once(' ') {
            Some((a, r)) => (a, r),
            None => (arg, ""),
        }
    };
    if !rest.is_empty() && !rest.starts_with(' ') {
        return Err(PathError::Malformed);
    }
    if inner.is_empty() {
        return Ok((Path { source_route: false, mailbox: None }, rest.trim()));
    }
    if !utf8_allowed && !inner.is_ascii() {
        return Err(PathError::NeedsUtf8);
    }
    let (source_route, mailbox) = match inner.strip_prefix('@') {
        Some(routed) => (true, routed.split_once(':').ok_or(PathError::Malformed)?.1),
        None => (false, inner),
    };
    Ok((Path { source_route, mailbox: Some(parse_mailbox(mailbox)?) }, rest.trim()))
}

/// `<Postmaster>` without a domain (RFC 5321 §4.1.1.3), which every server must accept;
/// gives the parameters after it.
pub fn strip_bare_postmaster(arg: &str) -> Option<&str> {
    let arg = arg.trim_start();
    let (inner, rest) = match arg.strip_prefix('<') {
        Some(after) => after.split_once('>')?,
        None => arg.split_once(' ').unwrap_or((arg, "")),
    };
    (inner.eq_ignore_ascii_case("postmaster") && (rest.is_empty() || rest.starts_with(' '))).then(|| rest.trim())
}

/// Index of the `>` closing the path, skipping over a quoted local part.
fn find_closing(s: &str) -> Option<usize> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '>' if !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

fn parse_mailbox(s: &str) -> Result<Mailbox, PathError> {
    let (local, quoted, domain) = if let Some(q) = s.strip_prefix('"') {
        let mut local = String::new();
        let mut chars = q.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                // quoted-pairSMTP is a backslash and a printable ASCII character (RFC
                // 5321 section 4.1.2): never a control character.
                '\\' => match chars.next().ok_or(PathError::Malformed)?.1 {
                    c @ ' '..='~' => local.push(c),
                    _ => return Err(PathError::Malformed),
                },
                '"' => {
                    end = Some(i);
                    break;
                }
                c if c.is_control() => return Err(PathError::Malformed),
                c => local.push(c),
            }
        }
        let end = end.ok_or(PathError::Malformed)?;
        let domain = q[end + 1..].strip_prefix('@').ok_or(PathError::NoDomain)?;
        (local, true, domain)
    } else {
        let (local, domain) = s.split_once('@').ok_or(PathError::NoDomain)?;
        let atext = |c: char| c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c) || (!c.is_ascii() && !c.is_control());
        if local.is_empty() || !local.chars().all(atext) || local.starts_with('.') || local.ends_with('.') || local.contains("..") {
            return Err(PathError::Malformed);
        }
        (local.to_string(), false, domain)
    };
    let domain = domain.trim_end_matches('.').to_lowercase();
    if !valid_domain(&domain) {
        return Err(PathError::BadDomain);
    }
    Ok(Mailbox { local, quoted, domain })
}

fn valid_domain(d: &str) -> bool {
    if let Some(literal) = d.strip_prefix('[') {
        // dcontent: printable ASCII but the brackets and backslash (RFC 5321 section 4.1.3).
        return literal
            .strip_suffix(']')
            .is_some_and(|inner| !inner.is_empty() && inner.bytes().all(|b| matches!(b, b'!'..=b'Z' | b'^'..=b'~')));
    }
    !d.is_empty()
        && d.len() <= 255
        && d.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-' || (!c.is_ascii() && !c.is_control()))
        })
}

/// Parses ESMTP parameters (`KEY=VALUE` or `KEY`), keys upper-cased.
/// A parameter whose keyword is not `esmtp-keyword` (RFC 5321 section 4.1.2).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid ESMTP parameter")]
pub struct BadParameter;

pub fn parse_params(rest: &str) -> Result<Vec<(String, Option<String>)>, BadParameter> {
    rest.split_ascii_whitespace()
        .map(|p| {
            let (k, v) = match p.split_once('=') {
                Some((k, v)) => (k, Some(v.to_string())),
                None => (p, None),
            };
            if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                return Err(BadParameter);
            }
            Ok((k.to_ascii_uppercase(), v))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mailbox(arg: &str) -> Mailbox {
        parse_path(arg, false).unwrap().0.mailbox.unwrap()
    }

    #[test]
    fn parses_paths_and_params() {
        let (p, rest) = parse_path("<Alice@Example.COM.> SIZE=10 BODY=8BITMIME", false).unwrap();
        assert_eq!(p.mailbox.unwrap().address(), "Alice@example.com");
        assert_eq!(parse_params(rest).unwrap(), vec![("SIZE".into(), Some("10".into())), ("BODY".into(), Some("8BITMIME".into()))]);
        assert_eq!(parse_path("<>", false).unwrap().0.mailbox, None);
        assert_eq!(mailbox(" bob@example.com").domain, "example.com");
        let q = mailbox("<\"john doe\"@example.com>");
        assert!(q.quoted && q.local == "john doe");
        assert_eq!(q.address(), "\"john doe\"@example.com");
    }

    #[test]
    fn detects_relay_tricks() {
        assert!(parse_path("<@relay.example:user@example.com>", false).unwrap().0.source_route);
        assert!(mailbox("<user%other.example@example.com>").hides_another_route());
        assert!(mailbox("<other.example!user@example.com>").hides_another_route());
        assert!(mailbox("<\"user@other.example\"@example.com>").hides_another_route());
        assert!(!mailbox("<user.name+tag@example.com>").hides_another_route());
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "<user@example.com",
            "<user>",
            "<a@b@c.example>",
            "<@x>",
            "<.a@b.example>",
            "<a@-b.example>",
            "<a@b..example>",
            "<\"unterminated@x.example>",
            "<a@b.example>junk",
        ] {
            assert!(parse_path(bad, false).is_err(), "{bad}");
        }
        assert_eq!(parse_path("<jös@b.example>", false).unwrap_err(), PathError::NeedsUtf8);
        assert_eq!(parse_path("", false).unwrap_err(), PathError::Missing);
        assert_eq!(parse_path("   ", false).unwrap_err(), PathError::Missing);
        assert!(parse_path("<jös@b.example>", true).is_ok());
    }

    #[test]
    fn bare_postmaster() {
        assert_eq!(strip_bare_postmaster("<Postmaster>"), Some(""));
        assert_eq!(strip_bare_postmaster(" <postmaster> NOTIFY=NEVER"), Some("NOTIFY=NEVER"));
        assert_eq!(strip_bare_postmaster("POSTMASTER"), Some(""));
        assert_eq!(strip_bare_postmaster("<postmaster@example.com>"), None);
        assert_eq!(strip_bare_postmaster("<postmaster>x"), None);
        assert_eq!(strip_bare_postmaster("<postmasters>"), None);
    }

    /// Issue 30, defects 10 and 11: control characters hidden in envelope parameters
    /// and addresses were accepted and relayed verbatim.
    #[test]
    fn control_characters_are_refused_everywhere_in_a_path() {
        for bad in [
            "<\"a\\\rb\"@example.com>",
            "<\"a\\\u{0}b\"@example.com>",
            "<a@[127.0.0.1\u{0}]>",
            "<a@[1.2.3.4\r]>",
            "<a\u{85}b@example.com>",
            "<a@exa\u{85}mple.com>",
        ] {
            assert!(parse_path(bad, true).is_err(), "{bad:?}");
        }
        assert!(parse_path("<\"a\\\"b\"@example.com>", false).is_ok());
        assert!(parse_path("<a@[192.0.2.1]>", false).is_ok());
    }
}
