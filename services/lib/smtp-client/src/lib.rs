//! The gateway's SMTP client and what it stands on: a connection speaking the client
//! side (`conn`), delivery of one transaction to a route or an MX host (`client`),
//! TLS roots and connectors per route (`tls`), DANE (`dane`), and MX lookups with the
//! one resolver built from `[dns]` (`mx`). The relay delivers with it; recipient
//! callouts and `rempart probe` ask with it.

mod client;
pub mod conn;
pub mod dane;
pub mod mx;
pub mod tls;

pub use client::{Attempt, Client, Destination, unlikely_address};
pub use tls::{Connectors, TlsSetupError, ca_file_roots, server_name, system_roots};
