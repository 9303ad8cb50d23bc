//! A real OpenLDAP server (Debian's `slapd`, from `scripts/setup.sh`) on a free loopback
//! port, with a generated configuration, an Active-Directory-like schema (mail,
//! `proxyAddresses`, `userAccountControl`) and the given entries loaded by `slapadd`.
//! Killed on drop.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const SUFFIX: &str = "dc=example,dc=com";
pub const ADMIN_DN: &str = "cn=admin,dc=example,dc=com";
pub const ADMIN_PASSWORD: &str = "s3cret-admin";

/// The attributes Active Directory and Exchange add, with the OIDs Microsoft gave them.
const AD_SCHEMA: &str = "\
attributetype ( 1.2.840.113556.1.4.8 NAME 'userAccountControl' EQUALITY integerMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.2.210 NAME 'proxyAddresses' EQUALITY caseIgnoreMatch
  SUBSTR caseIgnoreSubstringsMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )
objectclass ( 1.2.840.113556.1.5.9 NAME 'adUser' SUP top AUXILIARY
  MAY ( userAccountControl $ proxyAddresses ) )
";

/// One person: the uid, their `mail`, extra `proxyAddresses`, and whether AD marks the
/// account disabled (`userAccountControl` bit 2).
pub struct Person<'a> {
    pub uid: &'a str,
    pub mail: &'a str,
    pub proxy_addresses: &'a [&'a str],
    pub disabled: bool,
}

pub struct Slapd {
    child: Child,
    /// `ldap://` (StartTLS offered when started with a certificate).
    pub addr: SocketAddr,
    /// `ldaps://`, when started with a certificate.
    pub tls_addr: Option<SocketAddr>,
    pub dir: tempfile::TempDir,
}

/// The server's certificate and key (PEM files), for StartTLS and LDAPS.
pub struct ServerTls<'a> {
    pub cert: &'a std::path::Path,
    pub key: &'a std::path::Path,
}

fn free_addr() -> SocketAddr {
    let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
    ([127, 0, 0, 1], port).into()
}

pub fn slapd_bin() -> PathBuf {
    ["/usr/sbin/slapd", "/usr/local/sbin/slapd"].iter().map(PathBuf::from).find(|p| p.is_file()).unwrap_or_else(|| "slapd".into())
}

impl Slapd {
    pub fn start(people: &[Person]) -> Slapd {
        Self::start_with(people, None)
    }

    /// With `tls`: StartTLS on the `ldap://` port, an `ldaps://` port as well, and TLS
    /// required for every operation (`security tls=1`: a plain bind is refused).
    pub fn start_with(people: &[Person], tls: Option<ServerTls<'_>>) -> Slapd {
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        std::fs::create_dir(d.join("db")).expect("db dir");
        std::fs::write(d.join("ad.schema"), AD_SCHEMA).expect("schema");
        let conf = format!(
            "include /etc/ldap/schema/core.schema\ninclude /etc/ldap/schema/cosine.schema\n\
             include /etc/ldap/schema/inetorgperson.schema\ninclude {dir}/ad.schema\n\
             pidfile {dir}/slapd.pid\nmodulepath /usr/lib/ldap\nmoduleload back_mdb\n\
             database mdb\nmaxsize 10485760\nsuffix \"{SUFFIX}\"\nrootdn \"{ADMIN_DN}\"\nrootpw {ADMIN_PASSWORD}\n\
             directory {dir}/db\n{tls}",
            dir = d.display(),
            tls = tls
                .as_ref()
                .map(|t| format!("TLSCertificateFile {}\nTLSCertificateKeyFile {}\nsecurity tls=1\n", t.cert.display(), t.key.display()))
                .unwrap_or_default()
        );
        std::fs::write(d.join("slapd.conf"), conf).expect("conf");
        let mut ldif = format!(
            "dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n\
             dn: ou=people,{SUFFIX}\nobjectClass: organizationalUnit\nou: people\n\n"
        );
        for p in people {
            ldif.push_str(&format!(
                "dn: uid={uid},ou=people,{SUFFIX}\nobjectClass: inetOrgPerson\nobjectClass: adUser\nuid: {uid}\ncn: {uid}\nsn: {uid}\nmail: {mail}\n\
                 userAccountControl: {uac}\n",
                uid = p.uid,
                mail = p.mail,
                uac = if p.disabled { 514 } else { 512 }
            ));
            for a in p.proxy_addresses {
                ldif.push_str(&format!("proxyAddresses: {a}\n"));
            }
            ldif.push('\n');
        }
        std::fs::write(d.join("data.ldif"), ldif).expect("ldif");
        let slapadd = Command::new(slapd_bin().with_file_name("slapadd"))
            .args(["-f", &d.join("slapd.conf").display().to_string(), "-l", &d.join("data.ldif").display().to_string()])
            .output()
            .expect("slapadd (Debian slapd, installed by scripts/setup.sh)");
        assert!(slapadd.status.success(), "slapadd: {}", String::from_utf8_lossy(&slapadd.stderr));
        let addr = free_addr();
        let tls_addr = tls.is_some().then(free_addr);
        let urls = match tls_addr {
            Some(tls_addr) => format!("ldap://{addr}/ ldaps://{tls_addr}/"),
            None => format!("ldap://{addr}/"),
        };
        // `-d 0`: stay in the foreground (killed on drop) without debug output.
        let child = Command::new(slapd_bin())
            .args(["-f", &d.join("slapd.conf").display().to_string(), "-h", &urls, "-d", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("slapd (Debian slapd, installed by scripts/setup.sh)");
        let mut slapd = Slapd { child, addr, tls_addr, dir };
        let up = crate::wait_until(Duration::from_secs(15), || {
            TcpStream::connect(addr).is_ok() && tls_addr.is_none_or(|a| TcpStream::connect(a).is_ok())
        });
        assert!(up, "slapd did not start on {addr}");
        let _ = slapd.child.try_wait();
        slapd
    }

    pub fn url(&self) -> String {
        format!("ldap://{}", self.addr)
    }

    /// The `ldaps://` URL (started with a certificate only).
    pub fn ldaps_url(&self) -> String {
        format!("ldaps://{}", self.tls_addr.expect("slapd started with TLS"))
    }

    /// Stops the server (SIGKILL): the directory is down.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.kill();
    }
}
