//! RCPT TO: where relaying is decided. Only configured domains are accepted — any
//! domain only from an account logged in on a submission listener — and addresses
//! that would route elsewhere once inside (source routes, %-hack, bang paths, quoted
//! `@`) are refused from everyone, so the gateway is never an open relay. Unknown
//! recipients are refused here too (list, LDAP or callout), slower and slower.

use std::time::Duration;

use rempart_bus::Bus;
use rempart_model::config::{Bounces, RecipientSource};
use rempart_model::return_path::batv_local;
use rempart_model::{DomainConfig, Lookup, Notify, Recipient, date};
use rempart_state::{key, window};

use super::mail::strip_keyword;
use super::{Flow, Session, State, Transport};
use crate::address::{Mailbox, PathError, parse_params, parse_path, strip_bare_postmaster};
use rempart_smtp::Reply;

impl<B: Bus, S: Transport> Session<B, S> {
    pub(super) async fn rcpt(&mut self, args: &str) -> Flow {
        match self.state {
            State::Connected => return self.reply(Reply::bad_sequence("Send EHLO or HELO first")),
            State::Greeted => return self.reply(Reply::bad_sequence("Need MAIL command first")),
            State::Mail | State::Rcpt if self.tx.chunks.is_some() => return self.reply(Reply::bad_sequence("BDAT transfer in progress")),
            State::Mail | State::Rcpt => {}
        }
        let Some(rest) = strip_keyword(args, "TO:") else {
            return self.reply(Reply::syntax("RCPT TO:<address> [parameters]"));
        };
        let parsed = match strip_bare_postmaster(rest) {
            // RFC 5321 §4.5.1: `<Postmaster>` alone must be accepted; it goes to the
            // configured postmaster, by default postmaster@ the first domain.
            Some(params) => match self.view.config.postmaster() {
                Some(address) => parse_path(&format!("<{address}>"), true).map(|(path, _)| (path, params)),
                None => return self.reply(Reply::new(550, "5.7.1", "Relaying denied: this gateway serves no domain")),
            },
            None => parse_path(rest, true),
        };
        let (path, params) = match parsed {
            Ok(parsed) => parsed,
            Err(e @ PathError::Missing) => return self.reply(Reply::new(501, "5.5.4", format!("Syntax: RCPT TO:<address>: {e}"))),
            Err(e) => return self.reply(Reply::new(501, "5.1.3", format!("Bad recipient address syntax: {e}"))),
        };
        let Some(mut mailbox) = path.mailbox else {
            return self.reply(Reply::new(501, "5.1.3", "Bad recipient address syntax: empty address"));
        };
        if self.tx.recipients.len() >= self.view.config.smtp.max_recipients {
            return self.reply(Reply::new(452, "4.5.3", "Too many recipients"));
        }
        if path.source_route {
            return self.reply(Reply::new(550, "5.7.1", "Relaying denied: source-routed addresses are not accepted"));
        }
        if mailbox.hides_another_route() {
            return self.reply(Reply::new(550, "5.7.1", "Relaying denied: '%', '!' and quoted '@' in the local part are not accepted"));
        }
        let config = self.view.config.clone();
        let domain = config.domain(&mailbox.domain);
        if domain.is_none() && self.account.is_none() {
            return self.reply(Reply::new(550, "5.7.1", format!("Relaying denied: we do not accept mail for {}", mailbox.domain)));
        }
        // A domain being onboarded: the sender keeps the mail and retries; it is
        // accepted once the owner has proved control.
        if let Some(reason) = domain.and_then(|d| d.pending.as_deref()) {
            return self.reply(Reply::new(450, "4.7.1", format!("Not accepting mail for {} yet: {reason}", mailbox.domain)));
        }
        // A bounce answers one message of one sender: more recipients is not a bounce.
        let bounce = self.tx.return_path.is_empty();
        if bounce && !self.tx.recipients.is_empty() {
            return self.reply(Reply::new(550, "5.5.3", "A bounce (null sender) has one recipient: send one message per recipient"));
        }
        if let Some(domain) = domain
            && let Some(refused) = self.check_bounce(domain, &mut mailbox, bounce).await
        {
            return refused;
        }
        let address = mailbox.address();
        if !address.is_ascii() && !self.tx.smtputf8 {
            return self.reply(Reply::new(553, "5.6.7", "Non-ASCII address needs SMTPUTF8 on MAIL FROM"));
        }
        let mut domain_max = u64::MAX;
        if let Some(domain) = domain {
            if let Some(refused) = self.check_recipient(domain, &mailbox).await {
                return refused;
            }
            domain_max = domain.max_message_size.unwrap_or(u64::MAX);
            if self.tx.declared_size.is_some_and(|size| size > domain_max) {
                return self.reply(Reply::new(552, "5.3.4", format!("Message too big for {} (limit {domain_max} bytes)", domain.name)));
            }
        }
        if self.account.is_some()
            && let Some(refused) = self.dead_recipient(&address).await
        {
            return self.reply(refused);
        }
        let mut recipient = Recipient::new(address);
        let Ok(params) = parse_params(params) else {
            return self.reply(Reply::syntax("RCPT TO:<address> [parameters]"));
        };
        for (key, value) in params {
            match (key.as_str(), value) {
                ("NOTIFY", Some(v)) if recipient.notify.is_none() => match Notify::parse(&v) {
                    Some(n) => recipient.notify = Some(n),
                    None => return self.reply(Reply::new(501, "5.5.4", "Invalid NOTIFY parameter")),
                },
                ("ORCPT", Some(v)) if recipient.orcpt.is_none() && valid_orcpt(&v) => recipient.orcpt = Some(v),
                ("NOTIFY" | "ORCPT", _) => return self.reply(Reply::new(501, "5.5.4", format!("Invalid {key} parameter"))),
                (other, _) => return self.reply(Reply::new(555, "5.5.4", format!("Unsupported parameter {other}"))),
            }
        }
        self.tx.max_size = self.tx.max_size.min(domain_max);
        let text = format!("Recipient <{}> OK", recipient.address);
        // The same recipient twice gets one copy.
        if !self.tx.recipients.iter().any(|r| r.address.eq_ignore_ascii_case(&recipient.address)) {
            self.tx.recipients.push(recipient);
        }
        self.state = State::Rcpt;
        self.reply(Reply::new(250, "2.1.5", text))
    }
}

