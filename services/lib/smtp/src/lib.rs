//! SMTP on the wire, shared by the edge (server), the relay (client), the load harness
//! and the test helpers. No I/O policy: callers choose timeouts, limits and what to do
//! with a reply; this crate only frames, parses and formats. `receiver` is the one
//! receiving dialogue for stand-in servers (sinks), with its answers left to the caller.

pub mod bounce;
pub mod framing;
pub mod receiver;
pub mod reply;
pub mod stream;
pub mod tls;
pub mod xtext;

pub use framing::{DataBody, DataRead, Line, dot_stuff, read_line};
pub use reply::{Reply, ReplyError, ReplyLine, ReplyReader, enhanced_status, parse_reply_line, read_reply};
pub use stream::Stream;
