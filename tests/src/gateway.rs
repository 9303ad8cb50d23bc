//! The gateway under test: the real `rempart` process (crash, cluster, CLI, telemetry
//! tests), or its roles run in this test process on their own runtime (protocol
//! tests: no binary to start, the same `serve` code the binary runs).

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::in_process::{self, InProcess};
use crate::{free_port, wait_until};

/// Path of the `rempart` binary (built by the test command before the tests run).
pub fn rempart_bin() -> PathBuf {
    if let Ok(bin) = std::env::var("REMPART_BIN") {
        return PathBuf::from(bin);
    }
    built_binary("rempart", "../services")
}

/// Path of the `rempart-loadtest` binary.
pub fn loadtest_bin() -> PathBuf {
    built_binary("rempart-loadtest", "../loadtest")
}

/// Runs `rempart ARGS` in `cwd`, feeding `stdin`, and waits for it.
pub fn run_rempart(args: &[&str], cwd: &Path, stdin: Option<&[u8]>) -> std::process::Output {
    let mut child = Command::new(rempart_bin())
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run rempart");
    if let Some(input) = stdin {
        std::io::Write::write_all(child.stdin.as_mut().expect("stdin"), input).expect("write stdin");
    }
    drop(child.stdin.take());
    child.wait_with_output().expect("wait for rempart")
}

/// A binary of the workspace, checked to be newer than the sources under `sources`.
fn built_binary(name: &str, sources: &str) -> PathBuf {
    let target =
        std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let bin = target.join("debug").join(name);
    let built = std::fs::metadata(&bin).and_then(|m| m.modified());
    let Ok(built) = built else { panic!("{} is missing: run `cargo build --workspace` first (scripts/test.sh does)", bin.display()) };
    let sources = Path::new(env!("CARGO_MANIFEST_DIR")).join(sources);
    if newest_file(&sources).is_some_and(|newest| newest > built) {
        panic!("{} is older than the sources: run `cargo build --workspace` first (scripts/test.sh does)", bin.display());
    }
    bin
}

/// The newest modification time of the Rust sources under `dir` that go into the
/// binary (a crate's own tests and benches do not).
fn newest_file(dir: &Path) -> Option<std::time::SystemTime> {
    let mut newest = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if path.is_dir() && path.file_name().is_some_and(|n| n == "tests" || n == "benches") {
            continue;
        }
        let is_source = path.extension().is_some_and(|e| e == "rs") || path.file_name().is_some_and(|n| n == "Cargo.toml");
        let time = if path.is_dir() {
            newest_file(&path)
        } else if is_source {
            entry.metadata().and_then(|m| m.modified()).ok()
        } else {
            None
        };
        newest = newest.max(time);
    }
    newest
}

/// The port in the last "console on http://127.0.0.1:PORT/" line of `log`.
/// The port of the listener of `kind` ("Submission", "Submissions") from the edge's
/// "SMTP listening" log line.
fn listener_port_in(log: &str, kind: &str) -> Option<u16> {
    let line = log.lines().rev().find(|l| l.contains("SMTP listening") && l.contains(&format!("\"kind\":\"{kind}\"")))?;
    let at = line.find("\"address\":\"")? + "\"address\":\"".len();
    let address = line[at..].split('"').next()?;
    address.rsplit_once(':')?.1.parse().ok()
}

fn console_port_in(log: &str) -> Option<u16> {
    let at = log.rfind("console on http://")? + "console on http://".len();
    let address = log[at..].split('/').next()?;
    address.rsplit_once(':')?.1.parse().ok()
}

pub struct Gateway {
    child: Option<Child>,
    /// Set when the gateway runs in this process instead of `child`.
    in_process: Option<InProcess>,
    /// The subcommand: "serve", "edge", "relay", "scanner" (whose gRPC listener takes
    /// the `{listen}` address) or "console serve".
    role: &'static str,
    pub port: u16,
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    /// Everything the process wrote on stderr.
    pub log: Arc<Mutex<String>>,
    /// Extra environment variables of the process.
    env: Vec<(String, String)>,
}

impl Gateway {
    /// `rempart --config <this gateway's file> ARGS` (a running gateway answers on its
    /// admin socket): stdout, trimmed; panics with the error and the gateway's log.
    pub fn cli(&self, args: &[&str], stdin: Option<&str>) -> String {
        self.try_cli(args, stdin).unwrap_or_else(|e| panic!("rempart {args:?}: {e}\n{}", self.log()))
    }

    /// The same, giving stderr when the command fails.
    pub fn try_cli(&self, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
        let config = self.config_path.display().to_string();
        let mut all = vec!["--config", config.as_str()];
        all.extend_from_slice(args);
        let out = run_rempart(&all, self.dir.path(), stdin.map(str::as_bytes));
        let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.status.success() { Ok(stdout) } else { Err(String::from_utf8_lossy(&out.stderr).to_string()) }
    }

