//! One SMTP session as an explicit state machine: `Connected → Greeted → Mail → Rcpt`,
//! with DATA and BDAT reading the body inline. Each verb has its own module.

mod auth;
mod bdat;
mod bounced;
mod data;
mod ehlo;
mod etrn;
mod mail;
mod misc;
mod queue;
mod rcpt;
mod starttls;
mod submission;
mod track;
mod verdict;

use std::sync::Arc;
use std::time::Duration;

use rempart_bus::Bus;
use rempart_model::config::ListenerKind;
use rempart_model::{DsnRet, QueueId, Recipient, SessionFacts};
use rempart_state::accounts::Account;
use rempart_telemetry::metrics;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::watch;
use tracing::Instrument;
use tracing::field::Empty;

use rempart_smtp::{Line, Reply, Stream};

use crate::Shared;

/// What a session runs over: a TCP socket, or an in-memory pipe in tests.
pub trait Transport: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Transport for T {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Before EHLO/HELO (and again after STARTTLS).
    Connected,
    Greeted,
    /// MAIL accepted, no recipient yet.
    Mail,
    /// At least one recipient accepted; DATA or BDAT may follow.
    Rcpt,
}

/// Whether the session goes on after a command.
#[derive(Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Close,
}

/// The mail transaction being built.
#[derive(Debug, Default)]
pub struct Transaction {
    pub return_path: String,
    pub recipients: Vec<Recipient>,
    pub declared_size: Option<u64>,
    pub body_8bit: bool,
    pub smtputf8: bool,
    pub ret: Option<DsnRet>,
    pub envid: Option<String>,
    /// Smallest size limit among the recipients' domains.
    pub max_size: u64,
    /// The body so far when BDAT chunks are arriving.
    pub chunks: Option<Chunks>,
    /// Recipients refused at RCPT, with the reply (for tracking).
    pub refused: Vec<(String, String)>,
}

#[derive(Debug, Default)]
pub struct Chunks {
    pub body: Vec<u8>,
    pub oversize: bool,
    /// Over `smtp.max_data_in_flight`: read, not kept, refused at the last chunk.
    pub discarded: bool,
    /// The body's share of the sessions' data budget.
    pub held: crate::limits::Reservation,
}

pub struct Session<B: Bus, S: Transport> {
    shared: Arc<Shared<B>>,
    /// The configuration this session runs under, from its connection to its end.
    view: crate::View,
    io: BufReader<Stream<S>>,
    out: Vec<u8>,
    facts: SessionFacts,
    state: State,
    esmtp: bool,
    errors: u32,
    tx: Transaction,
    shutdown: watch::Receiver<bool>,
    /// The `smtp.session` span of the message under way: the root of its trace. It
    /// covers the commands from the connection, or for later messages from the first
    /// command after the previous one (a QUIT alone opens none), so each message has a
    /// trace of its own even when a session sends many. `Span::none()` in between.
    span: tracing::Span,
    /// The last message's trace id, QueueId and outcome, for the session's last log line.
    last_trace_id: String,
    last_message: Option<(QueueId, &'static str)>,
    /// The command being answered, for the metrics' `command` label.
    verb: &'static str,
    messages: u32,
    /// Inbound MX service, or submission (AUTH, then mail to anywhere as the account).
    kind: ListenerKind,
    /// Who logged in (submission only).
    account: Option<Account>,
    auth_failures: u32,
    /// The client is in `smtp.trusted_networks` (exempt from per-IP limits).
    trusted: bool,
    /// RCPTs refused as unknown in this session (the tarpit grows with them).
    unknown_recipients: u32,
    /// Told to the connection limits (idle or busy); asked to leave when full.
    activity: Option<Arc<crate::limits::Activity>>,
    started: std::time::Instant,
    /// Commands that moved no mail (see `smtp.max_junk_commands`).
    junk_commands: u32,
    /// What the last RCPT was answered (for tracking).
    last_reply: Option<Reply>,
}

/// The data rate of one message: a client slower than `min_rate` bytes/s, once it has
/// sent for `GRACE`, is cut.
pub(super) struct Pace {
    started: tokio::time::Instant,
    pub(super) min_rate: u64,
}

impl Pace {
    const GRACE: Duration = Duration::from_secs(30);

    pub(super) fn start(min_rate: u64) -> Self {
        Self { started: tokio::time::Instant::now(), min_rate }
    }

