//! Mail from the gateway itself (`rempart_model::notice`), queued for delivery like any
//! mail, and the suspension of an account that sends spam or to dead addresses: the
//! same steps whether the edge (outbound scan) or the relay (bounces) decides it.

use rempart_bus::{Bus, DELIVER_TOPIC, OUTBOUND_EVENTS};
use rempart_model::{date, notice};
use rempart_state::Store;
use rempart_state::accounts::{self, Account};

/// Queues a short text mail from the gateway to `to`; a failure is logged (a notice is
/// never worth failing the work that caused it).
pub async fn send_notice<B: Bus>(bus: &B, hostname: &str, to: &str, subject: &str, text: &str) {
    let (envelope, message) = notice::notice(hostname, to, subject, text, date::unix_now());
    if let Err(e) = bus.publish(DELIVER_TOPIC, envelope.to_json(), message).await {
        tracing::error!(%to, error = %e, "could not send a notice");
    }
}

/// `rempart.events.outbound`: what became of an account's message (the console's
/// reports count them).
pub async fn outbound_event<B: Bus>(bus: &B, account: &str, result: &str, recipients: usize, bytes: usize, queue_id: &str) {
    let event = rempart_proto::v1::OutboundEvent {
        account: account.to_string(),
        result: result.to_string(),
        recipients: u32::try_from(recipients).unwrap_or(u32::MAX),
        bytes: bytes as u64,
        at: date::unix_now() as i64,
        queue_id: queue_id.to_string(),
    };
    bus.event(OUTBOUND_EVENTS, prost::Message::encode_to_vec(&event)).await;
}

/// Suspends `account` from sending, counts it, and tells it and its domain admins why.
pub async fn suspend<B: Bus>(store: &dyn Store, bus: &B, hostname: &str, account: &Account, why: &str) {
    let admins = match accounts::suspend(store, account).await {
        Ok(admins) => admins,
        Err(e) => {
            tracing::error!(account = %account.email, error = %e, "suspending an account failed");
            return;
        }
    };
    tracing::warn!(account = %account.email, %why, "account suspended");
    outbound_event(bus, &account.email, "suspended", 0, 0, "").await;
    let (subject, text) = notice::suspension(&account.email, why);
    for to in admins.iter().map(String::as_str).chain(std::iter::once(account.email.as_str())) {
        send_notice(bus, hostname, to, &subject, &text).await;
    }
}
