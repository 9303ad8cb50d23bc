//! Framing: lines with a length limit (commands, replies), the DATA body with
//! dot-unstuffing, where only CRLF.CRLF ends the message (never a bare LF or CR, which
//! is how SMTP smuggling hides a second message inside the first), and dot-stuffing for
//! the sending side.

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, BufReader};

/// One line as read from the wire.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A complete line, its terminator included.
    Complete(Vec<u8>),
    /// Longer than the limit; the whole line was read and thrown away. True when it
    /// ended with CRLF.
    TooLong(bool),
    /// The client closed the connection (a partial line is dropped).
    Eof,
}

/// Reads up to and including the next LF, keeping at most `max` bytes.
pub async fn read_line<R: AsyncBufRead + Unpin>(reader: &mut R, max: usize) -> std::io::Result<Line> {
    let mut line = Vec::new();
    let mut too_long = false;
    // The last two bytes seen, to tell how a discarded line ended.
    let mut tail = [0u8; 2];
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            return Ok(Line::Eof);
        }
        let (take, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        for &b in &buf[..take] {
            tail = [tail[1], b];
        }
        if !too_long {
            if line.len() + take > max {
                too_long = true;
                line = Vec::new();
            } else {
                line.extend_from_slice(&buf[..take]);
            }
        }
        reader.consume(take);
        if done {
            return Ok(if too_long { Line::TooLong(&tail == b"\r\n") } else { Line::Complete(line) });
        }
    }
}

/// Feeds `body` the complete lines already buffered, without waiting (and so without
/// arming a timer per line). Returns true once the final `.` line was taken; a partial
/// or over-long line is left for `read_line`.
pub fn take_buffered_lines<R: AsyncRead + Unpin>(reader: &mut BufReader<R>, body: &mut DataBody, max: usize) -> bool {
    loop {
        let buffered = reader.buffer();
        let Some(end) = buffered.iter().position(|&b| b == b'\n').map(|p| p + 1) else { return false };
        if end > max {
            return false;
        }
        let ended = body.push_line(&buffered[..end]);
        reader.consume(end);
        if ended {
            return true;
        }
    }
}

/// The DATA payload for `body`: every line starting with '.' gets one more (RFC 5321
/// §4.5.2), a final CRLF is added when the body lacks one, and the end-of-data line
/// `.` CRLF follows. The one contract for every sender in the project.
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

/// Assembles a DATA body line by line.
#[derive(Debug)]
pub struct DataBody {
    pub message: Vec<u8>,
    max_size: usize,
    /// The previous line ended with CRLF, so this one starts a line in SMTP's sense.
    at_line_start: bool,
    pub bare_newline: bool,
    pub line_too_long: bool,
    pub oversize: bool,
}

impl DataBody {
    pub fn new(max_size: usize) -> Self {
        Self { message: Vec::new(), max_size, at_line_start: true, bare_newline: false, line_too_long: false, oversize: false }
    }

    /// Adds one line (as returned by `read_line`); returns true when it was the final
    /// `.` CRLF.
    pub fn push_line(&mut self, line: &[u8]) -> bool {
        let crlf = line.ends_with(b"\r\n");
        if self.at_line_start && line == b".\r\n" {
            return true;
        }
        let content = if crlf { &line[..line.len() - 2] } else { line.strip_suffix(b"\n").unwrap_or(line) };
        if !crlf || content.contains(&b'\r') || content.contains(&b'\n') {
            self.bare_newline = true;
        }
        let unstuffed = if self.at_line_start && line.first() == Some(&b'.') { &line[1..] } else { line };
        if self.message.len() + unstuffed.len() > self.max_size {
            self.oversize = true;
        } else if !self.oversize {
            self.message.extend_from_slice(unstuffed);
        }
        self.at_line_start = crlf;
        false
    }

