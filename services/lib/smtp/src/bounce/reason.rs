//! Why a recipient bounced, in Sisimai's vocabulary: from the remote server's words
//! first (they say more than the status code, and many servers send `5.0.0`), then
//! from the enhanced status code.

use serde::Serialize;

use super::phrases::from_text;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Reason {
    AuthFailure,
    BadReputation,
    Blocked,
    ContentError,
    ExceedLimit,
    Expired,
    Filtered,
    HasMoved,
    HostUnknown,
    MailboxFull,
    MailerError,
    MesgTooBig,
    NetworkError,
    NotAccept,
    NotCompliantRfc,
    OnHold,
    Rejected,
    NoRelaying,
    SpamDetected,
    VirusDetected,
    PolicyViolation,
    SecurityError,
    Speeding,
    Suspend,
    RequirePtr,
    SystemError,
    SystemFull,
    TooManyConn,
    UserUnknown,
    SyntaxError,
    Undefined,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::AuthFailure => "authfailure",
            Reason::BadReputation => "badreputation",
            Reason::Blocked => "blocked",
            Reason::ContentError => "contenterror",
            Reason::ExceedLimit => "exceedlimit",
            Reason::Expired => "expired",
            Reason::Filtered => "filtered",
            Reason::HasMoved => "hasmoved",
            Reason::HostUnknown => "hostunknown",
            Reason::MailboxFull => "mailboxfull",
            Reason::MailerError => "mailererror",
            Reason::MesgTooBig => "mesgtoobig",
            Reason::NetworkError => "networkerror",
            Reason::NotAccept => "notaccept",
            Reason::NotCompliantRfc => "notcompliantrfc",
            Reason::OnHold => "onhold",
            Reason::Rejected => "rejected",
            Reason::NoRelaying => "norelaying",
            Reason::SpamDetected => "spamdetected",
            Reason::VirusDetected => "virusdetected",
            Reason::PolicyViolation => "policyviolation",
            Reason::SecurityError => "securityerror",
            Reason::Speeding => "speeding",
            Reason::Suspend => "suspend",
            Reason::RequirePtr => "requireptr",
            Reason::SystemError => "systemerror",
            Reason::SystemFull => "systemfull",
            Reason::TooManyConn => "toomanyconn",
            Reason::UserUnknown => "userunknown",
            Reason::SyntaxError => "syntaxerror",
            Reason::Undefined => "undefined",
        }
    }

    /// A hard bounce: the address itself will not take mail (Sisimai's meaning).
    pub fn is_hard(self) -> bool {
        matches!(self, Reason::UserUnknown | Reason::HostUnknown | Reason::HasMoved | Reason::NotAccept)
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The reason a sending MTA's own category field gives: PowerMTA's
/// `X-PowerMTA-BounceCategory` (its documented category names).
pub fn from_vendor_category(category: &str) -> Option<Reason> {
    Some(match category.trim().to_ascii_lowercase().as_str() {
        "bad-mailbox" => Reason::UserUnknown,
        "bad-domain" => Reason::HostUnknown,
        "inactive-mailbox" => Reason::Suspend,
        "quota-issues" => Reason::MailboxFull,
        "message-expired" => Reason::Expired,
        "no-answer-from-host" | "bad-connection" => Reason::NetworkError,
        "policy-related" => Reason::PolicyViolation,
        "spam-related" => Reason::SpamDetected,
        "virus-related" => Reason::VirusDetected,
        "content-related" => Reason::ContentError,
        "relaying-issues" => Reason::NoRelaying,
        "routing-errors" | "protocol-errors" => Reason::SystemError,
        _ => return None,
    })
}

/// The reason an enhanced status code alone gives (RFC 3463), if it says one.
pub fn from_status(status: &str) -> Option<Reason> {
    let mut parts = status.split('.');
    let (class, subject, detail) = (parts.next()?, parts.next()?, parts.next()?);
    let permanent = class == "5";
    Some(match (subject, detail) {
        ("1", "1") | ("1", "3") => Reason::UserUnknown,
        ("1", "2") => Reason::HostUnknown,
        ("1", "4") => Reason::UserUnknown,
        ("1", "6") => Reason::HasMoved,
        ("1", "7") | ("1", "8") => Reason::Rejected,
        ("1", "10") => Reason::NotAccept,
        ("2", "1") => Reason::Suspend,
        ("2", "2") => Reason::MailboxFull,
        ("2", "3") => Reason::ExceedLimit,
        ("2", "4") => Reason::SystemError,
        ("3", "1") => Reason::SystemFull,
        ("3", "4") => Reason::MesgTooBig,
        ("3", "2") => Reason::NotAccept,
        ("3", _) => Reason::SystemError,
        ("4", "1") | ("4", "2") | ("4", "0") => Reason::NetworkError,
        ("4", "3") => Reason::SystemError,
        ("4", "4") => Reason::HostUnknown,
        ("4", "6") => Reason::NetworkError,
        ("4", "7") => Reason::Expired,
        ("5", "3") => Reason::SyntaxError,
        ("5", _) if permanent => Reason::SyntaxError,
        ("6", _) => Reason::ContentError,
        ("7", "13") => Reason::Suspend,
        ("7", "1") | ("7", "0") | ("7", "5") | ("7", "6") | ("7", "7") | ("7", "8") | ("7", "9") => Reason::SecurityError,
        ("7", "23") | ("7", "24") | ("7", "25") | ("7", "26") | ("7", "27") => Reason::AuthFailure,
        ("7", _) => Reason::PolicyViolation,
        _ => return None,
    })
}

/// The reason for one recipient: the diagnostic's words, then its status code, then
/// the words of the whole report; what the remote MTA's kind of diagnostic says first
/// (a local program's exit is a mailer error).
/// What the whole report says, beside one recipient's fields.
pub struct Context<'a> {
    /// The report's human-readable text.
    report_text: &'a str,
    /// The reporting system looks recipients up itself (see `bounce::parse`).
    checks_recipients: bool,
    /// What the whole report's text says, read once per report (not once per
    /// recipient: a report may name a thousand).
    report_command: std::cell::OnceCell<Option<&'static str>>,
    report_words: std::cell::OnceCell<Option<Reason>>,
}

