//! Reloading the configuration while the gateway runs (`SIGHUP`, `rempart reload`).
//!
//! A reload re-reads the file, validates it completely — the same building of
//! certificates, DKIM keys, route CAs, directory clients and scanner that `serve` does
//! at start, so `config check` and `serve` refuse the same files — and only then swaps
//! every component's snapshot. An invalid file changes nothing: the error is logged and
//! the running version stays. Settings read once at start are named in the log.
//!
//! Each applied version is written to `<data_dir>/reload.status`, where `rempart
//! reload` reads the outcome.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rempart_edge::EdgeView;
use rempart_model::config::StoredDkimKey;
use rempart_model::{Config, ConfigError, DomainConfig, Live, RecipientDirectory};
use rempart_relay::RelayView;
use rempart_scanner::{LiveScanner, Scanner};
use rempart_state::dkim_keys::Sealer;
use rempart_state::{SharedState, Store};

/// Why a configuration cannot be used, beyond what parsing checks.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("{field}: {message}")]
    Field { field: String, message: String },
}

impl PrepareError {
    /// As a `ConfigError` naming `file` and, where the field is found, its line.
    pub fn located(self, file: &Path) -> ConfigError {
        match self {
            PrepareError::Config(e) => e,
            PrepareError::Field { field, message } => {
                let text = std::fs::read_to_string(file).unwrap_or_default();
                let line = rempart_model::config::locate_field(&text, &field);
                ConfigError { file: file.display().to_string(), line, field, message }
            }
        }
    }
}

fn field(field: &str, e: impl std::fmt::Display) -> PrepareError {
    PrepareError::Field { field: field.to_string(), message: e.to_string() }
}

/// Builds what `config` needs that a parse cannot check — certificate, DKIM keys,
/// route CA files, LDAP settings, the scanner's rules and policies — and drops it.
/// `config check` runs this; `serve` and a reload build the same things.
pub fn check(config: &Arc<Config>) -> Result<(), PrepareError> {
    edge_view(config, None)?;
    relay_view(config)?;
    Scanner::new(config).map_err(|e| PrepareError::Field { field: e.field, message: e.message })?;
    Ok(())
}

pub(crate) fn edge_view(config: &Arc<Config>, store: Option<&Arc<dyn Store>>) -> Result<EdgeView, PrepareError> {
    let directory = match store {
        Some(store) if rempart_directory::Directory::needed(config) => {
            Some(Arc::new(rempart_directory::Directory::new(config, store.clone()).map_err(|e| field("domain.ldap", e))?)
                as Arc<dyn RecipientDirectory>)
        }
        _ => None,
    };
    EdgeView::build(config.clone(), directory).map_err(|e| match e {
        rempart_edge::EdgeError::Dkim(message) => field("domain.dkim.key_file", message),
        other => field("tls.cert", other),
    })
}

pub(crate) fn relay_view(config: &Arc<Config>) -> Result<RelayView, PrepareError> {
    RelayView::build(config.clone()).map_err(|e| field("domain.route_ca_file", e))
}

fn scanner(config: &Config, state: &Arc<SharedState>) -> Result<Arc<Scanner>, PrepareError> {
    let scanner = Scanner::new(config).map_err(|e| PrepareError::Field { field: e.field, message: e.message })?;
    Ok(Arc::new(scanner.with_state(state.clone())))
}

/// The edge's view and the store its directory caches callouts in.
type EdgeParts = (Live<EdgeView>, Option<Arc<dyn Store>>);

/// The live parts of one process, and how to rebuild them.
#[derive(Default)]
pub struct Components {
    pub edge: Option<EdgeParts>,
    pub relay: Option<Live<RelayView>>,
    /// Every scanner of the process (the edge's local one, `rempart scanner`'s).
    pub scanners: Vec<(LiveScanner, Arc<SharedState>)>,
}

impl Components {
    pub(crate) fn scanner(&mut self, config: &Config, state: Arc<SharedState>) -> Result<LiveScanner, PrepareError> {
        let live = Live::new(scanner(config, &state)?);
        self.scanners.push((live.clone(), state));
        Ok(live)
    }
}

