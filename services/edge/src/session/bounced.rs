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
use rempart_state::{key, window};

use super::{Session, Transport};

fn dead_key(address: &str) -> String {
    key(&["dead", &address.to_ascii_lowercase()])
}

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
        let store = &*state.store;
        let dead: Vec<&str> =
            report.recipients.iter().filter(|b| b.hard && b.reason == Reason::UserUnknown).map(|b| b.recipient.as_str()).collect();
        if dead.is_empty() {
            return;
        }
        let limits = &self.shared.config.outbound;
        let now = date::unix_now();
        if !limits.dead_recipient_ttl.0.is_zero() {
            for recipient in &dead {
                if let Err(e) = store.put(&dead_key(recipient), now.to_string().as_bytes(), Some(limits.dead_recipient_ttl.0)).await {
                    tracing::warn!(error = %e, "dead recipient not remembered");
                }
            }
        }
        tracing::info!(account = %account.email, dead = ?dead, "bounce: recipients unknown");
        let k = key(&["out", "bounced", &account.email, &window::number(now, limits.suspend_window.0).to_string()]);
        let bounced = match window::add(store, &k, dead.len() as i64, limits.suspend_window.0).await {
            Ok(count) => count,
            Err(e) => {
                tracing::error!(error = %e, "counting bounces failed");
                return;
            }
        };
        if limits.suspend_after_bounces > 0 && bounced >= limits.suspend_after_bounces as i64 && !account.suspended {
            let why = format!("its mail came back as \"user unknown\" for {bounced} recipients within {}", limits.suspend_window);
            self.suspend_account(account, &why).await;
        }
    }

    /// An account's mail to a recipient that recently bounced as unknown: the refusal.
    pub(super) async fn dead_recipient(&self, address: &str) -> Option<Reply> {
        if self.shared.config.outbound.dead_recipient_ttl.0.is_zero() {
            return None;
        }
        let state = self.shared.state.as_ref()?;
        let bounced_at = state.store.get(&dead_key(address)).await.ok()??;
        let at = String::from_utf8_lossy(&bounced_at).parse::<u64>().map(date::rfc5322).unwrap_or_default();
        let text = format!("<{address}>: this address bounced as unknown ({at}): not sent again for now");
        Some(Reply::new(550, "5.1.1", text))
    }
}
