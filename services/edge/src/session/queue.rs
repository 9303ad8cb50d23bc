//! The end of a message: the verdict, and what it says to do with the message
//! (refuse, greylist, discard, queue), with the `250` given only once it is durable.

use rempart_bus::{Bus, DELIVER_TOPIC, SCAN_TOPIC};
use rempart_model::disposition::{Disposition, Stage, dispose};
use rempart_model::{Action, Envelope, QueueId, date};
use rempart_smtp::Reply;
use rempart_telemetry::metrics;

use super::{Session, State, Transport, submission, verdict};
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
        let (reply, action) = self.scan_and_queue(&queue_id, body).await;
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
    /// "greylist", "tempfail"… as the `action` label of `rempart_messages_total`).
    async fn scan_and_queue(&mut self, queue_id: &QueueId, body: Vec<u8>) -> (Reply, &'static str) {
        let tx = std::mem::take(&mut self.tx);
        self.state = State::Greeted;
        if let Some(account) = &self.account {
            if let Some(refusal) = submission::foreign_from(account, &body) {
                return (refusal, "reject");
            }
            if let Some(state) = &self.shared.state {
                let limits = &self.view.config.outbound;
                if let Err(reply) = submission::within_limits(&*state.store, limits, account, tx.recipients.len(), date::unix_now()).await {
                    return (reply, "tempfail");
                }
            }
        }
        let (scan, body) = match self.scan(&tx, queue_id.as_str(), body).await {
            Ok(scanned) => scanned,
            Err(reply) => return (reply, "tempfail"),
        };
        let trace_id = rempart_telemetry::trace_id(&self.span);
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
            tracing::info!(
                queue_id = %queue_id, client = %self.facts.peer_ip, from = %tx.return_path, score = v.score, action = %v.action,
                listed = v.listed.as_deref().unwrap_or(""), symbols = %symbols.join(" "), scan_us = v.elapsed_us, %trace_id, "verdict"
            );
            // Reports count inbound mail by recipient domain; submitted mail is counted
            // per account (`outbound_usage`).
            if self.account.is_none() {
                self.verdict_event(queue_id.as_str(), &tx, v).await;
            }
        }
        let mut action = verdict.as_ref().map_or(Action::Accept, |v| v.action);
        let topic = match disposition {
            Disposition::Refuse(refusal) => {
                let reply = Reply::new(refusal.code, refusal.status, refusal.text);
                if let Some(v) = &verdict {
                    self.keep_refusal(queue_id.as_str(), &tx, v, &reply);
                    if self.account.is_some() {
                        let trace = Trace {
                            facts: &self.facts,
                            esmtp: self.esmtp,
                            authenticated: true,
                            smtputf8: tx.smtputf8,
                            hostname: self.hostname(),
                            queue_id,
                            single_recipient: None,
                            at: date::unix_now(),
                        };
                        let message = [trace.header().into_bytes(), body].concat();
                        self.hold_blocked(queue_id, &tx, v, message).await;
                    }
                }
                return (reply, action.as_str());
            }
            Disposition::Greylist => match self.greylist(&tx).await {
                Some(deferral) => return (deferral, "greylist"),
                None => {
                    action = Action::Accept;
                    DELIVER_TOPIC
                }
            },
            // Accepted and dropped on purpose: the sender must not learn it was caught.
            Disposition::Discard => return (Reply::new(250, "2.0.0", format!("Ok: queued as {queue_id}")), "discard"),
            Disposition::Publish(topic) => topic,
        };
        let now = date::unix_now();
        let single = (tx.recipients.len() == 1).then(|| tx.recipients[0].address.as_str());
        let trace = Trace {
            facts: &self.facts,
            esmtp: self.esmtp,
            authenticated: self.account.is_some(),
            smtputf8: tx.smtputf8,
            hostname: self.hostname(),
            queue_id,
            single_recipient: single,
            at: now,
        };
        // Submitted mail is signed for its From domain (checked to be the account's). The
        // body hash is CPU work in proportion to the message: a blocking thread's.
        let (signature, body) = match &self.account {
            Some(_) => {
                let view = self.view.clone();
                let signed = tokio::task::spawn_blocking(move || {
                    let signature = submission::from_domain(&body).map(|domain| view.dkim.sign(&domain, &body)).unwrap_or_default();
                    (signature, body)
                })
                .await;
                match signed {
                    Ok(signed) => signed,
                    Err(e) => {
                        tracing::error!(queue_id = %queue_id, error = %e, "DKIM signing failed; message not queued");
                        return (Reply::new(451, "4.3.0", "Temporary failure, please try again later"), "tempfail");
                    }
                }
            }
            None => (String::new(), body),
        };
        let prefix = trace.header() + &signature;
        let message = match &verdict {
            Some(v) => v.edits.apply(&prefix, body),
            None => [prefix.into_bytes(), body].concat(),
        };
        let size = message.len();
        let return_path = self.outbound_return_path(tx.return_path).await;
        let envelope = Envelope {
            queue_id: queue_id.clone(),
            return_path,
            recipients: tx.recipients,
            session: self.facts.clone(),
            received_at: now,
            ret: tx.ret,
            envid: tx.envid,
            body_8bit: tx.body_8bit,
            smtputf8: tx.smtputf8,
            attempts: 0,
            verdict,
            submitted_by: self.account.as_ref().map(|a| a.email.clone()),
        };
        match self.shared.bus.publish(topic, envelope.to_json(), message).await {
            Ok(_) => {
                tracing::info!(
                    queue_id = %queue_id, client = %self.facts.peer_ip, from = %envelope.return_path,
                    recipients = envelope.recipients.len(), size, tls = self.facts.tls.is_some(), %action, %trace_id, "accepted"
                );
                let label = if topic == SCAN_TOPIC { "scan_later" } else { action.as_str() };
                (Reply::new(250, "2.0.0", format!("Ok: queued as {queue_id}")), label)
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
}
