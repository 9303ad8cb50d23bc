//! Accept loops and graceful shutdown: on shutdown the listeners close at once,
//! sessions waiting for a command get `421 4.3.2`, sessions in DATA may finish, and
//! whatever is still running at the deadline is dropped (its client got no 250, so
//! nothing is lost: it will retry).

use std::net::SocketAddr;
use std::sync::Arc;

use futures_util::FutureExt;
use rempart_bus::Bus;
use rempart_model::Live;
use rempart_model::config::{ListenerConfig, ListenerKind};
use rempart_model::net::Network;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use rempart_telemetry::metrics;

use crate::limits::ConnectionLimits;
use crate::session::Session;
use crate::{EdgeError, EdgeView, Shared, proxy, screen};

pub struct Edge<B> {
    shared: Arc<Shared<B>>,
    limits: Arc<ConnectionLimits>,
    listeners: Vec<(TcpListener, ListenerConfig)>,
}

impl<B: Bus> Edge<B> {
    /// Loads the certificate and binds every configured listener.
    pub async fn bind(
        live: Live<EdgeView>,
        bus: B,
        verdicts: Option<Arc<dyn rempart_model::Verdicts>>,
        state: Option<Arc<rempart_state::SharedState>>,
        resolver: Option<mail_auth::hickory_resolver::TokioResolver>,
    ) -> Result<Self, EdgeError> {
        // Listeners, connection limits and the data budget are set once (see
        // `Config::needs_restart`).
        let config = live.load().config.clone();
        let mut listeners = Vec::new();
        for listener in &config.smtp.listeners {
            let socket =
                TcpListener::bind(listener.address).await.map_err(|source| EdgeError::Bind { address: listener.address, source })?;
            listeners.push((socket, listener.clone()));
        }
        // Validated with the configuration.
        let trusted = config.smtp.trusted_networks.iter().filter_map(|n| rempart_model::net::Network::parse(n).ok()).collect();
        let limits = ConnectionLimits::new(config.smtp.max_connections, config.smtp.max_connections_per_ip, trusted);
        Ok(Self {
            shared: Arc::new(Shared {
                data_budget: crate::limits::DataBudget::new(usize::try_from(config.smtp.max_data_in_flight).unwrap_or(usize::MAX)),
                live,
                bus,
                verdicts,
                state,
                resolver,
                batv: Default::default(),
            }),
            limits,
            listeners,
        })
    }

    /// The bound addresses (useful with port 0).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners.iter().filter_map(|(l, _)| l.local_addr().ok()).collect()
    }

    /// Serves until `shutdown` turns true, then drains sessions within the configured
    /// shutdown timeout.
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        let mut loops = Vec::new();
        for (listener, options) in self.listeners {
            if let Ok(address) = listener.local_addr() {
                tracing::info!(%address, proxy_protocol = options.proxy_protocol, kind = ?options.kind, "SMTP listening");
            }
            loops.push(tokio::spawn(accept_loop(listener, options.clone(), self.shared.clone(), self.limits.clone(), shutdown.clone())));
        }
        for l in loops {
            let _ = l.await;
        }
        let deadline = self.shared.live.load().config.smtp.shutdown_timeout.0;
        let active = self.limits.active();
        if active > 0 {
            tracing::info!(active, "waiting for SMTP sessions to finish");
        }
        if tokio::time::timeout(deadline, self.limits.wait_idle()).await.is_err() {
            tracing::warn!(active = self.limits.active(), "shutdown deadline reached; dropping SMTP sessions in flight");
        }
    }
}

