//! MAIL FROM, with SIZE, BODY, SMTPUTF8 and the DSN parameters RET and ENVID.

use rempart_bus::Bus;
use rempart_model::DsnRet;

use super::{Flow, Session, State, Transaction, Transport};
use crate::address::{PathError, parse_params, parse_path};
use rempart_smtp::Reply;

impl<B: Bus, S: Transport> Session<B, S> {
    pub(super) fn mail(&mut self, args: &str) -> Flow {
        match self.state {
            State::Connected => return self.reply(Reply::bad_sequence("Send EHLO or HELO first")),
            State::Mail | State::Rcpt => return self.reply(Reply::bad_sequence("Nested MAIL command")),
            State::Greeted if self.kind.is_submission() && self.account.is_none() => {
                return self.reply(Reply::new(530, "5.7.0", "Authentication required: log in with AUTH (after STARTTLS) to send"));
            }
            State::Greeted => {}
        }
        let Some(rest) = strip_keyword(args, "FROM:") else {
            return self.reply(Reply::syntax("MAIL FROM:<address> [parameters]"));
        };
        let (path, params) = match parse_path(rest, true) {
            Ok(parsed) => parsed,
            Err(e @ PathError::Missing) => return self.reply(Reply::new(501, "5.5.4", format!("Syntax: MAIL FROM:<address>: {e}"))),
            Err(e) => return self.reply(Reply::new(501, "5.1.7", format!("Bad sender address syntax: {e}"))),
        };
        let Ok(params) = parse_params(params) else {
            return self.reply(Reply::syntax("MAIL FROM:<address> [parameters]"));
        };
        if !params.is_empty() && !self.esmtp {
            return self.reply(Reply::new(555, "5.5.4", "Parameters need EHLO"));
        }
        let max_size = self.view.config.smtp.max_message_size;
        let mut tx = Transaction { max_size, ..Default::default() };
        for (key, value) in params {
            let value = value.as_deref();
            let ok = match (key.as_str(), value) {
                ("SIZE", Some(v)) => match v.parse::<u64>() {
                    Ok(n) if n > max_size => {
                        return self.reply(Reply::new(
                            552,
                            "5.3.4",
                            format!("Message size exceeds fixed maximum message size ({max_size} bytes)"),
                        ));
                    }
                    Ok(n) => {
                        tx.declared_size = Some(n);
                        true
                    }
                    Err(_) => false,
                },
                ("BODY", Some(v)) if v.eq_ignore_ascii_case("7BIT") => true,
                ("BODY", Some(v)) if v.eq_ignore_ascii_case("8BITMIME") => {
                    tx.body_8bit = true;
                    true
                }
                ("SMTPUTF8", None) => {
                    tx.smtputf8 = true;
                    true
                }
                ("RET", Some(v)) if v.eq_ignore_ascii_case("FULL") => tx.ret.replace(DsnRet::Full).is_none(),
                ("RET", Some(v)) if v.eq_ignore_ascii_case("HDRS") => tx.ret.replace(DsnRet::Hdrs).is_none(),
                ("ENVID", Some(v)) if v.len() <= 100 && rempart_smtp::xtext::is_valid(v) => tx.envid.replace(v.to_string()).is_none(),
                // RFC 4954 §5: the identity a relaying MTA claims for the message's
                // submitter. Accepted (Postfix and Exim send `AUTH=<>`) and never
                // believed: only this session's own AUTH lets mail out.
                ("AUTH", Some(v)) if v == "<>" || rempart_smtp::xtext::is_valid(v) => true,
                ("SIZE" | "BODY" | "RET" | "ENVID" | "SMTPUTF8" | "AUTH", _) => false,
                (other, _) => return self.reply(Reply::new(555, "5.5.4", format!("Unsupported parameter {other}"))),
            };
            if !ok {
                return self.reply(Reply::new(501, "5.5.4", format!("Invalid {key} parameter")));
            }
        }
        let address = path.mailbox.as_ref().map(|m| m.address()).unwrap_or_default();
        if !address.is_ascii() && !tx.smtputf8 {
            return self.reply(Reply::new(553, "5.6.7", "Non-ASCII address needs the SMTPUTF8 parameter"));
        }
        if let Some(refusal) = self.account.as_ref().and_then(|account| super::submission::sender_refusal(account, &address)) {
            return self.reply(refusal);
        }
        // A source route on the reverse path is ignored (RFC 5321 §3.3).
        tx.return_path = address;
        let text = format!("Sender <{}> OK", tx.return_path);
        self.tx = tx;
        self.state = State::Mail;
        self.reply(Reply::new(250, "2.1.0", text))
    }
}

/// `FROM:<x>` / `TO:<x>`, case-insensitive, tolerating a space after the colon.
pub(super) fn strip_keyword<'a>(args: &'a str, keyword: &str) -> Option<&'a str> {
    let head = args.get(..keyword.len())?;
    head.eq_ignore_ascii_case(keyword).then(|| &args[keyword.len()..])
}
