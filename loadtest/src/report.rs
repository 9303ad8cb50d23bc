//! What a run measured, reconciled with what the sink received, and written out as a
//! terminal table, JSON, Markdown and SVG plots.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::client::{Opened, Sent};
use crate::sink::Records;

/// Latencies are recorded in microseconds, up to an hour, 3 significant digits.
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("constant bounds are valid")
}

fn record(h: &mut Histogram<u64>, d: Duration) {
    let _ = h.record((d.as_micros() as u64).max(1));
}

/// One second of the run.
#[derive(Default)]
struct Second {
    sent: u64,
    accepted: u64,
    end_of_data: Option<Histogram<u64>>,
}

/// Everything the senders report, as it happens.
pub struct Stats {
    started: Instant,
    connect: Histogram<u64>,
    banner: Histogram<u64>,
    ehlo: Histogram<u64>,
    end_of_data: Histogram<u64>,
    rcpt: Histogram<u64>,
    pub sent: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub tempfailed: u64,
    pub errors: u64,
    pub overload: u64,
    replies: BTreeMap<u16, u64>,
    error_kinds: BTreeMap<String, u64>,
    /// Recipient taken by the gateway → (message id, when the 250 came).
    expected: HashMap<String, (u64, Instant)>,
    seconds: Vec<Second>,
}

impl Stats {
    pub fn new(started: Instant) -> Stats {
        Stats {
            started,
            connect: histogram(),
            banner: histogram(),
            ehlo: histogram(),
            end_of_data: histogram(),
            rcpt: histogram(),
            sent: 0,
            accepted: 0,
            rejected: 0,
            tempfailed: 0,
            errors: 0,
            overload: 0,
            replies: BTreeMap::new(),
            error_kinds: BTreeMap::new(),
            expected: HashMap::new(),
            seconds: Vec::new(),
        }
    }

    fn second(&mut self, at: Instant) -> &mut Second {
        let i = at.saturating_duration_since(self.started).as_secs() as usize;
        if self.seconds.len() <= i {
            self.seconds.resize_with(i + 1, Second::default);
        }
        &mut self.seconds[i]
    }

    pub fn opened(&mut self, opened: &Opened) {
        record(&mut self.connect, opened.connect);
        record(&mut self.banner, opened.banner);
        record(&mut self.ehlo, opened.ehlo);
    }

    /// A message that got an answer.
    pub fn message(&mut self, id: u64, result: &Sent) {
        let now = Instant::now();
        self.sent += 1;
        *self.replies.entry(result.code).or_default() += 1;
        match result.code {
            200..=299 => self.accepted += 1,
            400..=499 => self.tempfailed += 1,
            _ => self.rejected += 1,
        }
        for r in &result.accepted_recipients {
            self.expected.insert(r.clone(), (id, now));
        }
        if let Some(d) = result.end_of_data {
            record(&mut self.end_of_data, d);
        }
        for &d in &result.rcpt {
            record(&mut self.rcpt, d);
        }
        let accepted = u64::from((200..300).contains(&result.code));
        let second = self.second(now);
        second.sent += 1;
        second.accepted += accepted;
        if let Some(d) = result.end_of_data {
            record(second.end_of_data.get_or_insert_with(histogram), d);
        }
    }

    /// A message that could not be sent (connection or protocol error).
    pub fn error(&mut self, count: u64, what: &str) {
        self.sent += count;
        self.errors += count;
        *self.error_kinds.entry(what.to_string()).or_default() += count;
        let now = Instant::now();
        self.second(now).sent += count;
    }

    /// Whether every recipient the gateway took is at the sink (or finally refused there).
    pub fn all_arrived(&self, sink: &Records) -> bool {
        self.expected.keys().all(|r| sink.received.contains_key(r) || sink.refused_permanently.contains_key(r))
    }
}

