//! One SMTP client connection: plain or after STARTTLS, reading multi-line replies with
//! timeouts and bounded lines (rempart-smtp frames them).

use std::collections::HashSet;
use std::time::Duration;

use rempart_smtp::{Reply, ReplyError, Stream};
use tokio::io::{AsyncWriteExt, BufReader};

/// Longest reply line and most lines in a reply: a hostile server cannot make us
/// buffer forever.
const MAX_REPLY_LINE: usize = 4096;
const MAX_REPLY_LINES: usize = 100;

pub struct Conn {
    pub io: BufReader<Stream>,
    pub timeout: Duration,
}

impl Conn {
    pub async fn send(&mut self, bytes: &[u8]) -> Result<(), Reply> {
        let stream = self.io.get_mut();
        let write = async {
            stream.write_all(bytes).await?;
            stream.flush().await
        };
        match tokio::time::timeout(self.timeout, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Reply::new(451, "4.4.2", format!("Connection lost while sending: {e}"))),
            Err(_) => Err(Reply::new(451, "4.4.2", "Timed out while sending")),
        }
    }

    /// The next reply; a failure to read one is a local 4xx reply saying why.
    pub async fn read_reply(&mut self) -> Result<Reply, Reply> {
        match tokio::time::timeout(self.timeout, rempart_smtp::read_reply(&mut self.io, MAX_REPLY_LINE, MAX_REPLY_LINES)).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(ReplyError::Closed)) => Err(Reply::new(451, "4.4.2", "Connection closed by the remote server")),
            Ok(Err(ReplyError::Io(e))) => Err(Reply::new(451, "4.4.2", format!("Connection lost: {e}"))),
            Ok(Err(e)) => Err(Reply::new(451, "4.5.0", format!("Invalid reply from the remote server: {e}"))),
            Err(_) => Err(Reply::new(451, "4.4.2", "Timed out waiting for the remote server")),
        }
    }

    /// EHLO (HELO if refused); returns the extension keywords.
    pub async fn ehlo(&mut self, hostname: &str) -> Result<HashSet<String>, Reply> {
        self.send(format!("EHLO {hostname}\r\n").as_bytes()).await?;
        let mut lines = Vec::new();
        let mut code = 0;
        let mut reader = rempart_smtp::ReplyReader::new(MAX_REPLY_LINES);
        loop {
            let line = match tokio::time::timeout(self.timeout, rempart_smtp::read_line(&mut self.io, MAX_REPLY_LINE)).await {
                Ok(Ok(rempart_smtp::Line::Complete(line))) => String::from_utf8_lossy(&line).into_owned(),
                _ => return Err(Reply::new(451, "4.4.2", "Connection lost during EHLO")),
            };
            if let Some(parsed) = rempart_smtp::parse_reply_line(&line) {
                lines.push(parsed.text.to_string());
            }
            match reader.push(&line) {
                Ok(Some(reply)) => {
                    code = reply.code;
                    break;
                }
                Ok(None) => {}
                Err(_) => break,
            }
        }
        if code == 250 {
            return Ok(lines.iter().skip(1).filter_map(|l| l.split_whitespace().next().map(str::to_ascii_uppercase)).collect());
        }
        self.send(format!("HELO {hostname}\r\n").as_bytes()).await?;
        expect(self.read_reply().await?, 250)?;
        Ok(HashSet::new())
    }
}

pub fn expect(reply: Reply, code: u16) -> Result<Reply, Reply> {
    if reply.code == code { Ok(reply) } else { Err(reply) }
}
