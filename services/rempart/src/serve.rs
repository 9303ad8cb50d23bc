//! `rempart serve`, `rempart edge`, `rempart relay`: the roles of the gateway, all in
//! one process (`serve`) or one each (a cluster, on the NATS bus). Same code paths;
//! only the bus and the store differ. [`serve`] runs them until a shutdown future
//! resolves: the binary passes SIGTERM / Ctrl-C, the in-process tests their own.

use std::future::Future;
use std::sync::Arc;

use rempart_bus::{AnyBus, EmbeddedBus, EmbeddedOptions, NatsBus, NatsOptions};
use rempart_edge::Edge;
use rempart_model::config::BusBackend;
use rempart_model::{Config, Live, Verdicts};
use rempart_relay::Relay;
use rempart_state::{SharedState, Store};
use rempart_telemetry::Readiness;
use tokio::sync::watch;

use crate::reload::{self, Components, Managed, PrepareError, Reloader};

/// Which roles this process runs.
#[derive(Debug, Clone, Copy)]
pub struct Roles {
    /// The service name in traces.
    pub name: &'static str,
    pub edge: bool,
    pub relay: bool,
    /// The gRPC scanner service (`rempart scanner`).
    pub scanner: bool,
    /// The quarantine (kept from `rempart.quarantine`) and, when `[console] enabled`,
    /// the portal.
    pub console: bool,
}

pub const ALL: Roles = Roles { name: "rempart", edge: true, relay: true, scanner: false, console: true };
pub const EDGE: Roles = Roles { name: "rempart-edge", edge: true, relay: false, scanner: false, console: false };
pub const RELAY: Roles = Roles { name: "rempart-relay", edge: false, relay: true, scanner: false, console: false };
pub const SCANNER: Roles = Roles { name: "rempart-scanner", edge: false, relay: false, scanner: true, console: false };
pub const CONSOLE: Roles = Roles { name: "rempart-console", edge: false, relay: false, scanner: false, console: true };

