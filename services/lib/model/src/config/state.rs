//! `[state]`, `[greylist]`, `[awl]` and `[bayes]`: the shared state and what lives on it.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::HumanDuration;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StateBackend {
    /// A redb file next to the queue: one process.
    #[default]
    Embedded,
    /// A JetStream key-value bucket shared by a cluster (nats-server ≥ 2.11).
    Nats,
    /// FoundationDB (a build with the `foundationdb` feature).
    Foundationdb,
}

/// Where greylisting, AWL and Bayes data live.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StateConfig {
    /// "embedded" (default), "nats" or "foundationdb".
    pub backend: StateBackend,
    /// The embedded store's file. Default "state.redb" in `queue.data_dir`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// NATS server for the "nats" backend; a cluster's servers comma-separated
    /// ("nats://a:4222,nats://b:4222"). Default "nats://127.0.0.1:4222".
    pub nats_url: String,
    /// The key-value bucket. Default "rempart-state".
    pub nats_bucket: String,
    /// Copies of the bucket in a NATS cluster. Default 1.
    pub nats_replicas: usize,
    /// NATS credentials (JWT + NKey `.creds` file). A user and password, or a token,
    /// can go in the URL instead. Default none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nats_credentials_file: Option<PathBuf>,
    /// CA certificate (PEM) that signed the NATS server's; setting it requires TLS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nats_ca_file: Option<PathBuf>,
    /// FoundationDB cluster file. Default: FDB_CLUSTER_FILE or the system's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fdb_cluster_file: Option<PathBuf>,
    /// The secret (64 hex digits) that seals what the store must not show in clear: the
    /// DKIM private keys generated from the console, the API or `rempart dkim add`.
    /// Every process that signs or generates keys reads the same file (in a cluster,
    /// one Kubernetes Secret mounted on each edge and console). Default "secret.key" in
    /// `queue.data_dir`, created with a random secret on first use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_file: Option<PathBuf>,
}

impl Default for StateConfig {
    fn default() -> Self {
        Self {
            backend: StateBackend::Embedded,
            path: None,
            nats_url: "nats://127.0.0.1:4222".into(),
            nats_bucket: "rempart-state".into(),
            nats_replicas: 1,
            nats_credentials_file: None,
            nats_ca_file: None,
            fdb_cluster_file: None,
            secret_file: None,
        }
    }
}

/// Greylisting of mail whose score falls in the policy's greylist band.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GreylistConfig {
    /// Default true (it acts only on mail in the `policy.greylist` band).
    pub enabled: bool,
    /// A retry sooner than this is deferred again. Default "5m".
    pub min_delay: HumanDuration,
    /// A first attempt not retried within this is forgotten. Default "4h".
    pub expiry: HumanDuration,
    /// After a successful retry, the client network and sender domain pass at once
    /// for this long (renewed by each message). Default "35d".
    pub pass_lifetime: HumanDuration,
    /// Client networks never greylisted (big providers retry from other addresses):
    /// IPs or CIDRs. Default empty.
    pub skip_networks: Vec<String>,
}

impl Default for GreylistConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            min_delay: HumanDuration::secs(300),
            expiry: HumanDuration::secs(4 * 3600),
            pass_lifetime: HumanDuration::secs(35 * 86_400),
            skip_networks: Vec::new(),
        }
    }
}

/// The auto-allowlist (SpamAssassin's AWL): per sender address and client /16, the
/// mean of past scores pulls the current score toward it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AwlConfig {
    /// Default true.
    pub enabled: bool,
    /// How far toward the mean: 0 (not at all) to 1 (all the way). Default 0.5.
    pub factor: f64,
}

impl Default for AwlConfig {
    fn default() -> Self {
        Self { enabled: true, factor: 0.5 }
    }
}

/// The Bayes classifier, trained with `rempart learn`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BayesConfig {
    /// Default true (it votes only once `min_learned` of each class are learned).
    pub enabled: bool,
    /// Spam and ham each learned before the classifier votes. Default 200.
    pub min_learned: u64,
    /// How often a scanner checks whether the model changed. Default "30s".
    pub reload_every: HumanDuration,
    /// Learn on its own from verdicts far from the thresholds (SpamAssassin's
    /// bayes_auto_learn, with its safeguards). Default true.
    pub autolearn: bool,
    /// Learned as spam from this score up, counted without Bayes, the AWL and the
    /// campaign memory, when header and body findings each gave 3 points or more.
    /// Default 10 (2.5 above the default reject; with the rule-only weights 3 % of the
    /// corpus's spam and none of its ham score 10 or more).
    pub autolearn_spam: f64,
    /// Learned as ham at this score or below (same count), only when the sender
    /// authenticated (a pass, no failure). Default 0.1.
    pub autolearn_ham: f64,
    /// Messages learned on its own per sender domain, class and day, at most: one
    /// campaign cannot poison the model. Default 20.
    pub autolearn_per_sender: u64,
}

impl Default for BayesConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            min_learned: 200,
            reload_every: HumanDuration::secs(30),
            autolearn: true,
            autolearn_spam: 10.0,
            autolearn_ham: 0.1,
            autolearn_per_sender: 20,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BusBackend {
    /// The redb queue in `queue.data_dir`: edge and relay in one process (`serve`).
    #[default]
    Embedded,
    /// NATS JetStream: edges and relays as separate processes.
    Nats,
}

/// The message bus between the edge and the relay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BusConfig {
    /// "embedded" (default) or "nats".
    pub backend: BusBackend,
    /// NATS server for the "nats" backend; a cluster's servers comma-separated.
    /// Default "nats://127.0.0.1:4222".
    pub nats_url: String,
    /// Copies of the queue stream in a NATS cluster. Default 1.
    pub nats_replicas: usize,
    /// As `state.nats_credentials_file`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nats_credentials_file: Option<PathBuf>,
    /// As `state.nats_ca_file`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nats_ca_file: Option<PathBuf>,
}

impl Default for BusConfig {
    fn default() -> Self {
        Self {
            backend: BusBackend::Embedded,
            nats_url: "nats://127.0.0.1:4222".into(),
            nats_replicas: 1,
            nats_credentials_file: None,
            nats_ca_file: None,
        }
    }
}
