//! What an authenticated account may send: as itself only. The envelope sender (at
//! MAIL) and every address of the From header (at the end of DATA) must be addresses
//! the account may send as (`Account::may_send_as`: its login, its aliases, an
//! `@domain` alias's domain, a domain admin's domains); else `553 5.7.1` naming the rule.

use std::time::Duration;

use rempart_bus::{Bus, QUARANTINE_TOPIC};
use rempart_model::config::{OutboundConfig, SendLimits};
use rempart_model::{Envelope, QueueId, Verdict, date};
use rempart_smtp::Reply;
use rempart_state::accounts::Account;
use rempart_state::{Store, StoreError, key, window};
use rempart_telemetry::metrics;

use super::{Session, Transaction, Transport};

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

const RULE: &str = "an account sends only as its login, its aliases and the domains it was given";

/// Why MAIL FROM:<address> is refused for `account`, if it is.
pub fn sender_refusal(account: &Account, address: &str) -> Option<Reply> {
    if account.suspended {
        return Some(Reply::new(
            550,
            "5.7.1",
            format!("Account {} is suspended from sending: ask your provider to review and unsuspend it", account.email),
        ));
    }
    if address.is_empty() {
        return Some(Reply::new(553, "5.7.1", "Sender address rejected: the null sender <> is not accepted on submission"));
    }
    (!account.may_send_as(address))
        .then(|| Reply::new(553, "5.7.1", format!("Sender address rejected: <{address}> is not yours as {} ({RULE})", account.email)))
}

/// The addresses of the message's From header.
fn from_addresses(message: &[u8]) -> Vec<String> {
    let headers = mail_parser::MessageParser::new().parse_headers(message);
    headers.as_ref().and_then(|m| m.from()).map(|f| f.iter().filter_map(|a| a.address()).map(str::to_string).collect()).unwrap_or_default()
}

/// The domain of the first From address (the DKIM signing domain), lower case.
pub fn from_domain(message: &[u8]) -> Option<String> {
    from_addresses(message).first().and_then(|a| a.rsplit_once('@')).map(|(_, d)| d.to_ascii_lowercase())
}

/// Why the message is refused because of its From header, if it is: a From address the
/// account may not use, or no From address at all.
pub fn foreign_from(account: &Account, message: &[u8]) -> Option<Reply> {
    // One From header (RFC 5322 section 3.6): with two, a reader may show either.
    let parsed = mail_parser::MessageParser::new().parse_headers(message);
    let from_headers = parsed.as_ref().map_or(0, |m| m.headers().iter().filter(|h| h.name == mail_parser::HeaderName::From).count());
    if from_headers > 1 {
        return Some(Reply::new(553, "5.7.1", "Message refused: more than one From header (RFC 5322 section 3.6 allows one)"));
    }
    let from = from_addresses(message);
    if from.is_empty() {
        return Some(Reply::new(553, "5.7.1", "Message refused: it has no From address (RFC 5322 section 3.6.2)"));
    }
    let foreign = from.iter().find(|a| !account.may_send_as(a))?;
    Some(Reply::new(553, "5.7.1", format!("Message refused: From <{foreign}> is not yours as {} ({RULE})", account.email)))
}

/// Checks a message of `recipients` recipients against the account's and its domain's
/// sending limits and, when within them, counts it. Past a limit: `451 4.7.1` saying
/// which (the sender retries; the window turns).
pub async fn within_limits(
    store: &dyn Store,
    limits: &OutboundConfig,
    account: &Account,
    recipients: usize,
    now: u64,
) -> Result<(), Reply> {
    let scopes = [("account", account.email.as_str(), &limits.account), ("domain", account.domain(), &limits.domain)];
    let mut counted = Vec::new();
    for (scope, id, limit) in scopes {
        for (what, per, length, max, by) in checks(limit, recipients) {
            if max == 0 {
                continue;
            }
            let k = key(&["out", scope, id, what, per, &window::number(now, length).to_string()]);
            let sent = window::read(store, &k).await.map_err(store_failure)?;
            if sent + by > max as i64 {
                tracing::warn!(%scope, %id, what, per, limit = max, "sending limit reached");
                return Err(Reply::new(
                    451,
                    "4.7.1",
                    format!("Sending limit reached: {max} {what} per {per} for {scope} {id}; try again later"),
                ));
            }
            counted.push((k, by, length));
        }
    }
    for (k, by, length) in counted {
        window::add(store, &k, by, length).await.map_err(store_failure)?;
    }
    Ok(())
}

