//! The post-queue scan: messages an edge accepted while no scanner answered
//! (`scanner_fallback = "queue"`) wait on `rempart.scan`; scanners take them, scan
//! them as in the session, and route each by its verdict — delivery (with the
//! Authentication-Results and X-Spam headers the edge would have added), quarantine,
//! or discard. A refusal becomes a quarantine, not a bounce: the sender may be forged
//! (no backscatter) and the mail is not lost.

use std::sync::Arc;
use std::time::Duration;

use rempart_bus::{Bus, Delivery, SCAN_TOPIC};
use rempart_model::disposition::{Disposition, Stage, dispose};
use rempart_model::{Envelope, ScanJob};
use tokio::sync::watch;
use tracing::Instrument;

use crate::Scanner;
use crate::service::traced::ScanPlace;

/// Consumes `rempart.scan` until `shutdown` turns true. `lease`: how long a scanner
/// holds a message before another may take it (`queue.visibility_timeout`, as the
/// relays): a message handed to a scanner that died comes back after it.
pub async fn run<B: Bus>(scanner: crate::LiveScanner, bus: B, lease: Duration, shutdown: watch::Receiver<bool>) {
    rempart_bus::consume(&bus, SCAN_TOPIC, lease, shutdown, |delivery| {
        // The trace goes on: edge → `scan.queued` → `scan`, then `deliver`.
        let span = tracing::info_span!("scan.queued", rempart.queue_id = tracing::field::Empty);
        rempart_telemetry::propagation::set_parent(&span, delivery.trace_parent.as_deref());
        route(scanner.load().value.clone(), &bus, delivery).instrument(span)
    })
    .await;
}

async fn route<B: Bus>(scanner: Arc<Scanner>, bus: &B, delivery: Delivery) {
    let mut envelope = match Envelope::from_json(&delivery.meta) {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(message = delivery.id, error = %e, "unreadable envelope on rempart.scan; holding it for an hour");
            let _ = bus.retry(delivery.id, delivery.meta, Duration::from_secs(3600)).await;
            return;
        }
    };
    tracing::Span::current().record("rempart.queue_id", envelope.queue_id.as_str());
    let job = ScanJob {
        queue_id: envelope.queue_id.to_string(),
        facts: envelope.session.clone(),
        return_path: envelope.return_path.clone(),
        recipients: envelope.recipients.iter().map(|r| r.address.clone()).collect(),
        message: delivery.body,
        outbound: envelope.submitted_by.is_some(),
    };
    let (verdict, job) = match scanner.scan_job(job, ScanPlace::Queued, None).await {
        Ok(done) => done,
        Err(e) => {
            tracing::error!(queue_id = %envelope.queue_id, error = %e, "the post-queue scan failed; retrying in a minute");
            let _ = bus.retry(delivery.id, delivery.meta, Duration::from_secs(60)).await;
            return;
        }
    };
    // A malware engine that could not answer (fail closed): nobody is there to be told
    // 451, so the message waits here and is scanned again.
    if verdict.action == rempart_model::Action::SoftReject && verdict.malware.is_some() {
        tracing::warn!(queue_id = %envelope.queue_id, reason = verdict.malware.as_deref().unwrap_or_default(), "the virus scan could not be done; scanning again in a minute");
        let _ = bus.retry(delivery.id, delivery.meta, Duration::from_secs(60)).await;
        return;
    }
    if envelope.submitted_by.is_none() {
        scanner.record(&envelope.return_path, &envelope.session, &verdict).await;
        if let Some(class) = scanner.autolearn_class(&verdict) {
            scanner.autolearn(&envelope.return_path, &job.message, class).await;
        }
    }
    let action = verdict.action;
    tracing::info!(queue_id = %envelope.queue_id, score = verdict.score, %action, "scanned after queueing");
    // Reports count mail scanned here as the edge's verdicts (inbound only, as there).
    if envelope.submitted_by.is_none() {
        let event = rempart_proto::v1::VerdictEvent {
            queue_id: envelope.queue_id.to_string(),
            client_ip: envelope.session.peer_ip.to_string(),
            return_path: envelope.return_path.clone(),
            recipients: envelope.recipients.iter().map(|r| r.address.clone()).collect(),
            verdict: Some((&verdict).into()),
            at: rempart_model::date::unix_now() as i64,
        };
        bus.event(rempart_bus::VERDICT_EVENTS, prost::Message::encode_to_vec(&event)).await;
    }
    let disposition = dispose(&verdict, Stage::Queued);
    // The edge's Received header is already in the message.
    let message = verdict.edits.apply("", verdict.edits.strip(job.message, &job.queue_id));
    envelope.verdict = Some(verdict);
    if let Disposition::Publish(topic) = disposition
        && let Err(e) = bus.publish(topic, envelope.to_json(), message).await
    {
        tracing::error!(queue_id = %envelope.queue_id, error = %e, "cannot route a scanned message; it will be scanned again");
        let _ = bus.retry(delivery.id, envelope.to_json(), Duration::from_secs(10)).await;
        return;
    }
    // Routed (durably) before the scan copy goes: at worst scanned and routed twice.
    if let Err(e) = bus.ack(delivery.id).await {
        tracing::error!(queue_id = %envelope.queue_id, error = %e, "cannot acknowledge a scanned message");
    }
}
