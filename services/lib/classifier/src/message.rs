//! The message, parsed once (mail-parser) and summarised for the checks.

use mail_parser::{Message, MessageParser, MimeHeaders, PartType};

use crate::html::{self, Html};

/// Parts beyond this many are not looked at (a hostile message can have thousands).
pub const MAX_PARTS: usize = 1000;

pub struct Analysis<'a> {
    /// `None` when the message could not be parsed at all (empty, or not a message).
    pub message: Option<Message<'a>>,
    pub plain_parts: usize,
    pub html_parts: usize,
    pub multipart: bool,
    pub alternative: bool,
    pub html: Vec<Html>,
    /// Text of the first text/plain part (for comparing with the HTML).
    pub plain_text: String,
    pub attachment_names: Vec<String>,
    /// Each attachment's real type and contents (archives opened, documents looked into),
    /// once `inspect_attachments` ran (the scanner's checks need it; learning does not).
    pub attachments: Vec<crate::attachments::Attachment>,
}

impl<'a> Analysis<'a> {
    pub fn new(raw: &'a [u8]) -> Self {
        let parsed = parse_guarded(raw).map(|m| match with_multiparts_closed(&m, raw) {
            Some(closed) => parse_guarded(&closed).map(Message::into_owned).unwrap_or(m),
            None => m,
        });
        let mut a = Analysis {
            message: parsed,
            plain_parts: 0,
            html_parts: 0,
            multipart: false,
            alternative: false,
            html: Vec::new(),
            plain_text: String::new(),
            attachment_names: Vec::new(),
            attachments: Vec::new(),
        };
        let mut parts = Vec::new();
        for part in a.message.iter().flat_map(|m| m.parts.iter()).take(MAX_PARTS) {
            let attachment = part.attachment_name().map(str::to_string);
            let subtype = part.content_type().and_then(|c| c.subtype()).map(str::to_ascii_lowercase);
            parts.push((attachment, subtype, &part.body));
        }
        let mut html = Vec::new();
        let mut plain = None;
        let (mut plain_parts, mut html_parts, mut multipart, mut alternative) = (0, 0, false, false);
        let mut names = Vec::new();
        for (attachment, subtype, body) in parts {
            if let Some(name) = attachment {
                names.push(name);
                continue;
            }
            match body {
                PartType::Text(text) if subtype.as_deref().is_none_or(|s| s == "plain") => {
                    plain_parts += 1;
                    plain.get_or_insert_with(|| text.to_string());
                }
                PartType::Html(text) => {
                    html_parts += 1;
                    html.push(html::analyse(text));
                }
                PartType::Multipart(_) => {
                    multipart = true;
                    alternative |= subtype.as_deref() == Some("alternative");
                }
                _ => {}
            }
        }
        a.html = html;
        a.plain_text = plain.unwrap_or_default();
        (a.plain_parts, a.html_parts, a.multipart, a.alternative) = (plain_parts, html_parts, multipart, alternative);
        a.attachment_names = names;
        a
    }

    /// Opens the attachments (`attachments`): archives decompressed within the limits.
    pub fn inspect_attachments(&mut self) {
        if let Some(message) = &self.message {
            self.attachments = crate::attachments::inspect(message, &crate::attachments::Limits::default(), MAX_PARTS);
        }
    }

    /// Top-level header present (by name, case-insensitive).
    pub fn has_header(&self, name: &str) -> bool {
        self.message.as_ref().is_some_and(|m| m.headers().iter().any(|h| h.name().eq_ignore_ascii_case(name)))
    }

    pub fn subject(&self) -> Option<&str> {
        self.message.as_ref()?.subject()
    }

