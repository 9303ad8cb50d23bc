//! Connecting to NATS, once for the queue (`[bus]`) and the shared store (`[state]`):
//! the same server list, credentials and TLS settings mean the same thing for both.

use std::path::Path;
use std::time::Duration;

/// Connects to `url`: a cluster's servers, comma-separated (any one that answers will
/// do); `credentials_file` is a NATS `.creds` file; `ca_file` a CA for the server's
/// certificate (TLS is then required). The error names what failed.
pub async fn connect(url: &str, credentials_file: Option<&Path>, ca_file: Option<&Path>) -> Result<async_nats::Client, String> {
    let mut options = async_nats::ConnectOptions::new();
    if let Some(creds) = credentials_file {
        options = options.credentials_file(creds).await.map_err(|e| format!("{}: {e}", creds.display()))?;
    }
    if let Some(ca) = ca_file {
        options = options.add_root_certificates(ca.to_path_buf()).require_tls(true);
    }
    let servers: Vec<&str> = url.split(',').map(str::trim).collect();
    options.connect(servers).await.map_err(|e| format!("nats {url}: {e}"))
}

/// How long a start-up call to JetStream is tried again (`patiently`).
pub const STARTUP_PATIENCE: Duration = Duration::from_secs(60);

/// A start-up call to JetStream (its API times out while a cluster elects a leader, a
/// node just restarted) tried again for up to `STARTUP_PATIENCE`, each failure logged,
/// so a process started during an election waits for it instead of exiting.
pub async fn patiently<T, E: std::fmt::Display, F: std::future::Future<Output = Result<T, E>>>(
    what: &str,
    mut attempt: impl FnMut() -> F,
) -> Result<T, E> {
    let deadline = tokio::time::Instant::now() + STARTUP_PATIENCE;
    loop {
        match attempt().await {
            Err(e) if tokio::time::Instant::now() < deadline => {
                tracing::warn!(error = %e, "{what}: not ready; trying again");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            result => return result,
        }
    }
}
