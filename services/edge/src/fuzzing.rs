//! For the fuzz targets (`fuzz/`, cargo feature `fuzzing`): whole SMTP sessions over an
//! in-memory pipe, with the real session code and a real embedded queue, so the
//! command parser, DATA and BDAT framing and the ESMTP parameters are fuzzed as a
//! client meets them.

use std::sync::Arc;
use std::time::Duration;

use rempart_bus::EmbeddedBus;
use rempart_model::config::ListenerKind;
use rempart_model::{Config, Live};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};

use crate::session::Session;
use crate::{EdgeError, EdgeView, Shared};

pub struct SessionHarness {
    shared: Arc<Shared<EmbeddedBus>>,
    runtime: tokio::runtime::Runtime,
}

impl SessionHarness {
    /// Sessions as `config` sets them (no scanner, no shared state), queueing to `bus`.
    pub fn new(config: Config, bus: EmbeddedBus) -> Result<Self, EdgeError> {
        let data_budget = crate::limits::DataBudget::new(usize::try_from(config.smtp.max_data_in_flight).unwrap_or(usize::MAX));
        let shared = Arc::new(Shared {
            data_budget,
            live: Live::new(EdgeView::build(Arc::new(config), None)?),
            bus,
            verdicts: None,
            state: None,
            resolver: None,
            batv: Default::default(),
        });
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| EdgeError::Tls(format!("runtime: {e}")))?;
        Ok(Self { shared, runtime })
    }

    /// One session: the client sends `input` and closes; gives what the server said.
    pub fn run(&self, input: &[u8], kind: ListenerKind) -> Vec<u8> {
        let shared = self.shared.clone();
        self.runtime.block_on(async move {
            let (client, server) = tokio::io::duplex(64 * 1024);
            let (_stop, shutdown) = tokio::sync::watch::channel(false);
            let io = BufReader::new(rempart_smtp::Stream::Plain(server));
            let session = Session::new(
                shared.clone(),
                shared.live.load(),
                io,
                std::net::Ipv4Addr::new(192, 0, 2, 1).into(),
                false,
                kind,
                None,
                shutdown,
            );
            let running = tokio::spawn(session.run());
            let (mut read, mut write) = tokio::io::split(client);
            let reader = tokio::spawn(async move {
                let mut out = Vec::new();
                let _ = read.read_to_end(&mut out).await;
                out
            });
            let _ = write.write_all(input).await;
            let _ = write.shutdown().await;
            drop(write);
            let _ = tokio::time::timeout(Duration::from_secs(10), running).await;
            reader.await.unwrap_or_default()
        })
    }
}
