//! The messages of a run: from a corpus directory (ham and spam in the chosen ratio) or
//! generated at the chosen sizes, each stamped with a unique `X-Loadtest-Id` header so
//! the sink can tell which message (and which copy) arrived.

use std::path::{Path, PathBuf};

use crate::scenario::Mix;

pub const ID_HEADER: &str = "X-Loadtest-Id";

/// A small deterministic PRNG (xorshift64*): reproducible runs, no dependency.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

pub struct MessageSource {
    ham: Vec<Vec<u8>>,
    spam: Vec<Vec<u8>>,
    spam_ratio: f64,
    /// (size, cumulative weight) for generated messages.
    sizes: Vec<(usize, f64)>,
    pub description: String,
}

impl MessageSource {
    pub fn new(mix: &Mix) -> Result<MessageSource, String> {
        let mut total = 0.0;
        let sizes = mix
            .sizes
            .iter()
            .map(|s| {
                total += s.weight;
                (s.bytes, total)
            })
            .collect();
        let mut source = MessageSource { ham: Vec::new(), spam: Vec::new(), spam_ratio: mix.spam_ratio, sizes, description: String::new() };
        let default_corpus = Path::new("../shared/corpus/train");
        let corpus = match &mix.corpus {
            Some(dir) => Some(dir.clone()),
            None if !mix.generated && default_corpus.is_dir() => Some(default_corpus.to_path_buf()),
            None => None,
        };
        if let Some(dir) = corpus.filter(|_| !mix.generated) {
            load_dir(&dir, false, &mut source.ham, &mut source.spam)?;
            if source.ham.is_empty() && source.spam.is_empty() {
                return Err(format!("{}: no messages found", dir.display()));
            }
            source.description = format!("corpus {} ({} ham, {} spam)", dir.display(), source.ham.len(), source.spam.len());
        } else {
            let sizes: Vec<String> = mix.sizes.iter().map(|s| format!("{} B × {}", s.bytes, s.weight)).collect();
            source.description = format!("generated ({})", sizes.join(", "));
        }
        Ok(source)
    }

    /// Message `id`: stamped, with CRLF line ends.
    pub fn message(&self, id: u64, rng: &mut Rng, sender: &str) -> Vec<u8> {
        let body = if self.ham.is_empty() && self.spam.is_empty() {
            let draw = rng.unit() * self.sizes.last().map_or(1.0, |s| s.1);
            let size = self.sizes.iter().find(|(_, w)| draw < *w).or(self.sizes.last()).map_or(4096, |s| s.0);
            generate(id, size, sender)
        } else {
            let spam = self.ham.is_empty() || (!self.spam.is_empty() && rng.unit() < self.spam_ratio);
            let set = if spam { &self.spam } else { &self.ham };
            set[(rng.next_u64() % set.len() as u64) as usize].clone()
        };
        let mut out = Vec::with_capacity(body.len() + 64);
        out.extend_from_slice(format!("{ID_HEADER}: {id}\r\n").as_bytes());
        out.extend_from_slice(&body);
        out
    }
}

/// The id a message carries, from its header block.
pub fn find_id(message: &[u8]) -> Option<u64> {
    let header_end = message.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(message.len().min(64 * 1024));
    let headers = &message[..header_end];
    let needle = format!("{ID_HEADER}: ");
    let at = headers.windows(needle.len()).position(|w| w.eq_ignore_ascii_case(needle.as_bytes()))?;
    let rest = &headers[at + needle.len()..];
    let end = rest.iter().position(|b| !b.is_ascii_digit()).unwrap_or(rest.len());
    std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
}

fn load_dir(dir: &Path, spam: bool, ham_out: &mut Vec<Vec<u8>>, spam_out: &mut Vec<Vec<u8>>) -> Result<(), String> {
    let mut entries: Vec<PathBuf> =
        std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for path in entries {
        let is_spam = spam || path.file_name().is_some_and(|n| n.to_string_lossy().to_ascii_lowercase().contains("spam"));
        if path.is_dir() {
            load_dir(&path, is_spam, ham_out, spam_out)?;
            continue;
        }
        let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let messages = if bytes.starts_with(b"From ") { rempart_model::mbox::split(&bytes) } else { vec![bytes] };
        let out = if is_spam { &mut *spam_out } else { &mut *ham_out };
        out.extend(messages.into_iter().map(|m| crlf(&m)));
    }
    Ok(())
}

/// Every line end (LF, CR or CRLF) becomes CRLF: SMTP requires it, and the gateway
/// refuses bare CR or LF.
fn crlf(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 40);
    let mut i = 0;
    while i < message.len() {
        match message[i] {
            b'\r' => {
                out.extend_from_slice(b"\r\n");
                if message.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
            }
            b'\n' => out.extend_from_slice(b"\r\n"),
            b => out.push(b),
        }
        i += 1;
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A plain-text message of about `size` bytes.
fn generate(id: u64, size: usize, sender: &str) -> Vec<u8> {
    let mut out = format!(
        "From: Load Test <{sender}>\r\nTo: user@example.com\r\nSubject: load test message {id}\r\nMessage-ID: <{id}.{size}@loadtest.example>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
    )
    .into_bytes();
    let line = b"The quick brown fox jumps over the lazy dog while the load test measures the gateway.\r\n";
    while out.len() < size {
        out.extend_from_slice(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_messages_are_stamped_and_sized() {
        let mix = Mix { generated: true, ..Mix::default() };
        let source = MessageSource::new(&mix).unwrap();
        let mut rng = Rng::new(7);
        for id in 0..50 {
            let m = source.message(id, &mut rng, "a@b.example");
            assert_eq!(find_id(&m), Some(id));
            assert!(m.len() >= 4096 && !m.windows(2).any(|w| w[1] == b'\n' && w[0] != b'\r'));
        }
        assert_eq!(crlf(b"a\nb\r\nc\rd"), b"a\r\nb\r\nc\r\nd\r\n");
        assert_eq!(find_id(b"Subject: x\r\n\r\nX-Loadtest-Id: 5\r\n"), None, "only in the header block");
    }
}
