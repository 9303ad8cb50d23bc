//! Rempart's recipient directory: whether a customer domain has a mailbox, asked at RCPT
//! so mail for nobody is refused in the session. Two sources besides the configured
//! list: the customer's LDAP / Active Directory, and a callout to the customer's own
//! server whose answers are cached in the store (shared by every edge).

mod callout;
mod ldap;

use std::sync::Arc;

use rempart_model::config::RecipientSource;
use rempart_model::{Config, DomainConfig, Lookup, LookupFuture, RecipientDirectory};
use rempart_state::Store;

pub use callout::Callout;
pub use ldap::Ldap;

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("domain {domain}: LDAP bind password file {path}: {source}")]
    PasswordFile { domain: String, path: String, source: std::io::Error },
    #[error("domain {domain}: LDAP CA file: {message}")]
    CaFile { domain: String, message: String },
    #[error("callout TLS: {0}")]
    Tls(#[from] rempart_smtp_client::TlsSetupError),
}

pub struct Directory {
    ldap: Ldap,
    callout: Callout,
}

impl Directory {
    /// Reads what the configured sources need (LDAP bind passwords, CA files) now, so a
    /// missing file stops the start instead of deferring every recipient later.
    pub fn new(config: &Config, store: Arc<dyn Store>) -> Result<Self, DirectoryError> {
        Ok(Self { ldap: Ldap::new(config)?, callout: Callout::new(config, store)? })
    }

    /// Whether any domain asks a directory (else the edge needs none).
    pub fn needed(config: &Config) -> bool {
        config.domains.iter().any(|d| matches!(d.recipient_source, RecipientSource::Ldap | RecipientSource::Callout))
    }
}

impl RecipientDirectory for Directory {
    fn lookup<'a>(&'a self, domain: &'a DomainConfig, address: &'a str) -> LookupFuture<'a> {
        Box::pin(async move {
            match (domain.recipient_source, &domain.ldap, &domain.callout) {
                (RecipientSource::Ldap, Some(ldap), _) => self.ldap.lookup(&domain.name, ldap, address).await,
                (RecipientSource::Callout, _, Some(callout)) => self.callout.lookup(domain, callout, address).await,
                // Lists are checked by the edge itself; validation ensures the tables.
                _ => Lookup::Exists,
            }
        })
    }
}