    pub(super) fn too_slow(&self, bytes: u64) -> bool {
        let elapsed = self.started.elapsed();
        self.min_rate > 0 && elapsed > Self::GRACE && (bytes as f64) < self.min_rate as f64 * elapsed.as_secs_f64()
    }
}

/// The verbs we know, upper case; anything else is "other" (metric labels stay bounded).
fn known_verb(verb: &str) -> &'static str {
    const VERBS: [&str; 17] = [
        "EHLO", "HELO", "MAIL", "RCPT", "DATA", "BDAT", "RSET", "NOOP", "QUIT", "VRFY", "HELP", "STARTTLS", "EXPN", "AUTH", "ETRN", "TURN",
        "ATRN",
    ];
    VERBS.iter().find(|v| v.eq_ignore_ascii_case(verb)).copied().unwrap_or("other")
}

enum Incoming {
    Line(Line),
    TimedOut,
    ShuttingDown,
    /// The gateway is full and this session was idle longest.
    Evicted,
}

impl<B: Bus, S: Transport> Session<B, S> {
    /// A session on a listener of `kind`; `tls` describes the connection when it is
    /// already encrypted (implicit TLS).
    #[allow(clippy::too_many_arguments)] // each is one fact of the connection
    pub fn new(
        shared: Arc<Shared<B>>,
        view: crate::View,
        io: BufReader<Stream<S>>,
        peer_ip: std::net::IpAddr,
        trusted: bool,
        kind: ListenerKind,
        tls: Option<String>,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        let facts = SessionFacts { peer_ip, tls, ..Default::default() };
        let span = message_span(&facts);
        Self {
            shared,
            view,
            io,
            out: Vec::new(),
            facts,
            state: State::Connected,
            esmtp: false,
            errors: 0,
            tx: Transaction::default(),
            shutdown,
            span,
            last_trace_id: String::new(),
            last_message: None,
            verb: "connect",
            messages: 0,
            kind,
            account: None,
            auth_failures: 0,
            trusted,
            unknown_recipients: 0,
            activity: None,
            started: std::time::Instant::now(),
            junk_commands: 0,
            last_reply: None,
        }
    }

    /// Lets the connection limits see when this session is idle, and evict it.
    pub fn with_activity(mut self, activity: Arc<crate::limits::Activity>) -> Self {
        self.activity = Some(activity);
        self
    }

    pub async fn run(mut self) {
        if let Some(refusal) = self.greet_pause().await {
            let _ = self.io.get_mut().write_all(refusal.as_bytes()).await;
            let _ = self.io.get_mut().shutdown().await;
            return;
        }
        let banner = format!("220 {} ESMTP Rempart\r\n", self.view.config.smtp.hostname);
        self.out.extend_from_slice(banner.as_bytes());
        metrics().reply("connect", 220);
        loop {
            if self.flush_if_idle().await.is_err() {
                return;
            }
            let smtp = &self.view.config.smtp;
            let limit = smtp.max_command_line;
            let left = smtp.max_session_time.0.saturating_sub(self.started.elapsed());
            let timeout = smtp.command_timeout.0.min(left);
            if let Some(a) = &self.activity {
                a.idle();
            }
            let incoming = self.next_line(limit, timeout, true).await;
            if let Some(a) = &self.activity {
                a.busy();
            }
            let flow = match incoming {
                Incoming::Line(Line::Eof) => Flow::Close,
                Incoming::TimedOut if timeout == left => {
                    metrics().connection("closed", "session_time");
                    self.close_with(Reply::new(421, "4.4.2", format!("{} Error: session lasted too long", self.hostname())))
                }
                Incoming::TimedOut => self.close_with(Reply::new(421, "4.4.2", format!("{} Error: timeout exceeded", self.hostname()))),
                Incoming::ShuttingDown => {
                    self.close_with(Reply::new(421, "4.3.2", format!("{} Service shutting down, try again later", self.hostname())))
                }
                Incoming::Evicted => {
                    tracing::info!(client = %self.facts.peer_ip, "idle session closed to make room for a new client");
                    metrics().connection("closed", "evicted_idle");
                    self.close_with(Reply::new(421, "4.4.2", format!("{} Error: idle too long while the server is busy", self.hostname())))
                }
                Incoming::Line(Line::TooLong(_)) => self.reply(Reply::new(500, "5.5.2", "Line too long")),
                Incoming::Line(Line::Complete(line)) => {
                    if self.span.is_none() && !line.get(..4).is_some_and(|verb| verb.eq_ignore_ascii_case(b"QUIT")) {
                        self.span = message_span(&self.facts);
                    }
                    let span = self.span.clone();
                    self.command(&line).instrument(span).await
                }
            };
            if flow == Flow::Close {
                break;
            }
        }
        let _ = self.flush().await;
        let _ = self.io.get_mut().shutdown().await;
        self.track_abandoned();
        self.record_facts();
        let trace_id = if self.span.is_none() { std::mem::take(&mut self.last_trace_id) } else { rempart_telemetry::trace_id(&self.span) };
        tracing::info!(
            client = %self.facts.peer_ip, helo = %self.facts.helo, tls = self.facts.tls.as_deref().unwrap_or(""),
            messages = self.messages, errors = self.errors, %trace_id,
            last_queue_id = self.last_message.as_ref().map_or("", |(id, _)| id.as_str()),
            last_action = self.last_message.as_ref().map_or("", |(_, action)| *action), "session end"
        );
    }