/// What the reply to a submitted message means for the usage reports.
fn outbound_result(reply: &Reply) -> &'static str {
    match (reply.code, reply.status.as_ref()) {
        (200..=299, _) => "sent",
        (553, _) => "refused",
        (451, "4.7.1") => "limited",
        (500..=599, _) => "blocked",
        _ => "deferred",
    }
}

impl<B: Bus, S: Transport> Session<B, S> {
    /// The return path a message leaves with: an account's, of a domain that verifies
    /// its bounces, gets a BATV tag (unsigned if the key cannot be read: the mail goes,
    /// its bounces may be refused).
    pub(super) async fn outbound_return_path(&self, return_path: String) -> String {
        let signing = self.account.is_some()
            && return_path
                .rsplit_once('@')
                .and_then(|(_, domain)| self.view.config.domain(domain))
                .is_some_and(|d| d.bounces == rempart_model::config::Bounces::Verified);
        let Some(state) = self.shared.state.as_ref().filter(|_| signing) else { return return_path };
        match self.shared.batv.sign(&*state.store, &return_path, date::unix_now() / 86_400).await {
            Ok(signed) => signed,
            Err(e) => {
                tracing::warn!(error = %e, "return path not signed");
                return_path
            }
        }
    }

    /// Counts a submitted message for the account's and its domain's usage (metrics,
    /// and an event the console's reports count).
    pub(super) async fn outbound_usage(&self, account: &Account, queue_id: &QueueId, reply: &Reply, recipients: usize, bytes: usize) {
        let result = outbound_result(reply);
        // Metric labels stay bounded: only customer domains are named.
        let domain = if self.view.config.domain(account.domain()).is_some() { account.domain() } else { "other" };
        metrics().outbound(domain, result, recipients, bytes);
        self.outbound_event(&account.email, result, recipients, bytes, queue_id.as_str()).await;
    }

    /// `rempart.events.outbound`: what `account` did (see the proto's `OutboundEvent`).
    pub(super) async fn outbound_event(&self, account: &str, result: &str, recipients: usize, bytes: usize, queue_id: &str) {
        rempart_notices::outbound_event(&self.shared.bus, account, result, recipients, bytes, queue_id).await;
    }

    /// Submitted mail the outbound scan blocked: held in the quarantine (where the
    /// account and its domain admins see it), the account told by mail with the portal
    /// link, and counted: past `[outbound] suspend_after_blocked` in
    /// `suspend_window` the account is suspended and its domain admins told.
    pub(super) async fn hold_blocked(&mut self, queue_id: &QueueId, tx: &Transaction, verdict: &Verdict, message: Vec<u8>) {
        let Some(account) = self.account.clone() else { return };
        let now = date::unix_now();
        let mut envelope = Envelope::new(queue_id.clone(), tx.return_path.clone(), tx.recipients.clone(), now);
        (envelope.session, envelope.verdict, envelope.submitted_by) =
            (self.facts.clone(), Some(verdict.clone()), Some(account.email.clone()));
        if let Err(e) = self.shared.bus.publish(QUARANTINE_TOPIC, envelope.to_json(), message).await {
            tracing::error!(%queue_id, error = %e, "could not hold a blocked outbound message");
        }
        let config = &self.view.config;
        let portal = config.console.public_url.replace("{hostname}", &config.smtp.hostname);
        let to: Vec<&str> = tx.recipients.iter().map(|r| r.address.as_str()).collect();
        let text = format!(
            "Your message to {} was not sent: it looks like spam.\r\n\
             Spam score {} (blocked from {:.1}).\r\n\
             It is held for review: {}/quarantine/{queue_id}\r\n\r\n\
             Votre message à {} n'a pas été envoyé : il ressemble à du spam (score ci-dessus, bloqué à partir de {:.1}). \
             Il est retenu pour examen (lien ci-dessus).\r\n",
            to.join(", "),
            rempart_model::verdict::outbound_bar(verdict.score),
            config.outbound.block,
            portal.trim_end_matches('/'),
            to.join(", "),
            config.outbound.block
        );
        let subject = "Your message was blocked / Votre message a été bloqué";
        rempart_notices::send_notice(&self.shared.bus, &config.smtp.hostname, &account.email, subject, &text).await;
        let Some(state) = self.shared.state.clone() else { return };
        let limits = &config.outbound;
        let k = key(&["out", "blocked", &account.email, &window::number(now, limits.suspend_window.0).to_string()]);
        let blocked = match window::add(&*state.store, &k, 1, limits.suspend_window.0).await {
            Ok(count) => count,
            Err(e) => {
                tracing::error!(error = %e, "counting blocked outbound mail failed");
                return;
            }
        };
        if limits.suspend_after_blocked == 0 || blocked < limits.suspend_after_blocked as i64 {
            return;
        }
        let why = format!("{blocked} of its messages were blocked as spam within {}", limits.suspend_window);
        self.suspend_account(&account, &why).await;
    }

