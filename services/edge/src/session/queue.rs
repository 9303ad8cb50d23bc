//! The end of a message: the verdict, and what it says to do with the message
//! (refuse, greylist, discard, queue), with the `250` given only once it is durable.

use rempart_bus::{Bus, DELIVER_TOPIC, SCAN_TOPIC};
use rempart_model::disposition::{Disposition, Stage, dispose};
use rempart_model::{Action, Envelope, QueueId, Verdict, date};
use rempart_smtp::Reply;
use rempart_telemetry::metrics;

use super::track::{self, TrackedMessage};
use super::{Session, State, Transaction, Transport, submission, verdict};
use crate::received::Trace;

impl<B: Bus, S: Transport> Session<B, S> {
    /// Scans a complete message and answers as its verdict says; accepted mail is
    /// queued, and the 250 is given only once it is durable.
    pub(super) async fn queue_message(&mut self, body: Vec<u8>) -> Reply {
        let started = std::time::Instant::now();
        let command = if self.tx.chunks.is_some() { "BDAT" } else { "DATA" };
        let domain = self.tx.recipients.first().map(|r| r.domain().to_ascii_lowercase()).unwrap_or_default();
        let queue_id = QueueId::generate();
        self.span.record("rempart.queue_id", queue_id.as_str());
        let submitted = self.account.clone().map(|account| (account, self.tx.recipients.clone(), body.len()));
        // A bounce to an account (one recipient: the only kind RCPT lets through): read
        // now, as the body goes to the queue; what it says counts once it is accepted.
        let bounce = match (self.account.is_none() && self.tx.return_path.is_empty(), self.tx.recipients.as_slice()) {
            (true, [to]) => match self.bounced_account(&to.address).await {
                // Reading a report is CPU work on up to a whole message: off the async
                // threads, so no other session waits for it.
                Some(account) => {
                    let copy = body.clone();
                    tokio::task::spawn_blocking(move || rempart_smtp::bounce::parse(&copy))
                        .await
                        .ok()
                        .flatten()
                        .map(|report| (account, report))
                }
                None => None,
            },
            _ => None,
        };
        let (message_id, subject) = track::identity(&body);
        let size = body.len();
        let (reply, action, tracked) = self.scan_and_queue(&queue_id, body).await;
        let verdict = tracked.verdict.as_ref();
        self.track(queue_id.as_str(), &tracked.tx, Some(TrackedMessage { message_id, subject, size, reply: &reply, action, verdict }));
        if let Some((account, report)) = bounce.filter(|_| reply.is_positive()) {
            self.read_bounce(&account, &report).await;
        }
        if let Some((account, recipients, bytes)) = submitted {
            if reply.is_positive() {
                self.remember_sent(&account, &recipients).await;
            }
            self.outbound_usage(&account, &queue_id, &reply, recipients.len(), bytes).await;
        }
        metrics().end_of_data(command, started.elapsed());
        metrics().message(action, &domain);
        self.span.record("rempart.action", action);
        self.span.record("smtp.reply", reply.code);
        if reply.code >= 400 {
            rempart_telemetry::keep_trace(&self.span);
        }
        self.messages += 1;
        self.last_message = Some((queue_id, action));
        self.end_message_span();
        reply
    }

