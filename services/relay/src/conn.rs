//! One SMTP client connection: plain or after STARTTLS, reading multi-line replies with
//! timeouts and bounded lines.

use std::collections::HashSet;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::client::RemoteReply;

pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

pub(crate) struct Conn {
    pub io: BufReader<Stream>,
    pub timeout: Duration,
}

impl Conn {
    fn stream(&mut self) -> &mut dyn Io {
        match self.io.get_mut() {
            Stream::Plain(s) => s,
            Stream::Tls(s) => s.as_mut(),
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) -> Result<(), RemoteReply> {
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

    pub async fn read_reply(&mut self) -> Result<RemoteReply, RemoteReply> {
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
    pub async fn ehlo(&mut self, hostname: &str) -> Result<HashSet<String>, RemoteReply> {
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

pub(crate) fn expect(reply: RemoteReply, code: u16) -> Result<RemoteReply, RemoteReply> {
    if reply.code == code { Ok(reply) } else { Err(reply) }
}
