//! The SMTP client of the load: one session, timed at each stage (connect, banner,
//! EHLO, end of DATA), with optional PROXY v1 header, STARTTLS, AUTH and pipelining.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rempart_smtp::{ReplyError, Stream, dot_stuff};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Longest reply line and most lines of a reply the harness reads.
const MAX_REPLY_LINE: usize = 4096;
const MAX_REPLY_LINES: usize = 100;

#[derive(Debug, Clone)]
pub struct SessionOptions {
    pub pipelining: bool,
    pub starttls: bool,
    pub proxy_client: Option<IpAddr>,
    /// Log in (AUTH PLAIN, after STARTTLS) with this user and password: submission.
    pub auth: Option<(String, String)>,
    pub timeout: Duration,
}

/// Stage timings of a session's start.
#[derive(Debug, Clone, Copy)]
pub struct Opened {
    pub connect: Duration,
    pub banner: Duration,
    pub ehlo: Duration,
}

/// What happened to one message.
#[derive(Debug, Clone)]
pub struct Sent {
    /// The reply that decided (end of DATA, or the MAIL/RCPT/DATA refusal).
    pub code: u16,
    /// The recipients the server took (RCPT 250), for delivery accounting.
    pub accepted_recipients: Vec<String>,
    /// From the end of the data to the end-of-DATA reply.
    pub end_of_data: Option<Duration>,
    /// Each RCPT's round trip (without pipelining: with it, replies come together).
    pub rcpt: Vec<Duration>,
}

impl Sent {
    fn refused(code: u16, rcpt: Vec<Duration>) -> Sent {
        Sent { code, accepted_recipients: Vec::new(), end_of_data: None, rcpt }
    }
}

pub struct Session {
    io: BufReader<Stream>,
    options: SessionOptions,
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("connect: {0}")]
    Connect(String),
    #[error("timeout")]
    Timeout,
    #[error("connection closed by the server")]
    Closed,
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("unexpected reply {0}")]
    Unexpected(String),
    #[error("TLS: {0}")]
    Tls(String),
}

