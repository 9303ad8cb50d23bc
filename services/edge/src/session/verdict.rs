//! The end of DATA: ask the scanner, then refuse in the session, or mark, hold or
//! queue the message as the policy says. Every refusal names its reason and the page
//! that explains it.

use rempart_bus::Bus;
use rempart_model::{Action, ScannerFallback, Verdict};
use rempart_scanner::{ScanInput, spam_headers, tag_subject};
use rempart_state::greylist::GreyDecision;

use super::{Session, Transaction, Transport};
use rempart_smtp::Reply;

/// What scanning gave.
pub(super) enum Scan {
    /// The scanner is off (`scanner.enabled = false`).
    Off,
    Done(Verdict),
    /// No scanner answered: accepted, to be scanned from `rempart.scan`.
    Later,
}

impl<B: Bus, S: Transport> Session<B, S> {
    /// Scans `body` (off the async threads); gives the body back with the verdict,
    /// or with none and `Scan::Later` when no remote scanner answered and every
    /// recipient domain's fallback is "queue". A scanner failure is otherwise a
    /// temporary error: the message is neither lost nor accepted unscanned.
    pub(super) async fn scan(&self, tx: &Transaction, queue_id: &str, body: Vec<u8>) -> Result<(Scan, Vec<u8>), Reply> {
        let Some(scanner) = self.shared.scanner.clone() else { return Ok((Scan::Off, body)) };
        let facts = self.facts.clone();
        let return_path = tx.return_path.clone();
        let recipients: Vec<String> = tx.recipients.iter().map(|r| r.address.clone()).collect();
        if let Some(remote) = &self.shared.remote {
            let input = ScanInput { facts: &facts, return_path: &return_path, recipients: &recipients, message: &body };
            return match remote.scan(queue_id, &input).await {
                Ok(verdict) => Ok((Scan::Done(verdict), body)),
                Err(e) if self.queue_when_no_scanner(&recipients) => {
                    tracing::warn!(queue_id, client = %self.facts.peer_ip, error = %e, "remote scan failed; queued for a scan later");
                    Ok((Scan::Later, body))
                }
                Err(e) => {
                    tracing::warn!(queue_id, client = %self.facts.peer_ip, error = %e, "remote scan failed; deferring the message");
                    Err(Reply::new(451, "4.3.0", "Temporary failure while checking the message, please try again later"))
                }
            };
        }
        let job = rempart_scanner::traced::ScanJob { queue_id: queue_id.to_string(), facts, return_path, recipients, message: body };
        match scanner.scan_job(job, rempart_scanner::traced::ScanPlace::Local, None).await {
            Ok((verdict, job)) => Ok((Scan::Done(verdict), job.message)),
            Err(e) => {
                tracing::error!(client = %self.facts.peer_ip, error = %e, "the scanner failed on a message");
                Err(Reply::new(451, "4.3.0", "Temporary failure while checking the message, please try again later"))
            }
        }
    }

    /// Whether every recipient's domain asks to accept and scan later.
    fn queue_when_no_scanner(&self, recipients: &[String]) -> bool {
        let domains = &self.shared.config.domains;
        recipients.iter().all(|r| {
            let domain = r.rsplit_once('@').map_or("", |(_, d)| d);
            domains.iter().any(|d| d.name.eq_ignore_ascii_case(domain) && d.scanner_fallback == ScannerFallback::Queue)
        })
    }

    /// The SMTP refusal for a verdict that refuses, if it does.
    pub(super) fn refusal(&self, queue_id: &str, verdict: &Verdict) -> Option<Reply> {
        let url = self.shared.scanner.as_ref().map(|s| s.explain_url(queue_id)).unwrap_or_default();
        let why = match &verdict.listed {
            Some(entry) if entry.starts_with("block") => "sender is on the recipient domain's block list".to_string(),
            _ => format!("score {:.2} ({})", verdict.score, verdict.top_symbols(3).join(", ")),
        };
        match verdict.action {
            Action::Reject => Some(Reply::new(550, "5.7.1", format!("Message refused as spam: {why} - {url}"))),
            Action::SoftReject => Some(Reply::new(451, "4.7.1", format!("Message deferred as suspicious, try again later: {why} - {url}"))),
            _ => None,
        }
    }

    /// The headers to add (X-Spam-*) and the body (its Subject tagged) for add_header.
    pub(super) fn mark(&self, tx: &Transaction, verdict: &Verdict, body: Vec<u8>) -> (String, Vec<u8>) {
        let Some(scanner) = &self.shared.scanner else { return (String::new(), body) };
        let recipients: Vec<String> = tx.recipients.iter().map(|r| r.address.clone()).collect();
        let (required, tag) = scanner.add_header_settings(&recipients);
        let headers = spam_headers(verdict, required);
        match tag {
            Some(tag) => (headers, tag_subject(&body, &tag)),
            None => (headers, body),
        }
    }

    /// Greylisting, for mail whose score is in the greylist band: the reply that
    /// defers it, or `None` when it passes. Decided here, at the end of DATA, and not
    /// at RCPT as classic greylisting does, so that only suspicious mail is delayed:
    /// clean mail is never held up. A store failure lets the mail through (the score
    /// did not call for a refusal).
    pub(super) async fn greylist(&self, tx: &Transaction) -> Option<Reply> {
        let greylist = self.shared.state.as_ref()?.greylist.as_ref()?;
        let metrics = rempart_telemetry::metrics();
        let ip = self.facts.peer_ip.parse().ok()?;
        let domains = &self.shared.config.domains;
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

    /// Adds the verdict to the sender's AWL history, in the background: the reply
    /// does not wait for it.
    pub(super) fn record(&self, tx: &Transaction, verdict: &Verdict) {
        // A remote scanner records the history itself.
        if self.shared.remote.is_some() {
            return;
        }
        let Some(scanner) = self.shared.scanner.clone() else { return };
        let (return_path, peer_ip, verdict) = (tx.return_path.clone(), self.facts.peer_ip.clone(), verdict.clone());
        tokio::spawn(async move { scanner.record(&return_path, &peer_ip, &verdict).await });
    }

    /// `rempart.events.verdict` for the console and metrics (NATS bus only).
    pub(super) async fn verdict_event(&self, queue_id: &str, tx: &Transaction, verdict: &Verdict) {
        let event = rempart_proto::v1::VerdictEvent {
            queue_id: queue_id.to_string(),
            client_ip: self.facts.peer_ip.clone(),
            return_path: tx.return_path.clone(),
            recipients: tx.recipients.iter().map(|r| r.address.clone()).collect(),
            verdict: Some(verdict.into()),
            at: rempart_model::date::unix_now() as i64,
        };
        self.shared.bus.event(rempart_bus::VERDICT_EVENTS, prost::Message::encode_to_vec(&event)).await;
    }
}
