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

use rempart_model::{Config, Live, RecipientDirectory, Versioned};
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

/// What a reload may change for the edge: the configuration and what is built from it
/// (the TLS certificate, the DKIM keys, the recipient directory). A session keeps the
/// view it started with; the next one sees a reload.
pub struct EdgeView {
    pub config: Arc<Config>,
    pub(crate) tls: Option<TlsAcceptor>,
    /// The customer domains' DKIM keys, for mail their accounts submit.
    pub(crate) dkim: dkim::Signers,
    /// LDAP and callout recipient checks; `None` when no domain uses them.
    pub(crate) directory: Option<Arc<dyn RecipientDirectory>>,
}

impl EdgeView {
    /// Loads the certificate and the DKIM keys `config` names: an unreadable file is an
    /// error here, at start and at reload alike.
    pub fn build(config: Arc<Config>, directory: Option<Arc<dyn RecipientDirectory>>) -> Result<EdgeView, EdgeError> {
        let tls = match (&config.tls.cert, &config.tls.key) {
            (Some(cert), Some(key)) => Some(tls::load_acceptor(cert, key)?),
            _ => None,
        };
        let dkim = dkim::Signers::load(&config)?;
        Ok(EdgeView { config, tls, dkim, directory })
    }
}

/// The edge's view of one configuration version.
pub(crate) type View = Arc<Versioned<EdgeView>>;

/// What every session of one edge shares.
pub(crate) struct Shared<B> {
    /// The current view; each connection loads it once.
    pub live: Live<EdgeView>,
    pub bus: B,
    /// The verdict port: the scanner in this process, or remote scanners; `None` when
    /// `scanner.enabled` is false.
    pub verdicts: Option<Arc<dyn rempart_model::Verdicts>>,
    /// Greylisting lives here; `None` without shared state.
    pub state: Option<Arc<rempart_state::SharedState>>,
    /// For the DNS lists of `[screen]`; `None` when there are none or DNS is off.
    pub resolver: Option<mail_auth::hickory_resolver::TokioResolver>,
    /// Tags customers' outbound return paths; checks the bounces that come back.
    pub batv: batv::Batv,
    /// Message data held in memory by all sessions (`smtp.max_data_in_flight`).
    pub data_budget: Arc<limits::DataBudget>,
}

/// Resolves once `shutdown` turns true (or its sender is gone).
pub(crate) async fn stopping(shutdown: &mut tokio::sync::watch::Receiver<bool>) {
    // Map the guard away at once: it must not live across an await.
    let _ = shutdown.wait_for(|stop| *stop).await.map(|_| ());
}