impl<B: Bus, S: Transport> Session<B, S> {
    /// Removes a valid BATV tag from the recipient (the mailbox is underneath) and
    /// applies the domain's `bounces` rule: `Some` is the refusal.
    async fn check_bounce(&mut self, domain: &DomainConfig, mailbox: &mut Mailbox, bounce: bool) -> Option<Flow> {
        let original = batv_local(&mailbox.local).map(str::to_string);
        let mut valid = false;
        if let (Some(original), Some(state)) = (&original, self.shared.state.clone()) {
            let day = date::unix_now() / 86_400;
            match self.shared.batv.verify(&*state.store, &mailbox.local, original, &domain.name, day).await {
                Ok(true) => {
                    mailbox.local = original.clone();
                    valid = true;
                }
                Ok(false) => {}
                Err(e) if bounce && domain.bounces == Bounces::Verified => {
                    tracing::warn!(error = %e, "BATV tag not checked");
                    return Some(self.reply(Reply::new(451, "4.4.3", "Bounce verification is unavailable, try again later")));
                }
                Err(e) => tracing::warn!(error = %e, "BATV tag not checked"),
            }
        }
        // RFC 5321 §4.5.1: postmaster takes everything, bounces included.
        if !bounce || mailbox.is_postmaster() {
            return None;
        }
        let address = mailbox.address();
        let text = match domain.bounces {
            Bounces::Accept => return None,
            Bounces::Verified if valid => return None,
            Bounces::Verified => format!(
                "<{address}>: Bounce refused: its return path was not signed by this gateway (BATV), so it answers mail {} did not send",
                domain.name
            ),
            Bounces::Refuse => {
                format!("<{address}>: Bounce refused: {} accepts no bounces (its addresses are forged by spammers)", domain.name)
            }
        };
        tracing::info!(recipient = %address, client = %self.facts.peer_ip, "backscatter refused");
        Some(self.reply(Reply::new(550, "5.7.1", text)))
    }

    /// Whether the domain has the recipient: `Some` is the session's answer when it does
    /// not, or when nobody can tell (451 unless the domain fails open).
    async fn check_recipient(&mut self, domain: &DomainConfig, mailbox: &Mailbox) -> Option<Flow> {
        let address = mailbox.address();
        let lookup = match domain.recipient_source {
            RecipientSource::Accept => Lookup::Exists,
            RecipientSource::List if recipient_exists(domain, mailbox) => Lookup::Exists,
            RecipientSource::List => Lookup::Unknown,
            // RFC 5321 §4.5.1: postmaster exists whatever the directory says.
            RecipientSource::Ldap | RecipientSource::Callout if mailbox.is_postmaster() => Lookup::Exists,
            RecipientSource::Ldap | RecipientSource::Callout => match self.view.directory.clone() {
                Some(directory) => directory.lookup(domain, &directory_address(domain, mailbox)).await,
                None => Lookup::Unavailable("no recipient directory in this process".into()),
            },
        };
        match lookup {
            Lookup::Exists => None,
            Lookup::Unavailable(why) => {
                let fail_open = domain.recipient_fail_open;
                tracing::warn!(recipient = %address, domain = %domain.name, %why, fail_open, "recipient verification unavailable");
                if fail_open {
                    return None;
                }
                let text = format!("<{address}>: Recipient verification is unavailable, try again later");
                Some(self.reply(Reply::new(451, "4.4.3", text)))
            }
            Lookup::Unknown => Some(self.unknown_recipient(&address).await),
        }
    }

