//! Rempart's shared words: the envelope that travels with a message, its `QueueId`,
//! per-recipient `DeliveryStatus`, and the configuration types every role reads.

pub mod config;
pub mod date;
pub mod directory;
pub mod disposition;
pub mod dnslist;
pub mod duration;
pub mod edits;
pub mod envelope;
pub mod live;
pub mod mbox;
pub mod net;
pub mod notice;
pub mod queue_id;
pub mod return_path;
pub mod scan;
pub mod topics;
pub mod verdict;

/// A configuration value that does not parse (a duration, a route, a network); the
/// message names the value and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidValue(pub String);

pub use config::{Config, ConfigError, DomainConfig, Route, RouteTls, ScannerFallback};
pub use directory::{Lookup, LookupFuture, RecipientDirectory};
pub use duration::HumanDuration;
pub use edits::{Edits, Refusal, StrippedPart};
pub use envelope::{DeliveryStatus, DsnRet, Envelope, Notify, Recipient, SessionFacts};
pub use live::{Live, Versioned};
pub use queue_id::QueueId;
pub use scan::{ScanError, ScanFailure, ScanFuture, ScanJob, Verdicts};
pub use verdict::{Action, SymbolHit, Verdict};