    /// HELO name and TLS as attributes of the current span (both may change midway).
    /// `[screen]` applies: an untrusted client on an inbound listener.
    fn screened(&self) -> bool {
        !self.trusted && !self.kind.is_submission()
    }

    /// The first EHLO/HELO arrived with more commands behind it, before its reply.
    fn pipelined_before_ehlo(&self) -> bool {
        matches!(self.verb, "EHLO" | "HELO")
            && self.state == State::Connected
            && !self.io.buffer().is_empty()
            && self.view.config.screen.refuse_early_pipelining
            && self.screened()
    }

    fn record_facts(&self) {
        self.span.record("smtp.helo", self.facts.helo.as_str());
        self.span.record("smtp.tls", self.facts.tls.as_deref().unwrap_or("none"));
    }

    /// The message is answered: its span ends, the next message gets a new trace.
    fn end_message_span(&mut self) {
        self.record_facts();
        self.last_trace_id = rempart_telemetry::trace_id(&self.span);
        self.span = tracing::Span::none();
    }

    fn hostname(&self) -> &str {
        &self.view.config.smtp.hostname
    }

    /// Reads one line within `timeout`; waiting for a command also ends on shutdown.
    async fn next_line(&mut self, limit: usize, timeout: Duration, interruptible: bool) -> Incoming {
        let read = tokio::time::timeout(timeout, rempart_smtp::read_line(&mut self.io, limit));
        let mut shutdown = self.shutdown.clone();
        let stop = async move {
            if interruptible {
                crate::stopping(&mut shutdown).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        let activity = self.activity.clone().filter(|_| interruptible);
        let evicted = async move {
            match activity {
                Some(a) => a.evicted().await,
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            result = read => match result {
                Ok(Ok(line)) => Incoming::Line(line),
                Ok(Err(_)) => Incoming::Line(Line::Eof),
                Err(_) => Incoming::TimedOut,
            },
            _ = stop => Incoming::ShuttingDown,
            _ = evicted => Incoming::Evicted,
        }
    }

    /// `[screen] greet_pause`: waits before the greeting; a client that talks first is
    /// refused (the reply, then the connection closes). Inbound, untrusted clients only.
    async fn greet_pause(&mut self) -> Option<String> {
        let pause = self.view.config.screen.greet_pause.0;
        if pause.is_zero() || !self.screened() {
            return None;
        }
        match tokio::time::timeout(pause, self.io.fill_buf()).await {
            Err(_) => None,
            Ok(Ok([])) | Ok(Err(_)) => Some(String::new()),
            Ok(Ok(_)) => {
                tracing::info!(client = %self.facts.peer_ip, "refused: talked before the greeting");
                metrics().connection("refused", "early_talker");
                let reply = Reply::new(554, "5.5.1", format!("{} Protocol error: you talked before my greeting", self.hostname()));
                Some(reply.wire())
            }
        }
    }

    async fn command(&mut self, line: &[u8]) -> Flow {
        let Some(line) = line.strip_suffix(b"\r\n") else {
            return self.reply(Reply::new(500, "5.5.2", "Commands must end with CRLF, not a bare LF"));
        };
        let Ok(line) = std::str::from_utf8(line) else {
            return self.reply(Reply::new(500, "5.5.2", "Invalid characters in command"));
        };
        let (verb, args) = match line.split_once(' ') {
            Some((v, a)) => (v, a),
            None => (line, ""),
        };
        self.verb = known_verb(verb);
        if self.pipelined_before_ehlo() {
            tracing::info!(client = %self.facts.peer_ip, "refused: commands pipelined before the EHLO reply");
            let text = format!("{} Protocol error: commands sent before my reply to {verb} (pipelining comes after EHLO)", self.hostname());
            return self.close_with(Reply::new(554, "5.5.1", text));
        }
        if matches!(self.verb, "NOOP" | "RSET" | "VRFY" | "HELP" | "EXPN" | "TURN" | "ATRN" | "other") {
            self.junk_commands += 1;
            if self.junk_commands > self.view.config.smtp.max_junk_commands {
                tracing::info!(client = %self.facts.peer_ip, commands = self.junk_commands, "too many commands that move no mail");
                metrics().connection("closed", "junk_commands");
                return self.close_with(Reply::new(
                    421,
                    "4.7.0",
                    format!("{} Error: too many commands, closing connection", self.hostname()),
                ));
            }
        }
        // Arguments too (addresses, parameters): traces are for operators, not metrics.
        tracing::info!(target: rempart_telemetry::COMMAND_EVENTS, command = self.verb, args, "command");
        match self.verb {
            "EHLO" => self.ehlo(args, true),
            "HELO" => self.ehlo(args, false),
            "MAIL" => self.mail(args),
            "RCPT" => {
                let flow = self.rcpt(args).await;
                self.note_refused_recipient(args);
                flow
            }
            "DATA" => self.data(args).await,
            "BDAT" => self.bdat(args).await,
            "RSET" => self.rset(args),
            "NOOP" => self.reply(Reply::new(250, "2.0.0", "Ok")),
            "QUIT" => self.close_with(Reply::new(221, "2.0.0", "Bye")),
            "VRFY" => self.vrfy(args),
            "HELP" => self.help(),
            "STARTTLS" => self.starttls(args).await,
            "AUTH" => self.auth(args).await,
            "ETRN" => self.etrn(args).await,
            "EXPN" | "TURN" | "ATRN" => self.reply(Reply::new(502, "5.5.1", "Command not implemented")),
            _ => self.reply(Reply::new(500, "5.5.1", "Unknown command")),
        }
    }

    /// Queues a reply; client errors are counted and too many end the session.
    fn reply(&mut self, reply: Reply) -> Flow {
        self.answer(&reply);
        if reply.is_error() {
            self.errors += 1;
            if self.errors >= self.view.config.smtp.max_errors {
                return self.close_with(Reply::new(421, "4.7.0", format!("{} Too many errors, closing connection", self.hostname())));
            }
        }
        Flow::Continue
    }

    fn close_with(&mut self, reply: Reply) -> Flow {
        self.answer(&reply);
        Flow::Close
    }

    /// A refused RCPT, kept with its reply for the transaction's tracking event.
    fn note_refused_recipient(&mut self, args: &str) {
        if !matches!(self.state, State::Mail | State::Rcpt) {
            return;
        }
        let Some(reply) = self.last_reply.as_ref().filter(|r| r.is_error()) else { return };
        let address = args.split_once('<').and_then(|(_, rest)| rest.split_once('>')).map_or(args.trim(), |(a, _)| a);
        // Bounded like the recipients themselves: a client refused forever adds nothing.
        if self.tx.refused.len() < 1000 {
            let address: String = address.chars().filter(|c| !c.is_control()).take(320).collect();
            self.tx.refused.push((address, reply.to_string()));
        }
    }

    /// Queues a reply, counted and traced.
    fn answer(&mut self, reply: &Reply) {
        if self.verb == "RCPT" {
            self.last_reply = Some(reply.clone());
        }
        let text = reply.wire();
        metrics().reply(self.verb, reply.code);
        tracing::info!(target: rempart_telemetry::COMMAND_EVENTS, parent: &self.span, code = reply.code, reply = text.trim_end(), "reply");
        self.out.extend_from_slice(text.as_bytes());
    }

    /// Sends queued replies unless a whole pipelined command is already waiting (its
    /// reply joins them). A partial line is no such command: a client may be waiting
    /// for these replies before it finishes it (issue 30, defect 14).
    async fn flush_if_idle(&mut self) -> std::io::Result<()> {
        if self.io.buffer().contains(&b'\n') { Ok(()) } else { self.flush().await }
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let out = std::mem::take(&mut self.out);
        let stream = self.io.get_mut();
        stream.write_all(&out).await?;
        stream.flush().await
    }

    fn reset_transaction(&mut self) {
        self.track_abandoned();
        self.tx = Transaction::default();
        if self.state != State::Connected {
            self.state = State::Greeted;
        }
    }
}

/// A new `smtp.session` span: a root, so that each message has its own trace.
fn message_span(facts: &SessionFacts) -> tracing::Span {
    tracing::info_span!(
        parent: None,
        "smtp.session",
        otel.kind = "server",
        client.address = %facts.peer_ip,
        smtp.helo = Empty,
        smtp.tls = Empty,
        rempart.queue_id = Empty,
        rempart.action = Empty,
        smtp.reply = Empty,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 30: the minimum data rate (`smtp.min_data_rate`) applies after its grace.
    #[tokio::test(start_paused = true)]
    async fn a_client_slower_than_the_minimum_rate_is_too_slow_after_the_grace() {
        let pace = Pace::start(500);
        tokio::time::advance(Duration::from_secs(20)).await;
        assert!(!pace.too_slow(0), "within the grace anything goes");
        tokio::time::advance(Duration::from_secs(20)).await;
        assert!(pace.too_slow(40 * 500 - 1));
        assert!(!pace.too_slow(40 * 500));
        assert!(!Pace::start(0).too_slow(0), "0: no minimum");
    }
}