    /// Scans and answers; gives the reply and what was done ("reject", "accept",
    /// "greylist", "tempfail"… as the `action` label of `rempart_messages_total`). The
    /// steps, each a typed decision: the submission gate, `scan`, `act` (what the
    /// verdict says), `mark` (Received, DKIM, the verdict's edits), `publish`.
    async fn scan_and_queue(&mut self, queue_id: &QueueId, body: Vec<u8>) -> (Reply, &'static str, Tracked) {
        let tx = std::mem::take(&mut self.tx);
        self.state = State::Greeted;
        let mut tracked = Tracked {
            tx: Transaction {
                return_path: tx.return_path.clone(),
                recipients: tx.recipients.clone(),
                refused: tx.refused.clone(),
                ..Default::default()
            },
            verdict: None,
        };
        let steps = async {
            self.gate_submission(&tx, &body).await?;
            let scanned = self.scan_step(&tx, queue_id, body).await?;
            tracked.verdict = scanned.verdict.clone();
            let (topic, action) = self.act(queue_id, &tx, &scanned).await?;
            let Scanned { verdict, body, .. } = scanned;
            let message = self.mark(queue_id, &tx, verdict.as_ref(), body).await?;
            Ok(self.publish(queue_id, tx, verdict, topic, action, message).await)
        };
        let (reply, action) = steps.await.unwrap_or_else(|answer| answer);
        (reply, action, tracked)
    }

    /// A logged-in account sends only as itself and within its limits.
    async fn gate_submission(&self, tx: &Transaction, body: &[u8]) -> Result<(), Answer> {
        let Some(account) = &self.account else { return Ok(()) };
        if let Some(refusal) = submission::foreign_from(account, body) {
            return Err((refusal, "reject"));
        }
        if let Some(state) = &self.shared.state {
            let limits = &self.view.config.outbound;
            submission::within_limits(&*state.store, limits, account, tx.recipients.len(), date::unix_now())
                .await
                .map_err(|reply| (reply, "tempfail"))?;
        }
        Ok(())
    }

    /// The verdict (or none), what it says to do, logged and counted.
    async fn scan_step(&self, tx: &Transaction, queue_id: &QueueId, body: Vec<u8>) -> Result<Scanned, Answer> {
        let (scan, body) = self.scan(tx, queue_id.as_str(), body).await.map_err(|reply| (reply, "tempfail"))?;
        let (verdict, disposition) = match scan {
            verdict::Scan::Done(verdict) => {
                let disposition = dispose(&verdict, Stage::InSession);
                (Some(*verdict), disposition)
            }
            verdict::Scan::Off => (None, Disposition::Publish(DELIVER_TOPIC)),
            verdict::Scan::Later => (None, Disposition::Publish(SCAN_TOPIC)),
        };
        if let Some(v) = &verdict {
            let symbols: Vec<String> = v.symbols.iter().map(|s| format!("{}({:.2})", s.name, s.score)).collect();
            let trace_id = rempart_telemetry::trace_id(&self.span);
            tracing::info!(
                queue_id = %queue_id, client = %self.facts.peer_ip, from = %tx.return_path, score = v.score, action = %v.action,
                listed = v.listed.as_deref().unwrap_or(""), symbols = %symbols.join(" "), scan_us = v.elapsed_us, %trace_id, "verdict"
            );
            // Reports count inbound mail by recipient domain; submitted mail is counted
            // per account (`outbound_usage`).
            if self.account.is_none() {
                self.verdict_event(queue_id.as_str(), tx, v).await;
            }
        }
        Ok(Scanned { verdict, disposition, body })
    }

    /// What the verdict says: an answer now (refused, greylisted, discarded), or the
    /// topic to publish on and the action to log.
    async fn act(&mut self, queue_id: &QueueId, tx: &Transaction, scanned: &Scanned) -> Result<(&'static str, Action), Answer> {
        let action = scanned.verdict.as_ref().map_or(Action::Accept, |v| v.action);
        match &scanned.disposition {
            Disposition::Refuse(refusal) => {
                let reply = Reply::new(refusal.code, refusal.status.clone(), refusal.text.clone());
                if let Some(v) = &scanned.verdict {
                    self.keep_refusal(queue_id.as_str(), tx, v, &reply);
                    if self.account.is_some() {
                        let trace = self.trace(queue_id, tx, true, None, date::unix_now());
                        let message = [trace.header().into_bytes(), scanned.body.clone()].concat();
                        self.hold_blocked(queue_id, tx, v, message).await;
                    }
                }
                Err((reply, action.as_str()))
            }
            Disposition::Greylist => match self.greylist(tx).await {
                Some(deferral) => Err((deferral, "greylist")),
                None => Ok((DELIVER_TOPIC, Action::Accept)),
            },
            // Accepted and dropped on purpose: the sender must not learn it was caught.
            Disposition::Discard => Err((queued(queue_id), "discard")),
            Disposition::Publish(topic) => Ok((topic, action)),
        }
    }

