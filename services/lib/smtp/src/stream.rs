//! The connection under an SMTP session, plain or after STARTTLS, on either side.
//! Generic over the transport so that sessions run over a TCP socket in production
//! and over an in-memory pipe in tests.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector, client, server};

pub enum Stream<S = TcpStream> {
    Plain(S),
    /// We are the server (the edge after STARTTLS).
    ServerTls(Box<server::TlsStream<S>>),
    /// We are the client (the relay, the load harness).
    ClientTls(Box<client::TlsStream<S>>),
    /// Left behind while the stream is being upgraded to TLS.
    Closed,
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "stream closed")
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream<S> {
    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::ServerTls(_) | Stream::ClientTls(_))
    }

    /// The plain transport, leaving `Closed` behind; `None` when already encrypted.
    fn take_plain(&mut self) -> Option<S> {
        match std::mem::replace(self, Stream::Closed) {
            Stream::Plain(s) => Some(s),
            other => {
                *self = other;
                None
            }
        }
    }

    /// Server side of STARTTLS. On failure the stream stays `Closed`.
    pub async fn accept_tls(&mut self, acceptor: &TlsAcceptor) -> io::Result<()> {
        let plain = self.take_plain().ok_or_else(|| io::Error::other("TLS already active"))?;
        *self = Stream::ServerTls(Box::new(acceptor.accept(plain).await?));
        Ok(())
    }

    /// Client side of STARTTLS. On failure the stream stays `Closed`.
    pub async fn connect_tls(&mut self, connector: &TlsConnector, name: ServerName<'static>) -> io::Result<()> {
        let plain = self.take_plain().ok_or_else(|| io::Error::other("TLS already active"))?;
        *self = Stream::ClientTls(Box::new(connector.connect(name, plain).await?));
        Ok(())
    }

    /// The server side's TLS session, for Received headers and logs.
    pub fn server_tls(&self) -> Option<&rustls::ServerConnection> {
        match self {
            Stream::ServerTls(s) => Some(s.get_ref().1),
            _ => None,
        }
    }

    /// The client side's TLS session (the server's certificates, the version).
    pub fn client_tls(&self) -> Option<&rustls::ClientConnection> {
        match self {
            Stream::ClientTls(s) => Some(s.get_ref().1),
            _ => None,
        }
    }

    /// "TLSv1.3 with cipher TLS13_AES_256_GCM_SHA384" on either side once encrypted,
    /// for Received headers, logs and tracking.
    pub fn tls_description(&self) -> Option<String> {
        match self {
            Stream::ServerTls(s) => Some(describe(s.get_ref().1)),
            Stream::ClientTls(s) => Some(describe(s.get_ref().1)),
            _ => None,
        }
    }
}

fn describe(tls: &rustls::CommonState) -> String {
    let version = match tls.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_string(),
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_string(),
        Some(other) => format!("{other:?}"),
        None => "TLS".to_string(),
    };
    match tls.negotiated_cipher_suite() {
        Some(suite) => format!("{version} with cipher {:?}", suite.suite()),
        None => version,
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Stream<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::ServerTls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Stream::ClientTls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Stream::Closed => Poll::Ready(Err(closed())),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Stream<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::ServerTls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Stream::ClientTls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Stream::Closed => Poll::Ready(Err(closed())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::ServerTls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Stream::ClientTls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Stream::Closed => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::ServerTls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Stream::ClientTls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Stream::Closed => Poll::Ready(Ok(())),
        }
    }
}
