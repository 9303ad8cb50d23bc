//! The receiving side of a minimal SMTP server, for stand-ins of customer servers and
//! outside MX hosts (the load harness's sink, the tests' sink). The dialogue and its
//! framing live here once; what to answer and what to keep is the `Receiver`'s policy.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use crate::framing::{DataBody, DataRead, Line, read_line};

/// One message as received.
#[derive(Debug, Clone, Default)]
pub struct Envelope {
    pub mail_from: String,
    /// The MAIL FROM line's parameters, as sent.
    pub mail_params: String,
    pub rcpt_to: Vec<String>,
    /// The accepted RCPT lines' parameters, as sent.
    pub rcpt_params: Vec<String>,
    /// The message after dot-unstuffing, without the final `.` line.
    pub data: Vec<u8>,
}

/// What a receiving server says and keeps. Replies are given as wire text (CRLF
/// included) so that a stand-in can answer with anything, multi-line replies too.
pub trait Receiver: Send + Sync + 'static {
    /// The host name in the greeting and EHLO.
    fn name(&self) -> &str;

    /// EHLO keywords after the first line.
    fn ehlo_keywords(&self) -> Vec<&'static str> {
        vec!["PIPELINING", "8BITMIME", "SMTPUTF8", "SIZE 67108864", "DSN"]
    }

    /// A new connection was accepted.
    fn connected(&self) {}

    /// A connection ended (however it ended).
    fn disconnected(&self) {}

    /// How long to wait before accepting a message (a slow server).
    fn delay_before_accepting(&self) -> Duration {
        Duration::ZERO
    }

    /// `None` accepts the recipient; `Some(wire)` refuses it with that reply.
    fn rcpt(&self, _address: &str) -> Option<String> {
        None
    }

    /// A message was received; its reply is `250 2.0.0`.
    fn message(&self, envelope: Envelope);

    /// Close the connection right after accepting a message (a server that does not
    /// wait for QUIT).
    fn hang_up_after_message(&self) -> bool {
        false
    }
}

/// Limits of the stand-in server.
#[derive(Debug, Clone, Copy)]
pub struct ReceiveLimits {
    pub line: usize,
    pub message: usize,
    pub idle: Duration,
}

impl Default for ReceiveLimits {
    fn default() -> Self {
        Self { line: 64 * 1024, message: 64 * 1024 * 1024, idle: Duration::from_secs(300) }
    }
}

/// Accepts connections until the listener fails, each served by `receive`.
pub async fn serve<R: Receiver>(listener: TcpListener, receiver: Arc<R>, limits: ReceiveLimits) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let _ = stream.set_nodelay(true);
        receiver.connected();
        let receiver = receiver.clone();
        tokio::spawn(async move {
            let _ = receive(stream, &*receiver, limits).await;
            receiver.disconnected();
        });
    }
}

/// One SMTP session. Replies are written only when no pipelined command is waiting,
/// so a pipelining client gets them in one write.
pub async fn receive<S, R>(stream: S, receiver: &R, limits: ReceiveLimits) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
    R: Receiver + ?Sized,
{
    let mut io = BufReader::new(stream);
    let mut out = format!("220 {} ESMTP\r\n", receiver.name()).into_bytes();
    let mut current: Option<Envelope> = None;
    loop {
        if io.buffer().is_empty() && !out.is_empty() {
            io.get_mut().write_all(&out).await?;
            out.clear();
        }
        let line = match next_line(&mut io, limits).await? {
            Line::Complete(line) => line,
            Line::TooLong(_) => {
                out.extend_from_slice(b"500 5.5.2 Line too long\r\n");
                continue;
            }
            Line::Eof => return Ok(()),
        };
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end();
        let verb = text.split(' ').next().unwrap_or("").to_ascii_uppercase();
        let reply: String = match verb.as_str() {
            "EHLO" => {
                let mut reply = format!("250-{}\r\n", receiver.name());
                let keywords = receiver.ehlo_keywords();
                for (i, keyword) in keywords.iter().enumerate() {
                    let sep = if i + 1 == keywords.len() { ' ' } else { '-' };
                    reply.push_str(&format!("250{sep}{keyword}\r\n"));
                }
                reply
            }
            "HELO" | "NOOP" => "250 2.0.0 Ok\r\n".into(),
            "RSET" => {
                current = None;
                "250 2.0.0 Ok\r\n".into()
            }
            "MAIL" => match argument(text, "MAIL FROM:") {
                Some(rest) => {
                    let (mail_from, mail_params) = split_path(rest);
                    current = Some(Envelope { mail_from, mail_params, ..Envelope::default() });
                    "250 2.1.0 Ok\r\n".into()
                }
                None => "501 5.5.4 Syntax: MAIL FROM:<address>\r\n".into(),
            },
            "RCPT" => match (argument(text, "RCPT TO:"), current.as_mut()) {
                (None, _) => "501 5.5.4 Syntax: RCPT TO:<address>\r\n".into(),
                (Some(_), None) => "503 5.5.1 MAIL first\r\n".into(),
                (Some(rest), Some(envelope)) => {
                    let (address, params) = split_path(rest);
                    match receiver.rcpt(&address) {
                        Some(refusal) => refusal,
                        None => {
                            envelope.rcpt_to.push(address);
                            envelope.rcpt_params.push(params);
                            "250 2.1.5 Ok\r\n".into()
                        }
                    }
                }
            },
            "DATA" => {
                if current.as_ref().is_none_or(|c| c.rcpt_to.is_empty()) {
                    "554 5.5.1 No valid recipients\r\n".into()
                } else {
                    out.extend_from_slice(b"354 End data with <CR><LF>.<CR><LF>\r\n");
                    io.get_mut().write_all(&out).await?;
                    out.clear();
                    let Some(body) = read_body(&mut io, limits).await? else { return Ok(()) };
                    let mut envelope = current.take().unwrap_or_default();
                    if body.oversize {
                        "552 5.3.4 Message too big\r\n".into()
                    } else {
                        envelope.data = body.message;
                        tokio::time::sleep(receiver.delay_before_accepting()).await;
                        receiver.message(envelope);
                        if receiver.hang_up_after_message() {
                            out.extend_from_slice(b"250 2.0.0 Ok: queued, bye\r\n");
                            io.get_mut().write_all(&out).await?;
                            return Ok(());
                        }
                        "250 2.0.0 Ok: queued\r\n".into()
                    }
                }
            }
            "QUIT" => {
                out.extend_from_slice(b"221 2.0.0 Bye\r\n");
                io.get_mut().write_all(&out).await?;
                return Ok(());
            }
            _ => "502 5.5.2 Command not implemented\r\n".into(),
        };
        out.extend_from_slice(reply.as_bytes());
    }
}

