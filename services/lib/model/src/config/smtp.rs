//! `[smtp]`: the edge's listeners, its name, and the limits that protect the gateway.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::HumanDuration;

/// The SMTP edge: listeners, our name, and the limits that protect the gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpConfig {
    /// Listening sockets. Default: one on 127.0.0.1:2525 without PROXY protocol.
    #[serde(rename = "listener")]
    pub listeners: Vec<ListenerConfig>,
    /// Our name in the banner, EHLO reply, Received headers and DSNs. Default "localhost".
    pub hostname: String,
    /// Largest message accepted, in bytes (advertised as SIZE). Default 26214400 (25 MiB).
    pub max_message_size: u64,
    /// Most recipients in one transaction; more get 452 4.5.3. Default 100.
    pub max_recipients: usize,
    /// Client errors (4xx/5xx replies) before 421 and disconnection. Default 10.
    pub max_errors: u32,
    /// The tarpit: from the third unknown recipient of a session on, each RCPT refused
    /// as unknown is answered this much later times the count beyond two (at most 10
    /// times), so guessing addresses is slow. Default "1s"; "0s" disables.
    pub unknown_recipient_delay: HumanDuration,
    /// Unknown recipients one client IP may try in an hour, counted in the store (all
    /// edges): beyond, its sessions get `421 4.7.0` at RCPT (a dictionary attack).
    /// Trusted networks are exempt. Default 50; 0: no limit.
    pub max_unknown_recipients_per_ip: u64,
    /// Longest command line, CRLF included. RFC 5321 sets 512 for the command alone;
    /// extension parameters (SIZE, NOTIFY, ORCPT…) need more. Default 2048.
    pub max_command_line: usize,
    /// Strict mode: refuse a message with a DATA text line longer than this, CRLF
    /// included (`554 5.6.0`; RFC 5321 §4.5.3.1.6 sets 1000). Default: unset, lines of any
    /// length up to the message size are accepted and relayed intact, as Postfix, Exim
    /// and Stalwart do (real mail has HTML and headers on one long line).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_data_line: Option<usize>,
    /// Bytes of message data all sessions may hold in memory at once: past it, a
    /// message being received is read to its end, not kept, and refused with
    /// `452 4.3.1` (the sender retries later). Default 536870912 (512 MiB).
    pub max_data_in_flight: u64,
    /// Time a client gets to send one whole command line. Default 5m (RFC 5321).
    pub command_timeout: HumanDuration,
    /// Time a client gets to send one whole DATA line or BDAT chunk. Default 3m.
    pub data_timeout: HumanDuration,
    /// Lowest average rate, in bytes per second, at which a client may send a message
    /// (DATA or BDAT) once it has sent for 30 s; slower ones are cut with `421 4.4.2`
    /// (a trickling client holds a slot for nothing). Default 500, as Postfix's
    /// `smtpd_min_data_rate`; 0: no minimum.
    pub min_data_rate: u64,
    /// Longest a session may last, whatever it does. Default 30m.
    pub max_session_time: HumanDuration,
    /// Commands that move no mail (NOOP, RSET, VRFY, HELP, EXPN, unknown ones) one
    /// session may send; beyond, `421 4.7.0`. Default 50 (Postfix's junk limit is 100).
    pub max_junk_commands: u32,
    /// Time a client behind a `proxy_protocol` listener has to send the PROXY header.
    /// Default 5s.
    pub proxy_timeout: HumanDuration,
    /// Concurrent sessions in all. When full, the session that has waited longest for
    /// a command (idle at least 1 s) is closed with `421 4.4.2` to make room, before a
    /// new client is refused. Default 1000.
    pub max_connections: usize,
    /// Concurrent sessions from one client IP. Default 20.
    pub max_connections_per_ip: usize,
    /// On shutdown, how long sessions in flight may take to finish. Default 30s.
    pub shutdown_timeout: HumanDuration,
    /// Client networks (CIDRs) exempt from `max_connections_per_ip` and the per-IP rate
    /// limits, as Postfix exempts `$mynetworks`. This grants no relaying. The address is
    /// the client's after PROXY protocol: behind a load balancer without it, every client
    /// has the balancer's address. Default ["127.0.0.0/8", "::1/128"].
    pub trusted_networks: Vec<String>,
    /// Where mail to the bare `postmaster` (RFC 5321 §4.5.1, no domain) goes. Default:
    /// unset, postmaster@ the first configured domain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postmaster: Option<String>,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        Self {
            listeners: vec![ListenerConfig::default()],
            hostname: "localhost".into(),
            max_message_size: 25 * 1024 * 1024,
            max_recipients: 100,
            max_errors: 10,
            unknown_recipient_delay: HumanDuration::secs(1),
            max_unknown_recipients_per_ip: 50,
            max_command_line: 2048,
            max_data_line: None,
            max_data_in_flight: 512 * 1024 * 1024,
            command_timeout: HumanDuration::secs(300),
            data_timeout: HumanDuration::secs(180),
            min_data_rate: 500,
            max_session_time: HumanDuration::secs(30 * 60),
            max_junk_commands: 50,
            proxy_timeout: HumanDuration::secs(5),
            max_connections: 1000,
            max_connections_per_ip: 20,
            shutdown_timeout: HumanDuration::secs(30),
            trusted_networks: vec!["127.0.0.0/8".into(), "::1/128".into()],
            postmaster: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ListenerConfig {
    /// Address and port. Default "127.0.0.1:2525".
    pub address: SocketAddr,
    /// Expect a PROXY protocol v1 or v2 header first (behind a load balancer). Default
    /// false. Needs `proxy_from`.
    pub proxy_protocol: bool,
    /// The networks (CIDRs) of the load balancers allowed to send the PROXY header: a
    /// connection from anywhere else is refused (its header would be a lie about who
    /// is calling). Required with `proxy_protocol`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub proxy_from: Vec<String>,
    /// "smtp" (default: inbound mail for the customer domains, no AUTH), "submission"
    /// (port 587: the customers' users send; STARTTLS then AUTH required) or
    /// "submissions" (port 465: the same over implicit TLS). Both need `[tls]`.
    pub kind: ListenerKind,
}

/// What a listener is for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ListenerKind {
    #[default]
    Smtp,
    Submission,
    Submissions,
}

impl ListenerKind {
    /// Whether clients must log in before sending (and may send anywhere once in).
    pub fn is_submission(self) -> bool {
        self != ListenerKind::Smtp
    }
}

impl Default for ListenerConfig {
    fn default() -> Self {
        Self { address: SocketAddr::from(([127, 0, 0, 1], 2525)), proxy_protocol: false, proxy_from: Vec::new(), kind: ListenerKind::Smtp }
    }
}
