//! Bounces that come back to customers' accounts: read (as `rempart dsn` reads them)
//! for their hard "user unknown" recipients, which are remembered as dead — every
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
        let dead: Vec<&str> =
            report.recipients.iter().filter(|b| b.hard && b.reason == Reason::UserUnknown).map(|b| b.recipient.as_str()).collect();
        match accounts::unknown_recipients(&*state.store, &self.shared.config.outbound, account, &dead, date::unix_now()).await {
            Ok(Some(why)) => self.suspend_account(account, &why).await,
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, "unknown recipients of a bounce not recorded"),
        }
    }

    /// An account's mail to a recipient that recently bounced as unknown: the refusal.
    pub(super) async fn dead_recipient(&self, address: &str) -> Option<Reply> {
        if self.shared.config.outbound.dead_recipient_ttl.0.is_zero() {
            return None;
        }
        let state = self.shared.state.as_ref()?;
        let at = date::rfc5322(accounts::dead_since(&*state.store, address).await?);
        let text = format!("<{address}>: this address bounced as unknown ({at}): not sent again for now");
        Some(Reply::new(550, "5.1.1", text))
    }
}
