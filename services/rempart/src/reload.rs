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
use rempart_model::{Config, ConfigError, Live, RecipientDirectory};
use rempart_relay::RelayView;
use rempart_scanner::{LiveScanner, Scanner};
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

/// One process's reloads.
pub struct Reloader {
    /// `None`: the gateway runs on the built-in defaults; there is nothing to re-read.
    path: Option<PathBuf>,
    running: Arc<Config>,
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
    pub fn new(path: Option<PathBuf>, running: Arc<Config>, components: Components) -> Self {
        Reloader { path, running, version: 1, components }
    }

    /// Re-reads the file; applies it to every component only if all of them accept it.
    pub fn reload(&mut self) -> Outcome {
        let Some(path) = self.path.clone() else {
            tracing::warn!("no configuration file was given at start (built-in defaults): nothing to reload");
            return Outcome::Refused { error: "no configuration file to reload".into() };
        };
        let outcome = match self.prepare(&path) {
            Ok((config, apply)) => {
                self.version += 1;
                let needs_restart = self.running.needs_restart(&config);
                apply(self.version);
                if !needs_restart.is_empty() {
                    tracing::warn!(
                        version = self.version,
                        settings = needs_restart.join(", "),
                        "configuration changes that need a restart; they are not applied until then"
                    );
                }
                tracing::info!(version = self.version, domains = config.domains.len(), path = %path.display(), "configuration applied");
                self.running = config;
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
    #[allow(clippy::type_complexity)]
    fn prepare(&self, path: &Path) -> Result<(Arc<Config>, Box<dyn FnOnce(u64) + Send>), PrepareError> {
        let config = Arc::new(Config::load(path)?);
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
        Ok((
            config,
            Box::new(move |version| {
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
            }),
        ))
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
        let path = status_path(&self.running);
        if let Err(e) = std::fs::write(&path, line) {
            tracing::warn!(path = %path.display(), error = %e, "cannot write the reload status");
        }
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
