//! Client TLS towards routes: opportunistic and required TLS accept any certificate
//! (encryption only, RFC 7435); `verify` checks the chain against the system's roots or
//! the domain's CA file, and the route's host name.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rempart_model::{Config, RouteTls};
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio_rustls::TlsConnector;

#[derive(Debug, Clone, thiserror::Error)]
pub enum TlsSetupError {
    #[error("TLS client configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("route CA file {path}: {message}")]
    CaFile { path: PathBuf, message: String },
    #[error("CA file {} was not loaded", .0.display())]
    NotLoaded(PathBuf),
    #[error("no trusted root certificate found on this system ({})", .0.join("; "))]
    NoSystemRoots(Vec<String>),
}

/// The connectors a relay needs, built once at startup.
pub struct Connectors {
    any: TlsConnector,
    /// The system's trusted roots, built on first use of `verify` without a CA file
    /// (reading them is slow, and most gateways never verify).
    system: std::sync::OnceLock<Result<TlsConnector, TlsSetupError>>,
    by_ca_file: HashMap<PathBuf, TlsConnector>,
}

impl Connectors {
    /// Loads the CA file of every domain that has one: a bad file stops the relay at
    /// startup, not at the first delivery.
    pub fn new(config: &Config) -> Result<Self, TlsSetupError> {
        let any = rempart_smtp::tls::any_certificate()?;
        let mut by_ca_file = HashMap::new();
        for path in config.domains.iter().filter_map(|d| d.route_ca_file.as_ref()) {
            if !by_ca_file.contains_key(path) {
                let roots = ca_file_roots(path)?;
                by_ca_file.insert(path.clone(), verifying(roots)?);
            }
        }
        Ok(Self { any: TlsConnector::from(Arc::new(any)), system: std::sync::OnceLock::new(), by_ca_file })
    }

    /// The connector for a route's policy.
    pub fn for_route(&self, tls: RouteTls, ca_file: Option<&Path>) -> Result<&TlsConnector, TlsSetupError> {
        if tls != RouteTls::Verify {
            return Ok(&self.any);
        }
        if let Some(path) = ca_file {
            return self.by_ca_file.get(path).ok_or_else(|| TlsSetupError::NotLoaded(path.to_path_buf()));
        }
        self.system.get_or_init(system_connector).as_ref().map_err(Clone::clone)
    }
}

/// A server name for the handshake: a DNS name, or an IP address (checked against the
/// certificate's IP SANs).
pub fn server_name(host: &str) -> Option<ServerName<'static>> {
    ServerName::try_from(host.to_string()).ok()
}

fn verifying(roots: RootCertStore) -> Result<TlsConnector, rustls::Error> {
    Ok(TlsConnector::from(Arc::new(rempart_smtp::tls::verifying(roots)?)))
}

/// The CA certificates of a PEM file (a private PKI).
pub fn ca_file_roots(path: &Path) -> Result<RootCertStore, TlsSetupError> {
    let error = |message: String| TlsSetupError::CaFile { path: path.to_path_buf(), message };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| error(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| error(e.to_string()))?;
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(error("no usable CA certificate in the file".into()));
    }
    Ok(roots)
}

/// The system's trust store (rustls-native-certs: /etc/ssl/certs, SSL_CERT_FILE).
pub fn system_roots() -> Result<RootCertStore, TlsSetupError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        return Err(TlsSetupError::NoSystemRoots(found.errors.iter().map(ToString::to_string).collect()));
    }
    Ok(roots)
}

fn system_connector() -> Result<TlsConnector, TlsSetupError> {
    Ok(verifying(system_roots()?)?)
}
