//! The recipient directory port: does this customer domain have this mailbox? The edge
//! asks at RCPT; `rempart-directory` answers from LDAP or a cached callout.

use std::future::Future;
use std::pin::Pin;

use crate::DomainConfig;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Exists,
    Unknown,
    /// The directory could not answer (down, timed out, refused us): why, for the log
    /// and the sender's 451.
    Unavailable(String),
}

pub type LookupFuture<'a> = Pin<Box<dyn Future<Output = Lookup> + Send + 'a>>;

pub trait RecipientDirectory: Send + Sync {
    /// Looks `address` (already lower-cased, sub-address removed) up in the directory
    /// that `domain.recipient_source` names.
    fn lookup<'a>(&'a self, domain: &'a DomainConfig, address: &'a str) -> LookupFuture<'a>;
}