impl<'a> Context<'a> {
    pub fn new(report_text: &'a str, checks_recipients: bool) -> Self {
        Self { report_text, checks_recipients, report_command: Default::default(), report_words: Default::default() }
    }

    fn report_command(&self) -> Option<&'static str> {
        *self.report_command.get_or_init(|| smtp_command(&self.report_text.to_ascii_lowercase()))
    }

    fn report_words(&self) -> Option<Reason> {
        *self.report_words.get_or_init(|| from_text(&self.report_text.to_ascii_lowercase()))
    }
}

pub fn classify(diagnostic: &str, diagnostic_type: &str, status: &str, action: &str, context: &Context<'_>) -> Reason {
    let diagnostic = diagnostic.to_ascii_lowercase();
    if diagnostic_type.eq_ignore_ascii_case("x-unix") {
        // A local delivery program's failure, unless it says the mailbox is full.
        return if from_text(&diagnostic) == Some(Reason::MailboxFull) { Reason::MailboxFull } else { Reason::MailerError };
    }
    let diagnostic = without_continuation_codes(&diagnostic);
    if let Some(reason) = orange_code(&diagnostic) {
        return reason;
    }
    let words = from_text(&diagnostic);
    if let Some(reason) = decisive_status(status) {
        return reason;
    }
    let command = smtp_command(&diagnostic).or_else(|| context.report_command());
    // A "bad mailbox" status (x.1.1) names the reason unless the words give one that
    // is about something else than the address (Sisimai's order of checks).
    if status.get(1..) == Some(".1.1")
        && command != Some("MAIL")
        && !matches!(
            words,
            Some(
                Reason::MailboxFull
                    | Reason::MesgTooBig
                    | Reason::ExceedLimit
                    | Reason::Suspend
                    | Reason::HasMoved
                    | Reason::NoRelaying
                    | Reason::Blocked
                    | Reason::Rejected
                    | Reason::NotAccept
                    | Reason::TooManyConn
                    | Reason::Speeding
            )
        )
    {
        return Reason::UserUnknown;
    }
    let found = words.or_else(|| from_status(status).filter(|_| !status.ends_with(".0.0")));
    match found {
        // The sender was refused (at MAIL FROM, or its address said unknown).
        Some(Reason::UserUnknown | Reason::HostUnknown) | None if command == Some("MAIL") => return Reason::Rejected,
        Some(Reason::UserUnknown | Reason::HostUnknown) if status.starts_with("5.1.7") || status.starts_with("5.1.8") => {
            return Reason::Rejected;
        }
        // "Unknown user" is an answer about the address when it came at RCPT, under a
        // status that says "bad mailbox", or from a system that looks its recipients
        // up; after the message was sent, or from anything else, a filter said it
        // (Sisimai's reading).
        Some(Reason::UserUnknown)
            if !context.checks_recipients && command != Some("RCPT") && !names_bad_mailbox(status)
                || command == Some("DATA") && !context.checks_recipients =>
        {
            return Reason::Filtered;
        }
        Some(reason) => return reason,
        // Refused at RCPT, permanently, with nothing more said: the address.
        None if command == Some("RCPT") && !status.starts_with('4') && !action.eq_ignore_ascii_case("delayed") => {
            return Reason::UserUnknown;
        }
        None => {}
    }
    if let Some(reason) = from_status(status) {
        return reason;
    }
    if action.eq_ignore_ascii_case("delayed") || status.starts_with("4.4.7") {
        return Reason::Expired;
    }
    if let Some(reason) = context.report_words() {
        return reason;
    }
    if status.starts_with('4') { Reason::OnHold } else { Reason::Undefined }
}

