//! The SMTP client that delivers one message to one route: EHLO, opportunistic
//! STARTTLS, pipelined MAIL/RCPT/DATA when offered, DSN parameters passed on.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use rempart_model::{Envelope, Route, RouteTls};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// One reply of the remote server, all its lines joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteReply {
    pub code: u16,
    pub text: String,
}

impl RemoteReply {
    fn local(code: u16, text: impl Into<String>) -> Self {
        Self { code, text: text.into() }
    }

    pub fn is_positive(&self) -> bool {
        (200..400).contains(&self.code)
    }

    pub fn is_permanent(&self) -> bool {
        self.code >= 500
    }

    /// The RFC 3463 status: the one in the reply, or one derived from its class.
    pub fn status(&self) -> String {
        let class = (self.code / 100).to_string();
        if let Some(first) = self.text.split_whitespace().next() {
            let parts: Vec<&str> = first.split('.').collect();
            if parts.len() == 3
                && parts[0] == class
                && parts[1..].iter().all(|p| !p.is_empty() && p.len() <= 3 && p.chars().all(|c| c.is_ascii_digit()))
            {
                return first.to_string();
            }
        }
        format!("{class}.0.0")
    }
}

impl std::fmt::Display for RemoteReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.code, self.text)
    }
}

/// How one delivery attempt to a route went.
#[derive(Debug)]
pub struct Attempt {
    /// `host:port` we talked to.
    pub remote: String,
    /// The reply for each recipient asked for, in the same order.
    pub replies: Vec<RemoteReply>,
    /// The remote server announced DSN, so it now handles NOTIFY itself.
    pub remote_dsn: bool,
}

pub struct Client {
    pub hostname: String,
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
    tls: TlsConnector,
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

impl Client {
    pub fn new(hostname: String, connect_timeout: Duration, command_timeout: Duration) -> Self {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map(|b| b.dangerous().with_custom_certificate_verifier(Arc::new(AnyCertificate(provider))).with_no_client_auth());
        // The ring provider always supports the default versions.
        let config = config.unwrap_or_else(|_| unreachable_config());
        Self { hostname, connect_timeout, command_timeout, tls: TlsConnector::from(Arc::new(config)) }
    }

    /// Delivers `body` for the recipients at `indices` of `envelope`. A connection-level
    /// failure gives every recipient the same reply.
    pub async fn deliver(&self, route: &Route, tls: RouteTls, envelope: &Envelope, indices: &[usize], body: &[u8]) -> Attempt {
        let remote = format!("{}:{}", route.host, route.port);
        let mut remote_dsn = false;
        let replies = match self.transaction(route, tls, envelope, indices, body, &mut remote_dsn).await {
            Ok(replies) => replies,
            Err(reply) => vec![reply; indices.len()],
        };
        Attempt { remote, replies, remote_dsn }
    }

