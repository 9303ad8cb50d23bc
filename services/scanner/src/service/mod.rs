//! The scanner as a service: the gRPC Scan server and the remote client edges use
//! ([`grpc`]), the scans of messages queued while no scanner answered
//! ([`post_queue`]), the one traced scan entry point ([`traced`]), and the
//! `check-sender` diagnostics ([`diagnose`]).

pub mod diagnose;
pub mod grpc;
pub mod post_queue;
pub mod traced;
