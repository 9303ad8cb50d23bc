//! RFC 3464 delivery status notifications: multipart/report with a human-readable
//! part in English and French, the machine-readable message/delivery-status, and the
//! original message or its headers (RFC 3461 RET).

use rempart_model::{DeliveryStatus, DsnRet, Envelope, QueueId, Recipient, date};

/// What happened to one recipient, for the report.
pub struct Report<'a> {
    pub recipient: &'a Recipient,
    pub action: Action,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Failed,
    /// Delivered to a server that does not speak DSN: no further report will come.
    Relayed,
    /// Still being retried (NOTIFY=DELAY).
    Delayed,
}

impl Action {
    /// The report's word for it (RFC 3464 Action field).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Failed => "failed",
            Action::Relayed => "relayed",
            Action::Delayed => "delayed",
        }
    }
}

pub struct Dsn {
    pub queue_id: QueueId,
    pub message: Vec<u8>,
}

/// Builds the DSN for `envelope`'s sender about `reports`; `retry_until` is when the
/// message will be given up (for delayed reports).
pub fn build(hostname: &str, envelope: &Envelope, original: &[u8], reports: &[Report<'_>], retry_until: u64) -> Dsn {
    let queue_id = QueueId::generate();
    let now = date::unix_now();
    let boundary = format!("{queue_id}/{hostname}");
    // The report is about the worst thing that happened.
    let kind = [Action::Failed, Action::Delayed, Action::Relayed]
        .into_iter()
        .find(|a| reports.iter().any(|r| r.action == *a))
        .unwrap_or(Action::Relayed);
    let subject = match kind {
        Action::Failed => "Undelivered Mail Returned to Sender / Message non remis",
        Action::Delayed => "Delayed Mail (still being retried) / Message en attente de remise",
        Action::Relayed => "Successful Mail Delivery Report / Rapport de remise",
    };
    let mut m = String::new();
    m.push_str(&format!("From: Mail Delivery System <MAILER-DAEMON@{hostname}>\r\n"));
    m.push_str(&format!("To: <{}>\r\n", envelope.return_path));
    m.push_str(&format!("Subject: {subject}\r\n"));
    m.push_str(&format!("Date: {}\r\n", date::rfc5322(now)));
    m.push_str(&format!("Message-ID: <{queue_id}.dsn@{hostname}>\r\n"));
    m.push_str("Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n");
    m.push_str(&format!("Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"{boundary}\"\r\n\r\n"));
    m.push_str("This is a MIME-encapsulated message.\r\n\r\n");

    m.push_str(&format!("--{boundary}\r\nContent-Description: Notification\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"));
    m.push_str(&quoted_printable(&human_text(hostname, envelope, reports, kind, retry_until)));
    m.push_str("\r\n");

    m.push_str(&format!("--{boundary}\r\nContent-Description: Delivery report\r\nContent-Type: message/delivery-status\r\n\r\n"));
    m.push_str(&format!("Reporting-MTA: dns; {hostname}\r\nX-Rempart-Queue-ID: {}\r\n", envelope.queue_id));
    if let Some(envid) = &envelope.envid {
        m.push_str(&format!("Original-Envelope-Id: {}\r\n", rempart_smtp::xtext::decode(envid)));
    }
    m.push_str(&format!("Arrival-Date: {}\r\n", date::rfc5322(envelope.received_at)));
    for report in reports {
        m.push_str("\r\n");
        m.push_str(&recipient_fields(report, retry_until));
    }

    let ret_full = envelope.ret == Some(DsnRet::Full);
    let (kind, content) = if ret_full {
        ("message/rfc822", original)
    } else {
        let end = original.windows(4).position(|w| w == b"\r\n\r\n").map_or(original.len(), |p| p + 2);
        ("text/rfc822-headers", &original[..end])
    };
    m.push_str(&format!("\r\n--{boundary}\r\nContent-Description: Undelivered message\r\nContent-Type: {kind}\r\n\r\n"));
    let mut out = m.into_bytes();
    out.extend_from_slice(content);
    if !content.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    Dsn { queue_id, message: out }
}

fn recipient_fields(report: &Report<'_>, retry_until: u64) -> String {
    let r = report.recipient;
    let mut f = format!("Final-Recipient: rfc822; {}\r\n", r.address);
    if let Some((kind, addr)) = r.orcpt.as_deref().and_then(|o| o.split_once(';')) {
        f.push_str(&format!("Original-Recipient: {kind}; {}\r\n", rempart_smtp::xtext::decode(addr)));
    }
    let (status, reply, remote, at) = match &r.status {
        DeliveryStatus::Failed { status, reply, remote, at } => (status.clone(), Some(reply.as_str()), remote.as_deref(), *at),
        DeliveryStatus::Delivered { reply, remote, at } => ("2.0.0".to_string(), Some(reply.as_str()), Some(remote.as_str()), *at),
        DeliveryStatus::Pending { last_reply } => {
            let status = last_reply.as_deref().and_then(enhanced_status).filter(|s| s.starts_with('4')).unwrap_or("4.0.0").to_string();
            (status, last_reply.as_deref(), None, date::unix_now())
        }
    };
    let action = report.action.as_str();
    f.push_str(&format!("Action: {action}\r\nStatus: {status}\r\n"));
    if let Some(remote) = remote {
        let host = remote.rsplit_once(':').map_or(remote, |(h, _)| h);
        f.push_str(&format!("Remote-MTA: dns; {host}\r\n"));
    }
    if let Some(reply) = reply {
        f.push_str(&diagnostic_code(reply));
    }
    f.push_str(&format!("Last-Attempt-Date: {}\r\n", date::rfc5322(at)));
    if report.action == Action::Delayed {
        f.push_str(&format!("Will-Retry-Until: {}\r\n", date::rfc5322(retry_until)));
    }
    f
}

/// The remote reply kept in a DSN, in bytes: a 100-line reply says no more than its
/// first lines do, and the report must stay readable.
const MAX_DIAGNOSTIC: usize = 2000;
/// Folded lines are kept to this width where the text has spaces (RFC 5322 §2.1.1
/// recommends 78); a longer word is cut so that no line passes 998.
const FOLD_WIDTH: usize = 78;
const MAX_LINE: usize = 998;

/// `Diagnostic-Code: smtp; <reply>` folded (RFC 5322 §2.2.3) at spaces, capped at
/// `MAX_DIAGNOSTIC` bytes, CRLF-terminated.
fn diagnostic_code(reply: &str) -> String {
    let flat: String = reply.split(['\r', '\n']).flat_map(str::split_whitespace).collect::<Vec<_>>().join(" ");
    let mut text = flat.as_str();
    let mut cut = false;
    if text.len() > MAX_DIAGNOSTIC {
        let mut end = MAX_DIAGNOSTIC;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text = &text[..end];
        cut = true;
    }
    let mut out = String::from("Diagnostic-Code: smtp;");
    let mut width = out.len();
    let words = text.split(' ').chain(cut.then_some("[...]"));
    for word in words {
        let mut word = word;
        // A word too long for any line is cut into pieces that fit.
        while word.len() + 1 > MAX_LINE {
            let mut end = MAX_LINE - 1;
            while !word.is_char_boundary(end) {
                end -= 1;
            }
            out.push_str("\r\n ");
            out.push_str(&word[..end]);
            width = 1 + end;
            word = &word[end..];
        }
        if width + 1 + word.len() > FOLD_WIDTH && width > 1 {
            out.push_str("\r\n ");
            width = 1;
        } else {
            out.push(' ');
            width += 1;
        }
        out.push_str(word);
        width += word.len();
    }
    out.push_str("\r\n");
    out
}

/// The enhanced status code (`4.3.0`) after the reply code in "451 4.3.0 text".
fn enhanced_status(reply: &str) -> Option<&str> {
    let word = reply.split_whitespace().nth(1)?;
    let parts: Vec<&str> = word.split('.').collect();
    (parts.len() == 3 && parts.iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))).then_some(word)
}