    async fn transaction(
        &self,
        route: &Route,
        tls: RouteTls,
        envelope: &Envelope,
        indices: &[usize],
        body: &[u8],
        remote_dsn: &mut bool,
    ) -> Result<Vec<RemoteReply>, RemoteReply> {
        let address = (route.host.as_str(), route.port);
        let tcp = match tokio::time::timeout(self.connect_timeout, TcpStream::connect(address)).await {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(e)) => return Err(RemoteReply::local(451, format!("4.4.1 Connection to {}:{} failed: {e}", route.host, route.port))),
            Err(_) => return Err(RemoteReply::local(451, format!("4.4.1 Connection to {}:{} timed out", route.host, route.port))),
        };
        let _ = tcp.set_nodelay(true);
        let mut conn = Conn { io: BufReader::new(Stream::Plain(tcp)), timeout: self.command_timeout };
        expect(conn.read_reply().await?, 220)?;
        let mut caps = conn.ehlo(&self.hostname).await?;
        if tls != RouteTls::Disabled && caps.contains("STARTTLS") {
            conn.send(b"STARTTLS\r\n").await?;
            expect(conn.read_reply().await?, 220)?;
            let name =
                ServerName::try_from(route.host.clone()).map_err(|_| RemoteReply::local(451, "4.7.0 Invalid server name for TLS"))?;
            let Stream::Plain(tcp) = conn.io.into_inner() else { return Err(RemoteReply::local(451, "4.7.0 TLS already active")) };
            let tls_stream = tokio::time::timeout(self.command_timeout, self.tls.connect(name, tcp))
                .await
                .map_err(|_| RemoteReply::local(451, "4.7.0 TLS handshake timed out"))?
                .map_err(|e| RemoteReply::local(451, format!("4.7.0 TLS handshake failed: {e}")))?;
            conn = Conn { io: BufReader::new(Stream::Tls(Box::new(tls_stream))), timeout: self.command_timeout };
            caps = conn.ehlo(&self.hostname).await?;
        } else if tls == RouteTls::Required {
            let _ = conn.send(b"QUIT\r\n").await;
            return Err(RemoteReply::local(451, "4.7.10 TLS is required for this route but the server does not offer STARTTLS"));
        }
        *remote_dsn = caps.contains("DSN");
        let needs_utf8 = !envelope.return_path.is_ascii() || indices.iter().any(|&i| !envelope.recipients[i].address.is_ascii());
        if needs_utf8 && !caps.contains("SMTPUTF8") {
            // RFC 6531 §3.4: such a message must not be sent to a server without SMTPUTF8.
            let _ = conn.send(b"QUIT\r\n").await;
            return Err(RemoteReply::local(553, "5.6.7 SMTPUTF8 is required, but was not offered by the server"));
        }
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
        if *remote_dsn {
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
            if *remote_dsn {
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
        let replies = if caps.contains("PIPELINING") {
            conn.send(commands.concat().as_bytes()).await?;
            let mut replies = Vec::with_capacity(commands.len());
            for _ in &commands {
                replies.push(conn.read_reply().await?);
            }
            replies
        } else {
            let mut replies = Vec::with_capacity(commands.len());
            for command in &commands {
                conn.send(command.as_bytes()).await?;
                let reply = conn.read_reply().await?;
                let stop = !reply.is_positive() && replies.is_empty();
                replies.push(reply);
                if stop {
                    break;
                }
            }
            replies
        };
        let mail_reply = &replies[0];
        if !mail_reply.is_positive() {
            let _ = conn.send(b"QUIT\r\n").await;
            return Err(mail_reply.clone());
        }
        let mut rcpt_replies: Vec<RemoteReply> = replies[1..=indices.len()].to_vec();
        let data_reply = &replies[indices.len() + 1];
        let accepted = rcpt_replies.iter().any(RemoteReply::is_positive);
        if data_reply.code == 354 {
            if accepted {
                conn.send(&dot_stuff(body)).await?;
            } else {
                conn.send(b".\r\n").await?;
            }
            let final_reply = conn.read_reply().await?;
            for r in rcpt_replies.iter_mut().filter(|r| r.is_positive()) {
                *r = final_reply.clone();
            }
        } else if accepted {
            for r in rcpt_replies.iter_mut().filter(|r| r.is_positive()) {
                *r = data_reply.clone();
            }
        }
        let _ = conn.send(b"QUIT\r\n").await;
        Ok(rcpt_replies)
    }
}

struct Conn {
    io: BufReader<Stream>,
    timeout: Duration,
}

impl Conn {
    fn stream(&mut self) -> &mut dyn Io {
        match self.io.get_mut() {
            Stream::Plain(s) => s,
            Stream::Tls(s) => s.as_mut(),
        }
    }

    async fn send(&mut self, bytes: &[u8]) -> Result<(), RemoteReply> {
        let timeout = self.timeout;
        let stream = self.stream();
        let write = async {
            stream.write_all(bytes).await?;
            stream.flush().await
        };
        match tokio::time::timeout(timeout, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(RemoteReply::local(451, format!("4.4.2 Connection lost while sending: {e}"))),
            Err(_) => Err(RemoteReply::local(451, "4.4.2 Timed out while sending")),
        }
    }

