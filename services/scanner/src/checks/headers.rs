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
        // Mass personalisation: the recipient's address (To, or the envelope's) in the subject.
        let to =
            m.to().map(|to| to.iter().filter_map(|a| a.address()).map(str::to_ascii_lowercase).collect::<Vec<_>>()).unwrap_or_default();
        if let Some(address) =
            to.iter().chain(ctx.recipients).find(|r| r.len() >= MIN_ADDRESS_IN_SUBJECT && lower.contains(&r.to_ascii_lowercase()))
        {
            out.hit_with("SUBJ_HAS_RCPT", Some(address.to_ascii_lowercase()));
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
    // Signs of forgery: what a sending program would not write.
    if let Some(from) = from.first()
        && let Some((_, domain)) = from.rsplit_once('@')
        && !is_host_name(domain)
    {
        out.hit_with("FROM_DOMAIN_INVALID", Some(domain.chars().take(64).collect()));
    }
    let display_name = m.from().and_then(|f| f.first()).and_then(|a| a.name()).unwrap_or("");
    if a.subject().is_some_and(has_styled_letters) || has_styled_letters(display_name) {
        out.hit("SUBJ_STYLED_LETTERS");
    }
    if let Some(id) = m.header_raw("Message-ID")
        && is_outlook_message_id(id)
    {
        let program = [m.header_raw("X-Mailer"), m.header_raw("X-MimeOLE")].into_iter().flatten().collect::<String>().to_ascii_lowercase();
        if !program.contains("microsoft") && !program.contains("outlook") {
            out.hit_with("MSGID_FORGED_OUTLOOK", Some(id.trim().chars().take(80).collect()));
        }
    }
    if let Some(date) = m.header_raw("Date")
        && m.date().is_some_and(|d| d.is_valid())
        && !date_has_zone(date)
    {
        out.hit_with("DATE_NO_TIMEZONE", Some(date.trim().lines().next().unwrap_or("").chars().take(80).collect()));
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

/// A recipient's address shorter than this is not looked for in the subject.
const MIN_ADDRESS_IN_SUBJECT: usize = 6;

/// A host name as DNS would have it: dot-separated letters, digits and hyphens, ending
/// in an alphabetic top-level label (`pot`, `correios`, `%shop.com` and `a,com` are not).
/// Letters of any script count (an internationalised domain written in UTF-8).
fn is_host_name(domain: &str) -> bool {
    let domain = domain.trim_end_matches('.');
    let labels: Vec<&str> = domain.split('.').collect();
    let ldh = |l: &&str| !l.is_empty() && l.len() <= 63 && l.chars().all(|c| c.is_alphanumeric() || c == '-');
    let tld = labels.last().is_some_and(|t| t.chars().count() >= 2 && (t.chars().all(char::is_alphabetic) || t.starts_with("xn--")));
    labels.len() >= 2 && labels.iter().all(ldh) && tld
}

/// Letters dressed up as other Unicode characters (mathematical bold or script letters,
/// fullwidth, circled or squared letters): words a filter does not recognise as words.
fn has_styled_letters(text: &str) -> bool {
    text.chars().any(|c| matches!(c, '\u{1D400}'..='\u{1D7FF}' | '\u{FF21}'..='\u{FF3A}' | '\u{FF41}'..='\u{FF5A}' | '\u{24B6}'..='\u{24E9}' | '\u{1F130}'..='\u{1F189}'))
}

/// The Message-ID Outlook and Outlook Express write, `<000801c24a0e$0e5e8a60$6401a8c0@host>`:
/// three groups of hex digits joined by `$`. Bulk mailers copy it to pass for a person.
fn is_outlook_message_id(id: &str) -> bool {
    let id = id.trim().trim_start_matches('<');
    let Some((local, _)) = id.split_once('@') else { return false };
    let groups: Vec<&str> = local.split('$').collect();
    let hex = |g: &str, min: usize, max: usize| (min..=max).contains(&g.len()) && g.chars().all(|c| c.is_ascii_hexdigit());
    groups.len() == 3 && hex(groups[0], 8, 16) && hex(groups[1], 8, 8) && hex(groups[2], 8, 8)
}

/// Whether a Date header ends with a time zone (`+0200`, `-0500`, `GMT`, `EST`), a
/// trailing comment aside. RFC 5322 requires one; mail programs always write it, and
/// bulk mailers get it wrong (`+-0500`, `GMT+1`, `12:47:50 AM`) in dates a lenient
/// parser still reads.
fn date_has_zone(date: &str) -> bool {
    let date = date.trim();
    let date = match date.rfind('(') {
        Some(open) if date.ends_with(')') => date[..open].trim_end(),
        _ => date,
    };
    let Some(zone) = date.rsplit(char::is_whitespace).next() else { return false };
    let numeric = zone.len() == 5 && (zone.starts_with('+') || zone.starts_with('-')) && zone[1..].chars().all(|c| c.is_ascii_digit());
    let named = (1..=5).contains(&zone.len())
        && zone.chars().all(|c| c.is_ascii_alphabetic())
        && !zone.eq_ignore_ascii_case("am")
        && !zone.eq_ignore_ascii_case("pm");
    numeric || named
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

    #[test]
    fn forgery_signs() {
        use super::{date_has_zone, has_styled_letters, is_host_name, is_outlook_message_id};
        assert!(is_host_name("mail.example.com") && is_host_name("xn--bcher-kva.xn--p1ai") && is_host_name("bücher.рф"));
        for bad in ["pot", "correios", "%encomenda.online", "theskimm,com", "5993599359935993", "a.123", "a..com"] {
            assert!(!is_host_name(bad), "{bad}");
        }
        assert!(has_styled_letters("𝐑𝐄𝐒𝐓𝐀𝐑𝐓 your account") && !has_styled_letters("Café déjà vu"));
        assert!(is_outlook_message_id("<000801c24a0e$0e5e8a60$6401a8c0@kevin>"));
        assert!(is_outlook_message_id("<000062eb5490$000006b5$0000187d@>"));
        assert!(!is_outlook_message_id("<20020722020847.649D0294098@xent.com>"));
        assert!(date_has_zone("Thu, 25 Jul 2002 00:44:25 -0400") && date_has_zone("Mon, 1 Jul 2002 10:00:00 GMT (added)"));
        assert!(!date_has_zone("Thu, 25 Jul 2002 00:44:25"));
    }
}