    /// Starts `rempart serve` with `config`, in which `{listen}` becomes a free
    /// loopback address, `{data}` a fresh data directory and `{console}` the console's
    /// address, port 0 (added when the configuration has no `[console]`; its port is
    /// `console_port()`).
    pub fn start(config: &str) -> Gateway {
        Self::start_role(config, "serve")
    }

    /// Starts `rempart ROLE` the same way.
    pub fn start_role(config: &str, role: &'static str) -> Gateway {
        Self::start_with_env(config, role, &[])
    }

    /// Starts `rempart ROLE` with extra environment variables (OTEL_*…).
    pub fn start_with_env(config: &str, role: &'static str, env: &[(&str, &str)]) -> Gateway {
        Self::start_prepared(config, role, env, |_| {})
    }

    /// As `start_with_env`, with `prepare` run on the configured gateway before it
    /// starts (to create accounts with the CLI while the store is free).
    pub fn start_prepared(config: &str, role: &'static str, env: &[(&str, &str)], prepare: impl FnOnce(&Gateway)) -> Gateway {
        let mut gw = Self::configured(config, role);
        gw.env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        prepare(&gw);
        gw.spawn_first();
        gw
    }

    /// Runs `rempart serve`'s roles with `config` in this process, on a runtime of
    /// their own, logging the same JSON lines into `log`. Placeholders as in `start`.
    /// For tests that do not kill or restart the gateway: `terminate` works, `kill9`,
    /// `pause` and `restart` need a process.
    pub fn in_process(config: &str) -> Gateway {
        Self::in_process_prepared(config, |_| {})
    }

    /// As `in_process`, with `prepare` run on the configured gateway before it starts
    /// (to create console accounts with the CLI while the store is free).
    pub fn in_process_prepared(config: &str, prepare: impl FnOnce(&Gateway)) -> Gateway {
        let mut gw = Self::configured(config, "serve");
        prepare(&gw);
        let config = rempart_model::Config::load(&gw.config_path).unwrap_or_else(|e| panic!("bad test configuration: {e}"));
        gw.in_process = Some(InProcess::start(config, gw.log.clone()));
        let port = gw.port;
        let ready = wait_until(Duration::from_secs(20), || TcpStream::connect(("127.0.0.1", port)).is_ok());
        assert!(ready, "the gateway did not start; its log:\n{}", gw.log());
        gw
    }

    /// A data directory, a free port and the configuration file; nothing started.
    fn configured(config: &str, role: &'static str) -> Gateway {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let mut text =
            config.replace("{listen}", &format!("127.0.0.1:{port}")).replace("{data}", &dir.path().join("data").display().to_string());
        // Tests reach no network: unless a test brings its own DNS server, no lookups.
        if !text.contains("[dns]") {
            text.push_str("\n[dns]\noffline = true\n");
        }
        // Every gateway's console on a port of its own, chosen when it binds (port 0:
        // a port picked beforehand could be taken by any socket in between); its log
        // line says which (`console_port`).
        text = text.replace("{console}", "127.0.0.1:0");
        if !text.contains("[console]") {
            text.push_str("\n[console]\nlisten = \"127.0.0.1:0\"\n");
        }
        let config_path = dir.path().join("rempart.toml");
        std::fs::write(&config_path, text).expect("write config");
        Gateway { child: None, in_process: None, role, port, dir, config_path, log: Arc::default(), env: Vec::new() }
    }

    /// The console's port, from the line it logs once it listens (the latest, after a
    /// restart); waits up to 20 s for it.
    /// The port of a listener configured on port 0, by kind ("Submission",
    /// "Submissions"), from its log line; waits up to 20 s for it.
    pub fn listener_port(&self, kind: &str) -> u16 {
        self.listener_port_after(kind, 0)
    }

    /// The port of the `kind` listener the process announced after byte `offset` of
    /// the log (after a restart: `offset` is the log's length before it).
    pub fn listener_port_after(&self, kind: &str, offset: usize) -> u16 {
        let mut port = None;
        let found = wait_until(Duration::from_secs(20), || {
            port = listener_port_in(self.log().get(offset..).unwrap_or_default(), kind);
            port.is_some()
        });
        assert!(found, "no {kind} listener in the log:\n{}", self.log());
        port.unwrap_or_default()
    }

    pub fn console_port(&self) -> u16 {
        let mut port = None;
        let found = wait_until(Duration::from_secs(20), || {
            port = console_port_in(&self.log());
            port.is_some()
        });
        assert!(found, "the console does not say where it listens; the log:\n{}", self.log());
        port.unwrap_or_default()
    }

    /// Starts the process; on a first start, a listen port another process took since
    /// it was picked (`free_port` only finds one free at that moment) is replaced by
    /// another, up to 3 times.
    fn spawn_first(&mut self) {
        for _ in 0..3 {
            let log_start = self.log().len();
            if self.try_spawn() {
                return;
            }
            let mut child = self.child.take();
            let taken = self.log()[log_start..].contains("Address already in use");
            if let Some(c) = child.as_mut() {
                let _ = c.kill();
                let _ = c.wait();
            }
            if !taken {
                break;
            }
            let (old, new) = (format!("127.0.0.1:{}", self.port), free_port());
            let text = std::fs::read_to_string(&self.config_path).expect("read config");
            std::fs::write(&self.config_path, text.replace(&old, &format!("127.0.0.1:{new}"))).expect("write config");
            self.port = new;
        }
        panic!("rempart did not start; its log:\n{}", self.log());
    }

