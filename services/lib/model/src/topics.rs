//! The names of the queue's topics: what the bus carries, named where the decisions
//! about them are made (`disposition`), so the bus itself decides nothing.

/// Topic of messages waiting for delivery to customer servers.
pub const DELIVER_TOPIC: &str = "rempart.deliver";
/// Topic of messages held aside by the quarantine action; the console consumes it into
/// its quarantine store.
pub const QUARANTINE_TOPIC: &str = "rempart.quarantine";
/// Topic of messages accepted while no scanner answered (`scanner_fallback = "queue"`):
/// scanners consume it and route each message as its verdict says.
pub const SCAN_TOPIC: &str = "rempart.scan";
/// Topic of parked messages: ones a consumer could not handle (it panicked on them
/// `MAX_PANICS` times). Nobody consumes it; an operator looks (`HeldMeta` says why).
pub const HELD_TOPIC: &str = "rempart.held";
