//! DANE for SMTP (RFC 7672): an MX host whose `_25._tcp.HOST` TLSA records are
//! DNSSEC-secure must be reached over TLS with a certificate those records match, or
//! not at all. Security is the AD bit of `[dns]`'s resolvers, which must validate
//! DNSSEC themselves (a local unbound, as for Postfix and Exim): only then is
//! `relay.dane` to be turned on.
//!
//! DANE-EE(3) matches the server's own certificate (names and dates are not checked,
//! §3.1.1); DANE-TA(2) a certificate of the chain it sent, which must then chain the
//! server's certificate for the MX host name (§3.1.2). PKIX-TA(0) and PKIX-EE(1) are
//! unusable for SMTP (§3.1.3): with only those, TLS is required but not authenticated.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mail_auth::hickory_resolver::proto::op::{Edns, Message, Query, ResponseCode};
use mail_auth::hickory_resolver::proto::rr::{Name, RData, RecordType};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio_rustls::TlsConnector;

/// One TLSA record (RFC 6698 §2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Association {
    pub usage: u8,
    pub selector: u8,
    pub matching: u8,
    pub data: Vec<u8>,
}

impl Association {
    /// DANE-TA(2) or DANE-EE(3) with a known selector and matching type.
    fn usable(&self) -> bool {
        matches!(self.usage, 2 | 3) && self.selector <= 1 && self.matching <= 2
    }

    fn matches(&self, cert: &CertificateDer<'_>) -> bool {
        let content = match self.selector {
            0 => cert.as_ref().to_vec(),
            1 => match webpki::EndEntityCert::try_from(cert) {
                Ok(parsed) => parsed.subject_public_key_info().as_ref().to_vec(),
                Err(_) => return false,
            },
            _ => return false,
        };
        match self.matching {
            0 => content == self.data,
            1 => ring::digest::digest(&ring::digest::SHA256, &content).as_ref() == self.data.as_slice(),
            2 => ring::digest::digest(&ring::digest::SHA512, &content).as_ref() == self.data.as_slice(),
            _ => false,
        }
    }
}

/// What the TLSA lookup of one MX host says.
#[derive(Debug, Clone, PartialEq)]
pub enum Tlsa {
    /// DNSSEC-secure records: DANE applies (TLS required; authenticated when one is usable).
    Secure(Vec<Association>),
    /// No secure records (none published, or an unsigned zone): DANE does not apply.
    None,
    /// The lookup failed for a host in a signed zone: it must not be used now (§2.2).
    Failed(String),
}

impl Tlsa {
    /// Looks up `_PORT._tcp.HOST` TLSA through `servers`, asking for the AD bit
    /// (RFC 6840 §5.7). A failed lookup counts only when the host's own address is
    /// DNSSEC-secure (else the zone is unsigned and DANE cannot apply).
    pub async fn lookup(servers: &[SocketAddr], host: &str, port: u16, timeout: Duration) -> Tlsa {
        let host = host.trim_end_matches('.');
        let name = format!("_{port}._tcp.{host}.");
        match query(servers, &name, RecordType::TLSA, timeout).await {
            Ok(response) => {
                let records: Vec<Association> = response
                    .answers
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::TLSA(t) => Some(Association {
                            usage: t.cert_usage.into(),
                            selector: t.selector.into(),
                            matching: t.matching.into(),
                            data: t.cert_data.clone(),
                        }),
                        _ => None,
                    })
                    .collect();
                let secure = response.metadata.authentic_data;
                match response.metadata.response_code {
                    ResponseCode::NoError if secure && !records.is_empty() => Tlsa::Secure(records),
                    ResponseCode::NoError | ResponseCode::NXDomain => Tlsa::None,
                    code => Tlsa::failed_if_signed(servers, host, timeout, format!("TLSA lookup of {name}: {code}")).await,
                }
            }
            Err(e) => Tlsa::failed_if_signed(servers, host, timeout, format!("TLSA lookup of {name}: {e}")).await,
        }
    }

    async fn failed_if_signed(servers: &[SocketAddr], host: &str, timeout: Duration, why: String) -> Tlsa {
        match query(servers, &format!("{host}."), RecordType::A, timeout).await {
            Ok(response) if !response.metadata.authentic_data => Tlsa::None,
            _ => Tlsa::Failed(why),
        }
    }

    /// Whether `domain`'s MX RRset is DNSSEC-secure: DANE applies to its hosts only
    /// then (RFC 7672 §2.2.1: an insecure MX RRset could name an attacker's host, and
    /// that host's TLSA records would vouch for it). A failed lookup is insecure.
    pub async fn mx_secure(servers: &[SocketAddr], domain: &str, timeout: Duration) -> bool {
        let name = format!("{}.", domain.trim_end_matches('.'));
        query(servers, &name, RecordType::MX, timeout)
            .await
            .is_ok_and(|response| response.metadata.response_code == ResponseCode::NoError && response.metadata.authentic_data)
    }

    /// The usable records, if any.
    pub fn usable(records: &[Association]) -> Vec<Association> {
        records.iter().filter(|a| a.usable()).cloned().collect()
    }
}