/// Why the gateway could not start. Each names the part that failed.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("the embedded bus is one process's: run `rempart serve`, or set [bus] backend = \"nats\"")]
    EmbeddedBusSplit,
    #[error("cannot start the runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error(transparent)]
    Telemetry(#[from] rempart_telemetry::TelemetryError),
    #[error("queue {path}: {source}")]
    Queue { path: std::path::PathBuf, source: rempart_bus::BusError },
    #[error("bus: {0}")]
    Bus(#[source] rempart_bus::BusError),
    #[error("configuration: {0}")]
    Prepare(#[from] PrepareError),
    #[error("state: {0}")]
    State(#[source] rempart_state::StoreError),
    #[error("configuration: {0}")]
    Scanner(#[from] rempart_scanner::ScannerError),
    #[error(transparent)]
    Edge(#[from] rempart_edge::EdgeError),
    #[error(transparent)]
    Console(#[from] rempart_console::ConsoleError),
    #[error(transparent)]
    Tracking(rempart_console::tracking::TrackingError),
}

/// Runs `roles` with `config` until SIGTERM or Ctrl-C, with the process's telemetry;
/// `SIGHUP` reloads `config_path`.
pub fn run(config: Config, roles: Roles, config_path: Option<std::path::PathBuf>) -> Result<(), ServeError> {
    let config = Arc::new(config);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(ServeError::Runtime)?;
    // The OTLP exporter's connection lives on the runtime: set it up inside.
    let telemetry = runtime.block_on(async { rempart_telemetry::init(roles.name, &config.telemetry) })?;
    let served = runtime.block_on(serve(config, roles, wait_for_signal(), config_path));
    // Flushes the last spans (blocking: outside the runtime, which still runs them).
    telemetry.shutdown();
    served
}

async fn open_bus(config: &Config) -> Result<AnyBus, ServeError> {
    Ok(match config.bus.backend {
        BusBackend::Embedded => {
            let path = config.queue.data_dir.join("queue.redb");
            let bus = EmbeddedBus::open(&path, EmbeddedOptions { fsync: config.queue.fsync })
                .map_err(|source| ServeError::Queue { path, source })?;
            AnyBus::Embedded(bus)
        }
        BusBackend::Nats => {
            let options = NatsOptions {
                url: config.bus.nats_url.clone(),
                replicas: config.bus.nats_replicas,
                credentials_file: config.bus.nats_credentials_file.clone(),
                ca_file: config.bus.nats_ca_file.clone(),
                events_retention: config.console.tracking_retention.0,
            };
            AnyBus::Nats(NatsBus::connect(&options).await.map_err(ServeError::Bus)?)
        }
    })
}

/// The scanner with the shared state (AWL, Bayes reloaded as it changes), live.
async fn scanner_with_state(
    config: &Config,
    store: &Arc<dyn Store>,
    components: &mut Components,
) -> Result<(rempart_scanner::LiveScanner, Arc<SharedState>), ServeError> {
    let state = Arc::new(SharedState::on(store.clone(), config).map_err(ServeError::State)?);
    if let Some(bayes) = &state.bayes {
        bayes.reload_if_changed().await.map_err(ServeError::State)?;
    }
    state.spawn_bayes_reloader(config.bayes.reload_every.0);
    let scanner = components.scanner(config, state.clone())?;
    Ok((scanner, state))
}

/// The edge's verdict port: the scanner in this process (with the AWL and Bayes),
/// remote scanners (the edge then loads no Bayes model), or none; and the state for
/// greylisting.
async fn edge_verdicts(
    config: &Config,
    store: &Arc<dyn Store>,
    components: &mut Components,
) -> Result<(Option<Arc<dyn Verdicts>>, Arc<SharedState>), ServeError> {
    if config.scanner.enabled && config.scanner.endpoints.is_empty() {
        let (scanner, state) = scanner_with_state(config, store, components).await?;
        return Ok((Some(Arc::new(rempart_scanner::service::traced::LocalVerdicts(scanner))), state));
    }
    // An edge whose scans run elsewhere (or nowhere) keeps no Bayes model or AWL.
    let state = SharedState::on(store.clone(), config).map_err(ServeError::State)?;
    let state = Arc::new(SharedState { awl: None, bayes: None, ..state });
    if !config.scanner.enabled {
        return Ok((None, state));
    }
    let resolver = rempart_scanner::dns::Dns::new(&config.dns)?.resolver();
    let scanner = &config.scanner;
    let remote =
        rempart_scanner::service::grpc::RemoteScanner::start(&scanner.endpoints, scanner.timeout.0, scanner.resolve_every.0, resolver)
            .await?;
    Ok((Some(remote), state))
}

/// Runs `roles` until `shutdown` resolves, then drains (sessions and deliveries in
/// flight finish, within `smtp.shutdown_timeout`). `SIGHUP` reloads `config_path`.
pub async fn serve(
    file: Arc<Config>,
    roles: Roles,
    shutdown: impl Future<Output = ()>,
    config_path: Option<std::path::PathBuf>,
) -> Result<(), ServeError> {
    if file.bus.backend == BusBackend::Embedded && (roles.edge != roles.relay || roles.console != roles.edge) {
        return Err(ServeError::EmbeddedBusSplit);
    }
    let (stop, stopped) = watch::channel(false);
    let mut tasks = Vec::new();
    let readiness = Readiness::default();
    let mut components = Components::default();
    // One store per process (an embedded one can be opened once), opened first: the
    // domains it keeps are part of the configuration every role starts with.
    let store = rempart_state::open(&rempart_state::settings(&file)).await.map_err(ServeError::State)?;
    // The secret that unseals the stored DKIM keys: read by the processes that sign
    // (edges) or generate them (consoles) only.
    let sealer = match roles.edge || roles.console {
        true => match rempart_state::dkim_keys::Sealer::of(&file) {
            Ok(sealer) => Some(Arc::new(sealer)),
            Err(e) => {
                tracing::error!(error = %e, "cannot read the secret: stored DKIM keys neither sign nor can be generated");
                None
            }
        },
        false => None,
    };
    let managed = Managed::read(&*store, sealer.as_deref()).await.map_err(ServeError::State)?;
    let config = Arc::new(file.with_managed(managed.domains.clone(), managed.dkim.clone()));
    if let Some(listen) = config.telemetry.listen {
        // Up until the process exits: probes and scrapes go on while it drains.
        rempart_telemetry::serve_http(listen, readiness.clone(), std::future::pending()).await?;
        tracing::info!(%listen, "metrics and health on http://{listen}/metrics, /healthz, /readyz");
    }
    if roles.scanner {
        let (scanner, _state) = scanner_with_state(&config, &store, &mut components).await?;
        let listen = config.scanner.listen;
        let grpc_scanner = scanner.clone();
        let mut stopping = stopped.clone();
        tasks.push(tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopping.wait_for(|stop| *stop).await;
            };
            if let Err(e) = rempart_scanner::service::grpc::serve(grpc_scanner, listen, shutdown).await {
                tracing::error!(error = %e, "scanner service stopped");
            }
        }));
        tracing::info!(%listen, "scanner listening (gRPC)");
        // On a shared bus, scanners also take what edges queued with no scanner up.
        if config.bus.backend == BusBackend::Nats {
            let bus = open_bus(&config).await?;
            tasks.push(tokio::spawn(rempart_scanner::service::post_queue::run(
                scanner.clone(),
                bus,
                config.queue.visibility_timeout.0,
                stopped.clone(),
            )));
        }
    }
    if !(roles.edge || roles.relay || roles.console) {
        let reloads = Reloader::new(config_path, file, managed, components);
        return run_until(shutdown, &config, roles, stop, tasks, readiness, reloads, store, sealer).await;
    }
    let bus = open_bus(&config).await?;
    let mut edge_state = None;
    // Bound now, taking mail once the console has subscribed to the events it counts.
    let mut edge = None;
    if roles.edge {
        let (verdicts, state) = edge_verdicts(&config, &store, &mut components).await?;
        edge_state = Some(state.clone());
        let live = Live::new(reload::edge_view(&config, Some(&state.store))?);
        components.edge = Some((live.clone(), Some(state.store.clone())));
        let resolver = if config.screen.dnsbls.is_empty() { None } else { rempart_smtp_client::mx::resolver(&config.dns) };
        let bound = Edge::bind(live, bus.clone(), verdicts, Some(state), resolver).await?;
        if config.domains.is_empty() {
            tracing::warn!("no [[domain]] configured: every recipient will be refused (relaying for nobody)");
        }
        edge = Some(bound);
    }
    if roles.console {
        // One process's embedded store is opened once: share the edge's.
        let state = match edge_state {
            Some(state) => state,
            None => Arc::new(SharedState::on(store.clone(), &config).map_err(ServeError::State)?),
        };
        start_console(&config, &file, state, Arc::new(bus.clone()), sealer.clone(), &stopped, &mut tasks).await?;
    }
    if let Some(edge) = edge {
        tasks.push(tokio::spawn(edge.run(stopped.clone())));
    }
    if roles.relay {
        let live = Live::new(reload::relay_view(&config)?);
        components.relay = Some(live.clone());
        tasks.push(tokio::spawn(Relay::new(live, bus, Some(store.clone())).run(stopped.clone())));
    }
    let reloads = Reloader::new(config_path, file, managed, components);
    run_until(shutdown, &config, roles, stop, tasks, readiness, reloads, store, sealer).await
}

/// The quarantine's intake and sweeper, and the portal when enabled.
async fn start_console(
    config: &Config,
    file: &Config,
    state: Arc<SharedState>,
    bus: Arc<AnyBus>,
    sealer: Option<Arc<rempart_state::dkim_keys::Sealer>>,
    stopped: &watch::Receiver<bool>,
    tasks: &mut Vec<tokio::task::JoinHandle<()>>,
) -> Result<(), ServeError> {
    if let Some(events) = rempart_console::reports::subscribe(&bus).await {
        tasks.push(tokio::spawn(rempart_console::reports::run(events, state.store.clone(), stopped.clone())));
    }
    tasks.push(tokio::spawn(rempart_console::reports::sweep(state.store.clone(), stopped.clone())));
    let tracking_path = config.queue.data_dir.join("tracking.redb");
    let tracking = rempart_console::tracking::TrackingIndex::open(&tracking_path).map_err(ServeError::Tracking)?;
    let first = rempart_console::tracking::ingest::subscribe(&bus, &tracking).await;
    tasks.push(tokio::spawn(rempart_console::tracking::ingest::run(bus.clone(), tracking.clone(), first, stopped.clone())));
    tasks.push(tokio::spawn(rempart_console::tracking::ingest::sweep(
        tracking.clone(),
        config.console.tracking_retention.0,
        stopped.clone(),
    )));
    let mut admin = rempart_console::web::admin::Admin::new(state.store.clone(), file, sealer);
    admin.tracking = Some(tracking);
    admin.queue = Some(bus.clone());
    let admin = Arc::new(admin);
    tasks.push(tokio::spawn(rempart_console::onboarding::run(
        admin.onboarding.clone(),
        state.store.clone(),
        config.console.verify_every.0,
        stopped.clone(),
    )));
    let socket = admin_socket_path(config);
    let _ = std::fs::create_dir_all(&config.queue.data_dir);
    let mut stopping = stopped.clone();
    let shutdown = async move {
        let _ = stopping.wait_for(|stop| *stop).await;
    };
    rempart_console::web::serve_admin_socket(admin.clone(), &socket, shutdown).await?;
    tracing::info!(socket = %socket.display(), "admin API on the local socket");
    let mut console = rempart_console::Console::open(&config.queue.data_dir, state, bus.clone(), admin).await?;
    console.secure_cookies = config.console.secure_cookies;
    console.trusted_proxies = config.console.trusted_proxies.iter().filter_map(|n| rempart_model::net::Network::parse(n).ok()).collect();
    let quarantine = console.quarantine.clone();
    // On NATS every console replica serves the same quarantine (object store + log).
    if config.bus.backend == rempart_model::config::BusBackend::Nats {
        let options = rempart_console::replica::ReplicaOptions {
            url: &config.bus.nats_url,
            credentials_file: config.bus.nats_credentials_file.as_deref(),
            ca_file: config.bus.nats_ca_file.as_deref(),
            replicas: config.bus.nats_replicas,
            retention: config.console.retention.0,
        };
        let replica = Arc::new(rempart_console::replica::Replica::connect(&options).await.map_err(rempart_console::ConsoleError::from)?);
        tasks.push(tokio::spawn(replica.clone().follow(quarantine.clone(), stopped.clone())));
        console.replica = Some(replica);
    }
    tasks.push(tokio::spawn(rempart_console::intake::run(
        bus.clone(),
        quarantine.clone(),
        console.replica.clone(),
        config.queue.visibility_timeout.0,
        stopped.clone(),
    )));
    tasks.push(tokio::spawn(rempart_console::intake::sweep(bus.clone(), quarantine, config.console.retention.0, stopped.clone())));
    let console = Arc::new(console);
    let postmaster = config.smtp.postmaster.clone().unwrap_or_else(|| format!("postmaster@{}", config.smtp.hostname));
    let digests = rempart_console::digest::DigestSettings {
        every: config.console.digest_every.0,
        public_url: config.console.public_url.replace("{hostname}", &config.smtp.hostname).trim_end_matches('/').to_string(),
        from: postmaster,
        retention: config.console.retention.0,
    };
    tasks.push(tokio::spawn(rempart_console::digest::run(console.clone(), digests, stopped.clone())));
    if config.console.enabled {
        let mut stopping = stopped.clone();
        let shutdown = async move {
            let _ = stopping.wait_for(|stop| *stop).await;
        };
        let listen = rempart_console::web::serve(console, config.console.listen, shutdown).await?;
        tracing::info!(%listen, "console on http://{listen}/ (quarantine, /why/ pages, /api/v1)");
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
/// The management API's local socket: `<data_dir>/admin.sock`.
pub fn admin_socket_path(config: &Config) -> std::path::PathBuf {
    config.queue.data_dir.join("admin.sock")
}

#[allow(clippy::too_many_arguments)]
async fn run_until(
    shutdown: impl Future<Output = ()>,
    config: &Config,
    roles: Roles,
    stop: watch::Sender<bool>,
    mut tasks: Vec<tokio::task::JoinHandle<()>>,
    readiness: Readiness,
    reloads: Reloader,
    store: Arc<dyn Store>,
    sealer: Option<Arc<rempart_state::dkim_keys::Sealer>>,
) -> Result<(), ServeError> {
    let reloads = Arc::new(std::sync::Mutex::new(reloads));
    tasks.push(tokio::spawn(reload::follow_store(reloads.clone(), store, sealer, stop.subscribe())));
    // Before saying it serves: a SIGHUP from then on reloads, never kills.
    let reloading = reload_on_sighup(reloads);
    let _ = std::fs::create_dir_all(&config.queue.data_dir);
    if let Err(e) = std::fs::write(reload::pid_path(config), format!("{}\n", std::process::id())) {
        tracing::warn!(error = %e, "cannot write the pid file (`rempart reload` needs it)");
    }
    tracing::info!(bus = ?config.bus.backend, edge = roles.edge, relay = roles.relay, scanner = roles.scanner, domains = config.domains.len(), "rempart serving");
    readiness.set(true);
    shutdown.await;
    readiness.set(false);
    tracing::info!("shutting down: no new connections, finishing sessions and deliveries in flight");
    let _ = stop.send(true);
    let deadline = config.smtp.shutdown_timeout.0;
    let drain = async {
        for task in tasks {
            let _ = task.await;
        }
    };
    tokio::select! {
        _ = drain => tracing::info!("stopped cleanly"),
        _ = tokio::time::sleep(deadline + std::time::Duration::from_secs(1)) => tracing::warn!("shutdown deadline reached"),
        _ = wait_for_signal() => tracing::warn!("second signal: stopping now"),
    }
    reloading.abort();
    Ok(())
}

/// Reloads the configuration on each `SIGHUP`, one reload at a time, off the runtime
/// (keys and rules are read and compiled).
fn reload_on_sighup(reloads: Arc<std::sync::Mutex<Reloader>>) -> tokio::task::JoinHandle<()> {
    #[cfg(unix)]
    let hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup());
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            let mut hangups = match hangups {
                Ok(h) => h,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for SIGHUP: reloads need a restart");
                    return;
                }
            };
            while hangups.recv().await.is_some() {
                tracing::info!("SIGHUP: reloading the configuration");
                let reloads = reloads.clone();
                let reloaded = tokio::task::spawn_blocking(move || match reloads.lock() {
                    Ok(mut reloads) => {
                        reloads.reload();
                    }
                    Err(_) => tracing::error!("a reload panicked before; reloads need a restart"),
                })
                .await;
                if let Err(e) = reloaded {
                    tracing::error!(error = %e, "the reload failed; reloads need a restart");
                }
            }
        }
    })
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(term) => term,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
