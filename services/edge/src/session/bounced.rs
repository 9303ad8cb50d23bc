//! Bounces that come back to customers' accounts: read (as `rempart dsn` reads them)
//! for their hard "user unknown" recipients that the account really sent to
//! (`accounts::remember_sent`; a forged report names others), which are remembered as dead — every
//! account's mail to them is refused for `[outbound] dead_recipient_ttl` — and counted
//! against the account: past `suspend_after_bounces` in `suspend_window` it is suspended
//! (mail to harvested addresses is what a stolen password sends).

use rempart_bus::Bus;
use rempart_model::date;
use rempart_smtp::Reply;
use rempart_smtp::bounce::{Reason, Report};
use rempart_state::accounts::{self, Account};

use super::{Session, Transport};

impl<B: Bus, S: Transport> Session<B, S> {
    /// The account a bounce to `address` is for, if it is one (only those are read).
    pub(super) async fn bounced_account(&self, address: &str) -> Option<Account> {
        let state = self.shared.state.as_ref()?;
        accounts::get(&*state.store, &address.to_ascii_lowercase()).await.ok()?
    }

    /// After a bounce to `account` was accepted: its dead recipients are remembered and
    /// counted.
    pub(super) async fn read_bounce(&self, account: &Account, report: &Report) {
        let Some(state) = self.shared.state.clone() else { return };
        let said_dead: Vec<&str> =
            report.recipients.iter().filter(|b| b.hard && b.reason == Reason::UserUnknown).map(|b| b.recipient.as_str()).collect();
        if said_dead.is_empty() {
            return;
        }
        // Only what the account sent to counts: anyone can mail a forged report.
        let dead = match accounts::sent_by(&*state.store, &account.email, &said_dead).await {
            Ok(dead) => dead,
            Err(e) => return tracing::error!(error = %e, "a bounce's recipients could not be checked; not counted"),
        };
        if dead.len() < said_dead.len() {
            tracing::warn!(
                account = %account.email, ignored = said_dead.len() - dead.len(),
                "bounce names addresses this account never sent to; those are ignored (forged or misdirected report)"
            );
        }
        let dead: Vec<&str> = dead.iter().map(String::as_str).collect();
        match accounts::unknown_recipients(&*state.store, &self.view.config.outbound, account, &dead, date::unix_now()).await {
            Ok(Some(why)) => self.suspend_account(account, &why).await,
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, "unknown recipients of a bounce not recorded"),
        }
    }

    /// The account's queued message went to `recipients`: a bounce about them is
    /// believed for a while.
    pub(super) async fn remember_sent(&self, account: &Account, recipients: &[rempart_model::Recipient]) {
        let Some(state) = self.shared.state.as_ref() else { return };
        let addresses: Vec<&str> = recipients.iter().map(|r| r.address.as_str()).collect();
        if let Err(e) = accounts::remember_sent(&*state.store, &account.email, &addresses, date::unix_now()).await {
            tracing::warn!(account = %account.email, error = %e, "recipients of a submitted message not remembered");
        }
    }

    /// An account's mail to a recipient that recently bounced as unknown: the refusal.
    pub(super) async fn dead_recipient(&self, address: &str) -> Option<Reply> {
        if self.view.config.outbound.dead_recipient_ttl.0.is_zero() {
            return None;
        }
        let state = self.shared.state.as_ref()?;
        let at = date::rfc5322(accounts::dead_since(&*state.store, address).await?);
        let text = format!("<{address}>: this address bounced as unknown ({at}): not sent again for now");
        Some(Reply::new(550, "5.1.1", text))
    }
}
