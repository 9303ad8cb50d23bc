//! A message's fuzzy fingerprint, for the memory of campaigns (as rspamd's fuzzy storage
//! and Pyzor/Razor do): a MinHash sketch (the 32 smallest hashes) over word shingles of
//! the normalised text — lower case,
//! every word holding a digit one placeholder, links and addresses one placeholder each —
//! so the variants of one campaign (other names, links, numbers, greetings) share most
//! of their values; and an exact hash of each attachment and image. The hashes are
//! stable across processes and versions (they are kept in the shared store).

use crate::message::Analysis;
use crate::tokens::{HASH_START, hash, hash_more};

/// Hashes kept per message: the similarity of two messages is the share of their
/// sketches they have in common.
pub const SHINGLES: usize = 32;
/// Words per shingle.
const WINDOW: usize = 3;
/// Fewer words than this: too little text to tell a campaign from a coincidence.
const MIN_WORDS: usize = 12;
/// Words looked at, at most.
const MAX_WORDS: usize = 20_000;

#[derive(Debug, Clone, PartialEq)]
pub struct Fingerprint {
    /// Up to `SHINGLES` values (fewer for a short text), or none when the text is too
    /// short to judge.
    pub shingles: Vec<u64>,
    /// One per attachment with content.
    pub attachments: Vec<u64>,
}

impl Fingerprint {
    /// The message's identity in the fuzzy memory (the shingles, else the attachments).
    pub fn id(&self) -> u64 {
        let mut h = HASH_START;
        for v in self.shingles.iter().chain(&self.attachments) {
            h = hash_more(h, &v.to_le_bytes());
        }
        mix(h)
    }

    pub fn is_empty(&self) -> bool {
        self.shingles.is_empty() && self.attachments.is_empty()
    }

    /// The share of this sketch's values the other has (0 to 1): an estimate of the
    /// Jaccard similarity of the two messages' shingle sets.
    pub fn similarity(&self, other: &Fingerprint) -> f64 {
        if self.shingles.is_empty() {
            return 0.0;
        }
        self.shingles.iter().filter(|v| other.shingles.binary_search(v).is_ok()).count() as f64 / self.shingles.len() as f64
    }
}

/// The fingerprint of an analysed message (attachments inspected or not: their decoded
/// contents are hashed from the parsed parts).
pub fn fingerprint(analysis: &Analysis<'_>) -> Fingerprint {
    let mut text = String::new();
    if let Some(subject) = analysis.subject() {
        text.push_str(subject);
        text.push(' ');
    }
    text.push_str(&analysis.plain_text);
    if analysis.plain_text.trim().is_empty() {
        for html in &analysis.html {
            text.push(' ');
            text.push_str(&html.text);
        }
    }
    let words = normalised_words(&text);
    let shingles = if words.len() < MIN_WORDS { Vec::new() } else { minhash(&words) };
    let mut attachments = Vec::new();
    if let Some(message) = &analysis.message {
        for part in message.parts.iter().take(crate::message::MAX_PARTS) {
            let contents = part.contents();
            if crate::attachments::is_attachment(part) && contents.len() >= 64 {
                attachments.push(mix(hash(contents)));
            }
        }
    }
    attachments.sort_unstable();
    attachments.dedup();
    Fingerprint { shingles, attachments }
}

/// The words' hashes, lower case; a word with a digit hashes as "#", a link as "<url>",
/// an address as "<email>" (no string is built: the characters are hashed as they come).
fn normalised_words(text: &str) -> Vec<u64> {
    let (url, email, digit) = (hash(b"<url>"), hash(b"<email>"), hash(b"#"));
    let mut out = Vec::new();
    for raw in text.split_whitespace().take(MAX_WORDS) {
        let bytes = raw.as_bytes();
        if raw.contains("://") || (bytes.len() > 4 && bytes[..4].eq_ignore_ascii_case(b"www.")) {
            out.push(url);
            continue;
        }
        if raw.contains('@') && raw.contains('.') {
            out.push(email);
            continue;
        }
        let (mut h, mut len, mut has_digit) = (HASH_START, 0usize, false);
        let mut utf8 = [0u8; 4];
        for c in raw.chars() {
            if c.is_alphanumeric() {
                has_digit |= c.is_ascii_digit();
                for lower in c.to_lowercase() {
                    h = hash_more(h, lower.encode_utf8(&mut utf8).as_bytes());
                }
                len += 1;
            } else if len > 0 {
                out.push(if has_digit { digit } else { h });
                (h, len, has_digit) = (HASH_START, 0, false);
            }
        }
        if len > 0 {
            out.push(if has_digit { digit } else { h });
        }
    }
    out
}

/// The `SHINGLES` smallest distinct hashes of the windows of words (a bottom-k sketch:
/// one hash per window, where classic MinHash needs one per window and seed).
fn minhash(words: &[u64]) -> Vec<u64> {
    let mut hashes: Vec<u64> =
        words.windows(WINDOW).map(|w| mix(w.iter().fold(HASH_START, |h, word| hash_more(h, &word.to_le_bytes())))).collect();
    hashes.sort_unstable();
    hashes.dedup();
    hashes.truncate(SHINGLES);
    hashes
}

/// SplitMix64's finaliser: spreads FNV's bits, so the smallest hashes are a fair sample.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(text: &str) -> Fingerprint {
        let raw = format!("From: a@example.com\r\nSubject: Your parcel\r\n\r\n{text}\r\n");
        fingerprint(&Analysis::new(raw.as_bytes()))
    }

    const CAMPAIGN: &str = "Dear John, your parcel 4471-22 could not be delivered because the customs fee of 2.99 EUR was not paid. \
        To receive your parcel within 48 hours please confirm your address and pay the fee at https://track.example/p/8812 before Friday. \
        If the fee is not paid the parcel will be returned to the sender. Thank you for your trust, the delivery service team.";

    #[test]
    fn variants_of_a_campaign_are_similar_and_other_mail_is_not() {
        let original = of(CAMPAIGN);
        assert_eq!(original.shingles.len(), SHINGLES);
        let variant = of(&CAMPAIGN
            .replace("Dear John", "Hello Mary")
            .replace("4471-22", "90-118")
            .replace("2.99", "1.49")
            .replace("https://track.example/p/8812", "http://other-link.example/q?id=55")
            .replace("48 hours", "24 hours"));
        assert!(original.similarity(&variant) >= 0.5, "{}", original.similarity(&variant));
        let other = of(
            "Hi team, the quarterly planning meeting moves to Thursday at ten in the large room. Please bring the budget figures and the list of open hiring positions for the review.",
        );
        assert!(original.similarity(&other) < 0.1, "{}", original.similarity(&other));
        assert!(of("Too short to judge.").shingles.is_empty());
        assert_eq!(of(CAMPAIGN).id(), original.id(), "stable");
    }
}
