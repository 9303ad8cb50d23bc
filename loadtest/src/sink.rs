//! The built-in sink: an SMTP server standing in for customer servers. It records
//! every message it takes by its `X-Loadtest-Id` and recipient, and can refuse a
//! share of recipients, or all of them during a time window, with a given code.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use crate::messages::{Rng, find_id};
use crate::scenario::SinkFault;

/// Largest message the sink takes (it says so in EHLO).
const MAX_SIZE: usize = 64 * 1024 * 1024;

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

struct Config {
    faults: Vec<SinkFault>,
    started: Instant,
}

impl Sink {
    /// Listens on `addr` (port 0: any free port) and serves until the runtime ends.
    pub async fn start(addr: SocketAddr, faults: Vec<SinkFault>, started: Instant) -> std::io::Result<Sink> {
        let listener = TcpListener::bind(addr).await?;
        let sink = Sink { addr: listener.local_addr()?, records: Arc::default() };
        let config = Arc::new(Config { faults, started });
        let records = sink.records.clone();
        tokio::spawn(async move {
            let mut seed = 1u64;
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                seed += 1;
                if let Ok(mut r) = records.lock() {
                    r.connections += 1;
                }
                let (records, config) = (records.clone(), config.clone());
                tokio::spawn(async move {
                    let _ = serve(stream, &records, &config, Rng::new(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15))).await;
                });
            }
        });
        Ok(sink)
    }

    pub fn snapshot<T>(&self, read: impl FnOnce(&Records) -> T) -> Option<T> {
        self.records.lock().ok().map(|r| read(&r))
    }
}

/// The code for a RCPT now, by the faults in force.
fn rcpt_code(config: &Config, rng: &mut Rng) -> u16 {
    let t = config.started.elapsed();
    for fault in &config.faults {
        if t >= fault.from.0 && t < fault.to.0 && rng.unit() < fault.share {
            return fault.code;
        }
    }
    250
}

async fn serve(stream: TcpStream, records: &Mutex<Records>, config: &Config, mut rng: Rng) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(b"220 sink.loadtest ESMTP\r\n");
    let mut recipients: Vec<String> = Vec::new();
    loop {
        if reader.buffer().is_empty() && !out.is_empty() {
            write.write_all(&out).await?;
            out.clear();
        }
        let mut line = String::new();
        let n = tokio::time::timeout(Duration::from_secs(300), reader.read_line(&mut line)).await.map_err(std::io::Error::other)??;
        if n == 0 {
            return Ok(());
        }
        let upper = line.trim_end().to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") {
            b"250-sink.loadtest\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE 67108864\r\n"
        } else if upper.starts_with("HELO") || upper.starts_with("MAIL") || upper.starts_with("NOOP") {
            b"250 2.0.0 Ok\r\n"
        } else if upper.starts_with("RSET") {
            recipients.clear();
            b"250 2.0.0 Ok\r\n"
        } else if upper.starts_with("RCPT") {
            let address = line.trim_end().split_once(':').map_or("", |(_, a)| a).trim().trim_start_matches('<');
            let address = address.split('>').next().unwrap_or("").to_ascii_lowercase();
            let code = rcpt_code(config, &mut rng);
            if code != 250
                && let Ok(mut r) = records.lock()
            {
                *r.refusals.entry(code).or_default() += 1;
                if code >= 500 {
                    r.refused_permanently.insert(address.clone(), code);
                }
            }
            match code {
                250 => {
                    recipients.push(address);
                    b"250 2.1.5 Ok\r\n"
                }
                c if c >= 500 => b"550 5.1.1 Refused by the load-test sink\r\n",
                _ => b"451 4.3.0 Try again later (load-test sink)\r\n",
            }
        } else if upper.starts_with("DATA") {
            if recipients.is_empty() {
                out.extend_from_slice(b"554 5.5.1 No valid recipients\r\n");
                continue;
            }
            out.extend_from_slice(b"354 End data with <CR><LF>.<CR><LF>\r\n");
            write.write_all(&out).await?;
            out.clear();
            let message = read_data(&mut reader).await?;
            let id = find_id(&message);
            if let Ok(mut r) = records.lock() {
                r.messages += 1;
                match id {
                    Some(id) => {
                        r.first_arrival.entry(id).or_insert_with(Instant::now);
                    }
                    None => r.without_id += 1,
                }
                for rcpt in recipients.drain(..) {
                    *r.received.entry(rcpt).or_default() += 1;
                }
            }
            b"250 2.0.0 Ok: queued\r\n"
        } else if upper.starts_with("QUIT") {
            out.extend_from_slice(b"221 2.0.0 Bye\r\n");
            write.write_all(&out).await?;
            return Ok(());
        } else {
            b"502 5.5.2 Command not implemented\r\n"
        };
        out.extend_from_slice(reply);
    }
}

/// The message up to the lone dot, unstuffed.
async fn read_data(reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> std::io::Result<Vec<u8>> {
    let mut message = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        let n =
            tokio::time::timeout(Duration::from_secs(300), reader.read_until(b'\n', &mut line)).await.map_err(std::io::Error::other)??;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if line == b".\r\n" || line == b".\n" {
            return Ok(message);
        }
        if message.len() < MAX_SIZE {
            message.extend_from_slice(if line.starts_with(b"..") { &line[1..] } else { &line });
        }
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
