//! STARTTLS with a real TLS client (rustls): EHLO again afterwards, the Received
//! header names the TLS version and cipher, and plaintext pipelined after STARTTLS is
//! discarded rather than executed inside the TLS session.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use rempart_tests::{Gateway, Sink, SinkMode, SmtpClient, message, self_signed_cert};
use rustls_pki_types::pem::PemObject;

fn gateway(sink: &Sink) -> (Gateway, tempfile::TempDir) {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed_cert(certs.path());
    let gw = Gateway::in_process(&format!(
        "[smtp]\nhostname = \"gw.test\"\n[[smtp.listener]]\naddress = \"{{listen}}\"\n[queue]\ndata_dir = \"{{data}}\"\n[tls]\ncert = \"{}\"\nkey = \"{}\"\n[[domain]]\nname = \"example.com\"\nroute = \"{}\"\n",
        cert.display(),
        key.display(),
        sink.route()
    ));
    (gw, certs)
}

type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

fn handshake(tcp: TcpStream, cert_dir: &std::path::Path) -> BufReader<Tls> {
    let mut roots = rustls::RootCertStore::empty();
    let cert = rustls_pki_types::CertificateDer::from_pem_file(cert_dir.join("cert.pem")).unwrap();
    roots.add(cert).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let conn = rustls::ClientConnection::new(Arc::new(config), "localhost".try_into().unwrap()).unwrap();
    BufReader::new(rustls::StreamOwned::new(conn, tcp))
}

fn cmd(tls: &mut BufReader<Tls>, line: &str) -> Vec<String> {
    tls.get_mut().write_all(format!("{line}\r\n").as_bytes()).unwrap();
    let mut lines = Vec::new();
    loop {
        let mut l = String::new();
        tls.read_line(&mut l).unwrap();
        let done = l.as_bytes().get(3) != Some(&b'-');
        lines.push(l.trim_end().to_string());
        if done {
            return lines;
        }
    }
}

#[test]
fn starttls_then_ehlo_again_and_relay() {
    let sink = Sink::start(SinkMode::Accept);
    let (gw, certs) = gateway(&sink);
    let mut c = SmtpClient::connect(&gw.addr());
    assert!(c.ehlo().text().contains("STARTTLS"));
    assert!(c.cmd("STARTTLS now").code == 501);
    let r = c.cmd("STARTTLS");
    assert_eq!((r.code, r.enhanced().as_deref()), (220, Some("2.0.0")), "{r:?}");
    let mut tls = handshake(c.stream().try_clone().unwrap(), certs.path());
    // The session starts over: MAIL before EHLO is out of sequence.
    assert!(cmd(&mut tls, "MAIL FROM:<s@sender.test>")[0].starts_with("503 5.5.1"));
    let ehlo = cmd(&mut tls, "EHLO client.test");
    assert!(ehlo[0].starts_with("250-") && !ehlo.iter().any(|l| l.contains("STARTTLS")), "{ehlo:?}");
    assert!(cmd(&mut tls, "STARTTLS")[0].starts_with("503 5.5.1"));
    assert!(cmd(&mut tls, "MAIL FROM:<s@sender.test>")[0].starts_with("250 2.1.0"));
    assert!(cmd(&mut tls, "RCPT TO:<alice@example.com>")[0].starts_with("250 2.1.5"));
    assert!(cmd(&mut tls, "DATA")[0].starts_with("354"));
    let done = cmd(&mut tls, &format!("{}.", message("over-tls").replace("\r\n.", "\r\n..")));
    assert!(done[0].starts_with("250 2.0.0"), "{done:?}");
    let got = sink.wait_for(1, Duration::from_secs(15));
    let received = String::from_utf8_lossy(&got[0].data[..300]).to_string();
    assert!(received.contains("(using TLSv1.3 with cipher TLS13_"), "{received}");
    assert!(received.contains("with ESMTPS id"), "{received}");
}

#[test]
fn plaintext_pipelined_after_starttls_is_discarded() {
    let sink = Sink::start(SinkMode::Accept);
    let (gw, certs) = gateway(&sink);
    let mut c = SmtpClient::connect(&gw.addr());
    c.ehlo();
    c.send_raw(b"STARTTLS\r\nMAIL FROM:<injected@sender.test>\r\n");
    assert_eq!(c.read_reply().code, 220);
    let mut tls = handshake(c.stream().try_clone().unwrap(), certs.path());
    cmd(&mut tls, "EHLO client.test");
    // Had the injected MAIL been executed, this RCPT would be accepted.
    let r = cmd(&mut tls, "RCPT TO:<alice@example.com>");
    assert!(r[0].starts_with("503 5.5.1"), "{r:?}");
    let mut rest = Vec::new();
    tls.get_mut().sock.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let _ = tls.read_to_end(&mut rest);
    assert!(rest.is_empty(), "unexpected extra replies: {:?}", String::from_utf8_lossy(&rest));
}
