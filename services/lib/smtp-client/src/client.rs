//! The SMTP client that delivers one message to one route: EHLO, opportunistic
//! STARTTLS, pipelined MAIL/RCPT/DATA when offered, DSN parameters passed on. Connections
//! that end a transaction cleanly are kept a few seconds for the next message.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use std::net::IpAddr;
use std::path::Path;

use rempart_model::{DomainConfig, Envelope, Route, RouteTls};
use tokio::io::BufReader;
use tokio::net::TcpStream;

use rempart_smtp::{Reply, Stream, dot_stuff};

use crate::conn::{Conn, expect};
use crate::tls::{Connectors, server_name};

/// How one delivery attempt to a route went.
#[derive(Debug)]
pub struct Attempt {
    /// `host:port` we talked to.
    pub remote: String,
    /// The reply for each recipient asked for, in the same order.
    pub replies: Vec<Reply>,
    /// The remote server announced DSN, so it now handles NOTIFY itself.
    pub remote_dsn: bool,
    /// A session was set up (connected, greeted, EHLO and TLS as the policy wants):
    /// when false nothing was sent, and another MX host may be tried.
    pub opened: bool,
    /// The TLS session of the transaction ("TLSv1.3 with cipher …"), `None` in plaintext.
    pub tls: Option<String>,
}

/// Where one delivery goes: a customer's route, or one address of an outside domain's
/// MX host (`address` set: connect there, and name `route.host` in TLS).
pub struct Destination<'a> {
    pub route: Route,
    pub tls: RouteTls,
    pub ca_file: Option<&'a Path>,
    pub address: Option<IpAddr>,
    /// The host's usable DANE TLSA records: TLS is required and its certificate must
    /// match one of them (instead of `tls`'s checks).
    pub dane: Option<Vec<crate::dane::Association>>,
}

impl<'a> Destination<'a> {
    pub fn of_domain(domain: &'a DomainConfig) -> Destination<'a> {
        Destination {
            route: domain.route.clone(),
            tls: domain.route_tls,
            ca_file: domain.route_ca_file.as_deref(),
            address: None,
            dane: None,
        }
    }
}

pub struct Client {
    pub hostname: String,
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
    tls: Connectors,
    /// Connections kept open after a delivery, per route, for the next message.
    idle: Mutex<HashMap<String, Vec<Session>>>,
}

/// An open connection that has said EHLO (and STARTTLS if it could).
struct Session {
    conn: Conn,
    caps: HashSet<String>,
    since: Instant,
}

/// How long an unused connection is kept: shorter than any sane server timeout.
const IDLE_LIMIT: Duration = Duration::from_secs(5);
/// Idle connections kept per route.
const IDLE_PER_ROUTE: usize = 32;

enum TxError {
    /// The connection failed before the server answered anything in this transaction:
    /// nothing can have been accepted, so a fresh connection may try again at once.
    Stale(Reply),
    Failed(Reply),
}

impl Client {
    pub fn new(hostname: String, connect_timeout: Duration, command_timeout: Duration, tls: Connectors) -> Self {
        Self { hostname, connect_timeout, command_timeout, tls, idle: Mutex::default() }
    }

    /// Delivers `body` for the recipients at `indices` of `envelope`, reusing an idle
    /// connection to the route when there is one. A connection-level failure gives
    /// every recipient the same reply.
    pub async fn deliver(&self, destination: &Destination<'_>, envelope: &Envelope, indices: &[usize], body: &[u8]) -> Attempt {
        let route = &destination.route;
        let remote = match destination.address {
            Some(ip) => format!("{}[{ip}]:{}", route.host, route.port),
            None => format!("{}:{}", route.host, route.port),
        };
        // Connections are shared only between routes with the same TLS policy.
        let key = format!("{remote}/{:?}/{:?}/{:?}", destination.tls, destination.ca_file, destination.dane);
        let (mut remote_dsn, mut opened, mut tls) = (false, true, None);
        let outcome = loop {
            let (mut session, reused) = match self.take_idle(&key) {
                Some(session) => (session, true),
                None => match self.open(destination).await {
                    Ok(session) => (session, false),
                    Err(reply) => {
                        opened = false;
                        break Err(reply);
                    }
                },
            };
            remote_dsn = session.caps.contains("DSN");
            tls = session.conn.io.get_ref().tls_description();
            match transaction(&mut session, envelope, indices, body).await {
                Ok(replies) => {
                    self.keep_idle(key, session);
                    break Ok(replies);
                }
                // The server closed an idle connection meanwhile: open a new one.
                Err(TxError::Stale(_)) if reused => continue,
                Err(TxError::Stale(reply) | TxError::Failed(reply)) => {
                    let _ = session.conn.send(b"QUIT\r\n").await;
                    break Err(reply);
                }
            }
        };
        let replies = outcome.unwrap_or_else(|reply| vec![reply; indices.len()]);
        Attempt { remote, replies, remote_dsn, opened, tls }
    }

