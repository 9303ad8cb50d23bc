//! An HTTPS server serving one fixed text/plain document per host name (MTA-STS
//! policies), with a certificate the test gives; it counts the requests per host.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

pub struct HttpsServer {
    pub addr: SocketAddr,
    requests: Arc<Mutex<HashMap<String, usize>>>,
    _runtime: tokio::runtime::Runtime,
}

impl HttpsServer {
    /// Serves, at every path, the document of the request's Host from `documents`
    /// (host, body) as text/plain, or a 404; with `cert` / `key` (PEM files).
    pub fn start(cert: &Path, key: &Path, documents: &[(&str, &str)]) -> HttpsServer {
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(cert).expect("cert file").collect::<Result<_, _>>().expect("cert PEM");
        let key = PrivateKeyDer::from_pem_file(key).expect("key PEM");
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).expect("bind https");
        let addr = listener.local_addr().expect("addr");
        let requests = Arc::new(Mutex::new(HashMap::new()));
        let documents: Arc<HashMap<String, String>> = Arc::new(documents.iter().map(|(h, b)| (h.to_string(), b.to_string())).collect());
        let counter = requests.clone();
        runtime.spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, documents, counter) = (acceptor.clone(), documents.clone(), counter.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                    let mut request = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match tls.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let request = String::from_utf8_lossy(&request).to_string();
                    let host = request
                        .lines()
                        .find_map(|l| l.strip_prefix("Host: ").or_else(|| l.strip_prefix("host: ")))
                        .unwrap_or_default()
                        .trim()
                        .to_string();
                    *counter.lock().expect("counter").entry(host.clone()).or_default() += 1;
                    let response = match documents.get(&host) {
                        Some(body) => format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        ),
                        None => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string(),
                    };
                    let _ = tls.write_all(response.as_bytes()).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        HttpsServer { addr, requests, _runtime: runtime }
    }

    /// Requests answered for `host`.
    pub fn requests(&self, host: &str) -> usize {
        self.requests.lock().expect("counter").get(host).copied().unwrap_or_default()
    }
}
