//! A raw SMTP client for protocol tests: send exactly these bytes, read that reply.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

pub struct SmtpClient {
    reader: BufReader<TcpStream>,
    stream: TcpStream,
}

/// One reply: its code and all its lines.
#[derive(Debug, Clone)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    pub fn text(&self) -> String {
        self.lines.join("\n")
    }

    /// The enhanced status code of the last line (`5.7.1`), if any.
    pub fn enhanced(&self) -> Option<String> {
        let last = self.lines.last()?;
        let word = last.get(4..)?.split_whitespace().next()?;
        let parts: Vec<&str> = word.split('.').collect();
        (parts.len() == 3 && parts.iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))).then(|| word.to_string())
    }
}

impl SmtpClient {
    pub fn connect(addr: &str) -> SmtpClient {
        Self::connect_raw(addr, None)
    }

    /// Connects, optionally sends `preamble` (a PROXY header) first, and reads the banner.
    pub fn connect_raw(addr: &str, preamble: Option<&[u8]>) -> SmtpClient {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(15))).expect("timeout");
        let mut c = SmtpClient { reader: BufReader::new(stream.try_clone().expect("clone")), stream };
        if let Some(p) = preamble {
            c.send_raw(p);
        }
        let banner = c.read_reply();
        assert_eq!(banner.code, 220, "banner: {banner:?}");
        c
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Sends one command line (CRLF added) and reads its reply.
    pub fn cmd(&mut self, line: &str) -> Reply {
        self.send_raw(format!("{line}\r\n").as_bytes());
        self.read_reply()
    }

    pub fn read_reply(&mut self) -> Reply {
        self.try_read_reply().expect("a reply")
    }

    /// `None` when the server closed the connection (or sent something that is not a reply).
    pub fn try_read_reply(&mut self) -> Option<Reply> {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            match self.reader.read_line(&mut line) {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
            let parsed = rempart_smtp::parse_reply_line(&line)?;
            lines.push(line.trim_end().to_string());
            if parsed.last {
                return Some(Reply { code: parsed.code, lines });
            }
        }
    }

    /// True when the server has closed the connection (reads EOF within the timeout).
    pub fn is_closed(&mut self) -> bool {
        let mut buf = String::new();
        matches!(self.reader.read_line(&mut buf), Ok(0) | Err(_))
    }

    pub fn ehlo(&mut self) -> Reply {
        let r = self.cmd("EHLO client.test");
        assert_eq!(r.code, 250, "{r:?}");
        r
    }

    /// A whole transaction; returns the final reply to the message.
    pub fn send_mail(&mut self, from: &str, to: &[&str], message: &str) -> Reply {
        let r = self.cmd(&format!("MAIL FROM:<{from}>"));
        assert_eq!(r.code, 250, "{r:?}");
        for rcpt in to {
            let r = self.cmd(&format!("RCPT TO:<{rcpt}>"));
            assert_eq!(r.code, 250, "{r:?}");
        }
        let r = self.cmd("DATA");
        assert_eq!(r.code, 354, "{r:?}");
        self.send_raw(&rempart_smtp::dot_stuff(message.as_bytes()));
        self.read_reply()
    }

    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }
}

/// One SMTP transaction that reports failure instead of panicking: the gateway may die
/// at any moment. Returns the final reply code.
pub fn try_send(addr: &str, subject: &str) -> std::io::Result<u16> {
    let stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    let mut reply = || -> std::io::Result<u16> {
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            let parsed = rempart_smtp::parse_reply_line(&line).ok_or(std::io::ErrorKind::InvalidData)?;
            if parsed.last {
                return Ok(parsed.code);
            }
        }
    };
    let mut step = |send: &[u8], want: u16| -> std::io::Result<u16> {
        if !send.is_empty() {
            writer.write_all(send)?;
        }
        let code = reply()?;
        if code != want { Err(std::io::Error::other(format!("got {code}, wanted {want}"))) } else { Ok(code) }
    };
    step(b"", 220)?;
    step(b"EHLO crash.test\r\n", 250)?;
    step(b"MAIL FROM:<s@sender.test>\r\n", 250)?;
    step(b"RCPT TO:<alice@example.com>\r\n", 250)?;
    step(b"DATA\r\n", 354)?;
    step(&rempart_smtp::dot_stuff(crate::message(subject).as_bytes()), 250)?;
    let _ = step(b"QUIT\r\n", 221);
    Ok(250)
}
