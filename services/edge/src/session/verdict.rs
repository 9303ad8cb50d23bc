//! The end of DATA: ask the scanner, then refuse in the session, or mark, hold or
//! queue the message as the policy says. Every refusal names its reason and the page
//! that explains it.

use rempart_bus::Bus;
use rempart_model::{ScanError, ScanFailure, ScanJob, ScannerFallback, Verdict};
use rempart_state::greylist::GreyDecision;
use rempart_state::verdicts::VerdictRecord;

use super::{Session, Transaction, Transport};
use rempart_smtp::Reply;

/// What scanning gave.
pub(super) enum Scan {
    /// The scanner is off (`scanner.enabled = false`).
    Off,
    Done(Box<Verdict>),
    /// No scanner answered: accepted, to be scanned from `rempart.scan`.
    Later,
}

impl<B: Bus, S: Transport> Session<B, S> {
    /// Asks the verdict port; gives the body back with the verdict, or with none and
    /// `Scan::Later` when no scanner answered and every recipient domain's fallback is
    /// "queue". A scanner failure is otherwise a temporary error: the message is
    /// neither lost nor accepted unscanned.
    pub(super) async fn scan(&self, tx: &Transaction, queue_id: &str, body: Vec<u8>) -> Result<(Scan, Vec<u8>), Reply> {
        let Some(verdicts) = self.shared.verdicts.clone() else { return Ok((Scan::Off, body)) };
        let recipients: Vec<String> = tx.recipients.iter().map(|r| r.address.clone()).collect();
        let job = ScanJob {
            queue_id: queue_id.to_string(),
            facts: self.facts.clone(),
            return_path: tx.return_path.clone(),
            recipients,
            message: body,
            outbound: self.account.is_some(),
        };
        match verdicts.verdict(job).await {
            Ok((verdict, job)) => Ok((Scan::Done(Box::new(verdict)), job.message)),
            Err(ScanFailure { error: ScanError::Unavailable(e), job: Some(job) }) if self.queue_when_no_scanner(tx) => {
                tracing::warn!(queue_id, client = %self.facts.peer_ip, error = %e, "no scanner answered; queued for a scan later");
                Ok((Scan::Later, job.message))
            }
            Err(failure) => {
                tracing::warn!(queue_id, client = %self.facts.peer_ip, error = %failure.error, "no verdict; deferring the message");
                Err(Reply::new(451, "4.3.0", "Temporary failure while checking the message, please try again later"))
            }
        }
    }

    /// Whether every recipient's domain asks to accept and scan later.
    fn queue_when_no_scanner(&self, tx: &Transaction) -> bool {
        let domains = &self.view.config.domains;
        tx.recipients.iter().all(|r| {
            let domain = r.domain();
            domains.iter().any(|d| d.name.eq_ignore_ascii_case(domain) && d.scanner_fallback == ScannerFallback::Queue)
        })
    }

    /// Greylisting, for mail whose score is in the greylist band: the reply that
    /// defers it, or `None` when it passes. Decided here, at the end of DATA, and not
    /// at RCPT as classic greylisting does, so that only suspicious mail is delayed:
    /// clean mail is never held up. A store failure lets the mail through (the score
    /// did not call for a refusal).
    pub(super) async fn greylist(&self, tx: &Transaction) -> Option<Reply> {
        let greylist = self.shared.state.as_ref()?.greylist.as_ref()?;
        let metrics = rempart_telemetry::metrics();
        let ip = self.facts.client_ip()?;
        let domains = &self.view.config.domains;
        let recipients: Vec<&str> = tx
            .recipients
            .iter()
            .map(|r| r.address.as_str())
            .filter(|a| {
                let domain = a.rsplit_once('@').map_or("", |(_, d)| d);
                domains.iter().find(|d| d.name.eq_ignore_ascii_case(domain)).is_none_or(|d| d.greylisting)
            })
            .collect();
        if recipients.is_empty() {
            metrics.greylist("skipped");
            return None;
        }
        match greylist.check(ip, &tx.return_path, &recipients).await {
            Ok(GreyDecision::Pass(reason)) => {
                tracing::info!(client = %self.facts.peer_ip, from = %tx.return_path, ?reason, "greylisting passed");
                metrics.greylist(reason.label());
                None
            }
            Ok(GreyDecision::Defer { retry_after, first_attempt }) => {
                let minutes = retry_after.as_secs().div_ceil(60).max(1);
                let what = if first_attempt { "first delivery attempt" } else { "retried too soon" };
                tracing::info!(client = %self.facts.peer_ip, from = %tx.return_path, first_attempt, "greylisted");
                metrics.greylist(if first_attempt { "greylisted" } else { "too_soon" });
                Some(Reply::new(
                    451,
                    "4.7.1",
                    format!("Greylisted ({what}): please retry in {minutes} minute(s); later attempts from the same network will pass"),
                ))
            }
            Err(e) => {
                tracing::warn!(client = %self.facts.peer_ip, error = %e, "greylisting unavailable; accepting");
                metrics.greylist("unavailable");
                None
            }
        }
    }

    /// Keeps what the `/why/` page needs to explain this refusal (in the background:
    /// the reply does not wait for the store; a failure is logged, the refusal stands).
    pub(super) fn keep_refusal(&self, queue_id: &str, tx: &Transaction, verdict: &Verdict, reply: &Reply) {
        let Some(state) = self.shared.state.clone() else { return };
        let recipients: Vec<&str> = tx.recipients.iter().map(|r| r.address.as_str()).collect();
        let record =
            VerdictRecord::new(queue_id, rempart_model::date::unix_now(), verdict, reply.to_string(), &tx.return_path, &recipients);
        tokio::spawn(async move {
            if let Err(e) = rempart_state::verdicts::put(&*state.store, &record).await {
                tracing::warn!(queue_id = %record.queue_id, error = %e, "cannot keep the refusal's record for its /why/ page");
            }
        });
    }

    /// `rempart.events.verdict` for the console's reports.
    pub(super) async fn verdict_event(&self, queue_id: &str, tx: &Transaction, verdict: &Verdict) {
        let event = rempart_proto::v1::VerdictEvent {
            queue_id: queue_id.to_string(),
            client_ip: self.facts.peer_ip.to_string(),
            return_path: tx.return_path.clone(),
            recipients: tx.recipients.iter().map(|r| r.address.clone()).collect(),
            verdict: Some(verdict.into()),
            at: rempart_model::date::unix_now() as i64,
        };
        self.shared.bus.event(rempart_bus::VERDICT_EVENTS, prost::Message::encode_to_vec(&event)).await;
    }
}
