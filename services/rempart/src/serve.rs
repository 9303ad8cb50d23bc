//! `rempart serve`: every role in one process, on the embedded queue.

use std::path::Path;
use std::sync::Arc;

use rempart_bus::{EmbeddedBus, EmbeddedOptions};
use rempart_edge::Edge;
use rempart_relay::Relay;
use rempart_state::SharedState;
use tokio::sync::watch;

pub fn run(config_path: Option<&Path>) -> Result<(), String> {
    let config = Arc::new(crate::load_config(config_path)?);
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(serve(config))
}

async fn serve(config: Arc<rempart_model::Config>) -> Result<(), String> {
    let queue_file = config.queue.data_dir.join("queue.redb");
    let bus = EmbeddedBus::open(&queue_file, EmbeddedOptions { fsync: config.queue.fsync })
        .map_err(|e| format!("queue {}: {e}", queue_file.display()))?;
    let state = Arc::new(SharedState::open(&config).await.map_err(|e| format!("state: {e}"))?);
    state.spawn_bayes_reloader(config.bayes.reload_every.0);
    let scanner = if config.scanner.enabled {
        let scanner = rempart_scanner::Scanner::new(&config).map_err(|e| format!("configuration: {e}"))?;
        Some(Arc::new(scanner.with_state(state.clone())))
    } else {
        None
    };
    let edge = Edge::bind(config.clone(), bus.clone(), scanner, Some(state)).await.map_err(|e| e.to_string())?;
    if config.domains.is_empty() {
        tracing::warn!("no [[domain]] configured: every recipient will be refused (relaying for nobody)");
    }
    let relay = Relay::new(config.clone(), bus).map_err(|e| format!("relay TLS setup: {e}"))?;
    let (stop, stopped) = watch::channel(false);
    let edge_task = tokio::spawn(edge.run(stopped.clone()));
    let relay_task = tokio::spawn(relay.run(stopped));
    tracing::info!(queue = %queue_file.display(), domains = config.domains.len(), "rempart serving");

    wait_for_signal().await;
    tracing::info!("shutting down: no new connections, finishing sessions and deliveries in flight");
    let _ = stop.send(true);
    let deadline = config.smtp.shutdown_timeout.0;
    let drain = async {
        let _ = edge_task.await;
        let _ = relay_task.await;
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
