//! Header checks, with SpamAssassin's semantics.

use std::collections::BTreeSet;

use super::{Context, Findings, domain_of};

pub fn run(ctx: &Context<'_>, out: &mut Findings) {
    let a = ctx.analysis;
    let Some(m) = &a.message else {
        out.hit("MISSING_HEADERS");
        out.hit("MISSING_FROM");
        out.hit("MISSING_DATE");
        out.hit("MISSING_MID");
        return;
    };
    if !a.has_header("Date") {
        out.hit("MISSING_DATE");
    } else if m.date().is_none_or(|d| !d.is_valid()) {
        let raw = m.header_raw("Date").unwrap_or("").trim().chars().take(80).collect();
        out.hit_with("INVALID_DATE", Some(raw));
    }
    if !a.has_header("Message-ID") {
        out.hit("MISSING_MID");
    }
    if !a.has_header("To") {
        out.hit("MISSING_HEADERS");
    }
    if !a.has_header("Subject") {
        out.hit("MISSING_SUBJECT");
    }
    let from = a.from_addresses();
    if !a.has_header("From") {
        out.hit("MISSING_FROM");
    }
    let from_domains: BTreeSet<String> = from.iter().filter_map(|f| domain_of(f)).collect();
    if from_domains.len() >= 2 {
        out.hit_with("MULTIPLE_FROM", Some(from_domains.into_iter().collect::<Vec<_>>().join(", ")));
    }
    // SpamAssassin: Reply-To is a free-mail address, and From is not that address.
    if let Some(reply_to) = m.reply_to().and_then(|r| r.first()).and_then(|r| r.address()).map(str::to_ascii_lowercase) {
        let freemail_reply = domain_of(&reply_to).is_some_and(|d| ctx.freemail.contains(&d));
        if freemail_reply && !from.contains(&reply_to) {
            out.hit_with("FREEMAIL_FORGED_REPLYTO", Some(format!("Reply-To: {reply_to}")));
        }
    }
    if let Some(subject) = a.subject()
        && subject_is_all_caps(subject, m.header_raw("Subject").unwrap_or(""))
    {
        out.hit("SUBJ_ALL_CAPS");
    }
}

/// SpamAssassin's `subject_is_all_caps`: at least two words and ten characters, reply
/// prefixes ignored, letters only, none in lower case; encoded CJK/Cyrillic subjects
/// are skipped (they have no case to speak of).
fn subject_is_all_caps(subject: &str, raw: &str) -> bool {
    let mut s = subject.trim();
    loop {
        let lower = s.to_ascii_lowercase();
        let Some(prefix) =
            ["re:", "fwd:", "fw:", "aw:", "antwort:", "wg:", "sv:", "vb:", "vs:", "vl:", "tr:"].iter().find(|p| lower.starts_with(*p))
        else {
            break;
        };
        s = s[prefix.len()..].trim_start();
    }
    if !s.contains(char::is_whitespace) || s.len() < 10 {
        return false;
    }
    let raw = raw.to_ascii_lowercase();
    if ["=?iso-2022", "=?gb2312", "=?gbk", "=?big5", "=?euc", "=?shift_jis", "=?koi8", "=?windows-1251", "=?ks_c"]
        .iter()
        .any(|c| raw.contains(c))
    {
        return false;
    }
    let letters: String = s.chars().filter(|c| c.is_ascii_alphabetic()).collect();
    !letters.is_empty() && letters.chars().all(|c| c.is_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    #[test]
    fn all_caps_subjects() {
        use super::subject_is_all_caps as caps;
        assert!(caps("FREE MONEY NOW!!!", ""));
        assert!(caps("Re: FREE MONEY NOW", ""));
        assert!(!caps("FREEMONEYNOW!!!", ""), "one word");
        assert!(!caps("BIG DEAL", ""), "too short");
        assert!(!caps("Free money now", ""));
        assert!(!caps("1234 5678 90", ""), "no letters");
    }
}
