//! A short text mail from the gateway itself (null sender, `postmaster@` the gateway):
//! notices to accounts and domain admins, queued for delivery like any mail.

use crate::{Envelope, QueueId, Recipient, date};

/// The envelope and message of a notice to `to`.
pub fn notice(hostname: &str, to: &str, subject: &str, text: &str, now: u64) -> (Envelope, Vec<u8>) {
    let id = QueueId::generate();
    let message = format!(
        "From: Rempart <postmaster@{hostname}>\r\nTo: <{to}>\r\nSubject: {subject}\r\nDate: {}\r\nMessage-ID: <{id}.notice@{hostname}>\r\n\
         Auto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: 8bit\r\n\r\n{text}",
        date::rfc5322(now)
    );
    (Envelope::new(id, String::new(), vec![Recipient::new(to.to_string())], now), message.into_bytes())
}

/// The notice of an account's suspension: its subject and text.
pub fn suspension(account: &str, why: &str) -> (String, String) {
    (
        format!("Account {account} suspended"),
        format!(
            "The account {account} was suspended from sending: {why}.\r\n\
             Check it (a stolen password?), then: rempart account unsuspend {account}\r\n"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notice_is_a_bounce_free_message_from_postmaster() {
        let (envelope, message) = notice("gw.test", "alice@example.com", "Hello", "Text.\r\n", 1_700_000_000);
        let text = String::from_utf8(message).unwrap();
        assert!(envelope.return_path.is_empty(), "null sender: a notice never bounces back");
        assert_eq!(envelope.recipients[0].address, "alice@example.com");
        assert!(text.starts_with("From: Rempart <postmaster@gw.test>\r\nTo: <alice@example.com>\r\nSubject: Hello\r\n"));
        assert!(text.contains("Auto-Submitted: auto-generated") && text.ends_with("\r\n\r\nText.\r\n"));
    }
}
