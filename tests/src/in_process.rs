//! The gateway's roles in this test process: a runtime of their own on a thread of
//! their own, their log lines (the binary's JSON) in a buffer of the gateway's.

use std::sync::{Arc, Mutex, Once};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;

pub(crate) struct InProcess {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl InProcess {
    pub(crate) fn start(config: rempart_model::Config, log: Arc<Mutex<String>>) -> InProcess {
        record_panics();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let writer_log = log.clone();
            let logs = rempart_telemetry::json_logs(move || LogWriter(writer_log.clone())).with_filter(rempart_telemetry::log_filter());
            let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(logs));
            let for_workers = dispatch.clone();
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                // Each runtime thread logs to this gateway's buffer for as long as it lives.
                .on_thread_start(move || std::mem::forget(tracing::dispatcher::set_default(&for_workers)))
                .build()
                .expect("test runtime");
            let _default = tracing::dispatcher::set_default(&dispatch);
            let shutdown = async move {
                let _ = stopped.await;
            };
            let served = runtime.block_on(rempart::serve::serve(Arc::new(config), rempart::serve::ALL, shutdown, None));
            if let Err(e) = served
                && let Ok(mut log) = log.lock()
            {
                log.push_str(&format!("rempart: {e}\n"));
            }
            runtime.shutdown_timeout(Duration::from_secs(2));
        });
        InProcess { stop: Some(stop), thread: Some(thread) }
    }

    /// As SIGTERM: no new connections, sessions and deliveries in flight finish.
    pub(crate) fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    pub(crate) fn finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }
}

struct LogWriter(Arc<Mutex<String>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut log) = self.0.lock() {
            log.push_str(&String::from_utf8_lossy(buf));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

static PANICS: Mutex<String> = Mutex::new(String::new());

/// Panics of this process (a gateway task's among them), as the binary's stderr shows them.
pub(crate) fn panics() -> String {
    PANICS.lock().map(|p| p.clone()).unwrap_or_default()
}

fn record_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Ok(mut panics) = PANICS.lock() {
                panics.push_str(&format!("thread panicked: {info}\n"));
            }
            default(info);
        }));
    });
}
