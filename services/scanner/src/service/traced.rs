//! The scan as the gateway runs it, wherever it runs (in the edge's process, behind
//! gRPC, or from the post-queue topic): one `scan` span with a child span per stage
//! (`scan.network`: the DNS-based checks; `scan.content`: parsing, content checks,
//! Bayes, weighing, policy, on a blocking thread), timed into the metrics.

use std::sync::Arc;
use std::time::Instant;

/// Above this size a message's network checks run off the async threads.
const LARGE_MESSAGE: usize = 256 * 1024;

use rempart_model::{ScanError, ScanFailure, ScanFuture, ScanJob, Verdict, Verdicts};
use rempart_telemetry::metrics;
use tracing::Instrument;
use tracing::field::Empty;

use crate::{ScanInput, Scanner};

impl<'a> From<&'a ScanJob> for ScanInput<'a> {
    fn from(job: &'a ScanJob) -> Self {
        ScanInput { facts: &job.facts, return_path: &job.return_path, recipients: &job.recipients, message: &job.message }
    }
}

/// Where a scan runs, as the `where` label of `rempart_scan_duration_seconds`.
#[derive(Debug, Clone, Copy)]
pub enum ScanPlace {
    /// In the edge's process (`rempart serve`).
    Local,
    /// In `rempart scanner`, for an edge over gRPC.
    Remote,
    /// From `rempart.scan`, after the edge accepted without a scanner.
    Queued,
}

impl ScanPlace {
    fn label(self) -> &'static str {
        match self {
            ScanPlace::Local => "local",
            ScanPlace::Remote => "remote",
            ScanPlace::Queued => "queued",
        }
    }
}

fn names(hits: impl Iterator<Item = impl AsRef<str>>) -> String {
    hits.map(|h| h.as_ref().to_string()).collect::<Vec<_>>().join(" ")
}

impl Scanner {
    /// Scans `job` and gives it back with the verdict. `traceparent` names the span
    /// this scan belongs to when it comes from another process; otherwise the `scan`
    /// span is a child of the current one. Fails only if the scan itself panicked.
    pub async fn scan_job(
        self: &Arc<Self>,
        job: ScanJob,
        place: ScanPlace,
        traceparent: Option<&str>,
    ) -> Result<(Verdict, ScanJob), tokio::task::JoinError> {
        let span = tracing::info_span!(
            "scan",
            rempart.queue_id = %job.queue_id,
            rempart.scan_where = place.label(),
            rempart.score = Empty,
            rempart.action = Empty,
            rempart.symbols = Empty,
        );
        rempart_telemetry::propagation::set_parent(&span, traceparent);
        let started = Instant::now();
        let result = async {
            if job.outbound {
                let antivirus = self.antivirus_answers(&job.message).await;
                let scanner = self.clone();
                return tokio::task::spawn_blocking(move || {
                    let mut verdict = scanner.evaluate_outbound(&ScanInput::from(&job), &antivirus);
                    let url = scanner.policies().explain_url(&job.queue_id);
                    verdict.refusal = match (&verdict.malware, verdict.action) {
                        // An engine down: the same deferral as inbound.
                        (Some(_), rempart_model::Action::SoftReject) => scanner.refusal(&job.queue_id, &verdict),
                        (Some(malware), _) if verdict.action.refuses() => Some(rempart_model::Refusal {
                            code: 554,
                            status: "5.7.1".into(),
                            text: format!("Message blocked: it carries {malware}; it is held for review - {url}"),
                        }),
                        _ => verdict.action.refuses().then(|| rempart_model::Refusal {
                            code: 550,
                            status: "5.7.1".into(),
                            text: format!(
                                "Message blocked: it looks like spam (score {:.1}, outbound limit {:.1}); it is held for review - {url}",
                                verdict.score,
                                scanner.outbound_block(),
                            ),
                        }),
                    };
                    (verdict, job)
                })
                .await;
            }
            let stage = tracing::info_span!("scan.network", rempart.queue_id = %job.queue_id, rempart.symbols = Empty);
            // The DNS checks are cheap in CPU for ordinary mail, but DKIM hashes the whole
            // body and the URI lists parse it: for a large message that is CPU work, so it
            // runs on a blocking thread (which waits on its DNS answers there) and no
            // other session waits for it.
            let (network, job) = if job.message.len() > LARGE_MESSAGE {
                let (scanner, span, handle) = (self.clone(), stage.clone(), tokio::runtime::Handle::current());
                tokio::task::spawn_blocking(move || {
                    let network = handle.block_on(scanner.network_findings(&ScanInput::from(&job)).instrument(span));
                    (network, job)
                })
                .await?
            } else {
                (self.network_findings(&ScanInput::from(&job)).instrument(stage.clone()).await, job)
            };
            stage.record("rempart.symbols", names(network.findings.hits.iter().map(|h| &h.name)));
            drop(stage);
            let stage = tracing::info_span!("scan.content", rempart.queue_id = %job.queue_id, rempart.symbols = Empty);
            let scanner = self.clone();
            tokio::task::spawn_blocking(move || {
                let _entered = stage.enter();
                let mut verdict = scanner.evaluate(&ScanInput::from(&job), network);
                verdict.refusal = scanner.refusal(&job.queue_id, &verdict);
                stage.record("rempart.symbols", names(verdict.symbols.iter().map(|s| &s.name)));
                (verdict, job)
            })
            .await
        }
        .instrument(span.clone())
        .await;
        let (verdict, job) = result?;
        metrics().scan(place.label(), started.elapsed());
        for symbol in &verdict.symbols {
            metrics().symbol(&symbol.name);
        }
        span.record("rempart.score", verdict.score);
        span.record("rempart.action", verdict.action.to_string());
        span.record("rempart.symbols", names(verdict.symbols.iter().map(|s| &s.name)));
        if verdict.action.refuses() {
            rempart_telemetry::keep_trace(&span);
        }
        Ok((verdict, job))
    }
}

/// The scanner in the edge's process, as the edge's verdict port: the AWL history is
/// written in the background, after the reply.
pub struct LocalVerdicts(pub crate::LiveScanner);

impl Verdicts for LocalVerdicts {
    fn verdict(&self, job: ScanJob) -> ScanFuture<'_> {
        Box::pin(async move {
            // One load per message: a reload reaches the next one.
            let scanner = self.0.load().value.clone();
            let (verdict, job) = scanner
                .scan_job(job, ScanPlace::Local, None)
                .await
                .map_err(|e| ScanFailure { error: ScanError::Failed(Box::new(e)), job: None })?;
            // The AWL learns senders of inbound mail, not customers' own.
            if !job.outbound {
                let recorded = verdict.clone();
                let (return_path, facts) = (job.return_path.clone(), job.facts.clone());
                // The message is copied only when it will be learned.
                let learn = scanner.autolearn_class(&verdict).map(|class| (class, job.message.clone()));
                tokio::spawn(async move {
                    scanner.record(&return_path, &facts, &recorded).await;
                    if let Some((class, message)) = learn {
                        scanner.autolearn(&return_path, &message, class).await;
                    }
                });
            }
            Ok((verdict, job))
        })
    }
}
