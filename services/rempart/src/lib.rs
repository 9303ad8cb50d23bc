//! The gateway's roles as a library: the `rempart` binary runs them until a signal,
//! the in-process end-to-end tests until they are done with them.

pub mod reload;
pub mod serve;
