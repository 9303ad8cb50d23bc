//! ClamAV's daemon over its socket protocol: `zIDSESSION` keeps a connection for many
//! `zINSTREAM` scans (the data streamed in chunks, each prefixed by its length, ended by
//! a zero length; no temporary file anywhere). Connections wait in a small pool; one
//! that clamd closed meanwhile (its IdleTimeout) is replaced once, transparently.

use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Mutex, Semaphore};

use super::{EngineError, Verdict};

/// Bytes sent per INSTREAM chunk.
const CHUNK: usize = 64 << 10;
/// A reply longer than this is not clamd's.
const MAX_REPLY: usize = 4096;

#[derive(Debug, Clone, PartialEq)]
pub enum Address {
    Unix(PathBuf),
    Tcp(String),
}

impl Address {
    /// "unix:/path" or "HOST:PORT".
    pub fn parse(text: &str) -> Result<Address, String> {
        if let Some(path) = text.strip_prefix("unix:") {
            return if path.starts_with('/') {
                Ok(Address::Unix(path.into()))
            } else {
                Err(format!("{text:?}: a unix socket path must be absolute"))
            };
        }
        match text.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => Ok(Address::Tcp(text.to_string())),
            _ => Err(format!("{text:?} is neither \"unix:/path/to/clamd.sock\" nor \"HOST:PORT\"")),
        }
    }
}

trait Connection: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Connection for T {}

/// A session with clamd: the connection and the number of its next request.
struct Session {
    stream: Box<dyn Connection>,
    next_id: u64,
}

pub struct Clamd {
    address: Address,
    idle: Mutex<Vec<Session>>,
    /// Scans running at once (and connections open) at most.
    slots: Semaphore,
    max_idle: usize,
}

impl Clamd {
    pub fn new(address: Address, connections: usize) -> Clamd {
        let connections = connections.max(1);
        Clamd { address, idle: Mutex::new(Vec::new()), slots: Semaphore::new(connections), max_idle: connections }
    }

    /// Scans `data`; the caller bounds the time.
    pub async fn scan(&self, data: &[u8]) -> Result<Verdict, EngineError> {
        let _slot = self.slots.acquire().await.map_err(|_| EngineError::Protocol("closed".into()))?;
        // A pooled session may have been closed by clamd: retry once on a new one.
        let pooled = self.idle.lock().await.pop();
        let (result, session) = match pooled {
            Some(mut session) => match Self::instream(&mut session, data).await {
                Err(EngineError::Io(_)) => {
                    let mut fresh = self.connect().await?;
                    (Self::instream(&mut fresh, data).await, fresh)
                }
                other => (other, session),
            },
            None => {
                let mut fresh = self.connect().await?;
                (Self::instream(&mut fresh, data).await, fresh)
            }
        };
        if result.is_ok() {
            let mut idle = self.idle.lock().await;
            if idle.len() < self.max_idle {
                idle.push(session);
            }
        }
        result
    }

    async fn connect(&self) -> Result<Session, EngineError> {
        let mut stream: Box<dyn Connection> = match &self.address {
            Address::Unix(path) => Box::new(tokio::net::UnixStream::connect(path).await?),
            Address::Tcp(address) => {
                let stream = tokio::net::TcpStream::connect(address.as_str()).await?;
                stream.set_nodelay(true)?;
                Box::new(stream)
            }
        };
        stream.write_all(b"zIDSESSION\0").await?;
        Ok(Session { stream, next_id: 1 })
    }

    async fn instream(session: &mut Session, data: &[u8]) -> Result<Verdict, EngineError> {
        let id = session.next_id;
        session.next_id += 1;
        let stream = &mut session.stream;
        stream.write_all(b"zINSTREAM\0").await?;
        for chunk in data.chunks(CHUNK) {
            stream.write_all(&(chunk.len() as u32).to_be_bytes()).await?;
            stream.write_all(chunk).await?;
        }
        stream.write_all(&0u32.to_be_bytes()).await?;
        stream.flush().await?;
        let reply = read_reply(stream).await?;
        // "<id>: stream: OK", "<id>: stream: NAME FOUND", "<id>: … ERROR".
        let text = reply.strip_prefix(&format!("{id}: ")).ok_or_else(|| EngineError::Protocol(format!("unexpected reply {reply:?}")))?;
        parse_result(text)
    }

    /// Whether clamd answers `PING` (for `config check` and readiness).
    pub async fn ping(&self, timeout: Duration) -> Result<(), EngineError> {
        let ping = async {
            let mut stream: Box<dyn Connection> = match &self.address {
                Address::Unix(path) => Box::new(tokio::net::UnixStream::connect(path).await?),
                Address::Tcp(address) => Box::new(tokio::net::TcpStream::connect(address.as_str()).await?),
            };
            stream.write_all(b"zPING\0").await?;
            match read_reply(&mut stream).await?.as_str() {
                "PONG" => Ok(()),
                other => Err(EngineError::Protocol(format!("PING answered {other:?}"))),
            }
        };
        tokio::time::timeout(timeout, ping).await.map_err(|_| EngineError::Timeout)?
    }
}

/// One reply, up to its NUL.
async fn read_reply(stream: &mut (impl AsyncRead + Unpin + ?Sized)) -> Result<String, EngineError> {
    let mut reply = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        if stream.read(&mut byte).await? == 0 {
            return Err(EngineError::Io(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "clamd closed the connection")));
        }
        if byte[0] == 0 {
            break;
        }
        reply.push(byte[0]);
        if reply.len() > MAX_REPLY {
            return Err(EngineError::Protocol("reply too long".into()));
        }
    }
    Ok(String::from_utf8_lossy(&reply).trim().to_string())
}

/// "stream: OK" / "stream: Eicar-Test-Signature FOUND" / "INSTREAM size limit exceeded. ERROR".
fn parse_result(text: &str) -> Result<Verdict, EngineError> {
    let text = text.strip_prefix("stream: ").unwrap_or(text);
    if text == "OK" {
        return Ok(Verdict::Clean);
    }
    if let Some(name) = text.strip_suffix(" FOUND") {
        // Signatures of a local database carry ".UNOFFICIAL"; the name is what matters.
        return Ok(Verdict::Found(name.trim_end_matches(".UNOFFICIAL").to_string()));
    }
    Err(EngineError::Protocol(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_replies() {
        assert_eq!(Address::parse("unix:/run/clamav/clamd.ctl"), Ok(Address::Unix("/run/clamav/clamd.ctl".into())));
        assert_eq!(Address::parse("clamd:3310"), Ok(Address::Tcp("clamd:3310".into())));
        assert_eq!(Address::parse("[::1]:3310"), Ok(Address::Tcp("[::1]:3310".into())));
        assert!(Address::parse("unix:relative.sock").is_err());
        assert!(Address::parse("clamd").is_err());
        assert!(Address::parse("clamd:0").is_err());
        assert!(matches!(parse_result("stream: OK"), Ok(Verdict::Clean)));
        assert!(
            matches!(parse_result("stream: Eicar-Test-Signature.UNOFFICIAL FOUND"), Ok(Verdict::Found(n)) if n == "Eicar-Test-Signature")
        );
        assert!(matches!(parse_result("INSTREAM size limit exceeded. ERROR"), Err(EngineError::Protocol(_))));
    }
}
