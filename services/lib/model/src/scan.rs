//! The verdict port between the edge and the scanner (as `Bus` and `Store` are ports):
//! the edge hands a message over and gets a `Verdict` that says what to do, how to
//! refuse and what to change. Implementations: the scanner in process, remote
//! scanners over gRPC; with none, the edge does not scan.

use std::future::Future;
use std::pin::Pin;

use crate::{SessionFacts, Verdict};

/// A message to scan, owned so that it can move to a blocking thread or over the
/// network and come back with the verdict (the body is not copied).
#[derive(Debug, Clone, Default)]
pub struct ScanJob {
    pub queue_id: String,
    pub facts: SessionFacts,
    pub return_path: String,
    pub recipients: Vec<String>,
    pub message: Vec<u8>,
    /// Submitted by a customer's account: scored with the content rules only (no DNS
    /// checks, no Bayes learned from inbound mail) against `[outbound] block`.
    pub outbound: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// No scanner answered in time: the domain's `scanner_fallback` decides.
    #[error("no scanner available: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The scan itself failed: a temporary failure for the sender.
    #[error("the scan failed: {0}")]
    Failed(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// A scan that gave no verdict, with the job when the scan did not consume it (a
/// remote scanner that did not answer), so the message can still be queued.
#[derive(Debug)]
pub struct ScanFailure {
    pub error: ScanError,
    pub job: Option<ScanJob>,
}

pub type ScanFuture<'a> = Pin<Box<dyn Future<Output = Result<(Verdict, ScanJob), ScanFailure>> + Send + 'a>>;

pub trait Verdicts: Send + Sync {
    /// Scans `job`; gives it back with the verdict. The implementation records what it
    /// must (the AWL history) without making the caller wait.
    fn verdict(&self, job: ScanJob) -> ScanFuture<'_>;
}