    /// The message as it is queued: our Received header, the DKIM signature of
    /// submitted mail (signed for its From domain, checked to be the account's; the
    /// body hash is CPU work in proportion to the message: a blocking thread's), and the
    /// verdict's edits (parts stripped before signing; X-Spam headers, Subject tag).
    async fn mark(&self, queue_id: &QueueId, tx: &Transaction, verdict: Option<&Verdict>, body: Vec<u8>) -> Result<Vec<u8>, Answer> {
        let single = (tx.recipients.len() == 1).then(|| tx.recipients[0].address.as_str());
        let trace = self.trace(queue_id, tx, self.account.is_some(), single, date::unix_now());
        // Stripped parts go first: the DKIM signature must cover what is delivered.
        let body = match verdict {
            Some(v) => v.edits.strip(body, queue_id.as_str()),
            None => body,
        };
        let (signature, body) = match &self.account {
            Some(_) => {
                let view = self.view.clone();
                let signed = tokio::task::spawn_blocking(move || {
                    let signature = submission::from_domain(&body).map(|domain| view.dkim.sign(&domain, &body)).unwrap_or_default();
                    (signature, body)
                })
                .await;
                signed.map_err(|e| {
                    tracing::error!(queue_id = %queue_id, error = %e, "DKIM signing failed; message not queued");
                    (Reply::new(451, "4.3.0", "Temporary failure, please try again later"), "tempfail")
                })?
            }
            None => (String::new(), body),
        };
        let prefix = trace.header() + &signature;
        Ok(match verdict {
            Some(v) => v.edits.apply(&prefix, body),
            None => [prefix.into_bytes(), body].concat(),
        })
    }

    /// Queues the message; the 250 only once the bus says it is durable.
    async fn publish(
        &self,
        queue_id: &QueueId,
        tx: Transaction,
        verdict: Option<Verdict>,
        topic: &'static str,
        action: Action,
        message: Vec<u8>,
    ) -> Answer {
        let size = message.len();
        let return_path = self.outbound_return_path(tx.return_path).await;
        let envelope = Envelope {
            queue_id: queue_id.clone(),
            return_path,
            recipients: tx.recipients,
            session: self.facts.clone(),
            received_at: date::unix_now(),
            ret: tx.ret,
            envid: tx.envid,
            body_8bit: tx.body_8bit,
            smtputf8: tx.smtputf8,
            attempts: 0,
            verdict,
            submitted_by: self.account.as_ref().map(|a| a.email.clone()),
            bounce_now: None,
        };
        match self.shared.bus.publish(topic, envelope.to_json(), message).await {
            Ok(_) => {
                let trace_id = rempart_telemetry::trace_id(&self.span);
                tracing::info!(
                    queue_id = %queue_id, client = %self.facts.peer_ip, from = %envelope.return_path,
                    recipients = envelope.recipients.len(), size, tls = self.facts.tls.is_some(), %action, %trace_id, "accepted"
                );
                let label = if topic == SCAN_TOPIC { "scan_later" } else { action.as_str() };
                (queued(queue_id), label)
            }
            Err(e @ rempart_bus::BusError::Full(_)) => {
                tracing::error!(client = %self.facts.peer_ip, error = %e, "could not queue a message: storage full");
                (Reply::new(452, "4.3.1", "Insufficient system storage: the queue is full, please try again later"), "tempfail")
            }
            Err(e) => {
                tracing::error!(client = %self.facts.peer_ip, error = %e, "could not queue a message");
                (Reply::new(451, "4.3.0", "Temporary queue failure, please try again later"), "tempfail")
            }
        }
    }

