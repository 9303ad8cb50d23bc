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

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use mail_auth::hickory_resolver::TokioResolver;
use rempart_model::{InvalidValue, Verdict};
use rempart_proto::v1;
use rempart_proto::v1::scan_request::Frame;
use rempart_proto::v1::scanner_client::ScannerClient;
use rempart_proto::v1::scanner_server::ScannerServer;
use tonic::transport::{Channel, Endpoint, Server};
use tonic::{Request, Response, Status, Streaming};

use rempart_telemetry::propagation::TRACEPARENT;

use rempart_model::{ScanError, ScanFailure, ScanFuture, ScanJob, Verdicts};

use crate::service::traced::ScanPlace;
use crate::{ScanInput, ScannerError};

/// Body chunk size on the wire.
const CHUNK: usize = 64 * 1024;
/// Largest message a scanner takes (the edge's own limit is lower by configuration).
const MAX_MESSAGE: usize = 256 * 1024 * 1024;

struct Service {
    scanner: crate::LiveScanner,
}

#[tonic::async_trait]
impl v1::scanner_server::Scanner for Service {
    async fn scan(&self, request: Request<Streaming<v1::ScanRequest>>) -> Result<Response<v1::Verdict>, Status> {
        let traceparent = request.metadata().get(TRACEPARENT).and_then(|v| v.to_str().ok()).map(str::to_string);
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
        let job = ScanJob {
            queue_id: envelope.queue_id,
            facts: envelope.session.unwrap_or_default().into(),
            return_path: envelope.return_path,
            recipients: envelope.recipients,
            message: body,
            outbound: envelope.outbound,
        };
        // One load per message: a reload reaches the next one.
        let scanner = self.scanner.load().value.clone();
        let (verdict, job) =
            scanner.scan_job(job, ScanPlace::Remote, traceparent.as_deref()).await.map_err(|e| Status::internal(e.to_string()))?;
        tracing::info!(queue_id = %job.queue_id, client = %job.facts.peer_ip, score = verdict.score, action = %verdict.action, "scanned");
        let reply = v1::Verdict::from(&verdict);
        if !job.outbound {
            tokio::spawn(async move {
                scanner.record(&job.return_path, &job.facts, &verdict).await;
                if let Some(class) = scanner.autolearn_class(&verdict) {
                    scanner.autolearn(&job.return_path, &job.message, class).await;
                }
            });
        }
        Ok(Response::new(reply))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GrpcError {
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("gRPC server on {listen}: {source}")]
    Serve { listen: SocketAddr, source: tonic::transport::Error },
    #[error("no scanner address resolved")]
    NoAddress,
    #[error("{url}: {source}")]
    BadVerdict { url: String, source: rempart_proto::InvalidVerdict },
    #[error("{url}: {} ({:?})", status.message(), status.code())]
    Refused { url: String, status: tonic::Status },
    #[error("no scanner reachable: {}", .0.join("; "))]
    Unreachable(Vec<String>),
}

/// Serves the scanner, with health and reflection, until `shutdown` resolves.
pub async fn serve(scanner: crate::LiveScanner, listen: SocketAddr, shutdown: impl Future<Output = ()> + Send) -> Result<(), GrpcError> {
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<ScannerServer<Service>>().await;
    let reflection =
        tonic_reflection::server::Builder::configure().register_encoded_file_descriptor_set(v1::FILE_DESCRIPTOR_SET).build_v1()?;
    Server::builder()
        .add_service(health_service)
        .add_service(reflection)
        .add_service(ScannerServer::new(Service { scanner }))
        .serve_with_shutdown(listen, shutdown)
        .await
        .map_err(|source| GrpcError::Serve { listen, source })
}

/// The edge's handle on remote scanners: every address of every endpoint, used in
/// turn. Names are resolved at start and every `scanner.resolve_every` (30 s) again, with the configured
/// `[dns]` servers when there are some, else the system's resolver.
pub struct RemoteScanner {
    targets: Vec<Target>,
    resolver: Option<TokioResolver>,
    /// Every resolved address, replaced as a whole when names resolve differently.
    channels: RwLock<Arc<Vec<Resolved>>>,
    next: AtomicUsize,
    timeout: Duration,
}

/// One address of one endpoint, with its (lazily connected) channel.
#[derive(Clone)]
struct Resolved {
    target: usize,
    url: String,
    channel: Channel,
}

/// One configured endpoint: "http://scanner:7300".
struct Target {
    url: String,
    scheme: String,
    host: String,
    port: u16,
}

impl Target {
    fn parse(url: &str) -> Result<Target, InvalidValue> {
        let expected = || InvalidValue(format!("{url}: expected http://host:port"));
        let (scheme, rest) = url.split_once("://").ok_or_else(expected)?;
        if scheme != "http" && scheme != "https" {
            return Err(InvalidValue(format!("{url}: unsupported scheme {scheme:?}")));
        }
        let rest = rest.trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(':') => {
                (host, port.parse::<u16>().map_err(|_| InvalidValue(format!("{url}: bad port {port:?}")))?)
            }
            _ => return Err(expected()),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(InvalidValue(format!("{url}: no host")));
        }
        Ok(Target { url: url.to_string(), scheme: scheme.to_string(), host: host.to_string(), port })
    }
}