/// One process's reloads: of the file (`SIGHUP`) and of the domains the store keeps
/// (when `config.version` changes).
pub struct Reloader {
    /// `None`: the gateway runs on the built-in defaults; there is nothing to re-read.
    path: Option<PathBuf>,
    /// The configuration as the file says.
    file: Arc<Config>,
    /// The domains the store adds to it, as last applied.
    managed: Managed,
    /// The store's `config.version` last applied.
    store_version: i64,
    version: u64,
    components: Components,
}

/// What a reload did.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    Applied { version: u64, needs_restart: Vec<&'static str> },
    Refused { error: String },
}

impl Reloader {
    pub fn new(path: Option<PathBuf>, file: Arc<Config>, managed: Managed, components: Components) -> Self {
        Reloader { path, file, store_version: managed.version, managed, version: 1, components }
    }

    /// The store's `config.version` this process last applied.
    pub fn store_version(&self) -> i64 {
        self.store_version
    }

    /// Applies the store's domains at `managed.version`, if every component accepts them
    /// (a record the store accepted but a node cannot build — an LDAP setting, say — is
    /// refused here, and the running version stays).
    pub fn apply_managed(&mut self, managed: Managed) -> Outcome {
        let config = Arc::new(self.file.with_managed(managed.domains.clone(), managed.dkim.clone()));
        self.store_version = managed.version;
        match self.prepare(config.clone()) {
            Ok(apply) => {
                self.version += 1;
                apply(self.version);
                tracing::info!(
                    version = self.version,
                    store_version = managed.version,
                    domains = config.domains.len(),
                    "managed domains applied"
                );
                self.managed = managed;
                Outcome::Applied { version: self.version, needs_restart: Vec::new() }
            }
            Err(e) => {
                let error = e.to_string();
                tracing::error!(
                    version = self.version,
                    store_version = managed.version,
                    error,
                    "managed domains refused; the running version stays"
                );
                Outcome::Refused { error }
            }
        }
    }

    /// Re-reads the file; applies it (with the store's domains) to every component only
    /// if all of them accept it.
    pub fn reload(&mut self) -> Outcome {
        let Some(path) = self.path.clone() else {
            tracing::warn!("no configuration file was given at start (built-in defaults): nothing to reload");
            return Outcome::Refused { error: "no configuration file to reload".into() };
        };
        let prepared = Config::load(&path).map_err(PrepareError::from).and_then(|file| {
            let file = Arc::new(file);
            let apply = self.prepare(Arc::new(file.with_managed(self.managed.domains.clone(), self.managed.dkim.clone())))?;
            Ok((file, apply))
        });
        let outcome = match prepared {
            Ok((config, apply)) => {
                self.version += 1;
                let needs_restart = self.file.needs_restart(&config);
                apply(self.version);
                if !needs_restart.is_empty() {
                    tracing::warn!(
                        version = self.version,
                        settings = needs_restart.join(", "),
                        "configuration changes that need a restart; they are not applied until then"
                    );
                }
                tracing::info!(version = self.version, domains = config.domains.len(), path = %path.display(), "configuration applied");
                self.file = config;
                Outcome::Applied { version: self.version, needs_restart }
            }
            Err(e) => {
                let error = e.located(&path).to_string();
                tracing::error!(version = self.version, error, "configuration refused; the running version stays");
                Outcome::Refused { error }
            }
        };
        self.write_status(&outcome);
        outcome
    }

    /// Builds every component's new view; gives the function that swaps them all in.
    fn prepare(&self, config: Arc<Config>) -> Result<Box<dyn FnOnce(u64) + Send>, PrepareError> {
        let edge = match &self.components.edge {
            Some((live, store)) => Some((live.clone(), edge_view(&config, store.as_ref())?)),
            None => None,
        };
        let relay = match &self.components.relay {
            Some(live) => Some((live.clone(), relay_view(&config)?)),
            None => None,
        };
        let scanners = self
            .components
            .scanners
            .iter()
            .map(|(live, state)| Ok((live.clone(), scanner(&config, state)?)))
            .collect::<Result<Vec<_>, PrepareError>>()?;
        Ok(Box::new(move |version| {
            if let Some((live, view)) = edge {
                live.store(version, view);
                tracing::info!(version, component = "edge", "configuration version applied");
            }
            if let Some((live, view)) = relay {
                live.store(version, view);
                tracing::info!(version, component = "relay", "configuration version applied");
            }
            for (live, scanner) in scanners {
                live.store(version, scanner);
                tracing::info!(version, component = "scanner", "configuration version applied");
            }
        }))
    }

