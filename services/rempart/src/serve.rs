//! `rempart serve`, `rempart edge`, `rempart relay`: the roles of the gateway, all in
//! one process (`serve`) or one each (a cluster, on the NATS bus). Same code paths;
//! only the bus and the store differ.

use std::path::Path;
use std::sync::Arc;

use rempart_bus::{AnyBus, EmbeddedBus, EmbeddedOptions, NatsBus, NatsOptions};
use rempart_edge::Edge;
use rempart_model::config::BusBackend;
use rempart_model::{Config, Verdicts};
use rempart_relay::Relay;
use rempart_state::SharedState;
use rempart_telemetry::Readiness;
use tokio::sync::watch;

/// Which roles this process runs.
#[derive(Debug, Clone, Copy)]
pub struct Roles {
    /// The service name in traces.
    pub name: &'static str,
    pub edge: bool,
    pub relay: bool,
    /// The gRPC scanner service (`rempart scanner`).
    pub scanner: bool,
}

pub const ALL: Roles = Roles { name: "rempart", edge: true, relay: true, scanner: false };
pub const EDGE: Roles = Roles { name: "rempart-edge", edge: true, relay: false, scanner: false };
pub const RELAY: Roles = Roles { name: "rempart-relay", edge: false, relay: true, scanner: false };
pub const SCANNER: Roles = Roles { name: "rempart-scanner", edge: false, relay: false, scanner: true };

pub fn run(config_path: Option<&Path>, roles: Roles) -> Result<(), String> {
    let config = Arc::new(crate::load_config(config_path)?);
    if config.bus.backend == BusBackend::Embedded && roles.edge != roles.relay {
        return Err("the embedded bus is one process's: run `rempart serve`, or set [bus] backend = \"nats\"".into());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| format!("cannot start the runtime: {e}"))?;
    // The OTLP exporter's connection lives on the runtime: set it up inside.
    let telemetry = runtime.block_on(async { rempart_telemetry::init(roles.name, &config.telemetry) }).map_err(|e| e.to_string())?;
    let served = runtime.block_on(serve(config, roles));
    // Flushes the last spans (blocking: outside the runtime, which still runs them).
    telemetry.shutdown();
    served
}

async fn open_bus(config: &Config) -> Result<AnyBus, String> {
    Ok(match config.bus.backend {
        BusBackend::Embedded => {
            let queue_file = config.queue.data_dir.join("queue.redb");
            let bus = EmbeddedBus::open(&queue_file, EmbeddedOptions { fsync: config.queue.fsync })
                .map_err(|e| format!("queue {}: {e}", queue_file.display()))?;
            AnyBus::Embedded(bus)
        }
        BusBackend::Nats => {
            let options = NatsOptions {
                url: config.bus.nats_url.clone(),
                replicas: config.bus.nats_replicas,
                credentials_file: config.bus.nats_credentials_file.clone(),
                ca_file: config.bus.nats_ca_file.clone(),
            };
            AnyBus::Nats(NatsBus::connect(&options).await.map_err(|e| format!("bus: {e}"))?)
        }
    })
}

/// The scanner with the shared state (AWL, Bayes reloaded as it changes).
async fn scanner_with_state(config: &Config) -> Result<(Arc<rempart_scanner::Scanner>, Arc<SharedState>), String> {
    let state = Arc::new(SharedState::open(config).await.map_err(|e| format!("state: {e}"))?);
    state.spawn_bayes_reloader(config.bayes.reload_every.0);
    let scanner = rempart_scanner::Scanner::new(config).map_err(|e| format!("configuration: {e}"))?;
    Ok((Arc::new(scanner.with_state(state.clone())), state))
}

/// The edge's verdict port: the scanner in this process (with the AWL and Bayes),
/// remote scanners (the edge then loads no Bayes model), or none; and the state for
/// greylisting.
async fn edge_verdicts(config: &Config) -> Result<(Option<Arc<dyn Verdicts>>, Arc<SharedState>), String> {
    if config.scanner.enabled && config.scanner.endpoints.is_empty() {
        let (scanner, state) = scanner_with_state(config).await?;
        return Ok((Some(Arc::new(rempart_scanner::traced::LocalVerdicts(scanner))), state));
    }
    let state = Arc::new(SharedState::open_for_greylisting(config).await.map_err(|e| format!("state: {e}"))?);
    if !config.scanner.enabled {
        return Ok((None, state));
    }
    let resolver = rempart_scanner::dns::Dns::new(&config.dns).map_err(|e| format!("configuration: {e}"))?.resolver();
    let scanner = &config.scanner;
    let remote = rempart_scanner::grpc::RemoteScanner::start(&scanner.endpoints, scanner.timeout.0, scanner.resolve_every.0, resolver)
        .await
        .map_err(|e| format!("configuration: {e}"))?;
    Ok((Some(remote), state))
}

async fn serve(config: Arc<Config>, roles: Roles) -> Result<(), String> {
    let (stop, stopped) = watch::channel(false);
    let mut tasks = Vec::new();
    let readiness = Readiness::default();
    if let Some(listen) = config.telemetry.listen {
        // Up until the process exits: probes and scrapes go on while it drains.
        rempart_telemetry::serve_http(listen, readiness.clone(), std::future::pending()).await.map_err(|e| e.to_string())?;
        tracing::info!(%listen, "metrics and health on http://{listen}/metrics, /healthz, /readyz");
    }
    if roles.scanner {
        let (scanner, _state) = scanner_with_state(&config).await?;
        let listen = config.scanner.listen;
        let grpc_scanner = scanner.clone();
        let mut stopping = stopped.clone();
        tasks.push(tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopping.wait_for(|stop| *stop).await;
            };
            if let Err(e) = rempart_scanner::grpc::serve(grpc_scanner, listen, shutdown).await {
                tracing::error!(error = %e, "scanner service stopped");
            }
        }));
        tracing::info!(%listen, "scanner listening (gRPC)");
        // On a shared bus, scanners also take what edges queued with no scanner up.
        if config.bus.backend == BusBackend::Nats {
            let bus = open_bus(&config).await?;
            tasks.push(tokio::spawn(rempart_scanner::post_queue::run(scanner.clone(), bus, stopped.clone())));
        }
    }
    if !(roles.edge || roles.relay) {
        return run_until_signal(&config, roles, stop, tasks, readiness).await;
    }
    let bus = open_bus(&config).await?;
    if roles.edge {
        let (verdicts, state) = edge_verdicts(&config).await?;
        let edge = Edge::bind(config.clone(), bus.clone(), verdicts, Some(state)).await.map_err(|e| e.to_string())?;
        if config.domains.is_empty() {
            tracing::warn!("no [[domain]] configured: every recipient will be refused (relaying for nobody)");
        }
        tasks.push(tokio::spawn(edge.run(stopped.clone())));
    }
    if roles.relay {
        let relay = Relay::new(config.clone(), bus).map_err(|e| format!("relay TLS setup: {e}"))?;
        tasks.push(tokio::spawn(relay.run(stopped)));
    }
    run_until_signal(&config, roles, stop, tasks, readiness).await
}

async fn run_until_signal(
    config: &Config,
    roles: Roles,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    readiness: Readiness,
) -> Result<(), String> {
    tracing::info!(bus = ?config.bus.backend, edge = roles.edge, relay = roles.relay, scanner = roles.scanner, domains = config.domains.len(), "rempart serving");
    readiness.set(true);
    wait_for_signal().await;
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
    Ok(())
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