#[derive(Debug, Serialize)]
pub struct LatencySummary {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

fn summary(h: &Histogram<u64>) -> LatencySummary {
    let ms = |v: u64| v as f64 / 1000.0;
    LatencySummary {
        count: h.len(),
        p50_ms: ms(h.value_at_quantile(0.5)),
        p90_ms: ms(h.value_at_quantile(0.9)),
        p99_ms: ms(h.value_at_quantile(0.99)),
        p999_ms: ms(h.value_at_quantile(0.999)),
        max_ms: ms(h.max()),
    }
}

#[derive(Debug, Serialize)]
pub struct Reconciliation {
    /// Messages the harness tried to send (each got a reply or an error).
    pub sent: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub tempfailed: u64,
    pub errors: u64,
    /// sent = accepted + rejected + tempfailed + errors
    pub counts_add_up: bool,
    /// Recipients the gateway took (250 at end of DATA).
    pub expected_deliveries: u64,
    /// Of those, received at the sink at least once.
    pub delivered: u64,
    /// Extra copies received beyond the first.
    pub duplicates: u64,
    /// Refused by the sink with a 5xx (the gateway bounced them): not lost.
    pub refused_by_sink: u64,
    /// Taken by the gateway and neither delivered nor refused by the sink.
    pub lost: u64,
    /// Received at the sink but never taken from us (another run's mail?).
    pub unexpected: u64,
}

#[derive(Debug, Serialize)]
pub struct SecondReport {
    pub second: usize,
    pub sent: u64,
    pub accepted: u64,
    pub received: u64,
    pub end_of_data_p50_ms: Option<f64>,
    pub end_of_data_p99_ms: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub scenario: crate::scenario::Scenario,
    pub target: Vec<String>,
    pub messages: String,
    pub sending_seconds: f64,
    pub total_seconds: f64,
    /// Mean accepted messages per second while sending.
    pub accepted_per_second: f64,
    /// The same over the whole seconds of the steady phase (after the ramp).
    pub steady_accepted_per_second: f64,
    pub reconciliation: Reconciliation,
    /// Replies by code (the deciding reply of each message).
    pub replies: BTreeMap<String, u64>,
    pub errors: BTreeMap<String, u64>,
    /// Open loop: sends skipped because `max_in_flight` sessions were waiting.
    pub overload: u64,
    /// The sink's RCPT refusals by code (faults), which the gateway retried or bounced.
    pub sink_refusals: BTreeMap<String, u64>,
    pub latency: BTreeMap<String, LatencySummary>,
    pub timeline: Vec<SecondReport>,
}

impl Report {
    pub fn build(
        stats: &Stats,
        sink: &Records,
        scenario: &crate::scenario::Scenario,
        target: Vec<String>,
        messages: String,
        sending: Duration,
    ) -> Report {
        let delivered = stats.expected.keys().filter(|r| sink.received.contains_key(*r)).count() as u64;
        let refused_by_sink =
            stats.expected.keys().filter(|r| !sink.received.contains_key(*r) && sink.refused_permanently.contains_key(*r)).count() as u64;
        let expected = stats.expected.len() as u64;
        let duplicates = sink.received.values().map(|&c| u64::from(c.saturating_sub(1))).sum();
        let unexpected = sink.received.keys().filter(|r| !stats.expected.contains_key(*r)).count() as u64;
        let mut e2e = histogram();
        let mut received_per_second: Vec<u64> = vec![0; stats.seconds.len()];
        let mut seen = std::collections::HashSet::new();
        for (id, sent_at) in stats.expected.values() {
            if !seen.insert(*id) {
                continue;
            }
            if let Some(arrived) = sink.first_arrival.get(id) {
                record(&mut e2e, arrived.saturating_duration_since(*sent_at));
                let s = arrived.saturating_duration_since(stats.started).as_secs() as usize;
                if received_per_second.len() <= s {
                    received_per_second.resize(s + 1, 0);
                }
                received_per_second[s] += 1;
            }
        }
        let mut latency = BTreeMap::new();
        for (name, h) in [
            ("connect", &stats.connect),
            ("banner", &stats.banner),
            ("ehlo", &stats.ehlo),
            ("end_of_data", &stats.end_of_data),
            ("end_to_end", &e2e),
            ("rcpt", &stats.rcpt),
        ] {
            latency.insert(name.to_string(), summary(h));
        }
        let timeline = (0..received_per_second.len().max(stats.seconds.len()))
            .map(|i| {
                let s = stats.seconds.get(i);
                let eod = s.and_then(|s| s.end_of_data.as_ref());
                SecondReport {
                    second: i,
                    sent: s.map_or(0, |s| s.sent),
                    accepted: s.map_or(0, |s| s.accepted),
                    received: received_per_second.get(i).copied().unwrap_or(0),
                    end_of_data_p50_ms: eod.map(|h| h.value_at_quantile(0.5) as f64 / 1000.0),
                    end_of_data_p99_ms: eod.map(|h| h.value_at_quantile(0.99) as f64 / 1000.0),
                }
            })
            .collect();
        Report {
            scenario: scenario.clone(),
            target,
            messages,
            sending_seconds: sending.as_secs_f64(),
            total_seconds: stats.started.elapsed().as_secs_f64(),
            accepted_per_second: stats.accepted as f64 / sending.as_secs_f64().max(0.001),
            steady_accepted_per_second: {
                let first = scenario.ramp.0.as_secs_f64().ceil() as usize;
                let last = (scenario.duration().as_secs_f64().floor() as usize).min(stats.seconds.len());
                let steady: Vec<u64> = stats.seconds.get(first..last).unwrap_or(&[]).iter().map(|s| s.accepted).collect();
                steady.iter().sum::<u64>() as f64 / steady.len().max(1) as f64
            },
            reconciliation: Reconciliation {
                sent: stats.sent,
                accepted: stats.accepted,
                rejected: stats.rejected,
                tempfailed: stats.tempfailed,
                errors: stats.errors,
                counts_add_up: stats.sent == stats.accepted + stats.rejected + stats.tempfailed + stats.errors,
                expected_deliveries: expected,
                delivered,
                duplicates,
                refused_by_sink,
                lost: expected - delivered - refused_by_sink,
                unexpected,
            },
            replies: stats.replies.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            errors: stats.error_kinds.clone(),
            overload: stats.overload,
            sink_refusals: sink.refusals.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            latency,
            timeline,
        }
    }