async fn accept_loop<B: Bus>(
    listener: TcpListener,
    options: ListenerConfig,
    shared: Arc<Shared<B>>,
    limits: Arc<ConnectionLimits>,
    mut shutdown: watch::Receiver<bool>,
) {
    // Validated with the configuration.
    let proxy_from: Arc<Vec<Network>> = Arc::new(options.proxy_from.iter().filter_map(|n| Network::parse(n).ok()).collect());
    loop {
        let (socket, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = crate::stopping(&mut shutdown) => return,
        };
        let _ = socket.set_nodelay(true);
        let Some(slot) = limits.acquire() else {
            metrics().connection("refused", "too_many_connections");
            tokio::spawn(refuse(socket, "Too many connections, try again later"));
            continue;
        };
        let shared = shared.clone();
        let shutdown = shutdown.clone();
        let proxy_from = proxy_from.clone();
        tokio::spawn(async move {
            // One load per connection: the session runs under this version throughout.
            let view = shared.live.load();
            let mut slot = slot;
            let mut io = BufReader::new(rempart_smtp::Stream::Plain(socket));
            let mut client = peer;
            if options.proxy_protocol {
                // Only a balancer may say who is calling; anyone else is refused before
                // a byte is read (its header would be believed, and it would hold a
                // slot while it waits).
                if !proxy_from.iter().any(|n| n.contains(peer.ip())) {
                    tracing::warn!(%peer, "PROXY header expected from a peer not in proxy_from; refused");
                    metrics().connection("refused", "proxy_not_allowed");
                    let _ = io.get_mut().write_all(b"421 4.7.0 Not accepting connections from this address\r\n").await;
                    return;
                }
                let timeout = view.config.smtp.proxy_timeout.0;
                match tokio::time::timeout(timeout, proxy::read_header(&mut io)).await {
                    Ok(Ok(Some(real))) => client = real,
                    Ok(Ok(None)) => {}
                    Ok(Err(e)) => {
                        tracing::info!(%peer, error = %e, "bad PROXY header");
                        metrics().connection("refused", "bad_proxy_header");
                        return;
                    }
                    Err(_) => {
                        metrics().connection("refused", "proxy_header_timeout");
                        return;
                    }
                }
            }
            if !slot.claim_ip(client.ip()) {
                metrics().connection("refused", "too_many_from_ip");
                let reply =
                    format!("421 4.7.0 {} Too many connections from {}, try again later\r\n", view.config.smtp.hostname, client.ip());
                let _ = io.get_mut().write_all(reply.as_bytes()).await;
                return;
            }
            let mut tls_description = None;
            if options.kind == ListenerKind::Submissions {
                // Implicit TLS (RFC 8314): the handshake comes before the greeting.
                let Some(acceptor) = view.tls.clone() else { return };
                let mut stream = io.into_inner();
                let timeout = view.config.smtp.command_timeout.0;
                match tokio::time::timeout(timeout, stream.accept_tls(&acceptor)).await {
                    Ok(Ok(())) => tls_description = stream.tls_description(),
                    Ok(Err(e)) => {
                        tracing::info!(client = %client.ip(), error = %e, "TLS handshake failed");
                        metrics().connection("refused", "tls_handshake");
                        return;
                    }
                    Err(_) => {
                        metrics().connection("refused", "tls_handshake");
                        return;
                    }
                }
                io = BufReader::new(stream);
            }
            metrics().connection("accepted", "");
            let trusted = slot.is_trusted(client.ip());
            if !trusted && !options.kind.is_submission() {
                let store = shared.state.as_ref().map(|s| &*s.store);
                if let Some(refusal) = screen::at_connect(&view.config, store, shared.resolver.as_ref(), client.ip()).await {
                    metrics().connection("refused", if refusal.code == 421 { "connection_rate" } else { "dnsbl" });
                    let _ = io.get_mut().write_all(refusal.wire().as_bytes()).await;
                    return;
                }
            }
            let activity = slot.activity.clone();
            let session = Session::new(shared, view, io, client.ip(), trusted, options.kind, tls_description, shutdown);
            // A panic in a session is a bug: it ends that session only, counted and
            // logged; the slot is given back as the task unwinds.
            let outcome = std::panic::AssertUnwindSafe(session.with_activity(activity).run()).catch_unwind().await;
            if let Err(panic) = outcome {
                let panic = metrics().panic("session", &*panic);
                tracing::error!(client = %client.ip(), panic, "an SMTP session panicked; only it ended");
            }
            drop(slot);
        });
    }
}

async fn refuse(mut socket: TcpStream, why: &str) {
    let _ = socket.write_all(format!("421 4.7.0 {why}\r\n").as_bytes()).await;
    let _ = socket.shutdown().await;
}
