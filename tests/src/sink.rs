//! An SMTP server standing in for a customer's mail server. It records every message
//! it accepts, and can refuse recipients with 4xx or 5xx to exercise retries and DSNs.
//! The dialogue is `rempart_smtp::receiver`'s, shared with the load harness's sink.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rempart_smtp::receiver::{self, Envelope, ReceiveLimits, Receiver};
use tokio::net::TcpListener;

pub type Received = Envelope;

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
    /// A server that knows its users: 550 5.1.1 to every other RCPT.
    OnlyUsers(Vec<String>),
    /// Accepts each message after this long (a slow server).
    SlowAccept(Duration),
    /// Accepts, greeting with Unicode spaces before a status-code-like word (the reply
    /// that used to kill relay workers, issue 30).
    UnicodeGreeting,
}

#[derive(Default)]
struct State {
    messages: Vec<Received>,
    rcpt_attempts: usize,
    connections: usize,
    /// Connections open now, and the most open at once.
    open: usize,
    most_open: usize,
}

struct Recorder {
    state: Mutex<State>,
    mode: Mutex<SinkMode>,
}

impl Recorder {
    fn mode(&self) -> SinkMode {
        self.mode.lock().expect("mode").clone()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("state")
    }
}

impl Receiver for Recorder {
    fn name(&self) -> &str {
        if self.mode() == SinkMode::UnicodeGreeting { "\u{2003}\u{2003}2.0.0 hi" } else { "sink.test" }
    }

    fn ehlo_keywords(&self) -> Vec<&'static str> {
        let mut keywords = vec!["PIPELINING", "8BITMIME", "SMTPUTF8", "SIZE 100000000", "DSN"];
        if self.mode() == SinkMode::AcceptWithoutSmtpUtf8 {
            keywords.retain(|k| *k != "SMTPUTF8");
        }
        keywords
    }

    fn connected(&self) {
        let mut state = self.state();
        state.connections += 1;
        state.open += 1;
        state.most_open = state.most_open.max(state.open);
    }

    fn disconnected(&self) {
        self.state().open -= 1;
    }

    fn delay_before_accepting(&self) -> Duration {
        match self.mode() {
            SinkMode::SlowAccept(delay) => delay,
            _ => Duration::ZERO,
        }
    }

    fn rcpt(&self, address: &str) -> Option<String> {
        self.state().rcpt_attempts += 1;
        match self.mode() {
            SinkMode::OnlyUsers(users) if !users.iter().any(|u| u.eq_ignore_ascii_case(address)) => {
                Some("550 5.1.1 no such user here\r\n".into())
            }
            SinkMode::TempFailUntil(t) if Instant::now() < t => Some("451 4.3.0 try again later\r\n".into()),
            SinkMode::Reject => Some("550 5.1.1 no such user here\r\n".into()),
            SinkMode::RejectVerbose(lines) => Some(
                (1..=lines)
                    .map(|i| {
                        let sep = if i == lines { ' ' } else { '-' };
                        format!("550{sep}5.7.1 line {i} of {lines}: this server explains its refusal at great length\r\n")
                    })
                    .collect(),
            ),
            _ => None,
        }
    }

    fn message(&self, envelope: Envelope) {
        self.state().messages.push(envelope);
    }

    fn hang_up_after_message(&self) -> bool {
        self.mode() == SinkMode::AcceptThenHangUp
    }
}

pub struct Sink {
    pub addr: SocketAddr,
    recorder: Arc<Recorder>,
    _runtime: tokio::runtime::Runtime,
}

impl Sink {
    pub fn start(mode: SinkMode) -> Sink {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).expect("bind sink");
        let addr = listener.local_addr().expect("addr");
        let recorder = Arc::new(Recorder { state: Mutex::default(), mode: Mutex::new(mode) });
        let limits = ReceiveLimits { message: 100_000_000, ..ReceiveLimits::default() };
        runtime.spawn(receiver::serve(listener, recorder.clone(), limits));
        Sink { addr, recorder, _runtime: runtime }
    }

    pub fn set_mode(&self, mode: SinkMode) {
        *self.recorder.mode.lock().expect("mode") = mode;
    }

    pub fn messages(&self) -> Vec<Received> {
        self.recorder.state().messages.clone()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.recorder.state().connections
    }

    /// The most connections that were open at once.
    pub fn most_connections_at_once(&self) -> usize {
        self.recorder.state().most_open
    }

    pub fn rcpt_attempts(&self) -> usize {
        self.recorder.state().rcpt_attempts
    }

    pub fn route(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    pub fn wait_for(&self, count: usize, timeout: Duration) -> Vec<Received> {
        crate::wait_until(timeout, || self.messages().len() >= count);
        self.messages()
    }
}