    fn spawn(&mut self) {
        assert!(self.try_spawn(), "rempart did not start; its log:\n{}", self.log());
    }

    /// Starts the process and waits until it serves; false if it did not in 20 s or
    /// exited first.
    fn try_spawn(&mut self) -> bool {
        assert!(self.in_process.is_none(), "an in-process gateway cannot be killed or restarted: use Gateway::start");
        let mut child = Command::new(rempart_bin())
            .args(self.role.split(' '))
            .arg("--config")
            .arg(&self.config_path)
            .env("RUST_LOG", "info")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn rempart");
        let stderr = child.stderr.take().expect("stderr");
        // The log runs on across restarts: only what this process writes says it is ready.
        let log_start = self.log().len();
        let log = self.log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(mut l) = log.lock() {
                    l.push_str(&line);
                    l.push('\n');
                }
            }
        });
        self.child = Some(child);
        // Every role says it serves once its listeners are bound; connecting to the port
        // is not enough (another process may hold it).
        let log = self.log.clone();
        let console = self.role == "console serve";
        let mut exited = false;
        wait_until(Duration::from_secs(20), || {
            exited = self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(Some(_))));
            let said = log.lock().is_ok_and(|l| {
                let mine = &l[log_start..];
                if console { console_port_in(mine).is_some() } else { mine.contains("rempart serving") }
            });
            exited || said
        }) && !exited
    }

    /// Everything the gateway logged (in process: and any panic of this test process).
    pub fn log(&self) -> String {
        let mut log = self.log.lock().map(|l| l.clone()).unwrap_or_default();
        if self.in_process.is_some() {
            log.push_str(&in_process::panics());
        }
        log
    }

    /// `kill -9`: no chance to flush or clean up.
    pub fn kill9(&mut self) {
        assert!(self.in_process.is_none(), "an in-process gateway cannot be killed: use Gateway::start");
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGSTOP: the process stays, its sockets accept, nothing answers (a hung peer).
    pub fn pause(&self) {
        assert!(self.in_process.is_none(), "an in-process gateway cannot be paused: use Gateway::start");
        if let Some(child) = &self.child {
            let _ = Command::new("kill").args(["-STOP", &child.id().to_string()]).status();
        }
    }

    /// SIGCONT after `pause`.
    pub fn resume(&self) {
        if let Some(child) = &self.child {
            let _ = Command::new("kill").args(["-CONT", &child.id().to_string()]).status();
        }
    }

    /// Restarts the process on the same port, configuration and data.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// SIGTERM without waiting: the process drains while the test looks at it.
    pub fn sigterm(&self) {
        if let Some(child) = &self.child {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        }
    }

    /// Whether the process has exited.
    pub fn exited(&mut self) -> bool {
        if let Some(gw) = &self.in_process {
            return gw.finished();
        }
        self.child.as_mut().is_none_or(|c| matches!(c.try_wait(), Ok(Some(_))))
    }

    /// SIGTERM, then waits for the process to exit; returns whether it did in time.
    pub fn terminate(&mut self, timeout: Duration) -> bool {
        if let Some(gw) = &mut self.in_process {
            gw.stop();
            return wait_until(timeout, || gw.finished());
        }
        let Some(child) = self.child.as_mut() else { return true };
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        let exited = wait_until(timeout, || matches!(child.try_wait(), Ok(Some(_))));
        if exited {
            self.child = None;
        }
        exited
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        match &mut self.in_process {
            Some(gw) => gw.stop(),
            None => self.kill9(),
        }
    }
}

/// `rempart-loadtest run` in the background: a steady `rate` of generated messages to
/// `target` for `steady_secs`, its sink on `sink_port`, while a test changes things.
pub struct SteadyLoad {
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl SteadyLoad {
    pub fn start(target: &str, sink_port: u16, rate: u32, steady_secs: u64) -> SteadyLoad {
        let dir = tempfile::tempdir().expect("tempdir");
        let scenario = dir.path().join("steady.toml");
        std::fs::write(
            &scenario,
            format!("rate = {rate}\nramp = \"0s\"\nsteady = \"{steady_secs}s\"\ndrain = \"40s\"\n[mix]\ngenerated = true\n"),
        )
        .expect("write the scenario");
        let child = Command::new(loadtest_bin())
            .args(["run", "--json", "--target", target, "--sink-listen", &format!("127.0.0.1:{sink_port}"), "--scenario"])
            .arg(&scenario)
            .arg("--out")
            .arg(dir.path().join("report"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run rempart-loadtest");
        SteadyLoad { child, _dir: dir }
    }

    /// Waits for the run to end; its JSON report.
    pub fn report(self) -> serde_json::Value {
        let out = self.child.wait_with_output().expect("rempart-loadtest ran");
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
    }
}
