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

/// Where the DATA parser is within a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Position {
    /// After CRLF (or at the start): a `.` here is stuffing or the end.
    LineStart,
    /// A line that began with `.`.
    Dot,
    /// A line that began with `.` CR.
    DotCr,
    /// Inside a line; `cr`: the last byte was a CR not yet followed by LF.
    InLine { cr: bool },
}

/// Assembles a DATA body from the bytes as they arrive, without holding a line of its
/// own: a client's line of any length costs no more memory than the message it is in
/// (which `max_size` bounds).
#[derive(Debug)]
pub struct DataBody {
    pub message: Vec<u8>,
    max_size: usize,
    /// Longest line allowed, CRLF included (`None`: any).
    max_line: Option<usize>,
    position: Position,
    /// Bytes of the current line so far.
    line_len: usize,
    pub bare_newline: bool,
    pub line_too_long: bool,
    pub oversize: bool,
    /// The caller stopped keeping the data (a memory budget ran out): read to its end,
    /// kept nowhere.
    pub discarded: bool,
    /// Bytes read from the client, dots and line ends included.
    pub received: u64,
}

/// What one read of the DATA stream gave.
#[derive(Debug, PartialEq, Eq)]
pub enum DataRead {
    /// The final `.` CRLF came: the body is complete.
    Ended,
    /// More is needed.
    More,
    /// The client closed the connection first.
    Eof,
}

impl DataBody {
    pub fn new(max_size: usize) -> Self {
        Self {
            message: Vec::new(),
            max_size,
            max_line: None,
            position: Position::LineStart,
            line_len: 0,
            bare_newline: false,
            line_too_long: false,
            oversize: false,
            discarded: false,
            received: 0,
        }
    }

    /// Flags lines longer than `max` bytes, CRLF included (the strict mode).
    pub fn with_line_limit(mut self, max: Option<usize>) -> Self {
        self.max_line = max;
        self
    }

    /// Keeps nothing more of this message (and lets go of what was kept).
    pub fn discard(&mut self) {
        self.discarded = true;
        self.message = Vec::new();
    }

    fn keep(&mut self, bytes: &[u8]) {
        if self.oversize || self.discarded {
            return;
        }
        if self.message.len() + bytes.len() > self.max_size {
            self.oversize = true;
            // Nothing more is kept: the message is refused once it ends.
            self.message = Vec::new();
        } else {
            self.message.extend_from_slice(bytes);
        }
    }

