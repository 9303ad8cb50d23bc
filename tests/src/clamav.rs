//! A real ClamAV daemon (Debian's `clamav-daemon`, from `scripts/setup.sh`) with a
//! signature database the test writes itself (EICAR's MD5, no download), listening on a
//! unix socket and a free loopback port; and a real c-icap server (Debian's `c-icap`
//! with its virus_scan module) asking that clamd. Killed on drop.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{free_port, wait_until};

/// EICAR's test string as a ClamAV body signature (`.ndb`: name, any target, any
/// offset, the bytes in hex), so it is found inside a text part too.
fn eicar_ndb() -> String {
    let hex: String = rempart_scanner::attachments::samples::EICAR.iter().map(|b| format!("{b:02x}")).collect();
    format!("Eicar-Test-Signature:0:*:{hex}\n")
}

pub struct Clamd {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub port: u16,
}

impl Clamd {
    /// Starts clamd and waits until it answers PING (it loads its database first).
    pub fn start() -> Clamd {
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        std::fs::create_dir(d.join("db")).expect("db dir");
        std::fs::write(d.join("db/test.ndb"), eicar_ndb()).expect("signature database");
        let socket = d.join("clamd.sock");
        let port = free_port();
        // Heuristics need no database: encrypted archives and OLE2 macros are reported.
        let conf = format!(
            "Foreground yes\nLocalSocket {sock}\nTCPSocket {port}\nTCPAddr 127.0.0.1\nDatabaseDirectory {db}\n\
             LogFile {log}\nPidFile {pid}\nAlertEncrypted yes\nAlertOLE2Macros yes\nStreamMaxLength 30M\nMaxThreads 4\n\
             SelfCheck 0\nIdleTimeout 30\n",
            sock = socket.display(),
            db = d.join("db").display(),
            log = d.join("clamd.log").display(),
            pid = d.join("clamd.pid").display(),
        );
        std::fs::write(d.join("clamd.conf"), conf).expect("clamd.conf");
        let child = Command::new(clamd_bin())
            .arg("-c")
            .arg(d.join("clamd.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("clamd is installed by scripts/setup.sh (clamav-daemon)");
        let clamd = Clamd { child: Some(child), dir, socket, port };
        assert!(wait_until(Duration::from_secs(60), || clamd.ping()), "clamd did not answer PING:\n{}", clamd.log());
        clamd
    }

    /// `[antivirus] clamd` for the unix socket.
    pub fn unix_address(&self) -> String {
        format!("unix:{}", self.socket.display())
    }

    /// `[antivirus] clamd` over TCP.
    pub fn tcp_address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn ping(&self) -> bool {
        let Ok(mut s) = UnixStream::connect(&self.socket) else { return false };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let mut reply = [0u8; 5];
        s.write_all(b"zPING\0").is_ok() && s.read_exact(&mut reply).is_ok() && &reply[..4] == b"PONG"
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("clamd.log")).unwrap_or_default()
    }

    /// Kills clamd (an engine gone mid-run).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(&self.socket);
    }
}

impl Drop for Clamd {
    fn drop(&mut self) {
        self.stop();
    }
}

fn clamd_bin() -> PathBuf {
    ["/usr/sbin/clamd", "/usr/local/sbin/clamd"].iter().map(PathBuf::from).find(|p| p.is_file()).unwrap_or_else(|| "clamd".into())
}

/// c-icap with its virus_scan service (alias `avscan`) over `clamd`.
pub struct CIcap {
    child: Child,
    pub dir: tempfile::TempDir,
    pub port: u16,
}

impl CIcap {
    pub fn start(clamd: &Clamd) -> CIcap {
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        let port = free_port();
        let modules = ["/usr/lib/x86_64-linux-gnu/c_icap", "/usr/lib/aarch64-linux-gnu/c_icap", "/usr/lib/c_icap"]
            .into_iter()
            .find(|p| std::path::Path::new(p).join("virus_scan.so").is_file())
            .expect("c-icap's virus_scan module is installed by scripts/setup.sh (libc-icap-mod-virus-scan)");
        let conf = format!(
            "PidFile {d}/c-icap.pid\nCommandsSocket {d}/c-icap.ctl\nPort 127.0.0.1:{port}\nStartServers 1\nMaxServers 1\n\
             MinSpareThreads 2\nMaxSpareThreads 4\nThreadsPerChild 4\nServerLog {d}/server.log\nAccessLog {d}/access.log\n\
             TmpDir {d}\nModulesDir {modules}\nServicesDir {modules}\nModule common clamd_mod.so\n\
             clamd_mod.ClamdSocket {sock}\nService antivirus_module virus_scan.so\n\
             ServiceAlias avscan virus_scan?allow204=on&sizelimit=off&mode=simple\n\
             virus_scan.ScanFileTypes TEXT DATA EXECUTABLE ARCHIVE GIF JPEG MSOFFICE\nvirus_scan.DefaultEngine clamd\n\
             virus_scan.MaxObjectSize 25M\n",
            d = d.display(),
            sock = clamd.socket.display(),
        );
        std::fs::write(d.join("c-icap.conf"), conf).expect("c-icap.conf");
        let child = Command::new("c-icap")
            .args(["-N", "-D", "-f"])
            .arg(d.join("c-icap.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("c-icap is installed by scripts/setup.sh");
        let up = wait_until(Duration::from_secs(20), || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
        let icap = CIcap { child, dir, port };
        assert!(up, "c-icap did not listen:\n{}", std::fs::read_to_string(d_log(&icap)).unwrap_or_default());
        icap
    }

    /// `[antivirus] icap`.
    pub fn uri(&self) -> String {
        format!("icap://127.0.0.1:{}/avscan", self.port)
    }
}

fn d_log(icap: &CIcap) -> PathBuf {
    icap.dir.path().join("server.log")
}

impl Drop for CIcap {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