/// A TLS connector that accepts only certificates `associations` match.
pub fn connector(associations: Vec<Association>) -> Result<TlsConnector, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(DaneVerifier { associations, provider: provider.clone() });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

#[derive(Debug)]
struct DaneVerifier {
    associations: Vec<Association>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for DaneVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self.associations.iter().any(|a| a.usage == 3 && a.matches(end_entity)) {
            return Ok(ServerCertVerified::assertion());
        }
        for anchor in intermediates.iter().filter(|c| self.associations.iter().any(|a| a.usage == 2 && a.matches(c))) {
            let mut roots = RootCertStore::empty();
            if roots.add(anchor.clone().into_owned()).is_err() {
                continue;
            }
            let Ok(chain) = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone()).build() else { continue };
            if chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now).is_ok() {
                return Ok(ServerCertVerified::assertion());
            }
        }
        Err(rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("no DNS server")]
    NoServer,
    #[error("bad name: {0}")]
    Name(String),
    #[error("timed out")]
    Timeout,
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("malformed answer: {0}")]
    Malformed(String),
}

/// One recursive query with the AD bit asked for, to each server in turn: over UDP
/// with EDNS, again over TCP when the answer is truncated.
async fn query(servers: &[SocketAddr], name: &str, kind: RecordType, timeout: Duration) -> Result<Message, QueryError> {
    let mut last = QueryError::NoServer;
    for server in servers {
        match tokio::time::timeout(timeout, query_one(*server, name, kind)).await {
            Ok(Ok(response)) => return Ok(response),
            Ok(Err(e)) => last = e,
            Err(_) => last = QueryError::Timeout,
        }
    }
    Err(last)
}

async fn query_one(server: SocketAddr, name: &str, kind: RecordType) -> Result<Message, QueryError> {
    let mut request = Message::query();
    request.metadata.recursion_desired = true;
    request.metadata.authentic_data = true;
    request.add_query(Query::query(Name::from_ascii(name).map_err(|e| QueryError::Name(e.to_string()))?, kind));
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    request.set_edns(edns);
    let bytes = request.to_vec().map_err(|e| QueryError::Malformed(e.to_string()))?;
    let bind: SocketAddr = if server.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
    let udp = UdpSocket::bind(bind).await?;
    udp.connect(server).await?;
    udp.send(&bytes).await?;
    let mut buf = vec![0u8; 4096];
    let response = loop {
        let n = udp.recv(&mut buf).await?;
        let response = Message::from_vec(&buf[..n]).map_err(|e| QueryError::Malformed(e.to_string()))?;
        if response.metadata.id == request.metadata.id {
            break response;
        }
    };
    if !response.metadata.truncation {
        return Ok(response);
    }
    let mut tcp = TcpStream::connect(server).await?;
    let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&bytes);
    tcp.write_all(&framed).await?;
    let mut len = [0u8; 2];
    tcp.read_exact(&mut len).await?;
    let mut answer = vec![0u8; u16::from_be_bytes(len) as usize];
    tcp.read_exact(&mut answer).await?;
    Message::from_vec(&answer).map_err(|e| QueryError::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert() -> (CertificateDer<'static>, Vec<u8>) {
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["mx.example".to_string()]).expect("params").self_signed(&key).expect("cert");
        (cert.der().clone(), rcgen::PublicKeyData::subject_public_key_info(&key))
    }

    #[test]
    fn associations_match_the_certificate_or_its_key_by_each_matching_type() {
        let (cert, spki) = cert();
        let sha256 = |b: &[u8]| ring::digest::digest(&ring::digest::SHA256, b).as_ref().to_vec();
        let sha512 = |b: &[u8]| ring::digest::digest(&ring::digest::SHA512, b).as_ref().to_vec();
        let a = |selector, matching, data: Vec<u8>| Association { usage: 3, selector, matching, data };
        assert!(a(1, 1, sha256(&spki)).matches(&cert), "3 1 1, the usual record");
        assert!(a(1, 2, sha512(&spki)).matches(&cert));
        assert!(a(1, 0, spki.clone()).matches(&cert));
        assert!(a(0, 1, sha256(cert.as_ref())).matches(&cert));
        assert!(a(0, 0, cert.as_ref().to_vec()).matches(&cert));
        assert!(!a(1, 1, sha256(b"another key")).matches(&cert));
        assert!(!a(0, 1, sha256(&spki)).matches(&cert), "the selector counts");
        assert!(!a(2, 1, sha256(&spki)).matches(&cert), "unknown selector");
        assert!(!Association { usage: 1, selector: 1, matching: 1, data: sha256(&spki) }.usable(), "PKIX-EE is unusable for SMTP");
        assert!(a(1, 1, vec![]).usable());
    }
}
