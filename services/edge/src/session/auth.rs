//! AUTH (RFC 4954) on the submission listeners: PLAIN and LOGIN, only over TLS. The
//! accounts and the failure counters live in the shared store (`rempart_state::accounts`),
//! so a guesser is throttled on every edge and on the console alike: each failure in a
//! session doubles the wait before the answer, and past the shared limit the login is
//! refused with `454 4.7.0` before any password is checked.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rempart_bus::Bus;
use rempart_smtp::{Line, Reply};
use rempart_state::accounts::{self, Login};

use super::{Flow, Incoming, Session, State, Transport};

/// The wait before answering a failed login: this, doubled for each earlier failure of
/// the session, at most `MAX_FAILURE_DELAY`.
const FIRST_FAILURE_DELAY: Duration = Duration::from_millis(250);
const MAX_FAILURE_DELAY: Duration = Duration::from_secs(8);

impl<B: Bus, S: Transport> Session<B, S> {
    pub(super) async fn auth(&mut self, args: &str) -> Flow {
        if !self.kind.is_submission() {
            return self.reply(Reply::new(502, "5.5.1", "AUTH is not offered on this port: submit mail on port 587 or 465"));
        }
        if self.facts.tls.is_none() {
            return self.reply(Reply::new(
                538,
                "5.7.11",
                "Encryption required for requested authentication mechanism: send STARTTLS first",
            ));
        }
        match self.state {
            State::Connected => return self.reply(Reply::bad_sequence("Send EHLO first")),
            State::Mail | State::Rcpt => return self.reply(Reply::bad_sequence("AUTH is not allowed during a mail transaction")),
            State::Greeted if self.account.is_some() => return self.reply(Reply::bad_sequence("Already authenticated")),
            State::Greeted => {}
        }
        let mut words = args.split_whitespace();
        let mechanism = words.next().unwrap_or("").to_ascii_uppercase();
        let initial = words.next();
        if words.next().is_some() {
            return self.reply(Reply::syntax("AUTH mechanism [initial-response]"));
        }
        let credentials = match mechanism.as_str() {
            "PLAIN" => {
                let response = match initial {
                    Some(r) => Ok(r.to_string()),
                    None => self.challenge("").await,
                };
                response.and_then(|r| decode(&r)).and_then(|bytes| plain_credentials(&bytes))
            }
            "LOGIN" => {
                let user = match initial {
                    Some(r) => decode(r),
                    None => self.challenge("Username:").await.and_then(|r| decode(&r)),
                };
                match user {
                    Ok(user) => self.challenge("Password:").await.and_then(|r| decode(&r)).map(|password| (text(user), text(password))),
                    Err(e) => Err(e),
                }
            }
            "" => Err(Reply::syntax("AUTH mechanism [initial-response]")),
            _ => Err(Reply::new(504, "5.5.4", format!("Unrecognized authentication type {mechanism}: use PLAIN or LOGIN"))),
        };
        let (login, password) = match credentials {
            Ok(pair) => pair,
            Err(reply) if reply.code == 421 => return self.close_with(reply),
            Err(reply) => return self.reply(reply),
        };
        let Some(state) = self.shared.state.clone() else {
            tracing::error!("AUTH needs the shared state (accounts); none is configured");
            return self.reply(Reply::new(454, "4.7.0", "Temporary authentication failure"));
        };
        match accounts::login(&*state.store, &login, &password, None, &self.facts.peer_ip.to_string(), "smtp").await {
            Ok(Login::Ok(account)) => {
                tracing::info!(client = %self.facts.peer_ip, account = %account.email, mechanism, "authenticated");
                self.outbound_event(&account.email, "login", 0, 0, "").await;
                self.account = Some(*account);
                self.reply(Reply::new(235, "2.7.0", "Authentication successful"))
            }
            // SMTP asks no second factor (`None`), so a code is never needed here.
            Ok(Login::Refused | Login::CodeNeeded) => {
                let delay = FIRST_FAILURE_DELAY.saturating_mul(1 << self.auth_failures.min(8)).min(MAX_FAILURE_DELAY);
                self.auth_failures += 1;
                tokio::time::sleep(delay).await;
                self.reply(Reply::new(535, "5.7.8", "Authentication credentials invalid"))
            }
            Ok(Login::Throttled) => {
                tracing::warn!(client = %self.facts.peer_ip, account = %login.to_ascii_lowercase(), "AUTH throttled: too many failures");
                self.reply(Reply::new(
                    454,
                    "4.7.0",
                    "Too many failed logins from your address or for this account: try again in 15 minutes",
                ))
            }
            Err(e) => {
                tracing::error!(error = %e, "AUTH: the account store failed");
                self.reply(Reply::new(454, "4.7.0", "Temporary authentication failure"))
            }
        }
    }