    /// Refuses an unknown recipient: counted per client IP in the store (a dictionary
    /// attack ends with 421), and answered later as the session guesses more.
    async fn unknown_recipient(&mut self, address: &str) -> Flow {
        self.unknown_recipients += 1;
        let config = self.view.config.clone();
        let limit = config.smtp.max_unknown_recipients_per_ip;
        if let Some(state) = self.shared.state.clone().filter(|_| !self.trusted && limit > 0) {
            let hour = Duration::from_secs(3600);
            let k = key(&["rcpt-unknown", &self.facts.peer_ip.to_string(), &window::number(date::unix_now(), hour).to_string()]);
            match window::add(&*state.store, &k, 1, hour).await {
                Ok(tried) if tried.unsigned_abs() > limit => {
                    tracing::warn!(client = %self.facts.peer_ip, tried, limit, "too many unknown recipients from one address");
                    let text = format!("{} Too many unknown recipients from {}, try again later", config.smtp.hostname, self.facts.peer_ip);
                    return self.close_with(Reply::new(421, "4.7.0", text));
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "unknown-recipient counter not updated"),
            }
        }
        let beyond = self.unknown_recipients.saturating_sub(2).min(10);
        if beyond > 0 && !self.trusted {
            tokio::time::sleep(config.smtp.unknown_recipient_delay.0 * beyond).await;
        }
        self.reply(Reply::new(550, "5.1.1", format!("<{address}>: Recipient address rejected: user unknown")))
    }
}

/// The address a directory is asked: lower-cased, without its sub-address.
fn directory_address(domain: &DomainConfig, mailbox: &Mailbox) -> String {
    let local = mailbox.local.to_lowercase();
    format!("{}@{}", without_subaddress(domain, &local).unwrap_or(&local), domain.name)
}

/// The local part without its sub-address ("alice+news" → "alice"), when it has one.
fn without_subaddress<'a>(domain: &DomainConfig, local: &'a str) -> Option<&'a str> {
    match domain.recipient_delimiter.as_str() {
        "" => None,
        delimiter => local.split_once(delimiter).map(|(base, _)| base),
    }
}

/// `addr-type ";" xtext` (RFC 3461 §4.2), 500 characters at most.
fn valid_orcpt(v: &str) -> bool {
    v.len() <= 500
        && v.split_once(';').is_some_and(|(kind, addr)| {
            !kind.is_empty() && kind.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') && rempart_smtp::xtext::is_valid(addr)
        })
}

/// Whether the domain has this recipient. `postmaster` always exists (RFC 5321 §4.5.1).
fn recipient_exists(domain: &DomainConfig, mailbox: &Mailbox) -> bool {
    if domain.recipients.is_empty() || mailbox.is_postmaster() {
        return true;
    }
    let local = mailbox.local.to_lowercase();
    let base = without_subaddress(domain, &local);
    domain.recipients.iter().any(|entry| {
        let entry = entry.to_lowercase();
        let (entry_local, entry_domain) = match entry.rsplit_once('@') {
            Some((l, d)) => (l.to_string(), Some(d.to_string())),
            None => (entry, None),
        };
        if entry_domain.is_some_and(|d| d != domain.name) {
            return false;
        }
        entry_local == "*" || entry_local == local || base == Some(entry_local.as_str())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipient_lists() {
        let domain = DomainConfig {
            recipients: vec!["alice".into(), "Bob@example.com".into(), "carol@other.example".into()],
            ..DomainConfig::new("example.com", "smtp://h".parse().unwrap())
        };
        let mb = |local: &str| Mailbox { local: local.into(), quoted: false, domain: "example.com".into() };
        assert!(recipient_exists(&domain, &mb("alice")));
        assert!(recipient_exists(&domain, &mb("ALICE+news")));
        assert!(recipient_exists(&domain, &mb("bob")));
        assert!(!recipient_exists(&domain, &mb("carol")));
        assert!(!recipient_exists(&domain, &mb("mallory")));
        assert!(recipient_exists(&domain, &mb("PostMaster")), "postmaster always exists");
        let catch_all = DomainConfig { recipients: vec!["*".into()], ..domain };
        assert!(recipient_exists(&catch_all, &mb("anyone")));
    }
}