    /// Our Received header for this message.
    fn trace<'a>(&'a self, queue_id: &'a QueueId, tx: &Transaction, authenticated: bool, single: Option<&'a str>, at: u64) -> Trace<'a> {
        Trace {
            facts: &self.facts,
            esmtp: self.esmtp,
            authenticated,
            smtputf8: tx.smtputf8,
            hostname: self.hostname(),
            queue_id,
            single_recipient: single,
            at,
        }
    }
}

/// The reply and what was done (the `action` label of `rempart_messages_total`).
type Answer = (Reply, &'static str);

/// What the scan gave: the verdict (none with the scanner off or out of reach), what it
/// says to do, and the body back.
struct Scanned {
    verdict: Option<Verdict>,
    disposition: Disposition,
    body: Vec<u8>,
}

/// What the tracking event of a message needs once the transaction is consumed.
struct Tracked {
    tx: Transaction,
    verdict: Option<Verdict>,
}

fn queued(queue_id: &QueueId) -> Reply {
    Reply::new(250, "2.0.0", format!("Ok: queued as {queue_id}"))
}

/// Each step through a real session over an in-memory pipe, a real embedded queue and
/// a verdict port that gives the verdict under test.
#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use rempart_bus::{EmbeddedBus, EmbeddedOptions, QUARANTINE_TOPIC};
    use rempart_model::config::ListenerKind;
    use rempart_model::{Config, Edits, Live, ScanError, ScanFailure, ScanFuture, ScanJob, Verdicts};
    use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};

    use super::*;
    use crate::{EdgeView, Shared};

    /// The verdict port of these tests: the action asked for, or no scanner at all.
    struct Fixed(Option<(Action, Edits)>);

    impl Verdicts for Fixed {
        fn verdict(&self, job: ScanJob) -> ScanFuture<'_> {
            let answer = self.0.clone();
            Box::pin(async move {
                let Some((action, edits)) = answer else {
                    return Err(ScanFailure { error: ScanError::Unavailable("no scanner in this test".into()), job: Some(job) });
                };
                let verdict = Verdict {
                    score: 9.0,
                    action,
                    symbols: vec![],
                    listed: None,
                    scanner_id: "test".into(),
                    elapsed_us: 0,
                    offline: true,
                    edits,
                    refusal: None,
                    malware: None,
                };
                Ok((verdict, job))
            })
        }
    }

    /// One session sending one message to alice@example.com; what the server said, and
    /// the messages on `topic` afterwards.
    async fn session(verdict: Fixed, fallback: &str, topic: &str) -> (String, Vec<rempart_bus::Delivery>) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("rempart.toml");
        std::fs::write(
            &file,
            format!("[[domain]]\nname = \"example.com\"\nroute = \"smtp://127.0.0.1:25\"\nscanner_fallback = \"{fallback}\"\n"),
        )
        .unwrap();
        let config = Config::load(&file).unwrap();
        let bus = EmbeddedBus::open(&dir.path().join("q.redb"), EmbeddedOptions { fsync: false }).unwrap();
        let shared = Arc::new(Shared {
            data_budget: crate::limits::DataBudget::new(1 << 20),
            live: Live::new(EdgeView::build(Arc::new(config), None).unwrap()),
            bus: bus.clone(),
            verdicts: Some(Arc::new(verdict)),
            state: None,
            resolver: None,
            batv: Default::default(),
        });
        let (client, server) = tokio::io::duplex(64 * 1024);
        let (_stop, shutdown) = tokio::sync::watch::channel(false);
        let io = BufReader::new(rempart_smtp::Stream::Plain(server));
        let view = shared.live.load();
        let running = tokio::spawn(
            Session::new(shared, view, io, std::net::Ipv4Addr::new(192, 0, 2, 1).into(), false, ListenerKind::Smtp, None, shutdown).run(),
        );
        let (read, mut write) = tokio::io::split(client);
        let mut read = BufReader::new(read);
        // EHLO alone first: pipelining comes after its reply.
        write.write_all(b"EHLO client.test\r\n").await.unwrap();
        let mut said = String::new();
        while !said.lines().last().is_some_and(|l| l.starts_with("250 ")) {
            tokio::io::AsyncBufReadExt::read_line(&mut read, &mut said).await.unwrap();
        }
        write
            .write_all(
                b"MAIL FROM:<s@sender.test>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n\
                  From: s@sender.test\r\nSubject: hello\r\n\r\nbody\r\n.\r\nQUIT\r\n",
            )
            .await
            .unwrap();
        read.read_to_string(&mut said).await.unwrap();
        running.await.unwrap();
        let queued = bus.fetch(topic, 10, Duration::from_secs(60), Duration::ZERO).await.unwrap();
        (said, queued)
    }

    fn data_reply(said: &str) -> &str {
        said.lines().rev().nth(1).unwrap_or_default()
    }

    #[tokio::test]
    async fn accepted_mail_is_marked_and_published_for_delivery() {
        let edits = Edits { add_headers: vec!["X-Spam-Score: 9.0\r\n".into()], ..Edits::default() };
        let (said, queued) = session(Fixed(Some((Action::AddHeader, edits))), "tempfail", DELIVER_TOPIC).await;
        assert!(data_reply(&said).starts_with("250 2.0.0 Ok: queued as "), "{said}");
        let [message] = queued.as_slice() else { panic!("one message queued: {said}") };
        let body = String::from_utf8_lossy(&message.body);
        assert!(body.starts_with("Received: from client.test"), "our trace header first: {body}");
        assert!(body.contains("X-Spam-Score: 9.0\r\nFrom: s@sender.test"), "the verdict's edits, above the original: {body}");
        let envelope = Envelope::from_json(&message.meta).unwrap();
        assert_eq!(envelope.verdict.map(|v| v.action), Some(Action::AddHeader));
    }

    #[tokio::test]
    async fn a_refusal_is_answered_and_nothing_is_queued() {
        let (said, queued) = session(Fixed(Some((Action::Reject, Edits::default()))), "tempfail", DELIVER_TOPIC).await;
        assert!(data_reply(&said).starts_with("550 5.7.1 Message refused"), "{said}");
        assert!(queued.is_empty());
    }

    #[tokio::test]
    async fn quarantine_and_discard_answer_250() {
        let (said, queued) = session(Fixed(Some((Action::Quarantine, Edits::default()))), "tempfail", QUARANTINE_TOPIC).await;
        assert!(data_reply(&said).starts_with("250 "), "{said}");
        assert_eq!(queued.len(), 1, "held on the quarantine topic");
        let (said, queued) = session(Fixed(Some((Action::Discard, Edits::default()))), "tempfail", DELIVER_TOPIC).await;
        assert!(data_reply(&said).starts_with("250 "), "the sender must not learn it was caught: {said}");
        assert!(queued.is_empty());
    }

    #[tokio::test]
    async fn no_scanner_defers_or_queues_for_a_later_scan_as_the_domain_says() {
        let (said, queued) = session(Fixed(None), "tempfail", DELIVER_TOPIC).await;
        assert!(data_reply(&said).starts_with("451 4.3.0"), "{said}");
        assert!(queued.is_empty());
        let (said, queued) = session(Fixed(None), "queue", SCAN_TOPIC).await;
        assert!(data_reply(&said).starts_with("250 "), "{said}");
        let [message] = queued.as_slice() else { panic!("queued for a scan: {said}") };
        assert!(Envelope::from_json(&message.meta).unwrap().verdict.is_none());
    }
}