    /// Sends `334 <prompt in base64>` and reads the client's answer; `*` cancels.
    async fn challenge(&mut self, prompt: &str) -> Result<String, Reply> {
        self.out.extend_from_slice(format!("334 {}\r\n", STANDARD.encode(prompt)).as_bytes());
        if self.flush().await.is_err() {
            return Err(Reply::new(421, "4.4.2", "Connection lost"));
        }
        let timeout = self.view.config.smtp.command_timeout.0;
        match self.next_line(self.view.config.smtp.max_command_line, timeout, false).await {
            Incoming::Line(Line::Complete(line)) => {
                let line = line.strip_suffix(b"\r\n").ok_or_else(|| Reply::new(500, "5.5.2", "Lines must end with CRLF"))?;
                let line = std::str::from_utf8(line).map_err(|_| Reply::new(501, "5.5.2", "Invalid characters in the answer"))?;
                if line.trim() == "*" {
                    return Err(Reply::new(501, "5.0.0", "Authentication cancelled"));
                }
                Ok(line.trim().to_string())
            }
            Incoming::Line(Line::TooLong(_)) => Err(Reply::new(500, "5.5.6", "Authentication exchange line is too long")),
            _ => Err(Reply::new(421, "4.4.2", format!("{} Error: timeout exceeded", self.hostname()))),
        }
    }
}

/// Base64 to bytes; "=" is the empty response (RFC 4954 §4).
fn decode(response: &str) -> Result<Vec<u8>, Reply> {
    if response == "=" {
        return Ok(Vec::new());
    }
    STANDARD.decode(response).map_err(|_| Reply::new(501, "5.5.2", "Cannot decode the response: not base64"))
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8_lossy(&bytes).into_owned()
}

/// PLAIN's `authzid NUL authcid NUL password` (RFC 4616); acting for someone else
/// (an authzid other than the login) is not allowed.
fn plain_credentials(bytes: &[u8]) -> Result<(String, String), Reply> {
    let mut parts = bytes.split(|b| *b == 0);
    let (Some(authzid), Some(authcid), Some(password), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(Reply::new(501, "5.5.2", "Malformed PLAIN response"));
    };
    let (authzid, login) = (text(authzid.to_vec()), text(authcid.to_vec()));
    if !authzid.is_empty() && !authzid.eq_ignore_ascii_case(&login) {
        return Err(Reply::new(535, "5.7.8", "Authentication credentials invalid: you may act only as yourself"));
    }
    Ok((login, text(password.to_vec())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_responses() {
        assert_eq!(plain_credentials(b"\0alice@example.com\0secret").ok(), Some(("alice@example.com".into(), "secret".into())));
        assert!(plain_credentials(b"alice@example.com\0alice@example.com\0secret").is_ok());
        assert_eq!(plain_credentials(b"bob@example.com\0alice@example.com\0secret").map_err(|r| r.code), Err(535));
        assert_eq!(plain_credentials(b"no separators").map_err(|r| r.code), Err(501));
        assert_eq!(plain_credentials(b"\0a\0b\0c").map_err(|r| r.code), Err(501));
        assert_eq!(decode("=").ok(), Some(Vec::new()));
        assert!(decode("not base64!").is_err());
    }
}
