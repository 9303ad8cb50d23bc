//! Everything on the store, opened from the configuration once per process and
//! shared by the edge (greylisting) and the scanner (AWL, Bayes).

use std::sync::Arc;

use rempart_model::Config;
use rempart_model::config::StateBackend;
use rempart_model::net::Network;

use crate::awl::Awl;
use crate::bayes::Bayes;
use crate::greylist::{Greylist, GreylistSettings};
use crate::{Store, StoreError, StoreSettings};

pub struct SharedState {
    pub store: Arc<dyn Store>,
    /// `None` when `[greylist] enabled = false`.
    pub greylist: Option<Greylist>,
    pub awl: Option<Awl>,
    pub bayes: Option<Arc<Bayes>>,
    pub bayes_min_learned: u64,
}

/// Where `config` keeps its state.
pub fn settings(config: &Config) -> StoreSettings {
    match config.state.backend {
        StateBackend::Embedded => StoreSettings::Embedded {
            path: config.state.path.clone().unwrap_or_else(|| config.queue.data_dir.join("state.redb")),
            fsync: config.queue.fsync,
        },
        StateBackend::Nats => StoreSettings::Nats {
            url: config.state.nats_url.clone(),
            bucket: config.state.nats_bucket.clone(),
            replicas: config.state.nats_replicas,
            credentials_file: config.state.nats_credentials_file.clone(),
            ca_file: config.state.nats_ca_file.clone(),
        },
        StateBackend::Foundationdb => StoreSettings::FoundationDb { cluster_file: config.state.fdb_cluster_file.clone() },
    }
}

impl SharedState {
    /// Opens the store and loads the Bayes model.
    pub async fn open(config: &Config) -> Result<SharedState, StoreError> {
        let store = crate::open(&settings(config)).await?;
        let state = Self::on(store, config)?;
        if let Some(bayes) = &state.bayes {
            bayes.reload_if_changed().await?;
        }
        Ok(state)
    }

    /// Opens the store for greylisting only: an edge whose scans run elsewhere (remote
    /// scanners) or nowhere keeps no Bayes model or AWL of its own.
    pub async fn open_for_greylisting(config: &Config) -> Result<SharedState, StoreError> {
        let store = crate::open(&settings(config)).await?;
        let state = Self::on(store, config)?;
        Ok(SharedState { awl: None, bayes: None, ..state })
    }

    /// The features `config` enables, on `store`.
    pub fn on(store: Arc<dyn Store>, config: &Config) -> Result<SharedState, StoreError> {
        let greylist =
            if config.greylist.enabled {
                let skip_networks =
                    config.greylist.skip_networks.iter().map(|n| Network::parse(n)).collect::<Result<Vec<_>, _>>().map_err(|message| {
                        StoreError::Backend { backend: "config", message: format!("greylist.skip_networks: {message}") }
                    })?;
                let settings = GreylistSettings {
                    min_delay: config.greylist.min_delay.0,
                    expiry: config.greylist.expiry.0,
                    pass_lifetime: config.greylist.pass_lifetime.0,
                    skip_networks,
                };
                Some(Greylist::new(store.clone(), settings))
            } else {
                None
            };
        Ok(SharedState {
            awl: config.awl.enabled.then(|| Awl::new(store.clone(), config.awl.factor)),
            bayes: config.bayes.enabled.then(|| Arc::new(Bayes::new(store.clone()))),
            bayes_min_learned: config.bayes.min_learned,
            greylist,
            store,
        })
    }

    /// Reloads the Bayes model whenever another process changed it: every `every`,
    /// and soon after `rempart learn` or the console announces a version on
    /// `rempart.learn` (NATS), at most once per `RELOAD_GAP` (each reload refits the
    /// token regression: about 1.5 s of CPU for 5,000 learned messages).
    pub fn spawn_bayes_reloader(&self, every: std::time::Duration) {
        let Some(bayes) = self.bayes.clone() else { return };
        let client = self.store.nats_client();
        tokio::spawn(async move {
            let mut announcements = match &client {
                Some(client) => client.subscribe(crate::LEARN_SUBJECT).await.ok(),
                None => None,
            };
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // The first announcement reloads at once.
            let mut last_reload = tokio::time::Instant::now().checked_sub(RELOAD_GAP).unwrap_or_else(tokio::time::Instant::now);
            loop {
                match &mut announcements {
                    Some(subscription) => {
                        tokio::select! {
                            _ = tick.tick() => {}
                            _ = futures_util::StreamExt::next(subscription) => {
                                // Debounced: a burst of learning (a mailbox imported, a
                                // bulk report) refits once, not once per message.
                                tokio::time::sleep_until(last_reload + RELOAD_GAP).await;
                                while futures_util::FutureExt::now_or_never(futures_util::StreamExt::next(subscription)).flatten().is_some() {}
                            }
                        }
                    }
                    None => {
                        tick.tick().await;
                    }
                }
                last_reload = tokio::time::Instant::now();
                match bayes.reload_if_changed().await {
                    Ok(true) => {
                        tracing::info!(version = bayes.model().version, tokens = bayes.model().tokens.len(), "Bayes model reloaded")
                    }
                    Ok(false) => {}
                    Err(e) => tracing::warn!(error = %e, "Bayes model reload failed; keeping the current one"),
                }
            }
        });
    }
}

/// The least time between two reloads of the Bayes model on announcements.
const RELOAD_GAP: std::time::Duration = std::time::Duration::from_secs(3);

/// Tells the scanners of a cluster that the Bayes model changed (NATS stores only).
pub async fn announce_learning(state: &SharedState) {
    let (Some(client), Some(bayes)) = (state.store.nats_client(), &state.bayes) else { return };
    let version = bayes.version().await.unwrap_or_default();
    if client.publish(crate::LEARN_SUBJECT, version.to_string().into()).await.is_ok() {
        let _ = client.flush().await;
    }
}
