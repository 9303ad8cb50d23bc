//! BDAT (RFC 3030 CHUNKING). The chunk's bytes are always read, even when the command
//! is refused, so they are never taken for commands.

use rempart_bus::Bus;
use tokio::io::AsyncBufReadExt;

use super::{Chunks, Flow, Pace, Session, State, Transport};
use crate::limits::Reservation;
use rempart_smtp::Reply;

impl<B: Bus, S: Transport> Session<B, S> {
    pub(super) async fn bdat(&mut self, args: &str) -> Flow {
        let mut words = args.split_ascii_whitespace();
        let size = words.next().and_then(|s| s.parse::<u64>().ok());
        let last = match words.next() {
            None => false,
            Some(w) if w.eq_ignore_ascii_case("LAST") => true,
            Some(_) => return self.close_with(Reply::syntax("BDAT size [LAST]")),
        };
        let (Some(size), None) = (size, words.next()) else {
            // Without a size the chunk's end is unknown: the stream cannot be trusted.
            return self.close_with(Reply::syntax("BDAT size [LAST]"));
        };
        let refusal = match self.state {
            State::Rcpt => None,
            State::Mail => Some(Reply::bad_sequence("No valid recipients")),
            State::Greeted => Some(Reply::bad_sequence("Need MAIL command first")),
            State::Connected => Some(Reply::bad_sequence("Send EHLO or HELO first")),
        };
        let max = self.tx.max_size;
        let keep = refusal.is_none();
        let budget = self.shared.data_budget.clone();
        let mut chunks = self.tx.chunks.take().unwrap_or_else(|| Chunks { held: Reservation::new(&budget), ..Default::default() });
        if !self.read_chunk(size, keep.then_some(&mut chunks), max).await {
            return self.close_with(Reply::new(421, "4.4.2", format!("{} Error: timeout or disconnect during BDAT", self.hostname())));
        }
        if let Some(refusal) = refusal {
            return self.reply(refusal);
        }
        if !last {
            self.tx.chunks = Some(chunks);
            return self.reply(Reply::new(250, "2.0.0", format!("{size} octets received")));
        }
        if chunks.oversize {
            self.reset_transaction();
            return self.reply(Reply::new(552, "5.3.4", format!("Message size exceeds fixed maximum message size ({max} bytes)")));
        }
        if chunks.discarded {
            self.reset_transaction();
            tracing::warn!(client = %self.facts.peer_ip, "message refused: smtp.max_data_in_flight reached");
            return self.reply(Reply::new(452, "4.3.1", "Insufficient system storage: too much mail in progress, try again later"));
        }
        let held = std::mem::take(&mut chunks.held);
        let reply = self.queue_message(chunks.body).await;
        drop(held);
        self.reply(reply)
    }

    /// Reads exactly `size` bytes, keeping them in `into` up to `max` in all. False when
    /// the client went away or was too slow.
    async fn read_chunk(&mut self, size: u64, mut into: Option<&mut Chunks>, max: u64) -> bool {
        let timeout = self.view.config.smtp.data_timeout.0;
        let pace = Pace::start(self.view.config.smtp.min_data_rate);
        let mut left = size;
        while left > 0 {
            if pace.too_slow(size - left) {
                tracing::info!(client = %self.facts.peer_ip, "BDAT too slow; session closed");
                return false;
            }
            let buf = match tokio::time::timeout(timeout, self.io.fill_buf()).await {
                Ok(Ok(buf)) if !buf.is_empty() => buf,
                _ => return false,
            };
            let take = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            if let Some(chunks) = into.as_deref_mut() {
                if chunks.body.len() as u64 + take as u64 > max {
                    chunks.oversize = true;
                    chunks.body = Vec::new();
                } else if !chunks.oversize && !chunks.discarded {
                    chunks.body.extend_from_slice(&buf[..take]);
                    if !chunks.held.grow_to(chunks.body.capacity()) {
                        chunks.discarded = true;
                        chunks.body = Vec::new();
                    }
                }
            }
            self.io.consume(take);
            left -= take as u64;
        }
        true
    }
}
