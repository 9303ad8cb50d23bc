//! The CLI's way to the management API: the running gateway's local socket
//! (`<data_dir>/admin.sock`), or a remote console (`REMPART_API=http://host:port` with
//! `REMPART_TOKEN`), or — when no gateway runs on this configuration — the same API
//! answered in this process over the store itself. Every `domain`, `tenant` and
//! `account` command is one request, whichever way it goes.

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use http_body_util::BodyExt;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use rempart_console::web::admin::{Admin, AdminState, LocalOperator};
use rempart_model::Config;
use serde_json::Value;
use tower::ServiceExt;

pub enum AdminClient {
    Socket(PathBuf),
    Http { authority: String, token: String },
    InProcess(axum::Router),
}

impl AdminClient {
    /// The way to the API for `config` (see the module's comment).
    pub async fn connect(config: &Config, config_given: bool) -> Result<AdminClient, String> {
        if let Ok(url) = std::env::var("REMPART_API") {
            let authority = url.strip_prefix("http://").ok_or(format!("REMPART_API={url}: expected http://host:port"))?;
            let token = std::env::var("REMPART_TOKEN").map_err(|_| "REMPART_API needs REMPART_TOKEN (an operator's API token)")?;
            return Ok(AdminClient::Http { authority: authority.trim_end_matches('/').to_string(), token });
        }
        let socket = rempart::serve::admin_socket_path(config);
        if tokio::net::UnixStream::connect(&socket).await.is_ok() {
            return Ok(AdminClient::Socket(socket));
        }
        if !config_given {
            return Err(format!(
                "no configuration (--config FILE, or ./rempart.toml) and no gateway answering on {}: which gateway's store should this change? Pass --config",
                socket.display()
            ));
        }
        let state = crate::open_state(config, true).await?.ok_or("no state store")?;
        let sealer = rempart_state::dkim_keys::Sealer::of(config).map(Arc::new).map_err(|e| eprintln!("rempart: {e}")).ok();
        let mut admin = Admin::new(state.store.clone(), config, sealer);
        // Nothing runs: the tracking index, if a console kept one here, is free to read.
        let tracking = config.queue.data_dir.join("tracking.redb");
        if tracking.exists() {
            admin.tracking = rempart_console::tracking::TrackingIndex::open(&tracking).map_err(|e| eprintln!("rempart: {e}")).ok();
        }
        let admin = Arc::new(admin);
        let router = rempart_console::web::admin::routes()
            .merge(rempart_console::web::tracking::api_routes())
            .with_state(AdminState(admin))
            .layer(axum::Extension(LocalOperator));
        Ok(AdminClient::InProcess(router))
    }

    /// One request; the answer's JSON, or the API's error message.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value, String> {
        let bytes = body.map(|b| b.to_string()).unwrap_or_default();
        let request = |authority: &str| {
            let mut builder = Request::builder().method(method.clone()).uri(path).header("host", authority);
            if !bytes.is_empty() {
                builder = builder.header("content-type", "application/json");
            }
            builder
        };
        let (status, answer) = match self {
            AdminClient::InProcess(router) => {
                let request = request("localhost").body(Body::from(bytes.clone())).map_err(|e| e.to_string())?;
                let response = router.clone().oneshot(request).await.map_err(|e| e.to_string())?;
                let status = response.status();
                (status, response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes())
            }
            AdminClient::Socket(path) => {
                let stream = tokio::net::UnixStream::connect(path).await.map_err(|e| format!("{}: {e}", path.display()))?;
                send(stream, request("localhost").body(bytes.clone()).map_err(|e| e.to_string())?).await?
            }
            AdminClient::Http { authority, token } => {
                let stream = tokio::net::TcpStream::connect(authority.as_str()).await.map_err(|e| format!("{authority}: {e}"))?;
                let request = request(authority).header("authorization", format!("Bearer {token}"));
                send(stream, request.body(bytes.clone()).map_err(|e| e.to_string())?).await?
            }
        };
        let value: Value = serde_json::from_slice(&answer).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&answer).into_owned()));
        if status.is_success() {
            return Ok(value);
        }
        let message = value.get("error").and_then(Value::as_str).map(str::to_string).unwrap_or_else(|| value.to_string());
        Err(format!("{message} (HTTP {})", status.as_u16()))
    }
}

/// One HTTP/1.1 exchange on `stream`.
async fn send<S>(stream: S, request: Request<String>) -> Result<(hyper::StatusCode, hyper::body::Bytes), String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    let response =
        sender.send_request(request.map(|b| http_body_util::Full::new(hyper::body::Bytes::from(b)))).await.map_err(|e| e.to_string())?;
    let status = response.status();
    let body = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok((status, body))
}
