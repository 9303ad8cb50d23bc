//! Rempart's SMTP edge: listeners (optionally behind PROXY protocol), connection
//! limits, and the SMTP session that hands accepted mail to the bus.

pub mod address;
mod batv;
pub mod dkim;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod limits;
pub mod proxy;
mod received;
mod screen;
mod server;
mod session;
mod tls;

use std::sync::Arc;

use rempart_model::Config;
use tokio_rustls::TlsAcceptor;

pub use server::Edge;

#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    #[error("TLS certificate: {0}")]
    Tls(String),
    #[error("cannot listen on {address}: {source}")]
    Bind { address: std::net::SocketAddr, source: std::io::Error },
    #[error("DKIM key {0}")]
    Dkim(String),
}

/// What every session of one edge shares.
pub(crate) struct Shared<B> {
    pub config: Arc<Config>,
    pub bus: B,
    pub tls: Option<TlsAcceptor>,
    /// The verdict port: the scanner in this process, or remote scanners; `None` when
    /// `scanner.enabled` is false.
    pub verdicts: Option<Arc<dyn rempart_model::Verdicts>>,
    /// Greylisting lives here; `None` without shared state.
    pub state: Option<Arc<rempart_state::SharedState>>,
    /// LDAP and callout recipient checks; `None` when no domain uses them.
    pub directory: Option<Arc<dyn rempart_model::RecipientDirectory>>,
    /// For the DNS lists of `[screen]`; `None` when there are none or DNS is off.
    pub resolver: Option<mail_auth::hickory_resolver::TokioResolver>,
    /// Tags customers' outbound return paths; checks the bounces that come back.
    pub batv: batv::Batv,
    /// The customer domains' DKIM keys, for mail their accounts submit.
    pub dkim: dkim::Signers,
    /// Message data held in memory by all sessions (`smtp.max_data_in_flight`).
    pub data_budget: Arc<limits::DataBudget>,
}

/// Resolves once `shutdown` turns true (or its sender is gone).
pub(crate) async fn stopping(shutdown: &mut tokio::sync::watch::Receiver<bool>) {
    // Map the guard away at once: it must not live across an await.
    let _ = shutdown.wait_for(|stop| *stop).await.map(|_| ());
}
