//! Rempart's scanner. Checks add named symbols (SPF, DKIM, DMARC, ARC, DNS lists,
//! headers, MIME/HTML, Bayes); the registry's weights (with per-group limits) sum to
//! the score; composites combine symbols; the AWL pulls the score towards the
//! sender's history; each recipient domain's policy maps the score, or an allow/block
//! list entry, to an action. The verdict keeps every symbol with its description so a
//! rejection can explain itself.
//!
//! `engine` is the scoring (registry, stages, composites, policy); `service` runs it
//! for edges (gRPC, queued scans) and for diagnostics.

pub mod antivirus;
pub(crate) mod checks;
pub mod dns;
mod engine;
pub mod service;
pub(crate) mod spf;
pub(crate) mod symbols;
pub mod tune;

pub use rempart_classifier::{attachments, html, message, tokens};

pub use engine::{NetworkFindings, ScanInput, Scanner, spam_headers};
pub use symbols::bayes_bands;

/// The scanner of the current configuration version (rules, weights, policies, lists):
/// a reload builds a new one and swaps it in; each message loads it once.
pub type LiveScanner = rempart_model::Live<std::sync::Arc<Scanner>>;

#[derive(Debug, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ScannerError {
    /// The configuration field at fault, e.g. `scanner.weights.FOO`.
    pub field: String,
    pub message: String,
}