impl RemoteScanner {
    /// Checks the endpoints and resolves them now and every `resolve_every`; `resolver`:
    /// the `[dns]` one.
    pub async fn start(
        urls: &[String],
        timeout: Duration,
        resolve_every: Duration,
        resolver: Option<TokioResolver>,
    ) -> Result<Arc<RemoteScanner>, ScannerError> {
        let err = |message: String| ScannerError { field: "scanner.endpoints".into(), message };
        if urls.is_empty() {
            return Err(err("no endpoint".into()));
        }
        let targets = urls.iter().map(|u| Target::parse(u).map_err(|e| err(e.to_string()))).collect::<Result<Vec<_>, _>>()?;
        let remote = Arc::new(RemoteScanner { targets, resolver, channels: RwLock::default(), next: AtomicUsize::new(0), timeout });
        remote.resolve().await;
        let weak = Arc::downgrade(&remote);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(resolve_every).await;
                let Some(remote) = weak.upgrade() else { return };
                remote.resolve().await;
            }
        });
        Ok(remote)
    }

    /// Resolves every endpoint; a name that does not resolve now keeps its channels.
    async fn resolve(&self) {
        let current = self.channels();
        let mut fresh = Vec::new();
        for (index, target) in self.targets.iter().enumerate() {
            let addresses = self.addresses(target).await;
            if addresses.is_empty() {
                tracing::warn!(endpoint = %target.url, "scanner endpoint does not resolve; keeping what it resolved to before");
                fresh.extend(current.iter().filter(|r| r.target == index).cloned());
                continue;
            }
            for ip in addresses {
                let url = match ip {
                    IpAddr::V4(v4) => format!("{}://{v4}:{}", target.scheme, target.port),
                    IpAddr::V6(v6) => format!("{}://[{v6}]:{}", target.scheme, target.port),
                };
                // Keep the channel (and its connection) of an address seen before.
                if let Some(existing) = current.iter().find(|r| r.url == url) {
                    fresh.push(Resolved { target: index, ..existing.clone() });
                    continue;
                }
                match Endpoint::from_shared(url.clone()) {
                    Ok(endpoint) => {
                        let channel = endpoint.connect_timeout(Duration::from_secs(2)).timeout(self.timeout).connect_lazy();
                        fresh.push(Resolved { target: index, url, channel });
                    }
                    Err(e) => tracing::warn!(endpoint = %url, error = %e, "bad scanner endpoint"),
                }
            }
        }
        if fresh.is_empty() {
            return; // nothing resolves at all: keep the previous list
        }
        if let Ok(mut channels) = self.channels.write() {
            *channels = Arc::new(fresh);
        }
    }

    async fn addresses(&self, target: &Target) -> Vec<IpAddr> {
        if let Ok(ip) = target.host.parse::<IpAddr>() {
            return vec![ip];
        }
        match &self.resolver {
            Some(resolver) => {
                resolver.lookup_ip(format!("{}.", target.host.trim_end_matches('.'))).await.map(|l| l.iter().collect()).unwrap_or_default()
            }
            None => {
                tokio::net::lookup_host((target.host.as_str(), target.port)).await.map(|a| a.map(|s| s.ip()).collect()).unwrap_or_default()
            }
        }
    }

    fn channels(&self) -> Arc<Vec<Resolved>> {
        self.channels.read().map(|c| c.clone()).unwrap_or_default()
    }

    /// Scans on the next scanner address, moving on when one cannot be reached.
    pub async fn scan(&self, queue_id: &str, input: &ScanInput<'_>, outbound: bool) -> Result<Verdict, GrpcError> {
        let channels = self.channels();
        if channels.is_empty() {
            return Err(GrpcError::NoAddress);
        }
        // The scanner's `scan` span joins the trace of the current (session) span.
        let traceparent: Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>> =
            rempart_telemetry::propagation::traceparent(&tracing::Span::current()).and_then(|value| value.parse().ok());
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let mut failures = Vec::new();
        for i in 0..channels.len() {
            let Resolved { url, channel, .. } = &channels[(start + i) % channels.len()];
            let mut frames = vec![v1::ScanRequest {
                frame: Some(Frame::Envelope(v1::Envelope {
                    queue_id: queue_id.to_string(),
                    session: Some(input.facts.into()),
                    return_path: input.return_path.to_string(),
                    recipients: input.recipients.to_vec(),
                    outbound,
                })),
            }];
            frames.extend(input.message.chunks(CHUNK).map(|c| v1::ScanRequest { frame: Some(Frame::Chunk(c.to_vec())) }));
            let mut request = Request::new(futures_util::stream::iter(frames));
            request.set_timeout(self.timeout);
            if let Some(value) = &traceparent {
                request.metadata_mut().insert(TRACEPARENT, value.clone());
            }
            match ScannerClient::new(channel.clone()).scan(request).await {
                Ok(response) => {
                    return Verdict::try_from(response.into_inner()).map_err(|source| GrpcError::BadVerdict { url: url.clone(), source });
                }
                // Not reachable: try the next scanner.
                Err(status) if status.code() == tonic::Code::Unavailable => failures.push(format!("{url}: {}", status.message())),
                Err(status) => return Err(GrpcError::Refused { url: url.clone(), status }),
            }
        }
        Err(GrpcError::Unreachable(failures))
    }
}

/// Remote scanners as the edge's verdict port: every failure to get a verdict is
/// "unavailable", and the domain's `scanner_fallback` decides. They record the AWL
/// history themselves.
impl Verdicts for RemoteScanner {
    fn verdict(&self, job: ScanJob) -> ScanFuture<'_> {
        Box::pin(async move {
            match self.scan(&job.queue_id, &ScanInput::from(&job), job.outbound).await {
                Ok(verdict) => Ok((verdict, job)),
                Err(e) => Err(ScanFailure { error: ScanError::Unavailable(Box::new(e)), job: Some(job) }),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Target;

    #[test]
    fn endpoints_parse() {
        let t = Target::parse("http://scanner-0.scanners:7300").unwrap();
        assert_eq!((t.scheme.as_str(), t.host.as_str(), t.port), ("http", "scanner-0.scanners", 7300));
        let t = Target::parse("http://[::1]:7300/").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 7300));
        for bad in ["scanner:7300", "ftp://x:1", "http://x", "http://x:port", "http://:7300"] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }
}
