//! What the scanner asks the gateway to change in a message it passes (as rspamd
//! returns `add_headers` / `remove_headers`, and Stalwart's hooks modifications): the
//! scanner decides, the edge and the queued scan apply, so the two cannot differ.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Edits {
    /// Header fields above the gateway's own trace header, each with its CRLF
    /// (Authentication-Results goes on top, RFC 8601 §5).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub add_top: Vec<String>,
    /// Header fields below the trace header, above the original ones (X-Spam-*).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub add_headers: Vec<String>,
    /// Top-level Authentication-Results fields that claim this authserv-id are
    /// removed, so a sender cannot forge our verdict.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remove_auth_results_of: Option<String>,
    /// Put before the Subject (a Subject is added when there is none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject_tag: Option<String>,
    /// Parts replaced by a text saying what was removed (malware policy `strip`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub strip: Vec<StrippedPart>,
}

/// A MIME part to replace: its bytes in the message as received (from its first header
/// to the end of its body) and the text that takes its place, where `{queue_id}` is
/// filled in when the message is queued.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StrippedPart {
    pub start: u64,
    pub end: u64,
    pub text: String,
}

impl Edits {
    /// The message with its stripped parts replaced, each by a `text/plain` part. Done
    /// before anything else (the offsets are the received message's) and before DKIM
    /// signing, so a signature covers what is delivered. A range that does not fit the
    /// message is left alone.
    pub fn strip(&self, message: Vec<u8>, queue_id: &str) -> Vec<u8> {
        if self.strip.is_empty() {
            return message;
        }
        let mut parts: Vec<&StrippedPart> = self.strip.iter().collect();
        parts.sort_by_key(|p| std::cmp::Reverse(p.start));
        let mut out = message;
        let mut floor = u64::MAX;
        for part in parts {
            if part.start >= part.end || part.end > out.len() as u64 || part.end > floor {
                continue;
            }
            let text = part.text.replace("{queue_id}", queue_id);
            let replacement = format!(
                "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\nContent-Disposition: inline\r\n\r\n{text}"
            );
            out.splice(part.start as usize..part.end as usize, replacement.into_bytes());
            floor = part.start;
        }
        out
    }

    /// The message as it goes on: `add_top`, then `trace` (the gateway's Received
    /// header, or "" when the message already has it), then `add_headers`, then the
    /// original with its forged results removed and its Subject tagged.
    pub fn apply(&self, trace: &str, message: Vec<u8>) -> Vec<u8> {
        let mut body = message;
        if let Some(id) = &self.remove_auth_results_of
            && let Some(cleaned) = remove_forged_auth_results(&body, id)
        {
            body = cleaned;
        }
        if let Some(tag) = &self.subject_tag {
            body = tag_subject(&body, tag);
        }
        let added: usize = self.add_top.iter().chain(&self.add_headers).map(String::len).sum::<usize>() + trace.len();
        let mut out = Vec::with_capacity(body.len() + added);
        for field in &self.add_top {
            out.extend_from_slice(field.as_bytes());
        }
        out.extend_from_slice(trace.as_bytes());
        for field in &self.add_headers {
            out.extend_from_slice(field.as_bytes());
        }
        out.extend_from_slice(&body);
        out
    }
}

/// How the gateway refuses a message in the SMTP session, with the reason and the
/// page that explains it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub code: u16,
    pub status: String,
    pub text: String,
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
mod tag_tests {
    #[test]
    fn subject_tagging() {
        assert_eq!(
            super::tag_subject(b"From: a\r\nsubject:  Hi\r\n\r\nSubject: body\r\n", "[SPAM]"),
            b"From: a\r\nsubject:  [SPAM] Hi\r\n\r\nSubject: body\r\n"
        );
        assert_eq!(super::tag_subject(b"From: a\r\n\r\nbody", "[SPAM]"), b"Subject: [SPAM]\r\nFrom: a\r\n\r\nbody");
    }
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

#[cfg(test)]
mod apply_tests {
    use super::Edits;

    #[test]
    fn edits_apply_in_order() {
        let edits = Edits {
            add_top: vec!["Authentication-Results: gw.test; spf=pass\r\n".into()],
            add_headers: vec!["X-Spam-Status: Yes\r\n".into()],
            remove_auth_results_of: Some("gw.test".into()),
            subject_tag: Some("[SPAM]".into()),
            strip: Vec::new(),
        };
        let out =
            edits.apply("Received: by gw.test\r\n", b"Authentication-Results: gw.test; forged\r\nSubject: hi\r\n\r\nbody\r\n".to_vec());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "Authentication-Results: gw.test; spf=pass\r\nReceived: by gw.test\r\nX-Spam-Status: Yes\r\nSubject: [SPAM] hi\r\n\r\nbody\r\n"
        );
        assert_eq!(Edits::default().apply("", b"x".to_vec()), b"x");
    }
}