    /// The table printed at the end of a run.
    pub fn table(&self) -> String {
        let r = &self.reconciliation;
        let mut out = String::new();
        out.push_str(&format!(
            "scenario {} against {} ({}), {:.1} s sending, {:.1} s in all\n",
            self.scenario.name,
            self.target.join(", "),
            self.messages,
            self.sending_seconds,
            self.total_seconds
        ));
        out.push_str(&format!(
            "sent {}  accepted {}  rejected {}  tempfailed {}  errors {}  ({:.1} accepted/s, {:.1}/s steady){}\n",
            r.sent,
            r.accepted,
            r.rejected,
            r.tempfailed,
            r.errors,
            self.accepted_per_second,
            self.steady_accepted_per_second,
            if self.overload > 0 { format!("  overload (not sent) {}", self.overload) } else { String::new() }
        ));
        out.push_str(&format!(
            "deliveries: expected {}  delivered {}  refused by sink {}  LOST {}  duplicates {}  unexpected {}\n",
            r.expected_deliveries, r.delivered, r.refused_by_sink, r.lost, r.duplicates, r.unexpected
        ));
        if !self.sink_refusals.is_empty() {
            let faults: Vec<String> = self.sink_refusals.iter().map(|(c, n)| format!("{c}×{n}")).collect();
            out.push_str(&format!("sink refusals (retried or bounced by the gateway): {}\n", faults.join(" ")));
        }
        let replies: Vec<String> = self.replies.iter().map(|(c, n)| format!("{c}×{n}")).collect();
        out.push_str(&format!("replies: {}\n", replies.join(" ")));
        out.push_str(&format!("{:<12} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9}\n", "latency ms", "count", "p50", "p90", "p99", "p99.9", "max"));
        for (name, l) in &self.latency {
            out.push_str(&format!(
                "{name:<12} {:>8} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}\n",
                l.count, l.p50_ms, l.p90_ms, l.p99_ms, l.p999_ms, l.max_ms
            ));
        }
        out
    }

    pub fn markdown(&self) -> String {
        let r = &self.reconciliation;
        let mut md = format!("# Load test: {}\n\n", self.scenario.name);
        md.push_str(&format!(
            "Target {}; messages: {}; {:.1} s of sending ({} msg/s target{}), {:.1} s in all.\n\n",
            self.target.join(", "),
            self.messages,
            self.sending_seconds,
            self.scenario.rate,
            if self.scenario.rate == 0.0 { format!(", closed loop with {} sessions", self.scenario.sessions) } else { String::new() },
            self.total_seconds
        ));
        md.push_str("## Accounting\n\n| sent | accepted | rejected | tempfailed | errors | delivered | refused by sink | lost | duplicates |\n|---|---|---|---|---|---|---|---|---|\n");
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | **{}** | {} |\n\n",
            r.sent, r.accepted, r.rejected, r.tempfailed, r.errors, r.delivered, r.refused_by_sink, r.lost, r.duplicates
        ));
        md.push_str(&format!(
            "Accepted per second while sending: {:.1}; in the steady phase: {:.1}.\n\n",
            self.accepted_per_second, self.steady_accepted_per_second
        ));
        md.push_str("## Latency (ms)\n\n| stage | count | p50 | p90 | p99 | p99.9 | max |\n|---|---|---|---|---|---|---|\n");
        for (name, l) in &self.latency {
            md.push_str(&format!(
                "| {name} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |\n",
                l.count, l.p50_ms, l.p90_ms, l.p99_ms, l.p999_ms, l.max_ms
            ));
        }
        md.push_str("\n![throughput](throughput.svg)\n\n![latency](latency.svg)\n");
        md
    }

    /// Writes report.json, report.md, throughput.svg and latency.svg into `dir`.
    pub fn write(&self, dir: &Path) -> Result<(), String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let json = serde_json::to_string_pretty(self).map_err(|e| e.to_string())?;
        let write = |name: &str, text: &str| std::fs::write(dir.join(name), text).map_err(|e| format!("{}: {e}", dir.join(name).display()));
        write("report.json", &json)?;
        write("report.md", &self.markdown())?;
        let seconds: Vec<f64> = self.timeline.iter().map(|s| s.second as f64).collect();
        let series = |f: &dyn Fn(&SecondReport) -> f64| self.timeline.iter().map(f).collect::<Vec<f64>>();
        write(
            "throughput.svg",
            &crate::plot::line_chart(
                "Messages per second",
                "s",
                "msg/s",
                &seconds,
                &[
                    ("sent", series(&|s| s.sent as f64)),
                    ("accepted", series(&|s| s.accepted as f64)),
                    ("received", series(&|s| s.received as f64)),
                ],
            ),
        )?;
        write(
            "latency.svg",
            &crate::plot::line_chart(
                "End-of-DATA reply latency",
                "s",
                "ms",
                &seconds,
                &[
                    ("p50", series(&|s| s.end_of_data_p50_ms.unwrap_or(f64::NAN))),
                    ("p99", series(&|s| s.end_of_data_p99_ms.unwrap_or(f64::NAN))),
                ],
            ),
        )?;
        Ok(())
    }
}