    /// `<data_dir>/reload.status`: one line, for `rempart reload`.
    fn write_status(&self, outcome: &Outcome) {
        let line = match outcome {
            Outcome::Applied { version, needs_restart } if needs_restart.is_empty() => format!("applied version {version}\n"),
            Outcome::Applied { version, needs_restart } => {
                format!("applied version {version}; needs a restart to apply: {}\n", needs_restart.join(", "))
            }
            Outcome::Refused { error } => format!("refused: {error}\n"),
        };
        let path = status_path(&self.file);
        if let Err(e) = std::fs::write(&path, line) {
            tracing::warn!(path = %path.display(), error = %e, "cannot write the reload status");
        }
    }
}

/// The domains the store keeps, at a version of `config.version`.
#[derive(Debug, Default)]
pub struct Managed {
    pub version: i64,
    pub domains: Vec<DomainConfig>,
    /// The DKIM keys that sign now, unsealed (none without a sealer: a process that
    /// does not sign never reads the secret).
    pub dkim: Vec<StoredDkimKey>,
}

impl Managed {
    /// Reads them: the version first, so that a change made while they are listed is
    /// applied by the next poll.
    pub async fn read(store: &dyn Store, sealer: Option<&Sealer>) -> Result<Managed, rempart_state::StoreError> {
        let version = rempart_state::domains::version(store).await?;
        let domains = rempart_state::domains::served(store).await?;
        let dkim = match sealer {
            Some(sealer) => rempart_state::dkim_keys::signing(store, sealer, rempart_model::date::unix_now()).await.unwrap_or_else(|e| {
                tracing::error!(error = %e, "cannot read the stored DKIM keys; the domains' mail goes unsigned by them");
                Vec::new()
            }),
            None => Vec::new(),
        };
        Ok(Managed { version, domains, dkim })
    }
}

/// How often a node asks the store whether its domains changed.
pub const FOLLOW_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// Applies the store's domain changes as they come (`config.version` polled every
/// [`FOLLOW_EVERY`]), until `stopped`.
pub async fn follow_store(
    reloader: Arc<std::sync::Mutex<Reloader>>,
    store: Arc<dyn Store>,
    sealer: Option<Arc<Sealer>>,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    let mut failing = false;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(FOLLOW_EVERY) => {}
            _ = stopped.wait_for(|stop| *stop) => return,
        }
        let applied = reloader.lock().map(|r| r.store_version()).unwrap_or_default();
        let managed = match rempart_state::domains::version(&*store).await {
            Ok(version) if version == applied => {
                failing = false;
                continue;
            }
            Ok(_) => Managed::read(&*store, sealer.as_deref()).await,
            Err(e) => Err(e),
        };
        let managed = match managed {
            Ok(managed) => managed,
            Err(e) => {
                if !failing {
                    tracing::warn!(error = %e, "cannot read the managed domains from the store; serving the last ones");
                }
                failing = true;
                continue;
            }
        };
        failing = false;
        let reloader = reloader.clone();
        // Keys and rules are built: off the async threads.
        let _ = tokio::task::spawn_blocking(move || {
            if let Ok(mut reloader) = reloader.lock() {
                reloader.apply_managed(managed);
            }
        })
        .await;
    }
}

/// Where `serve` writes its process id (for `rempart reload`).
pub fn pid_path(config: &Config) -> PathBuf {
    config.queue.data_dir.join("rempart.pid")
}

/// Where `serve` writes the outcome of the last reload.
pub fn status_path(config: &Config) -> PathBuf {
    config.queue.data_dir.join("reload.status")
}
