//! EHLO and HELO.

use rempart_bus::Bus;

use super::{Flow, Session, State, Transport};
use rempart_smtp::Reply;

impl<B: Bus, S: Transport> Session<B, S> {
    pub(super) fn ehlo(&mut self, args: &str, extended: bool) -> Flow {
        let name = args.trim();
        if name.is_empty() || name.contains(char::is_whitespace) {
            return self.reply(Reply::syntax(if extended { "EHLO hostname" } else { "HELO hostname" }));
        }
        self.facts.helo = name.to_string();
        self.esmtp = extended;
        self.state = State::Greeted;
        self.reset_transaction();
        let host = self.hostname().to_string();
        if !extended {
            self.out.extend_from_slice(format!("250 {host}\r\n").as_bytes());
            return Flow::Continue;
        }
        let mut lines = vec![
            format!("{host} Hello {name} [{}]", self.facts.peer_ip),
            "PIPELINING".into(),
            format!("SIZE {}", self.view.config.smtp.max_message_size),
            "8BITMIME".into(),
            "SMTPUTF8".into(),
            "ENHANCEDSTATUSCODES".into(),
            "CHUNKING".into(),
        ];
        if self.view.tls.is_some() && self.facts.tls.is_none() {
            lines.push("STARTTLS".into());
        }
        // Passwords only over TLS (RFC 8314), and only where customers submit mail.
        if self.kind.is_submission() && self.facts.tls.is_some() && self.account.is_none() {
            lines.push("AUTH PLAIN LOGIN".into());
        }
        lines.push("DSN".into());
        if !self.kind.is_submission() {
            lines.push("ETRN".into());
        }
        let last = lines.len() - 1;
        for (i, line) in lines.iter().enumerate() {
            let sep = if i == last { ' ' } else { '-' };
            self.out.extend_from_slice(format!("250{sep}{line}\r\n").as_bytes());
        }
        Flow::Continue
    }
}
