//! RSET, VRFY and HELP (NOOP, QUIT and the unimplemented verbs are one-liners in mod.rs).

use rempart_bus::Bus;

use super::{Flow, Session, Transport};
use rempart_smtp::Reply;

impl<B: Bus, S: Transport> Session<B, S> {
    pub(super) fn rset(&mut self, args: &str) -> Flow {
        if !args.trim().is_empty() {
            return self.reply(Reply::syntax("RSET"));
        }
        self.reset_transaction();
        self.reply(Reply::new(250, "2.0.0", "Ok"))
    }

    /// RFC 5321 §3.5.3: VRFY need not disclose anything; 252 says "send it and see".
    pub(super) fn vrfy(&mut self, args: &str) -> Flow {
        if args.trim().is_empty() {
            return self.reply(Reply::syntax("VRFY address"));
        }
        self.reply(Reply::new(252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery"))
    }

    pub(super) fn help(&mut self) -> Flow {
        self.reply(Reply::new(214, "2.0.0", "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP STARTTLS AUTH ETRN"))
    }
}
