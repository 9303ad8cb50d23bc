//! The Received trace header the edge prepends (RFC 5321 §4.4, protocol names from
//! RFC 3848 and RFC 6531).

use rempart_model::{QueueId, SessionFacts, date};

pub struct Trace<'a> {
    pub facts: &'a SessionFacts,
    pub esmtp: bool,
    /// The client logged in (AUTH): the protocol name says so (RFC 3848's "A").
    pub authenticated: bool,
    pub smtputf8: bool,
    pub hostname: &'a str,
    pub queue_id: &'a QueueId,
    /// Named in the header only when there is exactly one.
    pub single_recipient: Option<&'a str>,
    pub at: u64,
}

impl Trace<'_> {
    pub fn header(&self) -> String {
        let protocol = match (self.smtputf8, self.esmtp, self.facts.tls.is_some()) {
            (true, _, true) => "UTF8SMTPS",
            (true, _, false) => "UTF8SMTP",
            (false, true, true) => "ESMTPS",
            (false, true, false) => "ESMTP",
            (false, false, true) => "SMTPS",
            (false, false, false) => "SMTP",
        };
        let protocol = if self.authenticated { format!("{protocol}A") } else { protocol.to_string() };
        let helo = sanitize(&self.facts.helo);
        let mut h = format!("Received: from {helo} ([{}])\r\n", self.facts.peer_ip);
        if let Some(tls) = &self.facts.tls {
            h.push_str(&format!("\t(using {tls})\r\n"));
        }
        h.push_str(&format!("\tby {} (Rempart) with {protocol} id {}", self.hostname, self.queue_id));
        if let Some(rcpt) = self.single_recipient {
            h.push_str(&format!("\r\n\tfor <{}>", sanitize(rcpt)));
        }
        h.push_str(&format!(";\r\n\t{}\r\n", date::rfc5322(self.at)));
        h
    }
}

/// Keeps client-supplied text from breaking the header's structure.
fn sanitize(s: &str) -> String {
    s.chars().map(|c| if c.is_control() || c == '(' || c == ')' || c == ';' { '_' } else { c }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_tls_and_id() {
        let facts = SessionFacts {
            peer_ip: "192.0.2.1".parse().unwrap(),
            helo: "mx.example\r\nX: y".into(),
            tls: Some("TLSv1.3 with cipher TLS13_AES_128_GCM_SHA256".into()),
        };
        let id = QueueId::from_string("ABC".into());
        let h = Trace {
            facts: &facts,
            esmtp: true,
            authenticated: false,
            smtputf8: false,
            hostname: "gw.example",
            queue_id: &id,
            single_recipient: Some("a@b.example"),
            at: 0,
        }
        .header();
        assert!(h.starts_with("Received: from mx.example__X: y ([192.0.2.1])\r\n\t(using TLSv1.3"), "{h}");
        assert!(h.contains("with ESMTPS id ABC\r\n\tfor <a@b.example>;\r\n\tThu, 1 Jan 1970"), "{h}");
        assert!(h.ends_with("\r\n") && h.lines().all(|l| l.len() < 998));
    }
}