    async fn read_reply(&mut self) -> Result<RemoteReply, RemoteReply> {
        let mut text = Vec::new();
        loop {
            let mut line = Vec::new();
            match tokio::time::timeout(self.timeout, read_line(&mut self.io, &mut line)).await {
                Ok(Ok(0)) => return Err(RemoteReply::local(451, "4.4.2 Connection closed by the remote server")),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(RemoteReply::local(451, format!("4.4.2 Connection lost: {e}"))),
                Err(_) => return Err(RemoteReply::local(451, "4.4.2 Timed out waiting for the remote server")),
            }
            let line = String::from_utf8_lossy(&line).trim_end().to_string();
            let code = line.get(..3).and_then(|c| c.parse::<u16>().ok()).filter(|c| (200..600).contains(c));
            let Some(code) = code else {
                return Err(RemoteReply::local(451, format!("4.5.0 Invalid reply from the remote server: {line:.100}")));
            };
            text.push(line.get(4..).unwrap_or("").to_string());
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok(RemoteReply { code, text: text.join(" ") });
            }
            if text.len() > 100 {
                return Err(RemoteReply::local(451, "4.5.0 Reply from the remote server too long"));
            }
        }
    }

    /// EHLO (HELO if refused); returns the extension keywords.
    async fn ehlo(&mut self, hostname: &str) -> Result<HashSet<String>, RemoteReply> {
        self.send(format!("EHLO {hostname}\r\n").as_bytes()).await?;
        let mut lines = Vec::new();
        loop {
            let mut line = Vec::new();
            match tokio::time::timeout(self.timeout, read_line(&mut self.io, &mut line)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => return Err(RemoteReply::local(451, "4.4.2 Connection lost during EHLO")),
            }
            let line = String::from_utf8_lossy(&line).trim_end().to_string();
            let more = line.as_bytes().get(3) == Some(&b'-');
            lines.push(line);
            if !more || lines.len() > 100 {
                break;
            }
        }
        if lines.first().is_some_and(|l| l.starts_with("250")) {
            return Ok(lines.iter().skip(1).filter_map(|l| l.get(4..)?.split_whitespace().next().map(str::to_ascii_uppercase)).collect());
        }
        self.send(format!("HELO {hostname}\r\n").as_bytes()).await?;
        expect(self.read_reply().await?, 250)?;
        Ok(HashSet::new())
    }
}

async fn read_line(io: &mut BufReader<Stream>, line: &mut Vec<u8>) -> std::io::Result<usize> {
    // Bounded: a hostile server cannot make us buffer forever.
    let mut limited = io.take(4096);
    limited.read_until(b'\n', line).await
}

impl AsyncRead for Stream {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => std::pin::Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

fn expect(reply: RemoteReply, code: u16) -> Result<RemoteReply, RemoteReply> {
    if reply.code == code { Ok(reply) } else { Err(reply) }
}

/// Dot-stuffs the body and appends the end-of-data line (adding a final CRLF if the
/// body lacks one).
pub fn dot_stuff(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + body.len() / 64 + 5);
    for line in body.split_inclusive(|&b| b == b'\n') {
        if line.first() == Some(&b'.') {
            out.push(b'.');
        }
        out.extend_from_slice(line);
    }
    if !body.is_empty() && !body.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// Opportunistic TLS (RFC 7435): encryption without authentication, as MTAs do when
/// no DANE or MTA-STS policy says otherwise. Signatures are still checked.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn unreachable_config() -> rustls::ClientConfig {
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map(|b| b.with_root_certificates(rustls::RootCertStore::empty()).with_no_client_auth())
        .unwrap_or_else(|e| panic!("the ring provider supports TLS 1.3: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_stuffing() {
        assert_eq!(dot_stuff(b"a\r\n.b\r\n..\r\n"), b"a\r\n..b\r\n...\r\n.\r\n");
        assert_eq!(dot_stuff(b".x"), b"..x\r\n.\r\n");
    }

    #[test]
    fn status_from_reply() {
        assert_eq!(RemoteReply::local(550, "5.1.1 no such user").status(), "5.1.1");
        assert_eq!(RemoteReply::local(550, "no such user").status(), "5.0.0");
        assert_eq!(RemoteReply::local(451, "5.1.1 mismatched class").status(), "4.0.0");
    }
}
