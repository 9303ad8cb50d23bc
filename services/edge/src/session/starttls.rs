//! STARTTLS (RFC 3207). Anything the client pipelined after the command is discarded
//! (the CVE-2011-0411 command injection), and the session starts over from EHLO.

use rempart_bus::Bus;
use rempart_smtp::{Reply, Stream};
use tokio::io::BufReader;

use super::{Flow, Session, State, Transport};

impl<B: Bus, S: Transport> Session<B, S> {
    pub(super) async fn starttls(&mut self, args: &str) -> Flow {
        let Some(acceptor) = self.view.tls.clone() else {
            return self.reply(Reply::new(502, "5.5.1", "STARTTLS not available"));
        };
        if self.facts.tls.is_some() {
            return self.reply(Reply::bad_sequence("Already using TLS"));
        }
        if self.state == State::Connected {
            return self.reply(Reply::bad_sequence("Send EHLO first"));
        }
        if !args.trim().is_empty() {
            return self.reply(Reply::syntax("STARTTLS"));
        }
        self.out.extend_from_slice(Reply::new(220, "2.0.0", "Ready to start TLS").wire().as_bytes());
        if self.flush().await.is_err() {
            return Flow::Close;
        }
        if !self.io.buffer().is_empty() {
            tracing::warn!(client = %self.facts.peer_ip, "discarding plaintext pipelined after STARTTLS");
        }
        // A new reader: whatever was buffered in plaintext is dropped with the old one.
        let mut stream = std::mem::replace(&mut self.io, BufReader::new(Stream::Closed)).into_inner();
        let timeout = self.view.config.smtp.command_timeout.0;
        match tokio::time::timeout(timeout, stream.accept_tls(&acceptor)).await {
            Ok(Ok(())) => {
                self.facts.tls = stream.tls_description();
                self.io = BufReader::new(stream);
                self.state = State::Connected;
                self.facts.helo.clear();
                self.reset_transaction();
                Flow::Continue
            }
            Ok(Err(e)) => {
                tracing::info!(client = %self.facts.peer_ip, error = %e, "TLS handshake failed");
                Flow::Close
            }
            Err(_) => Flow::Close,
        }
    }
}