    /// Takes bytes as they came; gives how many were used when they hold the final
    /// `.` CRLF (the rest belongs to the next command), `None` when all were used.
    pub fn push(&mut self, bytes: &[u8]) -> Option<usize> {
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            match self.position {
                Position::LineStart => {
                    self.line_len = 0;
                    if b == b'.' {
                        self.position = Position::Dot;
                        self.count_line(1);
                        i += 1;
                    } else {
                        self.position = Position::InLine { cr: false };
                    }
                }
                Position::Dot if b == b'\r' => {
                    self.position = Position::DotCr;
                    self.count_line(1);
                    i += 1;
                }
                // The dot was stuffing: dropped.
                Position::Dot => self.position = Position::InLine { cr: false },
                Position::DotCr if b == b'\n' => {
                    self.received += (i + 1) as u64;
                    return Some(i + 1);
                }
                Position::DotCr => {
                    self.keep(b"\r");
                    self.position = Position::InLine { cr: true };
                }
                Position::InLine { cr } => {
                    // A run of ordinary bytes at once.
                    let run = bytes[i..].iter().position(|&c| c == b'\r' || c == b'\n').unwrap_or(bytes.len() - i);
                    if run > 0 {
                        if cr {
                            self.bare_newline = true;
                        }
                        self.keep(&bytes[i..i + run]);
                        self.count_line(run);
                        self.position = Position::InLine { cr: false };
                        i += run;
                        continue;
                    }
                    self.keep(&bytes[i..=i]);
                    self.count_line(1);
                    i += 1;
                    if b == b'\n' {
                        if cr {
                            self.position = Position::LineStart;
                        } else {
                            // A bare LF ends no line in SMTP's sense.
                            self.bare_newline = true;
                            self.position = Position::InLine { cr: false };
                        }
                    } else {
                        if cr {
                            self.bare_newline = true;
                        }
                        self.position = Position::InLine { cr: true };
                    }
                }
            }
        }
        self.received += bytes.len() as u64;
        None
    }

    fn count_line(&mut self, n: usize) {
        self.line_len += n;
        if self.max_line.is_some_and(|max| self.line_len > max) {
            self.line_too_long = true;
        }
    }

    /// Reads what the client sent next (waiting for it) into the body.
    pub async fn read<R: AsyncBufRead + Unpin>(&mut self, reader: &mut R) -> std::io::Result<DataRead> {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            return Ok(DataRead::Eof);
        }
        let (used, ended) = match self.push(buf) {
            Some(used) => (used, true),
            None => (buf.len(), false),
        };
        reader.consume(used);
        Ok(if ended { DataRead::Ended } else { DataRead::More })
    }

    /// The complete lines already buffered, without waiting (no timer armed per read).
    /// True once the final `.` CRLF was taken.
    pub fn take_buffered<R: AsyncRead + Unpin>(&mut self, reader: &mut BufReader<R>) -> bool {
        let buffered = reader.buffer();
        if buffered.is_empty() {
            return false;
        }
        let (used, ended) = match self.push(buffered) {
            Some(used) => (used, true),
            None => (buffered.len(), false),
        };
        reader.consume(used);
        ended
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
            match body.read(&mut reader).await.unwrap() {
                DataRead::Ended => return (body, true),
                DataRead::More => {}
                DataRead::Eof => return (body, false),
            }
        }
    }

    proptest::proptest! {
        /// Stuffing then reading back gives the body (with a final CRLF), for any body
        /// made of CRLF lines, however the reads are cut.
        #[test]
        fn stuffing_round_trips(lines in proptest::collection::vec("[^\\r\\n]{0,30}", 0..12), cut in 1usize..40) {
            let body: Vec<u8> = lines.iter().flat_map(|l| [l.as_bytes(), b"\r\n"].concat()).collect();
            let wire = dot_stuff(&body);
            let mut data = DataBody::new(1 << 20);
            let mut ended = None;
            let mut used = 0;
            for chunk in wire.chunks(cut) {
                if let Some(n) = data.push(chunk) {
                    ended = Some(used + n);
                    break;
                }
                used += chunk.len();
            }
            proptest::prop_assert_eq!(ended, Some(wire.len()));
            proptest::prop_assert_eq!(data.message, body);
            proptest::prop_assert!(!data.bare_newline);
        }
    }

    /// Every way of cutting the bytes into reads gives the same body.
    #[tokio::test]
    async fn the_body_does_not_depend_on_how_reads_are_cut() {
        let input = b"a\r\n..b\r\n.\rx\r\nbare\nlf\r\n.c\r\n\r\n.\r\nNEXT";
        let (whole, ended) = feed(&[input], 1 << 20).await;
        assert!(ended && whole.bare_newline);
        assert_eq!(whole.message, b"a\r\n.b\r\n\rx\r\nbare\nlf\r\nc\r\n\r\n");
        for size in 1..input.len() {
            let mut body = DataBody::new(1 << 20);
            let mut used = 0;
            for chunk in input.chunks(size) {
                if let Some(n) = body.push(chunk) {
                    used += n;
                    break;
                }
                used += chunk.len();
            }
            assert_eq!((&body.message, body.bare_newline), (&whole.message, true), "reads of {size}");
            assert_eq!(&input[used..], b"NEXT", "reads of {size}");
        }
    }

    /// Issue 30, defect 6: a line of any length is never held whole beside the
    /// message: memory is the message, up to `max_size`, and then nothing more.
    #[test]
    fn a_huge_line_is_not_buffered_past_the_size_limit() {
        let mut body = DataBody::new(1000).with_line_limit(Some(998));
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..400 {
            assert_eq!(body.push(&chunk), None);
        }
        assert!(body.oversize && body.line_too_long);
        assert!(body.message.capacity() <= 1000, "kept {}", body.message.capacity());
        assert_eq!(body.push(b"\r\n.\r\n"), Some(5));
        assert_eq!(body.received, 400 * 64 * 1024 + 5);
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
