//! The console: where customers find what the gateway held or refused. It keeps the
//! quarantine (`quarantine.rs`, fed from `rempart.quarantine` by `intake.rs`), serves
//! the portal and the public `/why/{QueueId}` pages (`web/`). The accounts live in the
//! shared state (`rempart_state::accounts`): the same login serves SMTP submission.

pub use rempart_state::accounts;
pub mod digest;
pub mod intake;
pub mod onboarding;
pub mod quarantine;
pub mod queue;
pub mod reports;
pub mod roles;
pub mod tokens;
pub mod tracking;
pub mod web;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rempart_bus::{AnyBus, Bus, DELIVER_TOPIC};
use rempart_model::{DeliveryStatus, Recipient};
use rempart_state::SharedState;
use rempart_state::bayes::Class;

use crate::quarantine::{Entry, QuarantineError, QuarantineStore, Scope};

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error(transparent)]
    Quarantine(#[from] QuarantineError),
    #[error("console key: {0}")]
    Key(#[source] rempart_state::StoreError),
    #[error("admin socket {path}: {source}")]
    Socket { path: std::path::PathBuf, source: std::io::Error },
    #[error("console listener {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error("handing the released message to the relay: {0}")]
    Release(#[source] rempart_bus::BusError),
}

/// Everything the console's pages and workers share.
pub struct Console {
    pub quarantine: QuarantineStore,
    pub state: Arc<SharedState>,
    pub bus: Arc<AnyBus>,
    pub keys: web::auth::Keys,
    /// Cookies get `Secure` (behind a TLS-terminating proxy).
    pub secure_cookies: bool,
    /// The management API's state (tenants, domains, accounts, tokens).
    pub admin: Arc<web::admin::Admin>,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<rempart_model::net::Network>,
}

impl Console {
    pub async fn open(
        data_dir: &Path,
        state: Arc<SharedState>,
        bus: Arc<AnyBus>,
        admin: Arc<web::admin::Admin>,
    ) -> Result<Console, ConsoleError> {
        let quarantine = QuarantineStore::open(&data_dir.join("quarantine"))?;
        let keys = web::auth::Keys::load(&*state.store).await.map_err(ConsoleError::Key)?;
        Ok(Console { quarantine, state, bus, keys, secure_cookies: false, admin, trusted_proxies: Vec::new() })
    }

    /// Releases a held message through the relay to the recipients `scope` covers (a
    /// user's own copy; all of them for an operator), exactly once each: they are marked
    /// released first (a second release fails), and marked held again if the bus does
    /// not take the message. Then learns it as ham.
    pub async fn release(&self, id: &str, scope: &Scope, by: &str) -> Result<Entry, ConsoleError> {
        let store = self.quarantine.clone();
        let (id_owned, by_owned, scope) = (id.to_string(), by.to_string(), scope.clone());
        let now = rempart_model::date::unix_now();
        let (entry, recipients, body) = blocking(move || {
            let (entry, recipients) = store.mark_released(&id_owned, &scope, &by_owned, now)?;
            match store.body(&id_owned) {
                Ok(body) => Ok((entry, recipients, body)),
                Err(e) => {
                    store.unrelease(&id_owned, &recipients)?;
                    Err(e)
                }
            }
        })
        .await?;
        let mut envelope = entry.envelope.clone();
        envelope.attempts = 0;
        envelope.recipients.retain(|r| recipients.contains(&r.address.to_ascii_lowercase()));
        for recipient in &mut envelope.recipients {
            *recipient = Recipient { status: DeliveryStatus::Pending { last_reply: None }, ..recipient.clone() };
        }
        if let Err(e) = self.bus.publish(DELIVER_TOPIC, envelope.to_json(), body.clone()).await {
            let store = self.quarantine.clone();
            let id_owned = id.to_string();
            blocking(move || store.unrelease(&id_owned, &recipients)).await?;
            return Err(ConsoleError::Release(e));
        }
        tracing::info!(queue_id = id, by, recipients = envelope.recipients.len(), "released from quarantine");
        self.track("released", id, envelope.recipients.iter().map(|r| r.address.clone()).collect(), by).await;
        self.learn(body, Class::Ham);
        Ok(entry)
    }

    /// Deletes the copies of a message that `scope` may act on (a reader's own, a
    /// domain admin's domains'; others' copies stay); with `as_spam`, learns it as spam
    /// first.
    pub async fn delete(&self, id: &str, scope: &Scope, by: &str, as_spam: bool) -> Result<(), ConsoleError> {
        let store = self.quarantine.clone();
        let id_owned = id.to_string();
        let body = if as_spam { Some(blocking(move || store.body(&id_owned)).await?) } else { None };
        let store = self.quarantine.clone();
        let (id_owned, scope_owned) = (id.to_string(), scope.clone());
        let before = blocking(move || store.get(&id_owned)).await?;
        let store = self.quarantine.clone();
        let (id_owned, scope_owned) = (id.to_string(), scope_owned);
        let whole = blocking(move || store.delete_for(&id_owned, &scope_owned)).await?;
        tracing::info!(queue_id = id, by, as_spam, whole, "deleted from quarantine");
        let deleted: Vec<String> =
            before.map(|e| e.recipients.into_iter().filter(|r| whole || scope.allows_recipient(r)).collect()).unwrap_or_default();
        self.track("deleted", id, deleted, by).await;
        if let Some(body) = body {
            self.learn(body, Class::Spam);
        }
        Ok(())
    }

    /// A quarantine action for message tracking (`released`, `deleted`).
    async fn track(&self, kind: &str, queue_id: &str, recipients: Vec<String>, by: &str) {
        let event = rempart_proto::v1::TrackEvent {
            queue_id: queue_id.to_string(),
            at_ms: rempart_model::date::unix_now_ms() as i64,
            kind: kind.to_string(),
            recipients,
            outcome: by.to_string(),
            ..Default::default()
        };
        self.bus.event(rempart_bus::TRACK_EVENTS, prost::Message::encode_to_vec(&event)).await;
    }

    /// Teaches the Bayes model, in the background (a store failure is logged).
    fn learn(&self, body: Vec<u8>, class: Class) {
        let Some(bayes) = self.state.bayes.clone() else { return };
        let state = self.state.clone();
        tokio::spawn(async move {
            let Some((identity, tokens)) = rempart_classifier::tokens::learnable(&body) else { return };
            match bayes.learn(identity, class, &tokens).await {
                Ok(_) => rempart_state::announce_learning(&state).await,
                Err(e) => tracing::warn!(error = %e, "console could not teach the Bayes model"),
            }
        });
    }
}

/// Runs a quarantine operation (redb, files) off the async threads.
pub async fn blocking<T: Send + 'static>(work: impl FnOnce() -> Result<T, QuarantineError> + Send + 'static) -> Result<T, QuarantineError> {
    tokio::task::spawn_blocking(work).await.unwrap_or_else(|e| Err(QuarantineError::Task(e.to_string())))
}

/// How long quarantined messages are kept before the sweeper deletes them.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);
