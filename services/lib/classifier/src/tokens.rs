//! The Bayes tokenizer: words of the Subject and of the decoded text and HTML parts,
//! the domains of links, and a few header tokens, each hashed to 64 bits (FNV-1a: a
//! hash that never changes between builds, since the model is stored).

use mail_parser::MimeHeaders;

use crate::message::Analysis;

/// Most tokens taken from one message.
const MAX_TOKENS: usize = 5000;

/// A stable 64-bit hash (FNV-1a).
pub fn hash(bytes: &[u8]) -> u64 {
    hash_parts(&[bytes])
}

/// FNV-1a's starting value: the hash of nothing.
pub(crate) const HASH_START: u64 = 0xcbf2_9ce4_8422_2325;

/// The hash of the concatenation of `parts`, without building it.
fn hash_parts(parts: &[&[u8]]) -> u64 {
    parts.iter().fold(HASH_START, |h, part| hash_more(h, part))
}

/// FNV-1a continued from `h` (the hash so far) over `bytes`.
pub(crate) fn hash_more(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// What learning a message needs: its identity and tokens; `None` when the bytes are
/// not a message (no headers). The one way `rempart learn` and the console learn.
pub fn learnable(raw: &[u8]) -> Option<(u64, Vec<u64>)> {
    learnable_from(raw, &Analysis::new(raw))
}

/// `learnable` of a message already parsed.
fn learnable_from(raw: &[u8], analysis: &Analysis<'_>) -> Option<(u64, Vec<u64>)> {
    if analysis.message.as_ref().is_none_or(|m| m.headers().is_empty()) {
        return None;
    }
    Some((message_identity(raw, analysis), tokens(analysis)))
}

/// All that learning a message needs, from one parse: what Bayes learns (`learnable`)
/// and what the campaign memory remembers (its fuzzy fingerprint).
pub fn learnable_with_fingerprint(raw: &[u8]) -> (Option<(u64, Vec<u64>)>, crate::fuzzy::Fingerprint) {
    let analysis = Analysis::new(raw);
    (learnable_from(raw, &analysis), crate::fuzzy::fingerprint(&analysis))
}

/// The message's identity for learning: its Message-ID, else its bytes.
pub fn message_identity(raw: &[u8], analysis: &Analysis<'_>) -> u64 {
    match analysis.message.as_ref().and_then(|m| m.message_id()) {
        Some(id) if !id.trim().is_empty() => hash(format!("id:{}", id.trim()).as_bytes()),
        _ => hash(raw),
    }
}

/// The message's tokens (hashed, unique).
pub fn tokens(analysis: &Analysis<'_>) -> Vec<u64> {
    let mut out: Vec<u64> = Vec::new();
    let mut add_parts = |parts: &[&[u8]]| {
        if out.len() < MAX_TOKENS {
            out.push(hash_parts(parts));
        }
    };
    // A pair "a b" hashed in place: no string built per pair.
    macro_rules! add {
        ($prefix:expr, $token:expr) => {
            add_parts(&[$prefix.as_bytes(), $token.as_bytes()])
        };
    }
    macro_rules! add_pair {
        ($prefix:expr, $a:expr, $b:expr) => {
            add_parts(&[$prefix.as_bytes(), $a.as_bytes(), b" ", $b.as_bytes()])
        };
    }
    if let Some(subject) = analysis.subject() {
        let subject_words: Vec<String> = words(subject).collect();
        for word in &subject_words {
            add!("S:", word);
        }
        for pair in subject_words.windows(2) {
            add_pair!("SB:", pair[0], pair[1]);
        }
    }
    let texts = std::iter::once(analysis.plain_text.as_str()).chain(analysis.html.iter().map(|h| h.text.as_str()));
    for text in texts {
        let body_words: Vec<String> = words(text).collect();
        for word in &body_words {
            add!("", word);
        }
        // Word pairs (orthogonal sparse bigrams): "click here" says more than "click"
        // and "here".
        for pair in body_words.windows(2) {
            add_pair!("B:", pair[0], pair[1]);
        }
        // And with one word skipped (OSB's next distance): "click _ here" survives
        // the filler words spammers insert between the words filters know.
        for triple in body_words.windows(3) {
            add_pair!("B2:", triple[0], triple[2]);
        }
    }
    for domain in analysis.link_domains(100) {
        add!("U:", &domain);
    }
    for href in analysis.html.iter().flat_map(|h| h.anchors.iter().map(|a| a.href.as_str())).take(100) {
        if let Some(shape) = url_shape(href) {
            add!("U:shape:", &shape);
        }
    }
    if let Some(message) = &analysis.message {
        for address in analysis.from_addresses() {
            if let Some((_, domain)) = address.rsplit_once('@') {
                add!("H:from:", domain);
            }
        }
        if let Some(id) = message.message_id()
            && let Some((_, domain)) = id.rsplit_once('@')
        {
            add!("H:mid:", &domain.to_ascii_lowercase());
        }
        for name in ["X-Mailer", "User-Agent"] {
            if let Some(value) = message.header(name).and_then(|v| v.as_text()) {
                add!("H:mailer:", &value.chars().take(40).collect::<String>().to_ascii_lowercase());
            }
        }
        if let Some(ct) = message.content_type() {
            add!("H:ct:", &format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or("")).to_ascii_lowercase());
        }
        // The headers' names and the Received chain's length: the mailer's fingerprint.
        // And the relays the message came through (the first 10): their domains,
        // networks and software (SpamAssassin's Bayes reads Received the same way):
        // spam comes back through the same senders' networks, newsletters through their own.
        let mut received = 0;
        for header in message.headers() {
            let name = header.name().to_ascii_lowercase();
            add!("H:name:", &name);
            if name != "received" {
                continue;
            }
            received += 1;
            if received > 10 {
                continue;
            }
            if let Some(relay) = header.value().as_received() {
                for (prefix, host) in [("R:from:", &relay.from), ("R:helo:", &relay.helo), ("R:by:", &relay.by)] {
                    if let Some(mail_parser::Host::Name(name)) = host {
                        add!(prefix, &domain_of(name));
                    }
                }
                if let Some(domain) = relay.from_iprev.as_deref() {
                    add!("R:rdns:", &domain_of(domain));
                }
                if let Some(std::net::IpAddr::V4(ip)) = relay.from_ip
                    && !(ip.is_loopback() || ip.is_private())
                {
                    let [a, b, c, _] = ip.octets();
                    add!("R:ip16:", &format!("{a}.{b}"));
                    add!("R:ip24:", &format!("{a}.{b}.{c}"));
                }
                if let Some(with) = relay.with {
                    add!("R:with:", with.as_str());
                }
            }
            let raw = message.raw_message().get(header.offset_start() as usize..header.offset_end() as usize).unwrap_or_default();
            for word in words(&String::from_utf8_lossy(raw)) {
                add!("R:", &word);
            }
        }
        add!("H:received:", &received.min(10).to_string());
        if let Some(date) = message.header_raw("Date") {
            add!("H:date:", &shape(date.trim()));
        }
        if let Some(id) = message.message_id() {
            add!("H:midshape:", &shape(id.split('@').next().unwrap_or(id)));
        }
        let recipients = ["To", "Cc"]
            .iter()
            .filter_map(|name| message.header(*name).and_then(|v| v.as_address()))
            .map(|a| a.iter().count())
            .sum::<usize>();
        add!("H:rcpts:", &recipients.min(10).to_string());
        for (index, part) in message.parts.iter().take(100).enumerate() {
            if let Some(boundary) = part.content_type().and_then(|ct| ct.attribute("boundary")).filter(|_| index < 10) {
                add!("H:boundary:", &shape(boundary));
            }
            if let Some(ct) = part.content_type() {
                let charset = ct.attribute("charset").unwrap_or("none").to_ascii_lowercase();
                add!("H:part:", &format!("{}/{} {charset}", ct.ctype(), ct.subtype().unwrap_or("")).to_ascii_lowercase());
            }
            if let Some(encoding) = part.content_transfer_encoding() {
                add!("H:cte:", &encoding.to_ascii_lowercase());
            }
        }
        if let Some(from) = message.from().and_then(|f| f.first())
            && let Some(display) = from.name()
        {
            for word in words(display) {
                add!("F:", &word);
            }
        }
        for (name, prefix) in [("Reply-To", "H:replyto:"), ("Return-Path", "H:rpath:")] {
            let address = message.header(name).and_then(|v| v.as_address()).and_then(|a| a.first()).and_then(|a| a.address());
            if let Some((_, domain)) = address.and_then(|a| a.rsplit_once('@')) {
                add!(prefix, domain.to_ascii_lowercase());
            }
        }
    }
    for name in &analysis.attachment_names {
        if let Some((_, ext)) = name.rsplit_once('.') {
            add!("A:", &ext.to_ascii_lowercase());
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// A link's host and the shape of its path: "host/first-segment" with digits as 9,
/// or "ip" for an IP-literal host; `None` for what is not an http(s) link.
fn url_shape(href: &str) -> Option<String> {
    let lower = href.trim().to_ascii_lowercase();
    let rest = lower.strip_prefix("http://").or_else(|| lower.strip_prefix("https://"))?;
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let host = host.rsplit('@').next().unwrap_or(host).split(':').next().unwrap_or(host);
    let host = if host.parse::<std::net::IpAddr>().is_ok() { "ip" } else { host };
    let first: String =
        path.split(['/', '?', '#']).next().unwrap_or("").chars().take(20).map(|c| if c.is_ascii_digit() { '9' } else { c }).collect();
    Some(format!("{host}/{first}"))
}

/// A host name's registrable domain, lower case ("mx1.mail.example.co.uk" → "example.co.uk").
fn domain_of(host: &str) -> String {
    crate::hosts::registrable(&host.trim_end_matches('.').to_ascii_lowercase())
}

/// The shape of a value: each run of digits as "9", of lower-case letters as "a", of
/// upper-case as "A"; the rest kept ("Thu, 8 Aug 2002 02:20:02 -0500" → "Aa, 9 Aa 9:9:9 -9").
/// Mailers and spamware each write dates and message IDs their own way.
fn shape(value: &str) -> String {
    let mut out = String::new();
    for c in value.chars().take(80) {
        let class = if c.is_ascii_digit() {
            '9'
        } else if c.is_lowercase() {
            'a'
        } else if c.is_uppercase() {
            'A'
        } else {
            c
        };
        if !(matches!(class, '9' | 'a' | 'A') && out.ends_with(class)) {
            out.push(class);
        }
    }
    out
}

/// Lower-cased words of 3 to 15 characters; a longer one becomes a "skip" token of
/// its first 7 characters (as SpamAssassin does), so random strings do not bloat
/// the table.
fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '-' || c == '$' || c == '!'))
        .map(|w| w.trim_matches(|c| c == '\'' || c == '-'))
        .filter(|w| w.chars().count() >= 3)
        .map(|w| {
            let lower = w.to_lowercase();
            if lower.chars().count() > 15 { format!("sk:{}", lower.chars().take(7).collect::<String>()) } else { lower }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_and_meaningful() {
        assert_eq!(hash(b"viagra"), hash(b"viagra"));
        assert_eq!(hash(b""), 0xcbf2_9ce4_8422_2325, "FNV-1a offset basis: the hash must never change");
        let raw = b"From: A <a@shop.example>\r\nSubject: Cheap Watches\r\nMessage-ID: <1@shop.example>\r\n\r\nBuy cheap watches at http://www.shop.example/ now!!! aVeryLongRandomStringOfLetters\r\n";
        let analysis = Analysis::new(raw);
        let t = tokens(&analysis);
        for expected in ["S:cheap", "S:watches", "buy", "cheap", "watches", "U:shop.example", "H:from:shop.example", "sk:averylo"] {
            assert!(t.contains(&hash(expected.as_bytes())), "missing {expected}");
        }
        assert!(!t.contains(&hash(b"at")), "too short");
        assert_eq!(message_identity(raw, &analysis), hash(b"id:1@shop.example"));
    }

    #[test]
    fn relays_and_header_shapes_are_tokens() {
        let raw = b"Received: from rly116.threeloot.com (rly116.threeloot.com [64.39.19.116])\r\n\tby mx.example.org (Postfix) with ESMTP id 4A04329409E\r\n\tfor <a@example.org>; Thu, 8 Aug 2002 00:15:54 -0700\r\n\
Received: from lan (lan [10.0.0.1]) by rly116.threeloot.com with SMTP; Thu, 8 Aug 2002 00:15:50 -0700\r\n\
From: a@shop.example\r\nTo: a@example.org, b@example.org\r\nDate: Thu, 8 Aug 2002 02:20:02 -0500\r\nMessage-ID: <200208080720.g787K2p16608@shop.example>\r\n\
Content-Type: multipart/alternative; boundary=\"----=_NextPart_000_0001\"\r\n\r\n------=_NextPart_000_0001\r\nContent-Type: text/plain\r\n\r\nhello there\r\n------=_NextPart_000_0001--\r\n";
        let t = tokens(&Analysis::new(raw));
        for expected in [
            "R:from:threeloot.com",
            "R:by:example.org",
            "R:ip16:64.39",
            "R:ip24:64.39.19",
            "R:with:ESMTP",
            "R:postfix",
            "H:date:Aa, 9 Aa 9 9:9:9 -9",
            "H:midshape:9.a9A9a9",
            "H:boundary:----=_AaAa_9_9",
            "H:rcpts:2",
        ] {
            assert!(t.contains(&hash(expected.as_bytes())), "missing {expected}");
        }
        assert!(!t.contains(&hash(b"R:ip16:10.0")), "private networks say nothing");
        assert_eq!(domain_of("MX1.Mail.Example.co.uk."), "example.co.uk");
    }
}