    /// Records a line that was over the length limit (already discarded).
    pub fn push_too_long(&mut self, ended_crlf: bool) {
        self.line_too_long = true;
        self.bare_newline |= !ended_crlf;
        self.at_line_start = ended_crlf;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn feed(chunks: &[&[u8]], max: usize) -> (DataBody, bool) {
        let bytes: Vec<u8> = chunks.concat();
        let mut reader = tokio::io::BufReader::with_capacity(7, &bytes[..]);
        let mut body = DataBody::new(max);
        loop {
            if take_buffered_lines(&mut reader, &mut body, 1000) {
                return (body, true);
            }
            match read_line(&mut reader, 1000).await.unwrap() {
                Line::Complete(l) => {
                    if body.push_line(&l) {
                        return (body, true);
                    }
                }
                Line::TooLong(crlf) => body.push_too_long(crlf),
                Line::Eof => return (body, false),
            }
        }
    }

    #[tokio::test]
    async fn lines_are_limited_and_split_on_lf() {
        let mut r = tokio::io::BufReader::with_capacity(4, &b"EHLO x\r\nAAAAAAAAAAAA\r\nNOOP\r\npartial"[..]);
        assert_eq!(read_line(&mut r, 10).await.unwrap(), Line::Complete(b"EHLO x\r\n".to_vec()));
        assert_eq!(read_line(&mut r, 10).await.unwrap(), Line::TooLong(true));
        assert_eq!(read_line(&mut r, 10).await.unwrap(), Line::Complete(b"NOOP\r\n".to_vec()));
        assert_eq!(read_line(&mut r, 10).await.unwrap(), Line::Eof);
    }

    #[test]
    fn dot_stuffing() {
        assert_eq!(dot_stuff(b"a\r\n.b\r\n..\r\n"), b"a\r\n..b\r\n...\r\n.\r\n");
        assert_eq!(dot_stuff(b".x"), b"..x\r\n.\r\n");
        assert_eq!(dot_stuff(b""), b".\r\n");
    }

    #[tokio::test]
    async fn stuffing_then_unstuffing_gives_the_body_back() {
        let body = b"Subject: x\r\n\r\n.\r\n..two\r\nlast".to_vec();
        let (got, ended) = feed(&[&dot_stuff(&body)], 1 << 20).await;
        assert!(ended);
        assert_eq!(got.message, [&body[..], b"\r\n"].concat());
    }

    #[tokio::test]
    async fn dot_unstuffing_and_end() {
        let (body, ended) = feed(&[b"hi\r\n", b"..\r\n", b".a\r\n", b"\r\n.\r\n"], 1 << 20).await;
        assert!(ended);
        assert_eq!(body.message, b"hi\r\n.\r\na\r\n\r\n");
        assert!(!body.bare_newline);
    }

    #[tokio::test]
    async fn size_limit_discards_but_reads_to_the_end() {
        let (body, ended) = feed(&[b"0123456789\r\n", b"0123456789\r\n", b".\r\n"], 15).await;
        assert!(ended && body.oversize);
    }

    /// The shared SMTP vectors (smtp-proto's data_receiver and aiosmtpd's smuggling
    /// cases): only CRLF.CRLF ends DATA, and bare CR/LF is detected.
    #[tokio::test]
    async fn shared_smuggling_vectors() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../../shared/testdata/smtp/smtp-proto-vectors.json");
        let Ok(text) = std::fs::read_to_string(&path) else {
            eprintln!("skipped: {} not found (shared testdata absent)", path.display());
            return;
        };
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        let vectors = json["data_receiver"]["vectors"].as_array().unwrap();
        assert!(!vectors.is_empty());
        for v in vectors {
            let chunks: Vec<Vec<u8>> = v["chunks"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().as_bytes().to_vec()).collect();
            let refs: Vec<&[u8]> = chunks.iter().map(|c| &c[..]).collect();
            let expected = v["message"].as_str().unwrap().as_bytes();
            let (body, ended) = feed(&refs, 1 << 20).await;
            assert!(ended, "{v}");
            // smtp-proto counts the CRLF before the final dot as part of the terminator;
            // RFC 5321 §4.1.1.4 says it ends the last line, so we keep it in the message.
            let mut with_last_crlf = expected.to_vec();
            with_last_crlf.extend_from_slice(b"\r\n");
            assert_eq!(String::from_utf8_lossy(&body.message), String::from_utf8_lossy(&with_last_crlf), "{v}");
            let has_bare = expected.windows(1).enumerate().any(|(i, w)| {
                (w[0] == b'\n' && (i == 0 || expected[i - 1] != b'\r')) || (w[0] == b'\r' && expected.get(i + 1) != Some(&b'\n'))
            });
            assert_eq!(body.bare_newline, has_bare, "{v}");
        }
    }
}