    /// Asks the destination whether it would take mail from `sender` for each of
    /// `recipients` (MAIL FROM and RCPT TO, then RSET and QUIT: nothing is sent). The
    /// replies are in the order of `recipients`; `Err` is why no RCPT could be asked
    /// (connection, TLS policy, or MAIL FROM refused).
    pub async fn ask(&self, destination: &Destination<'_>, sender: &str, recipients: &[&str]) -> Result<Vec<Reply>, Reply> {
        let mut session = self.open(destination).await?;
        let conn = &mut session.conn;
        let asked = async {
            conn.send(format!("MAIL FROM:<{sender}>\r\n").as_bytes()).await?;
            expect(conn.read_reply().await?, 250)?;
            let mut replies = Vec::with_capacity(recipients.len());
            for recipient in recipients {
                conn.send(format!("RCPT TO:<{recipient}>\r\n").as_bytes()).await?;
                replies.push(conn.read_reply().await?);
            }
            conn.send(b"RSET\r\n").await?;
            conn.read_reply().await?;
            Ok(replies)
        }
        .await;
        let _ = conn.send(b"QUIT\r\n").await;
        asked
    }

    /// A connector that verifies certificates against the system's roots (MTA-STS
    /// policy hosts).
    pub fn verifying_connector(&self) -> Result<tokio_rustls::TlsConnector, String> {
        self.tls.for_route(RouteTls::Verify, None).cloned().map_err(|e| e.to_string())
    }

    fn take_idle(&self, key: &str) -> Option<Session> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let sessions = idle.get_mut(key)?;
        while let Some(session) = sessions.pop() {
            if session.since.elapsed() < IDLE_LIMIT {
                return Some(session);
            }
        }
        None
    }

    /// Keeps a connection whose last transaction ended cleanly for the next message.
    fn keep_idle(&self, key: String, mut session: Session) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let sessions = idle.entry(key).or_default();
        sessions.retain(|s| s.since.elapsed() < IDLE_LIMIT);
        if sessions.len() < IDLE_PER_ROUTE {
            session.since = Instant::now();
            sessions.push(session);
        }
    }

    /// Connects, reads the greeting, says EHLO and upgrades to TLS when the policy and
    /// the server allow. Under `required` and `verify` nothing is sent in plaintext
    /// after EHLO: no TLS, or a certificate that does not verify, is a 4.7.x deferral.
    async fn open(&self, destination: &Destination<'_>) -> Result<Session, Reply> {
        let (route, tls) = (&destination.route, destination.tls);
        let connect = async {
            match destination.address {
                Some(ip) => TcpStream::connect((ip, route.port)).await,
                None => TcpStream::connect((route.host.as_str(), route.port)).await,
            }
        };
        let tcp = match tokio::time::timeout(self.connect_timeout, connect).await {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(e)) => return Err(Reply::new(451, "4.4.1", format!("Connection to {}:{} failed: {e}", route.host, route.port))),
            Err(_) => return Err(Reply::new(451, "4.4.1", format!("Connection to {}:{} timed out", route.host, route.port))),
        };
        let _ = tcp.set_nodelay(true);
        let mut conn = Conn { io: BufReader::new(Stream::Plain(tcp)), timeout: self.command_timeout };
        expect(conn.read_reply().await?, 220)?;
        let mut caps = conn.ehlo(&self.hostname).await?;
        let must_encrypt = matches!(tls, RouteTls::Required | RouteTls::Verify);
        if tls != RouteTls::Disabled && caps.contains("STARTTLS") {
            let connector = match &destination.dane {
                Some(associations) => crate::dane::connector(associations.clone()).map_err(|e| Reply::new(451, "4.7.5", e.to_string()))?,
                None => self.tls.for_route(tls, destination.ca_file).map_err(|e| Reply::new(451, "4.7.5", e.to_string()))?.clone(),
            };
            conn.send(b"STARTTLS\r\n").await?;
            expect(conn.read_reply().await?, 220)?;
            let name = server_name(&route.host).ok_or_else(|| Reply::new(451, "4.7.0", "Invalid server name for TLS"))?;
            let (status, failed) = if destination.dane.is_some() {
                ("4.7.5", "TLS certificate matches none of the host's DANE TLSA records")
            } else if tls == RouteTls::Verify {
                ("4.7.5", "TLS certificate of the route not verified")
            } else {
                ("4.7.0", "TLS handshake failed")
            };
            // A new reader: nothing the server sent in plaintext after its 220 is kept.
            let mut stream = conn.io.into_inner();
            tokio::time::timeout(self.command_timeout, stream.connect_tls(&connector, name))
                .await
                .map_err(|_| Reply::new(451, "4.7.0", "TLS handshake timed out"))?
                .map_err(|e| Reply::new(451, status, format!("{failed} ({}): {e}", route.host)))?;
            conn = Conn { io: BufReader::new(stream), timeout: self.command_timeout };
            caps = conn.ehlo(&self.hostname).await?;
        } else if must_encrypt {
            let _ = conn.send(b"QUIT\r\n").await;
            let why = if destination.dane.is_some() { "the host publishes DANE TLSA records" } else { "TLS is required for this route" };
            return Err(Reply::new(451, "4.7.10", format!("{why} but the server does not offer STARTTLS")));
        }
        Ok(Session { conn, caps, since: Instant::now() })
    }
}