impl Session {
    pub async fn open(target: SocketAddr, options: SessionOptions) -> Result<(Session, Opened), SessionError> {
        let started = Instant::now();
        let tcp = tokio::time::timeout(options.timeout, TcpStream::connect(target))
            .await
            .map_err(|_| SessionError::Timeout)?
            .map_err(|e| SessionError::Connect(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        let connect = started.elapsed();
        let mut session = Session { io: BufReader::new(Stream::Plain(tcp)), options };
        if let Some(client) = session.options.proxy_client {
            let family = if client.is_ipv4() { "TCP4" } else { "TCP6" };
            let line = format!("PROXY {family} {client} {} 40000 {}\r\n", target.ip(), target.port());
            session.io.get_mut().write_all(line.as_bytes()).await?;
        }
        let banner_at = Instant::now();
        let (code, text) = session.reply().await?;
        if code != 220 {
            return Err(SessionError::Unexpected(format!("{code} {text}")));
        }
        let banner = banner_at.elapsed();
        let ehlo_at = Instant::now();
        let (code, text) = session.command("EHLO loadtest.example").await?;
        if code != 250 {
            return Err(SessionError::Unexpected(format!("EHLO: {code} {text}")));
        }
        let ehlo = ehlo_at.elapsed();
        if session.options.starttls {
            if !text.to_ascii_uppercase().contains("STARTTLS") {
                return Err(SessionError::Tls("the server does not offer STARTTLS".into()));
            }
            session.starttls().await?;
        }
        if let Some((user, password)) = session.options.auth.clone() {
            use base64::Engine;
            let token = base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"));
            let (code, text) = session.command(&format!("AUTH PLAIN {token}")).await?;
            if code != 235 {
                return Err(SessionError::Unexpected(format!("AUTH: {code} {text}")));
            }
        }
        Ok((session, Opened { connect, banner, ehlo }))
    }

    async fn starttls(&mut self) -> Result<(), SessionError> {
        let (code, text) = self.command("STARTTLS").await?;
        if code != 220 {
            return Err(SessionError::Tls(format!("STARTTLS refused: {code} {text}")));
        }
        // Load targets use self-signed certificates: the harness measures, it does not
        // authenticate the server.
        let config = rempart_smtp::tls::any_certificate().map_err(|e| SessionError::Tls(e.to_string()))?;
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let name = ServerName::try_from("rempart.loadtest").map_err(|e| SessionError::Tls(e.to_string()))?;
        let mut stream = std::mem::replace(&mut self.io, BufReader::new(Stream::Closed)).into_inner();
        stream.connect_tls(&connector, name).await.map_err(|e| SessionError::Tls(e.to_string()))?;
        self.io = BufReader::new(stream);
        let (code, text) = self.command("EHLO loadtest.example").await?;
        if code != 250 {
            return Err(SessionError::Unexpected(format!("EHLO after STARTTLS: {code} {text}")));
        }
        Ok(())
    }

    /// Sends one message; a refusal is a result, not an error.
    pub async fn send(&mut self, from: &str, recipients: &[String], message: &[u8]) -> Result<Sent, SessionError> {
        let mut rcpt_times = Vec::new();
        let mut accepted = Vec::new();
        if self.options.pipelining {
            let mut batch = format!("MAIL FROM:<{from}>\r\n");
            for r in recipients {
                batch.push_str(&format!("RCPT TO:<{r}>\r\n"));
            }
            batch.push_str("DATA\r\n");
            self.write(batch.as_bytes()).await?;
            let (mail, _) = self.reply().await?;
            let mut last_refusal = 0;
            for r in recipients {
                match self.reply().await?.0 {
                    250 => accepted.push(r.clone()),
                    code => last_refusal = code,
                }
            }
            let (data, _) = self.reply().await?;
            if mail != 250 {
                return Ok(Sent::refused(mail, rcpt_times));
            }
            if data != 354 {
                // With no recipient taken, the RCPT refusal says why, not DATA's 554.
                return Ok(Sent::refused(if accepted.is_empty() && last_refusal != 0 { last_refusal } else { data }, rcpt_times));
            }
        } else {
            let (mail, _) = self.command(&format!("MAIL FROM:<{from}>")).await?;
            if mail != 250 {
                return Ok(Sent::refused(mail, rcpt_times));
            }
            let mut last = 0;
            for r in recipients {
                let asked = Instant::now();
                last = self.command(&format!("RCPT TO:<{r}>")).await?.0;
                rcpt_times.push(asked.elapsed());
                if last == 250 {
                    accepted.push(r.clone());
                }
            }
            if accepted.is_empty() {
                self.command("RSET").await?;
                return Ok(Sent::refused(last, rcpt_times));
            }
            let (data, _) = self.command("DATA").await?;
            if data != 354 {
                return Ok(Sent::refused(data, rcpt_times));
            }
        }
        self.write(&dot_stuff(message)).await?;
        let sent_at = Instant::now();
        let (code, _) = self.reply().await?;
        let accepted_recipients = if code == 250 { accepted } else { Vec::new() };
        Ok(Sent { code, accepted_recipients, end_of_data: Some(sent_at.elapsed()), rcpt: rcpt_times })
    }

    pub async fn quit(mut self) {
        let _ = self.command("QUIT").await;
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), SessionError> {
        let io = self.io.get_mut();
        tokio::time::timeout(self.options.timeout, async {
            io.write_all(bytes).await?;
            io.flush().await
        })
        .await
        .map_err(|_| SessionError::Timeout)??;
        Ok(())
    }

    async fn command(&mut self, line: &str) -> Result<(u16, String), SessionError> {
        self.write(format!("{line}\r\n").as_bytes()).await?;
        self.reply().await
    }

    /// One (possibly multi-line) reply: its code and text.
    async fn reply(&mut self) -> Result<(u16, String), SessionError> {
        let read = rempart_smtp::read_reply(&mut self.io, MAX_REPLY_LINE, MAX_REPLY_LINES);
        match tokio::time::timeout(self.options.timeout, read).await.map_err(|_| SessionError::Timeout)? {
            Ok(reply) => Ok((reply.code, reply.text)),
            Err(ReplyError::Closed) => Err(SessionError::Closed),
            Err(e) => Err(SessionError::Unexpected(e.to_string())),
        }
    }
}