fn human_text(hostname: &str, envelope: &Envelope, reports: &[Report<'_>], kind: Action, retry_until: u64) -> String {
    let mut lines = String::new();
    for report in reports {
        let why = match &report.recipient.status {
            DeliveryStatus::Failed { reply, .. } | DeliveryStatus::Delivered { reply, .. } => reply.clone(),
            DeliveryStatus::Pending { last_reply } => last_reply.clone().unwrap_or_default(),
        };
        lines.push_str(&format!("<{}>: {why}\n", report.recipient.address));
    }
    let until = date::rfc5322(retry_until);
    let (en, fr) = match kind {
        Action::Failed => (
            "Your message could not be delivered to one or more recipients. It has been returned below.\nThe reason given by the receiving system follows each address.".to_string(),
            "Votre message n'a pas pu être remis à un ou plusieurs destinataires ; il vous est retourné ci-dessous.\nLa raison donnée par le système destinataire suit chaque adresse.".to_string(),
        ),
        Action::Delayed => (
            format!("Your message has not been delivered yet to the recipients below. Nothing to do: delivery will be retried until {until}, and you will be told if it fails."),
            format!("Votre message n'a pas encore pu être remis aux destinataires ci-dessous. Aucune action n'est nécessaire : la remise sera retentée jusqu'au {until}, et vous serez prévenu en cas d'échec."),
        ),
        Action::Relayed => (
            "Your message was delivered to a server that does not send delivery reports; no further notice will follow.".to_string(),
            "Votre message a été remis à un serveur qui n'envoie pas d'accusés de remise ; aucune autre notification ne suivra.".to_string(),
        ),
    };
    format!(
        "This is the mail system at {hostname} (message {}).\n\n{en}\n\n{lines}\n-- \nCeci est le système de messagerie de {hostname} (message {}).\n\n{fr}\n\n{lines}",
        envelope.queue_id, envelope.queue_id
    )
}

/// RFC 2045 quoted-printable, lines kept under 76 characters.
fn quoted_printable(text: &str) -> String {
    let mut out = String::new();
    for line in text.split('\n') {
        let mut width = 0;
        let bytes = line.as_bytes();
        for (i, &b) in bytes.iter().enumerate() {
            let last = i + 1 == bytes.len();
            let encoded = if (b == b' ' || b == b'\t') && last || b == b'=' || !(32..127).contains(&b) && b != b'\t' {
                format!("={b:02X}")
            } else {
                (b as char).to_string()
            };
            if width + encoded.len() > 75 {
                out.push_str("=\r\n");
                width = 0;
            }
            width += encoded.len();
            out.push_str(&encoded);
        }
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagnostic_code_is_folded_and_capped() {
        let short = diagnostic_code("550 5.1.1 no such user");
        assert_eq!(short, "Diagnostic-Code: smtp; 550 5.1.1 no such user\r\n");
        let many: String = (0..100).map(|i| format!("550-5.7.1 line {i} of a long explanation from the remote server\r\n")).collect();
        let folded = diagnostic_code(&many);
        assert!(folded.len() < MAX_DIAGNOSTIC + 200, "{}", folded.len());
        assert!(folded.ends_with("[...]\r\n"), "{folded}");
        assert!(folded.split("\r\n").all(|l| l.len() <= FOLD_WIDTH), "{folded}");
        assert!(folded.split("\r\n").skip(1).all(|l| l.is_empty() || l.starts_with(' ')), "continuations start with a space");
        let word = format!("550 {}é{}", "x".repeat(1500), "y".repeat(3000));
        let folded = diagnostic_code(&word);
        assert!(folded.split("\r\n").all(|l| l.len() <= MAX_LINE), "{folded}");
        assert!(folded.ends_with("[...]\r\n"));
    }

    #[test]
    fn quoted_printable_is_escaped_and_wrapped() {
        assert_eq!(quoted_printable("été = ok "), "=C3=A9t=C3=A9 =3D ok=20\r\n");
        assert!(quoted_printable(&"x".repeat(200)).lines().all(|l| l.len() <= 76));
    }
}
