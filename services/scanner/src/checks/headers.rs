//! Header checks, with SpamAssassin's semantics.

use std::collections::BTreeSet;

use mail_parser::MimeHeaders;

use super::{Context, Findings, domain_of};

/// Personal mail programs (their User-Agent or X-Mailer): mail a person wrote. Bulk
/// senders name their own software or none.
const PERSONAL_MAIL_PROGRAMS: &[&str] = &[
    "mutt",
    "thunderbird",
    "evolution",
    "kmail",
    "gnus",
    "pine",
    "alpine",
    "sylpheed",
    "claws",
    "apple mail",
    "mail.app",
    "iphone mail",
    "exmh",
    "balsa",
    "mozilla",
    "seamonkey",
    "roundcube",
    "squirrelmail",
    "k-9 mail",
    "mh-e",
    "vm ",
];

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
    if let Some(subject) = a.subject() {
        if subject_is_all_caps(subject, m.header_raw("Subject").unwrap_or("")) {
            out.hit("SUBJ_ALL_CAPS");
        }
        let lower = subject.to_lowercase();
        // "ADV:" (the label some laws asked advertising to wear), and a tracking code set
        // apart by a run of spaces ("Call me                93910").
        if lower.trim_start().starts_with("adv:") || lower.trim_start().starts_with("adv ") {
            out.hit("SUBJ_ADV");
        }
        if subject.trim().contains("    ") {
            out.hit("SUBJ_SPACED_CODE");
        }
        if subject.contains('!') {
            out.hit("SUBJ_EXCLAIM");
        }
        if subject.contains('$')
            || subject.contains('€')
            || lower.split(|c: char| !c.is_alphanumeric()).any(|w| w == "free" || w == "gratuit")
        {
            out.hit("SUBJ_MONEY");
        }
    }
    // Signs of conversation: a reply in a thread, a mailing list, a person's mail program.
    if a.has_header("In-Reply-To") || a.has_header("References") {
        out.hit("REPLY_IN_THREAD");
    }
    if a.has_header("List-Id") {
        out.hit("MAILING_LIST");
    }
    let program = [m.header_raw("User-Agent"), m.header_raw("X-Mailer")].into_iter().flatten().collect::<Vec<_>>().join(" ").to_lowercase();
    if let Some(name) = PERSONAL_MAIL_PROGRAMS.iter().find(|p| program.contains(*p)) {
        out.hit_with("MUA_PERSONAL", Some(name.trim().to_string()));
    }
    // Signs of bulk mail.
    let priority = m.header_raw("X-Priority").unwrap_or("").trim_start();
    if priority.starts_with('1')
        || priority.starts_with('2')
        || m.header_raw("X-MSMail-Priority").is_some_and(|p| p.trim().eq_ignore_ascii_case("high"))
    {
        out.hit("PRIORITY_HIGH");
    }
    if m.header_raw("To").is_some_and(|to| to.to_ascii_lowercase().contains("undisclosed")) {
        out.hit("TO_UNDISCLOSED");
    }
    if let Some(local) = from.first().and_then(|f| f.rsplit_once('@')).map(|(local, _)| local)
        && local_has_digit_run(local)
    {
        out.hit_with("FROM_LOCAL_DIGITS", Some(local.chars().take(64).collect()));
    }
    let base64_text = m
        .parts
        .iter()
        .filter(|p| p.is_text())
        .any(|p| p.content_transfer_encoding().is_some_and(|e| e.trim().eq_ignore_ascii_case("base64")));
    if base64_text {
        out.hit("MIME_BASE64_TEXT");
    }
}

/// SpamAssassin's FROM_LOCAL_DIGITS idea: a name ending in three digits or more right
/// after a letter (the numbered throwaway accounts bulk senders use).
fn local_has_digit_run(local: &str) -> bool {
    let digits = local.chars().rev().take_while(char::is_ascii_digit).count();
    digits >= 3 && local.chars().rev().nth(digits).is_some_and(|c| c.is_ascii_alphabetic())
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