    /// The registrable domains of the links in the message (HTML hrefs and image
    /// sources, and http(s):// or www. words in the text), in order, at most `max`.
    pub fn link_domains(&self, max: usize) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut add = |candidate: &str| {
            if out.len() < max
                && let Some(host) = crate::hosts::host_of(candidate)
                && host.parse::<std::net::IpAddr>().is_err()
            {
                let domain = crate::hosts::registrable(&host);
                if !out.contains(&domain) {
                    out.push(domain);
                }
            }
        };
        for h in &self.html {
            for a in &h.anchors {
                add(&a.href);
            }
        }
        for word in self.text_links() {
            add(word);
        }
        out
    }

    /// The words of the text (plain and HTML) written as links: `http://`, `https://` or
    /// `www.` in any case.
    pub fn text_links(&self) -> impl Iterator<Item = &str> {
        let texts = std::iter::once(self.plain_text.as_str()).chain(self.html.iter().map(|h| h.text.as_str()));
        let words = texts.flat_map(|t| t.split(|c: char| c.is_whitespace() || c == '<' || c == '>' || c == '"' || c == '(' || c == ')'));
        words.filter(|word| {
            let start = word.get(..8).unwrap_or(word).to_ascii_lowercase();
            start.starts_with("http://") || start.starts_with("https://") || start.starts_with("www.")
        })
    }

    /// The addresses in the top-level From header, lower-cased.
    pub fn from_addresses(&self) -> Vec<String> {
        let from = self.message.as_ref().and_then(|m| m.from());
        from.map(|f| f.iter().filter_map(|a| a.address()).map(str::to_ascii_lowercase).collect()).unwrap_or_default()
    }
}

/// mail-parser's parse. A parser bug must not take the gateway or the CLI down: a panic
/// makes the message unparseable (it then scores as having no headers).
fn parse_guarded(raw: &[u8]) -> Option<Message<'_>> {
    std::panic::catch_unwind(|| MessageParser::default().parse(raw)).unwrap_or_else(|_| {
        tracing::warn!(size = raw.len(), "the MIME parser failed on a message; scoring it as unparseable");
        None
    })
}

/// The message with the closing delimiters of its open multiparts appended, when a part
/// could not be decoded for want of one. mail-parser cannot decode a base64 part that no
/// boundary ends (a truncated message, or one cut short on purpose) and keeps its text
/// undecoded, out of reach of every content check; mail programs show it. `None`: nothing
/// to mend.
fn with_multiparts_closed(message: &Message<'_>, raw: &[u8]) -> Option<Vec<u8>> {
    if !message.parts.iter().any(|p| p.is_encoding_problem) {
        return None;
    }
    let open: Vec<String> = message
        .parts
        .iter()
        .filter(|p| matches!(p.body, PartType::Multipart(_)))
        .filter_map(|p| p.content_type()?.attribute("boundary"))
        .map(|boundary| format!("--{boundary}--"))
        .filter(|closing| !raw.windows(closing.len()).any(|w| w == closing.as_bytes()))
        .collect();
    if open.is_empty() {
        return None;
    }
    let mut closed = raw.to_vec();
    // Innermost (declared last) first.
    for closing in open.iter().rev() {
        closed.extend_from_slice(b"\r\n");
        closed.extend_from_slice(closing.as_bytes());
    }
    closed.extend_from_slice(b"\r\n");
    Some(closed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_base64_part_without_its_closing_boundary_is_still_read() {
        let raw = b"From: a@b.example\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"XX\"\r\n\r\n--XX\r\n\
Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\nSGVsbG8gdGhlcmUsIGNsaWNrIGhlcmUgdG8gd2luIGEgY2FzaW5vIGJvbnVz\r\n";
        let analysis = Analysis::new(raw);
        assert_eq!(analysis.plain_text.trim(), "Hello there, click here to win a casino bonus");
        let html = b"From: a@b.example\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"XX\"\r\n\r\n--XX\r\n\
Content-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\n\r\nPHA+Q2FzaW5vIGJvbnVzPC9wPg==\r\n";
        let analysis = Analysis::new(html);
        assert_eq!(analysis.html.len(), 1);
        assert!(analysis.html[0].text.contains("Casino bonus"), "{:?}", analysis.html[0].text);
        // A well-formed message is parsed as it is.
        let whole = b"From: a@b.example\r\nContent-Type: multipart/mixed; boundary=\"XX\"\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\nHi\r\n--XX--\r\n";
        assert_eq!(Analysis::new(whole).plain_text.trim(), "Hi");
    }

    #[test]
    fn legacy_cjk_charsets_are_decoded() {
        // "日本語" in ISO-2022-JP: an encoded word in the Subject, 7-bit escapes in the body.
        let raw = b"From: a@example.jp\r\nSubject: =?iso-2022-jp?B?GyRCRnxLXDhsGyhC?=\r\nContent-Type: text/plain; charset=iso-2022-jp\r\n\r\n\x1b$BF|K\\8l\x1b(B\r\n";
        let analysis = Analysis::new(raw);
        assert_eq!(analysis.subject(), Some("日本語"));
        assert!(analysis.plain_text.contains("日本語"), "{:?}", analysis.plain_text);
    }
}