/// Orange's and La Poste's own refusal codes (`OFR_506`, `OFR006_102`, `LPN007_416`:
/// the last three digits name the cause, as their postmaster pages list them).
fn orange_code(diagnostic: &str) -> Option<Reason> {
    let number = ["ofr", "lpn"].iter().flat_map(|prefix| diagnostic.match_indices(prefix)).find_map(|(at, _)| {
        let code = diagnostic[at + 3..].split(|c: char| c.is_whitespace() || c == ']' || c == '.').next()?;
        code.rsplit_once('_').map(|(_, number)| number)
    })?;
    Some(match number {
        "102" | "999" => Reason::Blocked,
        "416" => Reason::UserUnknown,
        "426" => Reason::Suspend,
        "505" => Reason::SystemError,
        "506" => Reason::SpamDetected,
        "630" => Reason::PolicyViolation,
        _ => return None,
    })
}

/// A status whose detail says the address does not exist (x.1.0, x.1.1, x.1.3,
/// Microsoft's x.1.10 and x.1.351).
fn names_bad_mailbox(status: &str) -> bool {
    matches!(status.get(1..), Some(".1.0" | ".1.1" | ".1.3" | ".1.10" | ".1.351"))
}

/// A multi-line SMTP reply joined into one: the reply and status codes that begin its
/// continuation lines ("550-5.7.1 … 550 5.7.1 …") taken out, so phrases split across
/// lines match.
fn without_continuation_codes(text: &str) -> String {
    let words: Vec<&str> = text.split(' ').collect();
    let mut kept: Vec<&str> = Vec::with_capacity(words.len());
    let mut seen_code = false;
    let mut i = 0;
    while i < words.len() {
        let word = words[i];
        let code = word.len() >= 3 && word.as_bytes()[..3].iter().all(u8::is_ascii_digit) && matches!(word.as_bytes()[0], b'4' | b'5');
        let joined_code =
            code && ((word.len() == 3 && words.get(i + 1).is_some_and(|w| is_status_word(w))) || word.as_bytes().get(3) == Some(&b'-'));
        if joined_code && seen_code {
            // The code, and the enhanced status after it when there is one.
            let rest = &word[word.len().min(4)..];
            let status_follows = rest.is_empty() && words.get(i + 1).is_some_and(|w| is_status_word(w));
            i += if status_follows { 2 } else { 1 };
            if !rest.is_empty() && !is_status_word(rest) {
                kept.push(rest);
            }
            continue;
        }
        seen_code |= joined_code;
        kept.push(word);
        i += 1;
    }
    kept.join(" ")
}

