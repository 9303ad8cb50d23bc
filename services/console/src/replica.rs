//! The quarantine shared by console replicas on a NATS cluster (`[bus] backend =
//! "nats"`): the bodies in the JetStream object store `rempart-quarantine`, every change
//! — held, released, deleted — on the stream `REMPART_QUARANTINE_LOG`, both kept
//! `[console] retention`. Each console keeps its own index (`QuarantineStore`, without
//! body files) by following the log from the sequence it last applied, so any replica
//! lists, shows and releases every message, a console started empty catches up, and
//! one killed loses nothing. A release claims each recipient's copy in the shared
//! store first (compare-and-set), so two consoles never release the same copy twice.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::consumer::pull::OrderedConfig;
use async_nats::jetstream::object_store::ObjectStore;
use async_nats::jetstream::stream::{Config as StreamConfig, RetentionPolicy, StorageType};
use async_nats::jetstream::{self};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;
use tokio::sync::watch;

use crate::quarantine::{Entry, QuarantineStore, Scope};

const BUCKET: &str = "rempart-quarantine";
const LOG_STREAM: &str = "REMPART_QUARANTINE_LOG";
const LOG_SUBJECT: &str = "rempart.quarantine-log";

#[derive(Debug, thiserror::Error)]
#[error("replicated quarantine: {0}")]
pub struct ReplicaError(String);

fn failed<E: std::fmt::Display>(e: E) -> ReplicaError {
    ReplicaError(e.to_string())
}

/// One change to the quarantine, as every replica applies it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    Held { entry: Box<Entry> },
    Released { id: String, recipients: Vec<String>, by: String, at: u64 },
    Deleted { id: String, recipients: Vec<String>, whole: bool },
}

impl Change {
    /// Applies the change to this console's index; applying it twice changes nothing.
    pub fn apply(&self, store: &QuarantineStore) -> Result<(), crate::quarantine::QuarantineError> {
        use crate::quarantine::QuarantineError::NotFound;
        let outcome = match self {
            Change::Held { entry } => store.index(std::slice::from_ref(entry)),
            Change::Released { id, recipients, by, at } => store.apply_released(id, recipients, by, *at).map(|_| ()),
            Change::Deleted { id, whole: true, .. } => store.delete(id),
            Change::Deleted { id, recipients, whole: false } => store.delete_for(id, &Scope::Addresses(recipients.clone())).map(|_| ()),
        };
        match outcome {
            Err(NotFound(_)) => Ok(()),
            other => other,
        }
    }
}

pub struct Replica {
    bodies: ObjectStore,
    jetstream: jetstream::Context,
    log: jetstream::stream::Stream,
    retention: Duration,
}

/// Where the NATS cluster is and how long the quarantine keeps messages.
pub struct ReplicaOptions<'a> {
    pub url: &'a str,
    pub credentials_file: Option<&'a std::path::Path>,
    pub ca_file: Option<&'a std::path::Path>,
    pub replicas: usize,
    pub retention: Duration,
}

impl Replica {
    pub async fn connect(options: &ReplicaOptions<'_>) -> Result<Replica, ReplicaError> {
        let client = rempart_nats::connect(options.url, options.credentials_file, options.ca_file).await.map_err(ReplicaError)?;
        let jetstream = jetstream::new(client);
        let replicas = options.replicas.max(1);
        let log_config = StreamConfig {
            name: LOG_STREAM.into(),
            subjects: vec![LOG_SUBJECT.into()],
            retention: RetentionPolicy::Limits,
            storage: StorageType::File,
            num_replicas: replicas,
            max_age: options.retention,
            ..Default::default()
        };
        rempart_nats::patiently("quarantine log", || jetstream.create_or_update_stream(log_config.clone())).await.map_err(failed)?;
        let log = rempart_nats::patiently("quarantine log", || jetstream.get_stream(LOG_STREAM)).await.map_err(failed)?;
        let bodies = rempart_nats::patiently("quarantine bodies", || async {
            match jetstream.get_object_store(BUCKET).await {
                Ok(store) => Ok(store),
                Err(_) => jetstream
                    .create_object_store(jetstream::object_store::Config {
                        bucket: BUCKET.into(),
                        num_replicas: replicas,
                        storage: StorageType::File,
                        max_age: options.retention,
                        ..Default::default()
                    })
                    .await
                    .map_err(failed),
            }
        })
        .await?;
        Ok(Replica { bodies, jetstream, log, retention: options.retention })
    }

    /// How long messages (and the claims of their releases) are kept.
    pub fn retention(&self) -> Duration {
        self.retention
    }

    pub async fn put_body(&self, id: &str, body: &[u8]) -> Result<(), ReplicaError> {
        let mut reader = body;
        self.bodies.put(id, &mut reader).await.map(|_| ()).map_err(failed)
    }

    pub async fn body(&self, id: &str) -> Result<Vec<u8>, ReplicaError> {
        let mut object = self.bodies.get(id).await.map_err(failed)?;
        let mut body = Vec::new();
        object.read_to_end(&mut body).await.map_err(failed)?;
        Ok(body)
    }

    pub async fn delete_body(&self, id: &str) {
        if let Err(e) = self.bodies.delete(id).await {
            tracing::warn!(queue_id = id, error = %e, "quarantined body not deleted (it expires with the retention)");
        }
    }

    /// Records a change on the log (durable once this returns).
    pub async fn record(&self, change: &Change) -> Result<(), ReplicaError> {
        let payload = serde_json::to_vec(change).map_err(failed)?;
        self.jetstream.publish(LOG_SUBJECT, payload.into()).await.map_err(failed)?.await.map_err(failed)?;
        Ok(())
    }

    /// Applies the log to `store` from the change after the last one it applied, until
    /// `shutdown`.
    pub async fn follow(self: Arc<Self>, store: QuarantineStore, mut shutdown: watch::Receiver<bool>) {
        loop {
            let after = match store.log_sequence() {
                Ok(after) => after,
                Err(e) => {
                    tracing::error!(error = %e, "the quarantine index cannot be read; not following the log");
                    return;
                }
            };
            let deliver_policy = if after == 0 { DeliverPolicy::All } else { DeliverPolicy::ByStartSequence { start_sequence: after + 1 } };
            let config = OrderedConfig { deliver_policy, filter_subject: LOG_SUBJECT.into(), ..Default::default() };
            let messages = match self.log.create_consumer(config).await {
                Ok(consumer) => consumer.messages().await.map_err(failed),
                Err(e) => Err(failed(e)),
            };
            let mut messages = match messages {
                Ok(messages) => messages,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot follow the quarantine log yet; trying again in 5 s");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(5)) => continue,
                        _ = shutdown.changed() => return,
                    }
                }
            };
            tracing::info!(after, "following the quarantine log");
            loop {
                let next = tokio::select! {
                    next = messages.next() => next,
                    _ = shutdown.changed() => return,
                };
                let Some(Ok(message)) = next else { break };
                let Ok(sequence) = message.info().map(|i| i.stream_sequence) else { continue };
                let change: Change = match serde_json::from_slice(&message.payload) {
                    Ok(change) => change,
                    Err(e) => {
                        tracing::warn!(sequence, error = %e, "an unreadable quarantine change is skipped");
                        continue;
                    }
                };
                let store = store.clone();
                let applied = crate::blocking(move || {
                    change.apply(&store)?;
                    store.set_log_sequence(sequence)
                })
                .await;
                if let Err(e) = applied {
                    tracing::error!(sequence, error = %e, "cannot apply a quarantine change; following again");
                    break;
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}
