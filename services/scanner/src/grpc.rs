//! The scanner as a gRPC service (`rempart scanner`) and the edge's client for it.
//!
//! Server: `rempart.v1.Scanner/Scan` takes the envelope frame, then the body in chunks,
//! scans as the in-process scanner does (DNS checks on the async threads, the rest on a
//! blocking thread), records the AWL history, and answers the verdict. Health and
//! reflection services are served beside it.
//!
//! Client: the endpoints are used in turn; a connection failure moves on to the next
//! endpoint at once; any other failure, or the deadline, is the caller's to answer
//! (the edge says 451 4.3.0).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rempart_model::{SessionFacts, Verdict};
use rempart_proto::v1;
use rempart_proto::v1::scan_request::Frame;
use rempart_proto::v1::scanner_client::ScannerClient;
use rempart_proto::v1::scanner_server::ScannerServer;
use tonic::transport::{Channel, Endpoint, Server};
use tonic::{Request, Response, Status, Streaming};

use crate::{ScanInput, Scanner, ScannerError};

/// Body chunk size on the wire.
const CHUNK: usize = 64 * 1024;
/// Largest message a scanner takes (the edge's own limit is lower by configuration).
const MAX_MESSAGE: usize = 256 * 1024 * 1024;

struct Service {
    scanner: Arc<Scanner>,
}

#[tonic::async_trait]
impl v1::scanner_server::Scanner for Service {
    async fn scan(&self, request: Request<Streaming<v1::ScanRequest>>) -> Result<Response<v1::Verdict>, Status> {
        let mut frames = request.into_inner();
        let Some(v1::ScanRequest { frame: Some(Frame::Envelope(envelope)) }) = frames.message().await? else {
            return Err(Status::invalid_argument("the first frame must be the envelope"));
        };
        let mut body = Vec::new();
        while let Some(frame) = frames.message().await? {
            match frame.frame {
                Some(Frame::Chunk(chunk)) if body.len() + chunk.len() <= MAX_MESSAGE => body.extend_from_slice(&chunk),
                Some(Frame::Chunk(_)) => return Err(Status::resource_exhausted(format!("message over {MAX_MESSAGE} bytes"))),
                _ => return Err(Status::invalid_argument("only body chunks may follow the envelope")),
            }
        }
        let facts: SessionFacts = envelope.session.unwrap_or_default().into();
        let (return_path, recipients) = (envelope.return_path, envelope.recipients);
        let network = self
            .scanner
            .network_findings(&ScanInput { facts: &facts, return_path: &return_path, recipients: &recipients, message: &body })
            .await;
        let scanner = self.scanner.clone();
        let (verdict, facts, return_path) = tokio::task::spawn_blocking(move || {
            let input = ScanInput { facts: &facts, return_path: &return_path, recipients: &recipients, message: &body };
            let verdict = scanner.evaluate(&input, network);
            (verdict, facts, return_path)
        })
        .await
        .map_err(|e| Status::internal(format!("the scan failed: {e}")))?;
        tracing::info!(queue_id = %envelope.queue_id, client = %facts.peer_ip, score = verdict.score, action = %verdict.action, "scanned");
        let reply = v1::Verdict::from(&verdict);
        let scanner = self.scanner.clone();
        tokio::spawn(async move { scanner.record(&return_path, &facts.peer_ip, &verdict).await });
        Ok(Response::new(reply))
    }
}

/// Serves the scanner, with health and reflection, until `shutdown` resolves.
pub async fn serve(scanner: Arc<Scanner>, listen: SocketAddr, shutdown: impl Future<Output = ()> + Send) -> Result<(), String> {
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<ScannerServer<Service>>().await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(v1::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| format!("reflection: {e}"))?;
    Server::builder()
        .add_service(health_service)
        .add_service(reflection)
        .add_service(ScannerServer::new(Service { scanner }))
        .serve_with_shutdown(listen, shutdown)
        .await
        .map_err(|e| format!("gRPC server on {listen}: {e}"))
}

/// The edge's handle on remote scanners.
pub struct RemoteScanner {
    endpoints: Vec<(String, Channel)>,
    next: AtomicUsize,
    timeout: Duration,
}

impl RemoteScanner {
    pub fn new(urls: &[String], timeout: Duration) -> Result<RemoteScanner, ScannerError> {
        let err = |url: &str, e: &dyn std::fmt::Display| ScannerError { field: "scanner.endpoints".into(), message: format!("{url}: {e}") };
        let endpoints = urls
            .iter()
            .map(|url| {
                let endpoint = Endpoint::from_shared(url.clone()).map_err(|e| err(url, &e))?;
                Ok((url.clone(), endpoint.connect_timeout(Duration::from_secs(2)).timeout(timeout).connect_lazy()))
            })
            .collect::<Result<Vec<_>, ScannerError>>()?;
        if endpoints.is_empty() {
            return Err(ScannerError { field: "scanner.endpoints".into(), message: "no endpoint".into() });
        }
        Ok(RemoteScanner { endpoints, next: AtomicUsize::new(0), timeout })
    }

    /// Scans on the next endpoint, moving on when one cannot be reached.
    pub async fn scan(&self, queue_id: &str, input: &ScanInput<'_>) -> Result<Verdict, String> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let mut failures = Vec::new();
        for i in 0..self.endpoints.len() {
            let (url, channel) = &self.endpoints[(start + i) % self.endpoints.len()];
            let mut frames = vec![v1::ScanRequest {
                frame: Some(Frame::Envelope(v1::Envelope {
                    queue_id: queue_id.to_string(),
                    session: Some(input.facts.into()),
                    return_path: input.return_path.to_string(),
                    recipients: input.recipients.to_vec(),
                })),
            }];
            frames.extend(input.message.chunks(CHUNK).map(|c| v1::ScanRequest { frame: Some(Frame::Chunk(c.to_vec())) }));
            let mut request = Request::new(futures_util::stream::iter(frames));
            request.set_timeout(self.timeout);
            match ScannerClient::new(channel.clone()).scan(request).await {
                Ok(response) => return Verdict::try_from(response.into_inner()).map_err(|e| format!("{url}: {e}")),
                // Not reachable: try the next scanner.
                Err(status) if status.code() == tonic::Code::Unavailable => failures.push(format!("{url}: {}", status.message())),
                Err(status) => return Err(format!("{url}: {} ({:?})", status.message(), status.code())),
            }
        }
        Err(format!("no scanner reachable: {}", failures.join("; ")))
    }
}
