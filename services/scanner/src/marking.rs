//! What the gateway writes into the messages it passes: X-Spam-* headers, a tagged
//! Subject, and no Authentication-Results forged in our name.

use rempart_model::{Action, Verdict};

/// The X-Spam-* headers for a message the policy marks rather than refuses.
pub fn spam_headers(verdict: &Verdict, required: Option<f64>) -> String {
    let tests: Vec<&str> = verdict.symbols.iter().map(|s| s.name.as_str()).collect();
    let flag = if verdict.action >= Action::AddHeader { "Yes" } else { "No" };
    let required = required.map_or(String::new(), |r| format!(" required={r:.1}"));
    let listed: Vec<String> = verdict.symbols.iter().map(|s| format!("{}({:.2})", s.name, s.score)).collect();
    format!(
        "X-Spam-Status: {flag}, score={:.2}{required} tests={}\r\nX-Spam-Score: {:.2}\r\nX-Spam-Symbols: {}\r\n",
        verdict.score,
        if tests.is_empty() { "none".to_string() } else { tests.join(",") },
        verdict.score,
        if listed.is_empty() { "none".to_string() } else { listed.join(", ") }
    )
}

/// Prepends `tag` to the top-level Subject (adding a Subject when there is none).
pub fn tag_subject(message: &[u8], tag: &str) -> Vec<u8> {
    let header_end = message.windows(4).position(|w| w == b"\r\n\r\n").map_or(message.len(), |p| p + 2);
    let mut line_start = 0;
    while line_start < header_end {
        let line_end = message[line_start..header_end].windows(2).position(|w| w == b"\r\n").map_or(header_end, |p| line_start + p + 2);
        let line = &message[line_start..line_end];
        if line.len() >= 8 && line[..8].eq_ignore_ascii_case(b"subject:") {
            let mut value_start = line_start + 8;
            while message.get(value_start) == Some(&b' ') {
                value_start += 1;
            }
            let mut out = Vec::with_capacity(message.len() + tag.len() + 1);
            out.extend_from_slice(&message[..value_start]);
            out.extend_from_slice(tag.as_bytes());
            out.push(b' ');
            out.extend_from_slice(&message[value_start..]);
            return out;
        }
        line_start = line_end;
    }
    let mut out = format!("Subject: {tag}\r\n").into_bytes();
    out.extend_from_slice(message);
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn subject_tagging() {
        assert_eq!(
            super::tag_subject(b"From: a\r\nsubject:  Hi\r\n\r\nSubject: body\r\n", "[SPAM]"),
            b"From: a\r\nsubject:  [SPAM] Hi\r\n\r\nSubject: body\r\n"
        );
        assert_eq!(super::tag_subject(b"From: a\r\n\r\nbody", "[SPAM]"), b"Subject: [SPAM]\r\nFrom: a\r\n\r\nbody");
    }
}

/// Removes top-level Authentication-Results headers that claim to be ours
/// (`authserv_id`): RFC 8601 §5, so a sender cannot forge our verdict.
pub fn remove_forged_auth_results(message: &[u8], authserv_id: &str) -> Option<Vec<u8>> {
    let header_end = message.windows(4).position(|w| w == b"\r\n\r\n").map_or(message.len(), |p| p + 2);
    let mut out = Vec::with_capacity(message.len());
    let mut removed = false;
    let mut pos = 0;
    while pos < header_end {
        // One header field: its first line and any folded continuation lines.
        let mut end = pos;
        loop {
            end = message[end..header_end].windows(2).position(|w| w == b"\r\n").map_or(header_end, |p| end + p + 2);
            if end >= header_end || !matches!(message.get(end), Some(b' ' | b'\t')) {
                break;
            }
        }
        let field = &message[pos..end];
        let forged = field.len() > 23 && field[..23].eq_ignore_ascii_case(b"authentication-results:") && {
            let value = String::from_utf8_lossy(&field[23..]);
            let id = value.trim_start().split([';', ' ', '\r', '\n', '\t']).next().unwrap_or("");
            id.eq_ignore_ascii_case(authserv_id)
        };
        if forged {
            removed = true;
        } else {
            out.extend_from_slice(field);
        }
        pos = end;
    }
    out.extend_from_slice(&message[header_end..]);
    removed.then_some(out)
}

#[cfg(test)]
mod auth_results_tests {
    #[test]
    fn forged_results_for_our_id_are_removed() {
        let m = b"Authentication-Results: gw.test; dkim=pass\r\n\theader.d=bank.example\r\nAuthentication-Results: other.example; spf=fail\r\nFrom: a\r\n\r\nAuthentication-Results: gw.test; body\r\n";
        let cleaned = super::remove_forged_auth_results(m, "gw.test").unwrap();
        assert_eq!(cleaned, b"Authentication-Results: other.example; spf=fail\r\nFrom: a\r\n\r\nAuthentication-Results: gw.test; body\r\n");
        assert!(super::remove_forged_auth_results(b"From: a\r\n\r\nx", "gw.test").is_none());
    }
}
