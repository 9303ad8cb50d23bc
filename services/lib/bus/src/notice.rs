//! Notices from the gateway itself (`rempart_model::notice`), queued for delivery like
//! any mail: by the edge and by the relay alike.

use rempart_model::{date, notice};

use crate::{Bus, DELIVER_TOPIC};

/// Queues a short text mail from the gateway to `to`; a failure is logged (a notice is
/// never worth failing the work that caused it).
pub async fn send_notice<B: Bus>(bus: &B, hostname: &str, to: &str, subject: &str, text: &str) {
    let (envelope, message) = notice::notice(hostname, to, subject, text, date::unix_now());
    if let Err(e) = bus.publish(DELIVER_TOPIC, envelope.to_json(), message).await {
        tracing::error!(%to, error = %e, "could not send a notice");
    }
}

/// Tells a suspended account and its domain admins why it was suspended.
pub async fn tell_suspension<B: Bus>(bus: &B, hostname: &str, account: &str, admins: &[String], why: &str) {
    let (subject, text) = notice::suspension(account, why);
    for to in admins.iter().map(String::as_str).chain(std::iter::once(account)) {
        send_notice(bus, hostname, to, &subject, &text).await;
    }
}
