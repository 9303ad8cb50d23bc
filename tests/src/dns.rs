//! A real DNS server for tests: answers A, AAAA, MX, TXT, SPF, PTR and CNAME queries
//! from a zone the test writes, over UDP and TCP on one loopback port. Names absent
//! from the zone get NXDOMAIN, present without the type NODATA, and names marked
//! `Rr::Timeout` SERVFAIL (what a recursive resolver returns after a timeout).

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, RwLock};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

#[derive(Debug, Clone, PartialEq)]
pub enum Rr {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    /// Character strings, each up to 255 bytes (longer ones are split).
    Txt(Vec<Vec<u8>>),
    /// The obsolete SPF record type (99), same data as TXT.
    Spf(Vec<Vec<u8>>),
    Mx(u16, String),
    Ptr(String),
    Cname(String),
    /// TLSA (RFC 6698): usage, selector, matching type, association data.
    Tlsa(u8, u8, u8, Vec<u8>),
    Timeout,
}

impl Rr {
    pub fn txt(s: &str) -> Rr {
        Rr::Txt(vec![s.as_bytes().to_vec()])
    }

    fn type_code(&self) -> u16 {
        match self {
            Rr::A(_) => 1,
            Rr::Cname(_) => 5,
            Rr::Ptr(_) => 12,
            Rr::Mx(..) => 15,
            Rr::Txt(_) => 16,
            Rr::Aaaa(_) => 28,
            Rr::Spf(_) => 99,
            Rr::Tlsa(..) => 52,
            Rr::Timeout => 0,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Zone {
    records: HashMap<String, Vec<Rr>>,
    /// Names whose answers carry the AD bit, as from a DNSSEC-validating resolver.
    secure: std::collections::HashSet<String>,
    /// Seconds resolvers may cache the answers. Default 60.
    pub ttl: u32,
}

fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl Default for Zone {
    fn default() -> Zone {
        Zone { records: HashMap::new(), secure: Default::default(), ttl: 60 }
    }
}

impl Zone {
    pub fn new() -> Zone {
        Zone::default()
    }

    pub fn add(&mut self, name: &str, rr: Rr) -> &mut Zone {
        self.records.entry(key(name)).or_default().push(rr);
        self
    }

    /// Answers about `name` say "DNSSEC-validated" (the AD bit).
    pub fn secure(&mut self, name: &str) -> &mut Zone {
        self.secure.insert(key(name));
        self
    }

    /// A zone from the shared SPF test suite's JSON (`scenario["zone"]`).
    pub fn from_spf_suite(zone: &serde_json::Value) -> Zone {
        let mut z = Zone::new();
        let Some(map) = zone.as_object() else { return z };
        for (name, records) in map {
            for r in records.as_array().into_iter().flatten() {
                let value = r["value"].as_str().unwrap_or_default();
                // The suite writes raw bytes as code points below 256.
                let strings =
                    || -> Vec<Vec<u8>> {
                        r["strings"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|s| s.as_str())
                            .map(|s| {
                                if s.chars().all(|c| (c as u32) < 256) {
                                    s.chars().map(|c| c as u8).collect()
                                } else {
                                    s.as_bytes().to_vec()
                                }
                            })
                            .collect()
                    };
                let rr = match r["type"].as_str().unwrap_or_default() {
                    "A" => value.parse().ok().map(Rr::A),
                    "AAAA" => value.parse().ok().map(Rr::Aaaa),
                    "TXT" => Some(Rr::Txt(strings())),
                    "SPF" => Some(Rr::Spf(strings())),
                    "MX" => {
                        Some(Rr::Mx(r["preference"].as_u64().unwrap_or(0) as u16, r["exchange"].as_str().unwrap_or_default().to_string()))
                    }
                    "PTR" => Some(Rr::Ptr(value.to_string())),
                    "CNAME" => Some(Rr::Cname(value.to_string())),
                    "TIMEOUT" | "SERVFAIL" => Some(Rr::Timeout),
                    _ => None,
                };
                if let Some(rr) = rr {
                    z.add(name, rr);
                }
            }
        }
        z
    }
}

pub struct DnsServer {
    pub addr: SocketAddr,
    zone: Arc<RwLock<Zone>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl DnsServer {
    /// Starts serving `zone` on its own thread (so it works from sync and async tests).
    pub fn start(zone: Zone) -> DnsServer {
        // UDP and TCP on the same port: retry until both binds succeed.
        let (udp, tcp) = loop {
            let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind udp");
            let port = udp.local_addr().expect("addr").port();
            if let Ok(tcp) = std::net::TcpListener::bind(("127.0.0.1", port)) {
                break (udp, tcp);
            }
        };
        udp.set_nonblocking(true).expect("nonblocking");
        tcp.set_nonblocking(true).expect("nonblocking");
        let addr = udp.local_addr().expect("addr");
        let zone = Arc::new(RwLock::new(zone));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let z = zone.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(async move {
                let (Ok(udp), Ok(tcp)) = (UdpSocket::from_std(udp), TcpListener::from_std(tcp)) else { return };
                tokio::select! {
                    _ = serve_udp(udp, z.clone()) => {}
                    _ = serve_tcp(tcp, z) => {}
                    _ = stopped => {}
                }
            });
        });
        DnsServer { addr, zone, stop: Some(stop) }
    }

    pub fn set_zone(&self, zone: Zone) {
        if let Ok(mut z) = self.zone.write() {
            *z = zone;
        }
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn serve_udp(udp: UdpSocket, zone: Arc<RwLock<Zone>>) {
    let mut buf = vec![0u8; 4096];
    while let Ok((n, peer)) = udp.recv_from(&mut buf).await {
        let z = zone.read().map(|z| z.clone()).unwrap_or_default();
        if let Some(mut reply) = answer(&z, &buf[..n]) {
            let edns = u16::from_be_bytes([buf[10], buf[11]]) > 0;
            if reply.len() > 512 && !edns {
                reply.truncate(12);
                reply[2] |= 0x02; // TC: ask again over TCP
                reply[4..12].fill(0);
            }
            let _ = udp.send_to(&reply, peer).await;
        }
    }
}

async fn serve_tcp(tcp: TcpListener, zone: Arc<RwLock<Zone>>) {
    while let Ok((mut stream, _)) = tcp.accept().await {
        let zone = zone.clone();
        tokio::spawn(async move {
            loop {
                let mut len = [0u8; 2];
                if stream.read_exact(&mut len).await.is_err() {
                    return;
                }
                let mut query = vec![0u8; u16::from_be_bytes(len) as usize];
                if stream.read_exact(&mut query).await.is_err() {
                    return;
                }
                let z = zone.read().map(|z| z.clone()).unwrap_or_default();
                let Some(reply) = answer(&z, &query) else { return };
                let mut framed = (reply.len() as u16).to_be_bytes().to_vec();
                framed.extend_from_slice(&reply);
                if stream.write_all(&framed).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// The reply to one query, or `None` to stay silent (unparseable, or a drop).
fn answer(zone: &Zone, query: &[u8]) -> Option<Vec<u8>> {
    if query.len() < 12 || u16::from_be_bytes([query[4], query[5]]) != 1 {
        return None;
    }
    let (qname, end) = read_name(query, 12)?;
    let qtype = u16::from_be_bytes([*query.get(end)?, *query.get(end + 1)?]);
    let question = &query[12..end + 4];
    let mut answers = Vec::new();
    let mut rcode = 0u8;
    let mut name = key(&qname);
    let mut hops = 0;
    loop {
        let Some(records) = zone.records.get(&name) else {
            if answers.is_empty() {
                rcode = 3; // NXDOMAIN
            }
            break;
        };
        // pyspf's test semantics: TIMEOUT applies to the types not listed before it.
        if let Some(at) = records.iter().position(|r| r == &Rr::Timeout)
            && !records[..at].iter().any(|r| r.type_code() == qtype)
        {
            if std::env::var("SPF_TIMEOUT_MODE").as_deref() == Ok("drop") {
                return None;
            }
            rcode = 2; // SERVFAIL
            answers.clear();
            break;
        }
        let matching: Vec<&Rr> = records.iter().filter(|r| r.type_code() == qtype).collect();
        if !matching.is_empty() || qtype == 5 {
            for rr in matching {
                answers.push(encode_rr(&name, rr, zone.ttl));
            }
            break;
        }
        let Some(Rr::Cname(target)) = records.iter().find(|r| matches!(r, Rr::Cname(_))) else { break };
        answers.push(encode_rr(&name, &Rr::Cname(target.clone()), zone.ttl));
        name = key(target);
        hops += 1;
        if hops > 8 {
            rcode = 2; // a CNAME loop: what a recursive resolver gives
            answers.clear();
            break;
        }
    }
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(&query[0..2]);
    let opcode_rd = u16::from_be_bytes([query[2], query[3]]) & 0x7900;
    let authentic = if zone.secure.contains(&key(&qname)) { 0x0020 } else { 0 };
    out.extend_from_slice(&(0x8000 | opcode_rd | 0x0400 | 0x0080 | authentic | u16::from(rcode)).to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&(answers.len() as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(question);
    for a in answers {
        out.extend_from_slice(&a);
    }
    Some(out)
}

fn read_name(msg: &[u8], mut pos: usize) -> Option<(String, usize)> {
    let mut labels = Vec::new();
    loop {
        let len = *msg.get(pos)? as usize;
        pos += 1;
        if len == 0 {
            return Some((labels.join("."), pos));
        }
        if len & 0xc0 != 0 {
            return None; // queries are not compressed
        }
        labels.push(String::from_utf8_lossy(msg.get(pos..pos + len)?).into_owned());
        pos += len;
    }
}

fn encode_name(name: &str, out: &mut Vec<u8>) {
    for label in name.trim_end_matches('.').split('.').filter(|l| !l.is_empty()) {
        let bytes = &label.as_bytes()[..label.len().min(63)];
        out.push(bytes.len() as u8);
        out.extend_from_slice(bytes);
    }
    out.push(0);
}

fn encode_rr(name: &str, rr: &Rr, ttl: u32) -> Vec<u8> {
    let mut rdata = Vec::new();
    match rr {
        Rr::A(ip) => rdata.extend_from_slice(&ip.octets()),
        Rr::Aaaa(ip) => rdata.extend_from_slice(&ip.octets()),
        Rr::Txt(strings) | Rr::Spf(strings) => {
            // RDLENGTH 0 is not legal: a TXT with no string is served as one empty string.
            if strings.is_empty() {
                rdata.push(0);
            }
            for s in strings {
                let mut chunks = s.chunks(255).peekable();
                if chunks.peek().is_none() {
                    rdata.push(0);
                }
                for c in chunks {
                    rdata.push(c.len() as u8);
                    rdata.extend_from_slice(c);
                }
            }
        }
        Rr::Mx(pref, exchange) => {
            rdata.extend_from_slice(&pref.to_be_bytes());
            encode_name(exchange, &mut rdata);
        }
        Rr::Ptr(target) | Rr::Cname(target) => encode_name(target, &mut rdata),
        Rr::Tlsa(usage, selector, matching, data) => {
            rdata.extend_from_slice(&[*usage, *selector, *matching]);
            rdata.extend_from_slice(data);
        }
        Rr::Timeout => {}
    }
    let mut out = Vec::with_capacity(rdata.len() + name.len() + 12);
    encode_name(name, &mut out);
    out.extend_from_slice(&rr.type_code().to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&ttl.to_be_bytes());
    out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    out.extend_from_slice(&rdata);
    out
}
