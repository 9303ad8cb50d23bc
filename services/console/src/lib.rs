//! The console: where customers find what the gateway held or refused. It keeps the
//! quarantine (`quarantine/`, fed from `rempart.quarantine` by `intake.rs`), serves
//! the portal and the public `/why/{QueueId}` pages (`web/`). The accounts live in the
//! shared state (`rempart_state::accounts`): the same login serves SMTP submission.

pub use rempart_state::accounts;
pub mod digest;
pub mod intake;
pub mod onboarding;
pub mod quarantine;
pub mod queue;
pub mod replica;
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
    #[error(transparent)]
    Replica(#[from] replica::ReplicaError),
    #[error("claiming the release in the shared store: {0}")]
    Claim(#[source] rempart_state::StoreError),
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
    /// On a NATS cluster: the quarantine every console replica shares (`replica.rs`);
    /// `None`: this console's own files.
    pub replica: Option<Arc<replica::Replica>>,
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
        Ok(Console { quarantine, state, bus, keys, secure_cookies: false, admin, trusted_proxies: Vec::new(), replica: None })
    }

    /// Releases a held message through the relay to the recipients `scope` covers (a
    /// user's own copy; all of them for an operator), exactly once each: they are marked
    /// released first (a second release fails), and marked held again if the bus does
    /// not take the message. Then learns it as ham.
    pub async fn release(&self, id: &str, scope: &Scope, by: &str) -> Result<Entry, ConsoleError> {
        let now = rempart_model::date::unix_now();
        let (entry, recipients, body) = match &self.replica {
            Some(replica) => self.claim_release(replica, id, scope, by).await?,
            None => {
                let store = self.quarantine.clone();
                let (id_owned, by_owned, scope) = (id.to_string(), by.to_string(), scope.clone());
                blocking(move || {
                    let (entry, recipients) = store.mark_released(&id_owned, &scope, &by_owned, now)?;
                    match store.body(&id_owned) {
                        Ok(body) => Ok((entry, recipients, body)),
                        Err(e) => {
                            store.unrelease(&id_owned, &recipients)?;
                            Err(e)
                        }
                    }
                })
                .await?
            }
        };
        let mut envelope = entry.envelope.clone();
        envelope.attempts = 0;
        envelope.recipients.retain(|r| recipients.contains(&r.address.to_ascii_lowercase()));
        for recipient in &mut envelope.recipients {
            *recipient = Recipient { status: DeliveryStatus::Pending { last_reply: None }, ..recipient.clone() };
        }
        if let Err(e) = self.bus.publish(DELIVER_TOPIC, envelope.to_json(), body.clone()).await {
            match &self.replica {
                Some(_) => self.unclaim(id, &recipients).await,
                None => {
                    let store = self.quarantine.clone();
                    let id_owned = id.to_string();
                    blocking(move || store.unrelease(&id_owned, &recipients)).await?;
                }
            }
            return Err(ConsoleError::Release(e));
        }
        if let Some(replica) = &self.replica {
            let change = replica::Change::Released { id: id.to_string(), recipients: recipients.clone(), by: by.to_string(), at: now };
            // Delivered already: a change not recorded shows the copy held on the other
            // replicas (a second release is refused there by its claim), never lost.
            if let Err(e) = replica.record(&change).await {
                tracing::error!(queue_id = id, error = %e, "released, but the release is not on the quarantine log");
            }
            let store = self.quarantine.clone();
            blocking(move || change.apply(&store)).await?;
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
        let before = blocking(move || store.get(&id_owned)).await?.filter(|e| scope.allows(e));
        let Some(before) = before else { return Err(QuarantineError::NotFound(id.to_string()).into()) };
        let body = if as_spam { Some(self.body(id).await?) } else { None };
        let mine: Vec<String> =
            before.recipients.iter().filter(|r| matches!(scope, Scope::All) || scope.allows_recipient(r)).cloned().collect();
        let whole =
            matches!(scope, Scope::All) || before.envelope.submitted_by.is_some() || before.recipients.iter().all(|r| mine.contains(r));
        let deleted = if whole { before.recipients.clone() } else { mine };
        match &self.replica {
            Some(replica) => {
                let change = replica::Change::Deleted { id: id.to_string(), recipients: deleted.clone(), whole };
                replica.record(&change).await?;
                let store = self.quarantine.clone();
                blocking(move || change.apply(&store)).await?;
                if whole {
                    replica.delete_body(id).await;
                }
            }
            None => {
                let store = self.quarantine.clone();
                let (id_owned, scope_owned) = (id.to_string(), scope.clone());
                blocking(move || store.delete_for(&id_owned, &scope_owned)).await?;
            }
        }
        tracing::info!(queue_id = id, by, as_spam, whole, "deleted from quarantine");
        self.track("deleted", id, deleted, by).await;
        if let Some(body) = body {
            self.learn(body, Class::Spam);
        }
        Ok(())
    }

    /// A held message's body: this console's file, or the replicas' object store.
    pub async fn body(&self, id: &str) -> Result<Vec<u8>, ConsoleError> {
        match &self.replica {
            Some(replica) => Ok(replica.body(id).await?),
            None => {
                let (store, id) = (self.quarantine.clone(), id.to_string());
                Ok(blocking(move || store.body(&id)).await?)
            }
        }
    }

    /// The release key of one recipient's copy, claimed in the shared store.
    fn claim_key(id: &str, recipient: &str) -> String {
        rempart_state::key(&["quarantine", "released", id, recipient])
    }

    /// On a cluster: claims the copies `scope` may release that no replica released yet
    /// (compare-and-set per recipient: of two consoles releasing at once, one wins each
    /// copy), with the body.
    async fn claim_release(
        &self,
        replica: &replica::Replica,
        id: &str,
        scope: &Scope,
        by: &str,
    ) -> Result<(Entry, Vec<String>, Vec<u8>), ConsoleError> {
        let store = self.quarantine.clone();
        let id_owned = id.to_string();
        let entry = blocking(move || store.get(&id_owned)).await?.filter(|e| scope.allows(e));
        let Some(entry) = entry else { return Err(QuarantineError::NotFound(id.to_string()).into()) };
        let mut won = Vec::new();
        for recipient in entry.recipients.iter().filter(|r| scope.allows_recipient(r) && !entry.released_to.contains(r)) {
            let claimed = self
                .state
                .store
                .compare_and_set(&Self::claim_key(id, recipient), None, by.as_bytes(), Some(replica.retention()))
                .await
                .map_err(ConsoleError::Claim)?;
            if claimed {
                won.push(recipient.clone());
            }
        }
        if won.is_empty() {
            return Err(QuarantineError::NotHeld { id: id.to_string(), status: "released" }.into());
        }
        match replica.body(id).await {
            Ok(body) => Ok((entry, won, body)),
            Err(e) => {
                self.unclaim(id, &won).await;
                Err(e.into())
            }
        }
    }

    /// Gives claimed copies back (the relay did not take the message).
    async fn unclaim(&self, id: &str, recipients: &[String]) {
        for recipient in recipients {
            if let Err(e) = self.state.store.delete(&Self::claim_key(id, recipient)).await {
                tracing::error!(queue_id = id, %recipient, error = %e, "a failed release's claim stays: release it again after the retention");
            }
        }
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

    /// Teaches the Bayes model and the memory of campaigns (fuzzy fingerprints), in the
    /// background (a store failure is logged).
    fn learn(&self, body: Vec<u8>, class: Class) {
        let state = self.state.clone();
        tokio::spawn(async move {
            let (learnable, fingerprint) = rempart_classifier::tokens::learnable_with_fingerprint(&body);
            if let Err(e) = rempart_state::fuzzy::remember(&*state.store, &fingerprint, class).await {
                tracing::warn!(error = %e, "console could not remember the message's fuzzy fingerprint");
            }
            let Some(bayes) = state.bayes.clone() else { return };
            let Some((identity, tokens)) = learnable else { return };
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