/// One mail transaction on an open session (MAIL, RCPTs and DATA pipelined when the
/// server offers PIPELINING). On success the session is ready for another.
async fn transaction(session: &mut Session, envelope: &Envelope, indices: &[usize], body: &[u8]) -> Result<Vec<Reply>, TxError> {
    let (conn, caps) = (&mut session.conn, &session.caps);
    let needs_utf8 = !envelope.return_path.is_ascii() || indices.iter().any(|&i| !envelope.recipients[i].address.is_ascii());
    if needs_utf8 && !caps.contains("SMTPUTF8") {
        // RFC 6531 §3.4: such a message must not be sent to a server without SMTPUTF8.
        return Err(TxError::Failed(Reply::new(553, "5.6.7", "SMTPUTF8 is required, but was not offered by the server")));
    }
    let remote_dsn = caps.contains("DSN");
    let mut mail = format!("MAIL FROM:<{}>", envelope.return_path);
    if caps.contains("SIZE") {
        mail.push_str(&format!(" SIZE={}", body.len()));
    }
    if envelope.body_8bit && caps.contains("8BITMIME") {
        mail.push_str(" BODY=8BITMIME");
    }
    if envelope.smtputf8 && caps.contains("SMTPUTF8") {
        mail.push_str(" SMTPUTF8");
    }
    if remote_dsn {
        if let Some(ret) = envelope.ret {
            mail.push_str(if ret == rempart_model::DsnRet::Full { " RET=FULL" } else { " RET=HDRS" });
        }
        if let Some(envid) = &envelope.envid {
            mail.push_str(&format!(" ENVID={envid}"));
        }
    }
    let mut commands = vec![format!("{mail}\r\n")];
    for &i in indices {
        let r = &envelope.recipients[i];
        let mut rcpt = format!("RCPT TO:<{}>", r.address);
        if remote_dsn {
            if let Some(n) = r.notify {
                rcpt.push_str(&format!(" NOTIFY={}", n.to_param()));
            }
            if let Some(orcpt) = &r.orcpt {
                rcpt.push_str(&format!(" ORCPT={orcpt}"));
            }
        }
        commands.push(format!("{rcpt}\r\n"));
    }
    commands.push("DATA\r\n".into());
    // Until the server has answered something, a failure means a dead connection.
    let stale = TxError::Stale;
    let mut replies = Vec::with_capacity(commands.len());
    if caps.contains("PIPELINING") {
        conn.send(commands.concat().as_bytes()).await.map_err(stale)?;
        replies.push(conn.read_reply().await.map_err(stale)?);
        for _ in 1..commands.len() {
            replies.push(conn.read_reply().await.map_err(TxError::Failed)?);
        }
    } else {
        for command in &commands {
            let first = replies.is_empty();
            conn.send(command.as_bytes()).await.map_err(if first { TxError::Stale } else { TxError::Failed })?;
            let reply = conn.read_reply().await.map_err(if first { TxError::Stale } else { TxError::Failed })?;
            let stop = !reply.is_positive() && first;
            replies.push(reply);
            if stop {
                break;
            }
        }
    }
    let mail_reply = &replies[0];
    if !mail_reply.is_positive() {
        return Err(TxError::Failed(mail_reply.clone()));
    }
    let mut rcpt_replies: Vec<Reply> = replies[1..=indices.len()].to_vec();
    let data_reply = &replies[indices.len() + 1];
    let accepted = rcpt_replies.iter().any(Reply::is_positive);
    if data_reply.code == 354 {
        conn.send(&if accepted { dot_stuff(body) } else { b".\r\n".to_vec() }).await.map_err(TxError::Failed)?;
        let final_reply = conn.read_reply().await.map_err(TxError::Failed)?;
        for r in rcpt_replies.iter_mut().filter(|r| r.is_positive()) {
            *r = final_reply.clone();
        }
    } else {
        for r in rcpt_replies.iter_mut().filter(|r| r.is_positive()) {
            *r = data_reply.clone();
        }
        // The transaction did not complete: clear it before the session is reused.
        conn.send(b"RSET\r\n").await.map_err(TxError::Failed)?;
        expect(conn.read_reply().await.map_err(TxError::Failed)?, 250).map_err(TxError::Failed)?;
    }
    Ok(rcpt_replies)
}

/// An address nobody has at `domain` (the clock's nanoseconds, which differ between
/// questions): a server that accepts it accepts every address (a catch-all), so its
/// "250" to a real recipient proves nothing.
pub fn unlikely_address(domain: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
    format!("rempart-catch-all-probe-{nanos:x}@{domain}")
}
