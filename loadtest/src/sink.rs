//! The built-in sink: an SMTP server standing in for customer servers. It records
//! every message it takes by its `X-Loadtest-Id` and recipient, and can refuse a
//! share of recipients, or all of them during a time window, with a given code.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rempart_smtp::receiver::{self, Envelope, ReceiveLimits, Receiver};
use tokio::net::TcpListener;

use crate::messages::{Rng, find_id};
use crate::scenario::SinkFault;

#[derive(Debug, Default)]
pub struct Records {
    /// Recipient → copies received. The harness gives every message its own
    /// recipients (`lt<id>r<k>@domain`), so a recipient names one message's delivery.
    pub received: HashMap<String, u32>,
    /// Recipients refused with a 5xx (a final answer: the gateway bounces them).
    pub refused_permanently: HashMap<String, u16>,
    /// RCPT refusals by code.
    pub refusals: HashMap<u16, u64>,
    /// Message id → when its first copy arrived (for end-to-end latency).
    pub first_arrival: HashMap<u64, Instant>,
    pub messages: u64,
    pub without_id: u64,
    pub connections: u64,
}

#[derive(Clone)]
pub struct Sink {
    pub addr: SocketAddr,
    pub records: Arc<Mutex<Records>>,
}

/// The sink's answers: recipients refused by the faults in force, messages counted.
struct Recorder {
    records: Arc<Mutex<Records>>,
    faults: Vec<SinkFault>,
    started: Instant,
    rng: Mutex<Rng>,
}

impl Recorder {
    /// The code for a RCPT now, by the faults in force.
    fn rcpt_code(&self) -> u16 {
        let t = self.started.elapsed();
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        for fault in &self.faults {
            if t >= fault.from.0 && t < fault.to.0 && rng.unit() < fault.share {
                return fault.code;
            }
        }
        250
    }
}

impl Receiver for Recorder {
    fn name(&self) -> &str {
        "sink.loadtest"
    }

    fn connected(&self) {
        if let Ok(mut r) = self.records.lock() {
            r.connections += 1;
        }
    }

    fn rcpt(&self, address: &str) -> Option<String> {
        let code = self.rcpt_code();
        if code == 250 {
            return None;
        }
        if let Ok(mut r) = self.records.lock() {
            *r.refusals.entry(code).or_default() += 1;
            if code >= 500 {
                r.refused_permanently.insert(address.to_ascii_lowercase(), code);
            }
        }
        Some(
            if code >= 500 { "550 5.1.1 Refused by the load-test sink\r\n" } else { "451 4.3.0 Try again later (load-test sink)\r\n" }
                .into(),
        )
    }

    fn message(&self, envelope: Envelope) {
        let id = find_id(&envelope.data);
        if let Ok(mut r) = self.records.lock() {
            r.messages += 1;
            match id {
                Some(id) => {
                    r.first_arrival.entry(id).or_insert_with(Instant::now);
                }
                None => r.without_id += 1,
            }
            for rcpt in envelope.rcpt_to {
                *r.received.entry(rcpt.to_ascii_lowercase()).or_default() += 1;
            }
        }
    }
}

impl Sink {
    /// Listens on `addr` (port 0: any free port) and serves until the runtime ends.
    pub async fn start(addr: SocketAddr, faults: Vec<SinkFault>, started: Instant) -> std::io::Result<Sink> {
        let listener = TcpListener::bind(addr).await?;
        let sink = Sink { addr: listener.local_addr()?, records: Arc::default() };
        let recorder = Recorder { records: sink.records.clone(), faults, started, rng: Mutex::new(Rng::new(0x9e37_79b9_7f4a_7c15)) };
        tokio::spawn(receiver::serve(listener, Arc::new(recorder), ReceiveLimits::default()));
        Ok(sink)
    }

    pub fn snapshot<T>(&self, read: impl FnOnce(&Records) -> T) -> Option<T> {
        self.records.lock().ok().map(|r| read(&r))
    }
}

/// `rempart-loadtest sink`: serves until interrupted, printing what arrived.
pub async fn run_standalone(listen: SocketAddr, faults: Vec<SinkFault>) -> Result<(), String> {
    let sink = Sink::start(listen, faults, Instant::now()).await.map_err(|e| format!("listen on {listen}: {e}"))?;
    eprintln!("sink listening on {}", sink.addr);
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if let Some((messages, copies, refusals)) = sink.snapshot(|r| (r.messages, r.received.values().map(|&c| u64::from(c)).sum::<u64>(), r.refusals.values().sum::<u64>())) {
                    eprintln!("sink: {messages} messages, {copies} recipient copies, {refusals} RCPT refusals");
                }
            }
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    let summary = sink
        .snapshot(|r| {
            serde_json::json!({
                "messages": r.messages,
                "recipient_copies": r.received.values().map(|&c| u64::from(c)).sum::<u64>(),
                "duplicates": r.received.values().map(|&c| u64::from(c.saturating_sub(1))).sum::<u64>(),
                "without_id": r.without_id,
                "connections": r.connections,
                "refusals": r.refusals.iter().map(|(k, v)| (k.to_string(), *v)).collect::<std::collections::BTreeMap<_, _>>(),
            })
        })
        .unwrap_or_default();
    println!("{summary}");
    Ok(())
}
