//! DATA: the body ends only at CRLF.CRLF; a body with bare CR or LF is refused whole,
//! so nothing smuggled inside it is ever seen as a second message. Lines may be of any
//! length up to the message size unless `smtp.max_data_line` asks for the strict limit;
//! a client slower than `smtp.min_data_rate` is cut.

use rempart_bus::Bus;

use rempart_smtp::Reply;
use rempart_smtp::{DataBody, DataRead};
use rempart_telemetry::metrics;

use super::{Flow, Pace, Session, State, Transport};
use crate::limits::Reservation;

impl<B: Bus, S: Transport> Session<B, S> {
    pub(super) async fn data(&mut self, args: &str) -> Flow {
        match self.state {
            _ if self.tx.chunks.is_some() => return self.reply(Reply::bad_sequence("DATA cannot follow BDAT")),
            State::Rcpt => {}
            State::Mail => return self.reply(Reply::bad_sequence("No valid recipients")),
            State::Greeted => return self.reply(Reply::bad_sequence("Need MAIL command first")),
            State::Connected => return self.reply(Reply::bad_sequence("Send EHLO or HELO first")),
        }
        if !args.trim().is_empty() {
            return self.reply(Reply::syntax("DATA"));
        }
        self.out.extend_from_slice(b"354 End data with <CR><LF>.<CR><LF>\r\n");
        if self.flush().await.is_err() {
            return Flow::Close;
        }
        let smtp = &self.view.config.smtp;
        let max_size = usize::try_from(self.tx.max_size).unwrap_or(usize::MAX);
        // The body is taken as it arrives, never a whole line at a time: a line may be as
        // long as the message may be (real mail has HTML on one line) and costs nothing
        // beyond the message itself. `max_data_line` is the strict mode.
        let (strict_line, timeout) = (smtp.max_data_line, smtp.data_timeout.0);
        let mut body = DataBody::new(max_size).with_line_limit(strict_line);
        let pace = Pace::start(smtp.min_data_rate);
        let mut held = Reservation::new(&self.shared.data_budget);
        let mut keep_within_budget = |body: &mut DataBody| {
            // Memory held is the buffer's capacity, not only what it holds.
            if !body.discarded && !held.grow_to(body.message.capacity()) {
                body.discard();
            }
        };
        let ended = body.take_buffered(&mut self.io);
        keep_within_budget(&mut body);
        if !ended {
            loop {
                let read = tokio::time::timeout(timeout, body.read(&mut self.io)).await;
                match read {
                    Ok(Ok(DataRead::Ended)) => {
                        keep_within_budget(&mut body);
                        break;
                    }
                    Ok(Ok(DataRead::More)) => keep_within_budget(&mut body),
                    Ok(Ok(DataRead::Eof)) | Ok(Err(_)) => return Flow::Close,
                    Err(_) => {
                        return self.close_with(Reply::new(
                            421,
                            "4.4.2",
                            format!("{} Error: timeout exceeded during DATA", self.hostname()),
                        ));
                    }
                }
                if pace.too_slow(body.received) {
                    tracing::info!(client = %self.facts.peer_ip, bytes = body.received, "DATA too slow; session closed");
                    metrics().connection("closed", "too_slow");
                    let text = format!("{} Error: data arrives too slowly (under {} bytes/s)", self.hostname(), pace.min_rate);
                    return self.close_with(Reply::new(421, "4.4.2", text));
                }
            }
        }
        let refusal = if body.bare_newline {
            Some(Reply::new(554, "5.6.0", "Message refused: bare CR or LF found; lines must end with CRLF (RFC 5321 section 2.3.8)"))
        } else if let Some(limit) = strict_line.filter(|_| body.line_too_long) {
            Some(Reply::new(554, "5.6.0", format!("Message refused: a line is longer than {limit} bytes (RFC 5321 section 4.5.3.1.6)")))
        } else if body.oversize {
            Some(Reply::new(552, "5.3.4", format!("Message size exceeds fixed maximum message size ({} bytes)", self.tx.max_size)))
        } else if body.discarded {
            tracing::warn!(client = %self.facts.peer_ip, bytes = body.received, "message refused: smtp.max_data_in_flight reached");
            Some(Reply::new(452, "4.3.1", "Insufficient system storage: too much mail in progress, try again later"))
        } else {
            None
        };
        if let Some(refusal) = refusal {
            self.reset_transaction();
            return self.reply(refusal);
        }
        let reply = self.queue_message(body.message).await;
        // The reservation lasts until the message is queued (or refused).
        drop(held);
        self.reply(reply)
    }
}
