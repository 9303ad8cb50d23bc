//! An SMTP server standing in for a customer's mail server. It records every message
//! it accepts, and can refuse recipients with 4xx or 5xx to exercise retries and DSNs.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

#[derive(Debug, Clone, PartialEq)]
pub enum SinkMode {
    Accept,
    /// 451 4.3.0 to every RCPT until the instant passes.
    TempFailUntil(Instant),
    /// 550 5.1.1 to every RCPT.
    Reject,
    /// 550 5.7.1 to every RCPT, as a reply of this many lines (a verbose server).
    RejectVerbose(usize),
    /// Accepts, but does not announce SMTPUTF8 (an older server).
    AcceptWithoutSmtpUtf8,
    /// Accepts each message, then hangs up without waiting for QUIT.
    AcceptThenHangUp,
}

#[derive(Debug, Clone)]
pub struct Received {
    pub mail_from: String,
    /// The MAIL FROM line's parameters, as sent.
    pub mail_params: String,
    pub rcpt_to: Vec<String>,
    /// The RCPT lines' parameters, as sent.
    pub rcpt_params: Vec<String>,
    /// The message after dot-unstuffing, without the final `.` line.
    pub data: Vec<u8>,
}

#[derive(Default)]
struct State {
    messages: Vec<Received>,
    rcpt_attempts: usize,
    connections: usize,
}

pub struct Sink {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    mode: Arc<Mutex<SinkMode>>,
    _runtime: tokio::runtime::Runtime,
}

impl Sink {
    pub fn start(mode: SinkMode) -> Sink {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).expect("bind sink");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(Mutex::new(State::default()));
        let mode = Arc::new(Mutex::new(mode));
        let (s, m) = (state.clone(), mode.clone());
        runtime.spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(session(socket, s.clone(), m.clone()));
            }
        });
        Sink { addr, state, mode, _runtime: runtime }
    }

    pub fn set_mode(&self, mode: SinkMode) {
        *self.mode.lock().expect("mode") = mode;
    }

    pub fn messages(&self) -> Vec<Received> {
        self.state.lock().expect("state").messages.clone()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.state.lock().expect("state").connections
    }

    pub fn rcpt_attempts(&self) -> usize {
        self.state.lock().expect("state").rcpt_attempts
    }

    pub fn route(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    pub fn wait_for(&self, count: usize, timeout: Duration) -> Vec<Received> {
        crate::wait_until(timeout, || self.messages().len() >= count);
        self.messages()
    }
}

async fn session(socket: tokio::net::TcpStream, state: Arc<Mutex<State>>, mode: Arc<Mutex<SinkMode>>) {
    state.lock().expect("state").connections += 1;
    let (read, mut write) = socket.into_split();
    let mut reader = BufReader::new(read);
    let _ = write.write_all(b"220 sink.test ESMTP\r\n").await;
    let mut current: Option<Received> = None;
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let text = String::from_utf8_lossy(&line).trim_end().to_string();
        let upper = text.to_ascii_uppercase();
        let reply: String = if upper.starts_with("EHLO") {
            let utf8 = if *mode.lock().expect("mode") == SinkMode::AcceptWithoutSmtpUtf8 { "" } else { "250-SMTPUTF8\r\n" };
            format!("250-sink.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n{utf8}250-SIZE 100000000\r\n250 DSN\r\n")
        } else if upper.starts_with("HELO") || upper.starts_with("RSET") || upper.starts_with("NOOP") {
            "250 ok\r\n".into()
        } else if upper.starts_with("MAIL FROM:") {
            let (addr, params) = split_path(&text[10..]);
            current = Some(Received { mail_from: addr, mail_params: params, rcpt_to: vec![], rcpt_params: vec![], data: vec![] });
            "250 2.1.0 ok\r\n".into()
        } else if upper.starts_with("RCPT TO:") {
            let mode = mode.lock().expect("mode").clone();
            state.lock().expect("state").rcpt_attempts += 1;
            match mode {
                SinkMode::TempFailUntil(t) if Instant::now() < t => "451 4.3.0 try again later\r\n".into(),
                SinkMode::Reject => "550 5.1.1 no such user here\r\n".into(),
                SinkMode::RejectVerbose(lines) => (1..=lines)
                    .map(|i| {
                        let sep = if i == lines { ' ' } else { '-' };
                        format!("550{sep}5.7.1 line {i} of {lines}: this server explains its refusal at great length\r\n")
                    })
                    .collect(),
                _ => {
                    let (addr, params) = split_path(&text[8..]);
                    if let Some(c) = current.as_mut() {
                        c.rcpt_to.push(addr);
                        c.rcpt_params.push(params);
                    }
                    "250 2.1.5 ok\r\n".into()
                }
            }
        } else if upper == "DATA" {
            if current.as_ref().is_none_or(|c| c.rcpt_to.is_empty()) {
                "554 5.5.1 no valid recipients\r\n".into()
            } else {
                let _ = write.write_all(b"354 go ahead\r\n").await;
                let mut data = Vec::new();
                loop {
                    line.clear();
                    if reader.read_until(b'\n', &mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    if line == b".\r\n" {
                        break;
                    }
                    data.extend_from_slice(line.strip_prefix(b".").unwrap_or(&line));
                }
                if let Some(mut c) = current.take() {
                    c.data = data;
                    state.lock().expect("state").messages.push(c);
                }
                if *mode.lock().expect("mode") == SinkMode::AcceptThenHangUp {
                    let _ = write.write_all(b"250 2.0.0 queued, bye\r\n").await;
                    return;
                }
                "250 2.0.0 queued\r\n".into()
            }
        } else if upper == "QUIT" {
            let _ = write.write_all(b"221 2.0.0 bye\r\n").await;
            return;
        } else {
            "500 5.5.1 unknown\r\n".into()
        };
        if write.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}

fn split_path(s: &str) -> (String, String) {
    let s = s.trim();
    match (s.find('<'), s.find('>')) {
        (Some(a), Some(b)) if a < b => (s[a + 1..b].to_string(), s[b + 1..].trim().to_string()),
        _ => (s.to_string(), String::new()),
    }
}