    /// Suspends the account from sending and tells it and its domain admins why.
    pub(super) async fn suspend_account(&self, account: &Account, why: &str) {
        let Some(state) = self.shared.state.clone() else { return };
        rempart_notices::suspend(&*state.store, &self.shared.bus, &self.view.config.smtp.hostname, account, why).await;
    }
}

/// (what, per, window, limit, this message's count) for each limit.
fn checks(limit: &SendLimits, recipients: usize) -> [(&'static str, &'static str, Duration, u64, i64); 4] {
    let n = recipients as i64;
    [
        ("messages", "hour", HOUR, limit.messages_per_hour, 1),
        ("messages", "day", DAY, limit.messages_per_day, 1),
        ("recipients", "hour", HOUR, limit.recipients_per_hour, n),
        ("recipients", "day", DAY, limit.recipients_per_day, n),
    ]
}

fn store_failure(e: StoreError) -> Reply {
    tracing::error!(error = %e, "sending limits: the store failed");
    Reply::new(451, "4.3.0", "Temporary failure while checking sending limits, please try again later")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rempart_state::accounts::Role;

    fn account(role: Role, domains: &[&str], aliases: &[&str]) -> Account {
        Account {
            domains: domains.iter().map(|d| d.to_string()).collect(),
            aliases: aliases.iter().map(|a| a.to_string()).collect(),
            ..Account::new("alice@example.com", role)
        }
    }

    #[test]
    fn an_account_sends_as_itself_its_aliases_and_its_domains() {
        let alice = account(Role::User, &[], &["a.smith@example.com", "@shop.example"]);
        for ok in ["alice@example.com", "ALICE@Example.com", "a.smith@example.com", "sales@shop.example"] {
            assert!(sender_refusal(&alice, ok).is_none(), "{ok}");
        }
        for refused in ["bob@example.com", "alice@other.example", "", "sales@sub.shop.example"] {
            assert_eq!(sender_refusal(&alice, refused).map(|r| (r.code, r.status)), Some((553, "5.7.1".into())), "{refused}");
        }
        let admin = account(Role::TenantAdmin, &["example.com"], &[]);
        assert!(sender_refusal(&admin, "anyone@example.com").is_none());
        assert!(sender_refusal(&admin, "anyone@other.example").is_some());
        let mut suspended = account(Role::User, &[], &[]);
        suspended.suspended = true;
        assert_eq!(sender_refusal(&suspended, "alice@example.com").map(|r| r.code), Some(550));
    }

    #[test]
    fn replies_to_submitted_mail_map_to_usage_results() {
        let result = |code, status: &'static str| outbound_result(&Reply::new(code, status, "x"));
        assert_eq!(result(250, "2.0.0"), "sent");
        assert_eq!(result(553, "5.7.1"), "refused");
        assert_eq!(result(451, "4.7.1"), "limited");
        assert_eq!(result(550, "5.7.1"), "blocked");
        assert_eq!(result(451, "4.3.0"), "deferred");
    }

    #[test]
    fn the_from_header_must_be_the_accounts_too() {
        let alice = account(Role::User, &[], &[]);
        assert!(foreign_from(&alice, b"From: Alice <alice@example.com>\r\nSubject: x\r\n\r\nbody\r\n").is_none());
        let forged = foreign_from(&alice, b"From: CEO <ceo@example.com>\r\n\r\nbody\r\n").expect("refused");
        assert!(forged.text.contains("ceo@example.com"), "{}", forged.text);
        assert!(foreign_from(&alice, b"From: Alice <alice@example.com>, Bob <bob@example.com>\r\n\r\nx\r\n").is_some());
        assert!(foreign_from(&alice, b"Subject: no from\r\n\r\nx\r\n").is_some());
    }

    /// Issue 30, defect 7: a forged From before the account's own one was relayed.
    #[test]
    fn two_from_headers_are_refused() {
        let alice = account(Role::User, &[], &[]);
        let two = b"From: CEO <ceo@bank.test>\r\nFrom: Alice <alice@example.com>\r\nSubject: x\r\n\r\nbody\r\n";
        let refused = foreign_from(&alice, two).expect("refused");
        assert!(refused.text.contains("more than one From"), "{}", refused.text);
        let both_hers = b"From: alice@example.com\r\nFrom: alice@example.com\r\n\r\nbody\r\n";
        assert!(foreign_from(&alice, both_hers).is_some());
    }
}