async fn next_line<S: AsyncRead + Unpin>(io: &mut BufReader<S>, limits: ReceiveLimits) -> io::Result<Line> {
    tokio::time::timeout(limits.idle, read_line(io, limits.line)).await.map_err(|_| io::Error::from(io::ErrorKind::TimedOut))?
}

/// The DATA body up to CRLF.CRLF; `None` when the client hung up first.
async fn read_body<S: AsyncRead + Unpin>(io: &mut BufReader<S>, limits: ReceiveLimits) -> io::Result<Option<DataBody>> {
    let mut body = DataBody::new(limits.message).with_line_limit(Some(limits.line));
    loop {
        let read = tokio::time::timeout(limits.idle, body.read(io)).await.map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
        match read {
            DataRead::Ended => return Ok(Some(body)),
            DataRead::More => {}
            DataRead::Eof => return Ok(None),
        }
    }
}

/// The text after `prefix` when the line starts with it (any case).
fn argument<'a>(line: &'a str, prefix: &str) -> Option<&'a str> {
    let head = line.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &line[prefix.len()..])
}

/// `<address> PARAMS` → (address, params).
fn split_path(s: &str) -> (String, String) {
    let s = s.trim();
    match (s.find('<'), s.find('>')) {
        (Some(a), Some(b)) if a < b => (s[a + 1..b].to_string(), s[b + 1..].trim().to_string()),
        _ => (s.to_string(), String::new()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use tokio::io::{AsyncReadExt, duplex};

    use super::*;

    #[derive(Default)]
    struct Keep(Mutex<Vec<Envelope>>);

    impl Receiver for Keep {
        fn name(&self) -> &str {
            "keep.test"
        }
        fn rcpt(&self, address: &str) -> Option<String> {
            address.starts_with("no").then(|| "550 5.1.1 No such user\r\n".into())
        }
        fn message(&self, envelope: Envelope) {
            self.0.lock().expect("lock").push(envelope);
        }
    }

    async fn dialogue(input: &[u8], receiver: &Keep) -> String {
        let (mut client, server) = duplex(1 << 16);
        client.write_all(input).await.expect("write");
        client.shutdown().await.expect("shutdown");
        receive(server, receiver, ReceiveLimits { line: 100, message: 1000, idle: Duration::from_secs(5) }).await.expect("receive");
        let mut replies = String::new();
        client.read_to_string(&mut replies).await.expect("read");
        replies
    }

    #[tokio::test]
    async fn pipelined_session_is_recorded_unstuffed() {
        let keep = Keep::default();
        let replies = dialogue(
            b"EHLO c\r\nMAIL FROM:<a@x> SIZE=10\r\nRCPT TO:<b@y> NOTIFY=NEVER\r\nRCPT TO:<nobody@y>\r\nDATA\r\nSubject: t\r\n\r\n..dot\r\n.\r\nQUIT\r\n",
            &keep,
        )
        .await;
        assert!(replies.contains("550 5.1.1 No such user"), "{replies}");
        assert!(replies.ends_with("221 2.0.0 Bye\r\n"), "{replies}");
        let messages = keep.0.lock().expect("lock");
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].mail_params, "SIZE=10");
        assert_eq!(messages[0].rcpt_to, ["b@y"]);
        assert_eq!(messages[0].rcpt_params, ["NOTIFY=NEVER"]);
        assert_eq!(messages[0].data, b"Subject: t\r\n\r\n.dot\r\n");
    }

    #[tokio::test]
    async fn limits_and_sequence_are_enforced() {
        let keep = Keep::default();
        let long = format!("NOOP {}\r\n", "x".repeat(200));
        let big = format!("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n{}.\r\n", "0123456789\r\n".repeat(100));
        let input = format!("RCPT TO:<b@y>\r\nDATA\r\n{long}{big}QUIT\r\n");
        let replies = dialogue(input.as_bytes(), &keep).await;
        assert!(replies.contains("503 5.5.1"), "{replies}");
        assert!(replies.contains("554 5.5.1"), "{replies}");
        assert!(replies.contains("500 5.5.2 Line too long"), "{replies}");
        assert!(replies.contains("552 5.3.4"), "{replies}");
        assert!(keep.0.lock().expect("lock").is_empty());
    }
}