/// `5.7.1` and the like.
fn is_status_word(word: &str) -> bool {
    let parts: Vec<&str> = word.split('.').collect();
    parts.len() == 3 && parts.iter().all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Status codes that name their reason whatever the words say.
fn decisive_status(status: &str) -> Option<Reason> {
    let detail = status.get(2..)?;
    Some(match detail {
        "1.6" => Reason::HasMoved,
        "2.3" => Reason::ExceedLimit,
        "6.1" => Reason::ContentError,
        "7.23" | "7.24" | "7.26" => Reason::AuthFailure,
        "7.25" => Reason::RequirePtr,
        "7.27" => Reason::NotAccept,
        "7.13" => Reason::Suspend,
        _ => return None,
    })
}

/// The SMTP command a report says the failure answered ("MAIL", "RCPT" or "DATA"):
/// the first one it names (a transcript goes on past the failing command).
fn smtp_command(text: &str) -> Option<&'static str> {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    // A Sendmail transcript: `>>> DATA` then the replies; with more than one, the
    // refusals before the last answered pipelined RCPTs.
    if let Some(at) = text.find(">>> data") {
        let after = &text[at..];
        if after.matches("<<< ").count() == 1 && after.contains("<<< 5") && smtp_command_named(&text[..at]).is_none() {
            return Some("DATA");
        }
    }
    smtp_command_named(&text)
}

fn smtp_command_named(text: &str) -> Option<&'static str> {
    let markers: [(&str, &[&str]); 3] = [
        ("DATA", &["after end of data", "end of data command", "in reply to data command", "after the end of data"]),
        ("MAIL", &["after mail from", "in reply to mail from", ">>> mail from", "sender was rejected"]),
        (
            "RCPT",
            &[
                "after rcpt to",
                "in reply to rcpt to",
                ">>> rcpt to",
                "after rcpt command",
                "does not like recipient",
                "like our rcpt to",
                "[rcpt_to]",
                "rcpt to response",
                "smtp:rcpt",
            ],
        ),
    ];
    markers
        .iter()
        .flat_map(|(command, phrases)| phrases.iter().filter_map(move |p| text.find(p).map(|at| (at, *command))))
        .min()
        .map(|(_, command)| command)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_come_before_the_status_code() {
        assert_eq!(classify("550 5.1.1 <a@b.example>... User Unknown", "smtp", "5.1.1", "failed", &context("")), Reason::UserUnknown);
        assert_eq!(classify("552 5.2.2 Mailbox full", "smtp", "5.0.0", "failed", &context("")), Reason::MailboxFull);
        assert_eq!(classify("554 5.7.1 Message rejected as spam", "smtp", "5.7.1", "failed", &context("")), Reason::SpamDetected);
        assert_eq!(
            classify("550 go away", "smtp", "5.1.1", "failed", &context("")),
            Reason::UserUnknown,
            "the status when the words say nothing"
        );
        assert_eq!(classify("procmail: cannot create", "x-unix", "5.1.1", "failed", &context("")), Reason::MailerError);
        assert_eq!(classify("", "", "", "failed", &context("retry timeout exceeded")), Reason::Expired);
        assert_eq!(classify("", "", "4.0.0", "delayed", &context("")), Reason::Expired);
        assert_eq!(classify("", "", "", "failed", &context("")), Reason::Undefined);
    }

    #[test]
    fn continuation_codes_of_a_joined_reply_are_left_out() {
        assert_eq!(
            without_continuation_codes("550-5.7.1 messages with multiple 550 5.7.1 addresses in from: 550-5.7.1 header are not accepted"),
            "550-5.7.1 messages with multiple addresses in from: header are not accepted"
        );
        assert_eq!(without_continuation_codes("550 5.1.1 user unknown"), "550 5.1.1 user unknown");
        assert_eq!(without_continuation_codes("550 sorry, 550 messages a day"), "550 sorry, 550 messages a day", "not a reply code");
    }

    fn context(report_text: &str) -> Context<'_> {
        Context::new(report_text, false)
    }

    #[test]
    fn orange_and_la_poste_codes_name_their_cause() {
        assert_eq!(orange_code("550 5.2.0 mail rejete. mail rejected. ofr_506 [506]"), Some(Reason::SpamDetected));
        assert_eq!(orange_code("550 client host blocked for spamming issues. ofr006_102 ref"), Some(Reason::Blocked));
        assert_eq!(orange_code("550 5.5.0 invalid recipient. lpn007_416"), Some(Reason::UserUnknown));
        assert_eq!(orange_code("550 5.5.0 service refused. lpn001_108"), None, "a code not listed");
        assert_eq!(orange_code("550 no such user"), None);
        assert_eq!(orange_code("554 5.7.1 client host rejected: #216 lpn lpn000_630"), Some(Reason::PolicyViolation));
    }
}
