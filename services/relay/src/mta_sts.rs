//! MTA-STS (RFC 8461): an outside domain that publishes `_mta-sts.DOMAIN` TXT and a
//! policy at `https://mta-sts.DOMAIN/.well-known/mta-sts.txt` says which MX hosts are
//! its own and that they have certificates valid for their names. In mode `enforce`
//! mail goes only to such hosts, over verified TLS, or waits; in mode `testing` it goes
//! as before and the mismatches are logged. Policies are cached for their `max_age`
//! and fetched again when the TXT record's id changes: in memory, and in the shared
//! store when there is one, so a restarted relay (or another relay of the cluster)
//! keeps enforcing a policy an attacker now stops it from fetching (RFC 8461 §5.1).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mail_auth::hickory_resolver::TokioResolver;
use mail_auth::hickory_resolver::proto::rr::RData;
use rempart_model::date;
use rempart_state::{Store, key};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use rempart_smtp_client::server_name;

/// RFC 8461 §3.2: `max_age` is at most a year.
const MAX_AGE_LIMIT: u64 = 31_557_600;
/// Largest policy response read (headers and body); real policies are a few hundred bytes.
const MAX_RESPONSE: u64 = 64 * 1024;
/// The whole fetch (connect, handshake, request, response).
const FETCH_TIMEOUT: Duration = Duration::from_secs(20);
/// Domains whose policy is kept in memory at once.
const MAX_CACHED: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Enforce,
    Testing,
    None,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// The TXT record's id the policy was fetched for.
    pub id: String,
    pub mode: Mode,
    /// MX host patterns: a name, or `*.` and a name (one more label on the left).
    pub mx: Vec<String>,
    pub max_age: u64,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PolicyError {
    #[error("no \"version: STSv1\" line")]
    Version,
    #[error("mode {0:?} is none of enforce, testing, none")]
    Mode(String),
    #[error("no mode line")]
    NoMode,
    #[error("max_age {0:?} is not a number of seconds up to 31557600")]
    MaxAge(String),
    #[error("no max_age line")]
    NoMaxAge,
    #[error("mode {0} needs at least one mx line")]
    NoMx(&'static str),
}

impl Policy {
    /// Parses a policy body (RFC 8461 §3.2: `key: value` lines, unknown keys ignored).
    pub fn parse(id: &str, text: &str) -> Result<Policy, PolicyError> {
        let (mut version, mut mode, mut max_age, mut mx) = (None, None, None, Vec::new());
        for line in text.lines() {
            let Some((key, value)) = line.split_once(':') else { continue };
            let value = value.trim();
            match key.trim() {
                "version" => version = Some(value.to_string()),
                "mode" => {
                    mode = Some(match value {
                        "enforce" => Mode::Enforce,
                        "testing" => Mode::Testing,
                        "none" => Mode::None,
                        other => return Err(PolicyError::Mode(other.to_string())),
                    })
                }
                "max_age" => {
                    let seconds = value.parse::<u64>().ok().filter(|s| *s <= MAX_AGE_LIMIT);
                    max_age = Some(seconds.ok_or_else(|| PolicyError::MaxAge(value.to_string()))?);
                }
                "mx" => mx.push(value.trim_end_matches('.').to_ascii_lowercase()),
                _ => {}
            }
        }
        if version.as_deref() != Some("STSv1") {
            return Err(PolicyError::Version);
        }
        let mode = mode.ok_or(PolicyError::NoMode)?;
        let max_age = max_age.ok_or(PolicyError::NoMaxAge)?;
        match mode {
            Mode::Enforce if mx.is_empty() => return Err(PolicyError::NoMx("enforce")),
            Mode::Testing if mx.is_empty() => return Err(PolicyError::NoMx("testing")),
            _ => {}
        }
        Ok(Policy { id: id.to_string(), mode, mx, max_age })
    }

    /// The policy as its body (what `parse` reads back).
    pub fn text(&self) -> String {
        let mode = match self.mode {
            Mode::Enforce => "enforce",
            Mode::Testing => "testing",
            Mode::None => "none",
        };
        let mx: String = self.mx.iter().map(|m| format!("mx: {m}\n")).collect();
        format!("version: STSv1\nmode: {mode}\n{mx}max_age: {}\n", self.max_age)
    }

    /// Whether MX host `host` is one the policy names (RFC 8461 §4.1).
    pub fn allows(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.mx.iter().any(|pattern| match pattern.strip_prefix("*.") {
            Some(parent) => host.split_once('.').is_some_and(|(label, rest)| !label.is_empty() && rest == parent),
            None => *pattern == host,
        })
    }
}

/// The id of a domain's `_mta-sts` TXT record set (RFC 8461 §3.1): exactly one record
/// starting `v=STSv1`, with an `id` of 1 to 32 letters and digits; else none.
pub fn record_id(records: &[String]) -> Option<String> {
    let mut sts = records.iter().filter(|r| r.trim_start().starts_with("v=STSv1"));
    let record = sts.next()?;
    if sts.next().is_some() {
        return None;
    }
    let mut fields = record.split(';').map(str::trim);
    if fields.next() != Some("v=STSv1") {
        return None;
    }
    fields
        .filter_map(|f| f.strip_prefix("id="))
        .map(str::trim)
        .find(|id| (1..=32).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric()))
        .map(str::to_string)
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("mta-sts.{0} has no address")]
    NoAddress(String),
    #[error("connection failed: {0}")]
    Connect(std::io::Error),
    #[error("TLS: {0}")]
    Tls(std::io::Error),
    #[error("no trusted roots to verify the policy host: {0}")]
    Roots(String),
    #[error("timed out")]
    Timeout,
    #[error("HTTP status {0:?} (only 200 is a policy; redirects are not followed)")]
    Status(String),
    #[error("media type {0:?} is not text/plain")]
    MediaType(String),
    #[error("response larger than {MAX_RESPONSE} bytes")]
    TooLarge,
    #[error("malformed HTTP response: {0}")]
    Malformed(&'static str),
    #[error("policy: {0}")]
    Policy(#[from] PolicyError),
}

struct Cached {
    policy: Arc<Policy>,
    expires: Instant,
}

/// The policies of outside domains, fetched when needed and kept for their max_age.
pub struct Policies {
    port: u16,
    cache: Mutex<HashMap<String, Cached>>,
    /// Where policies outlive the process and are shared with the other relays.
    store: Option<Arc<dyn Store>>,
}

impl Policies {
    pub fn new(port: u16, store: Option<Arc<dyn Store>>) -> Self {
        Self { port, cache: Mutex::default(), store }
    }

    /// The policy that applies to `domain` now: none when it publishes none. A failed
    /// fetch keeps a cached policy in force (a downgrade needs more than one blocked
    /// request), as does a TXT record that disappeared (RFC 8461 §5.1).
    pub async fn for_domain(
        &self,
        resolver: &TokioResolver,
        connector: impl FnOnce() -> Result<TlsConnector, String>,
        domain: &str,
    ) -> Option<Arc<Policy>> {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        let cached = match self.cached(&domain) {
            Some(policy) => Some(policy),
            None => self.stored(&domain).await,
        };
        let Some(id) = published_id(resolver, &domain).await else { return cached };
        if let Some(policy) = cached.as_ref().filter(|p| p.id == id) {
            return Some(policy.clone());
        }
        let fetched = match connector() {
            Ok(connector) => fetch(resolver, &connector, &domain, self.port, &id).await,
            Err(e) => Err(FetchError::Roots(e)),
        };
        match fetched {
            Ok(policy) => {
                tracing::info!(%domain, id = %policy.id, mode = ?policy.mode, mx = ?policy.mx, max_age = policy.max_age, "MTA-STS policy fetched");
                let policy = Arc::new(policy);
                self.remember(&domain, policy.clone(), Duration::from_secs(policy.max_age));
                self.store(&domain, &policy).await;
                Some(policy)
            }
            Err(e) => {
                tracing::warn!(%domain, %id, error = %e, kept = cached.is_some(), "MTA-STS policy not fetched");
                cached
            }
        }
    }

    fn cached(&self, domain: &str) -> Option<Arc<Policy>> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.get(domain).filter(|c| c.expires > Instant::now()).map(|c| c.policy.clone())
    }

    /// Keeps `policy` in memory for `left` (its max_age, less its age when it comes
    /// from the store).
    fn remember(&self, domain: &str, policy: Arc<Policy>, left: Duration) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if cache.len() >= MAX_CACHED {
            cache.retain(|_, c| c.expires > now);
        }
        if cache.len() < MAX_CACHED || cache.contains_key(domain) {
            cache.insert(domain.to_string(), Cached { policy, expires: now + left });
        }
    }

    /// The policy another relay, or this one before a restart, fetched and stored,
    /// while its max_age lasts. A store failure counts as none (logged).
    async fn stored(&self, domain: &str) -> Option<Arc<Policy>> {
        let store = self.store.as_ref()?;
        let value = match store.get(&store_key(domain)).await {
            Ok(value) => value?,
            Err(e) => {
                tracing::warn!(%domain, error = %e, "stored MTA-STS policy not read");
                return None;
            }
        };
        let (policy, fetched) = from_stored(&value)?;
        let left = (fetched + policy.max_age).checked_sub(date::unix_now()).filter(|s| *s > 0)?;
        let policy = Arc::new(policy);
        self.remember(domain, policy.clone(), Duration::from_secs(left));
        Some(policy)
    }

    async fn store(&self, domain: &str, policy: &Policy) {
        let Some(store) = &self.store else { return };
        let value = format!("{}\n{}\n{}", policy.id, date::unix_now(), policy.text());
        if let Err(e) = store.put(&store_key(domain), value.as_bytes(), Some(Duration::from_secs(policy.max_age))).await {
            tracing::warn!(%domain, error = %e, "MTA-STS policy not stored (kept in memory)");
        }
    }
}

fn store_key(domain: &str) -> String {
    key(&["mtasts", domain])
}

/// A stored policy: `id`, the fetch time (Unix seconds), then the policy body.
fn from_stored(value: &[u8]) -> Option<(Policy, u64)> {
    let text = std::str::from_utf8(value).ok()?;
    let mut parts = text.splitn(3, '\n');
    let (id, fetched, body) = (parts.next()?, parts.next()?.parse().ok()?, parts.next()?);
    Some((Policy::parse(id, body).ok()?, fetched))
}

/// The id `_mta-sts.DOMAIN` announces, if any (a lookup failure counts as none).
async fn published_id(resolver: &TokioResolver, domain: &str) -> Option<String> {
    let lookup = resolver.txt_lookup(format!("_mta-sts.{domain}.").as_str()).await.ok()?;
    let records: Vec<String> = lookup
        .answers()
        .iter()
        .filter_map(|record| match &record.data {
            RData::TXT(txt) => Some(txt.txt_data.iter().map(|s| String::from_utf8_lossy(s).into_owned()).collect()),
            _ => None,
        })
        .collect();
    record_id(&records)
}

/// GET `https://mta-sts.DOMAIN:PORT/.well-known/mta-sts.txt`, the certificate verified
/// for that name; only a 200 with a text/plain body is a policy.
async fn fetch(resolver: &TokioResolver, connector: &TlsConnector, domain: &str, port: u16, id: &str) -> Result<Policy, FetchError> {
    let host = format!("mta-sts.{domain}");
    let get = async {
        let addresses = rempart_smtp_client::mx::addresses(Some(resolver), &host).await;
        let mut last = FetchError::NoAddress(domain.to_string());
        let mut connected = None;
        for ip in addresses {
            match TcpStream::connect((ip, port)).await {
                Ok(tcp) => {
                    connected = Some(tcp);
                    break;
                }
                Err(e) => last = FetchError::Connect(e),
            }
        }
        let tcp = connected.ok_or(last)?;
        let name = server_name(&host).ok_or(FetchError::Malformed("invalid host name"))?;
        let mut tls = connector.connect(name, tcp).await.map_err(FetchError::Tls)?;
        let request = format!(
            "GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: {host}\r\nUser-Agent: rempart\r\nAccept: text/plain\r\nConnection: close\r\n\r\n"
        );
        tls.write_all(request.as_bytes()).await.map_err(FetchError::Connect)?;
        let mut response = Vec::new();
        // A server may close without TLS close_notify: keep what arrived.
        let read = (&mut tls).take(MAX_RESPONSE + 1).read_to_end(&mut response).await;
        if response.is_empty() {
            return Err(read.err().map_or(FetchError::Malformed("empty response"), FetchError::Connect));
        }
        if response.len() as u64 > MAX_RESPONSE {
            return Err(FetchError::TooLarge);
        }
        Ok(response)
    };
    let response = tokio::time::timeout(FETCH_TIMEOUT, get).await.map_err(|_| FetchError::Timeout)??;
    let body = http_body(&response)?;
    Ok(Policy::parse(id, &String::from_utf8_lossy(&body))?)
}

/// The body of an HTTP/1.1 response that must be `200` and `text/plain`.
fn http_body(response: &[u8]) -> Result<Vec<u8>, FetchError> {
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").ok_or(FetchError::Malformed("no end of headers"))?;
    let head = String::from_utf8_lossy(&response[..split]);
    let body = &response[split + 4..];
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default();
    let code = status.split_whitespace().nth(1).unwrap_or_default();
    if !status.starts_with("HTTP/1.") || code != "200" {
        return Err(FetchError::Status(status.to_string()));
    }
    let (mut chunked, mut length, mut media_type) = (false, None, None);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "transfer-encoding" => chunked = value.to_ascii_lowercase().contains("chunked"),
            "content-length" => length = value.parse::<usize>().ok(),
            "content-type" => media_type = Some(value.to_string()),
            _ => {}
        }
    }
    let media_type = media_type.unwrap_or_default();
    if !media_type.to_ascii_lowercase().starts_with("text/plain") {
        return Err(FetchError::MediaType(media_type));
    }
    if chunked {
        return dechunk(body);
    }
    Ok(match length {
        Some(n) if n <= body.len() => body[..n].to_vec(),
        Some(_) => return Err(FetchError::Malformed("body shorter than Content-Length")),
        None => body.to_vec(),
    })
}

/// Decodes `Transfer-Encoding: chunked` (extensions and trailers ignored).
fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, FetchError> {
    let mut body = Vec::new();
    loop {
        let end = rest.windows(2).position(|w| w == b"\r\n").ok_or(FetchError::Malformed("chunk size line"))?;
        let size_line = String::from_utf8_lossy(&rest[..end]);
        let size_hex = size_line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_hex, 16).map_err(|_| FetchError::Malformed("chunk size"))?;
        rest = &rest[end + 2..];
        if size == 0 {
            return Ok(body);
        }
        if rest.len() < size {
            return Err(FetchError::Malformed("truncated chunk"));
        }
        body.extend_from_slice(&rest[..size]);
        rest = rest.get(size + 2..).unwrap_or_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmax_age: 86400\r\n";

    #[test]
    fn a_policy_parses_and_matches_mx_hosts_as_rfc_8461_says() {
        let policy = Policy::parse("20260101", POLICY).unwrap();
        assert_eq!((policy.mode, policy.max_age), (Mode::Enforce, 86400));
        assert!(policy.allows("mail.example.com") && policy.allows("MAIL.Example.COM."));
        assert!(policy.allows("mx1.example.net"));
        assert!(!policy.allows("example.net"), "the wildcard needs one label");
        assert!(!policy.allows("a.b.example.net"), "and only one");
        assert!(!policy.allows("mail.example.org"));
    }

    #[test]
    fn a_stored_policy_reads_back_with_its_fetch_time() {
        let policy = Policy::parse("id1", "version: STSv1\nmode: enforce\nmx: *.mx.example\nmx: mail.example\nmax_age: 600\n").unwrap();
        let value = format!("id1\n1700000000\n{}", policy.text());
        assert_eq!(from_stored(value.as_bytes()), Some((policy, 1_700_000_000)));
        assert_eq!(from_stored(b"id1\nnot a time\nversion: STSv1"), None);
        assert_eq!(from_stored(b"id1\n1700000000\nmode: enforce"), None, "not a policy");
    }

    #[test]
    fn bad_policies_say_what_is_wrong() {
        let cases = [
            ("mode: enforce\nmx: a\nmax_age: 1\n", PolicyError::Version),
            ("version: STSv1\nmode: strict\nmx: a\nmax_age: 1\n", PolicyError::Mode("strict".into())),
            ("version: STSv1\nmx: a\nmax_age: 1\n", PolicyError::NoMode),
            ("version: STSv1\nmode: enforce\nmx: a\nmax_age: 31557601\n", PolicyError::MaxAge("31557601".into())),
            ("version: STSv1\nmode: enforce\nmx: a\n", PolicyError::NoMaxAge),
            ("version: STSv1\nmode: enforce\nmax_age: 1\n", PolicyError::NoMx("enforce")),
        ];
        for (text, error) in cases {
            assert_eq!(Policy::parse("1", text), Err(error), "{text}");
        }
        assert_eq!(Policy::parse("1", "version: STSv1\nmode: none\nmax_age: 0\nextension: yes\n").unwrap().mode, Mode::None);
    }

    #[test]
    fn the_txt_record_gives_an_id_only_when_it_is_one_valid_record() {
        let id = |records: &[&str]| record_id(&records.iter().map(|r| r.to_string()).collect::<Vec<_>>());
        assert_eq!(id(&["v=STSv1; id=20160831085700Z;"]), Some("20160831085700Z".into()));
        assert_eq!(id(&["v=spf1 -all", "v=STSv1;id=abc"]), Some("abc".into()));
        assert_eq!(id(&["v=STSv1; id=a", "v=STSv1; id=b"]), None, "two records: none applies");
        assert_eq!(id(&["v=STSv1; id=not-alnum"]), None);
        assert_eq!(id(&["v=STSv1;"]), None);
        assert_eq!(id(&["v=STSv2; id=1"]), None);
    }

    #[test]
    fn http_responses_give_their_body_only_for_200_text_plain() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 5\r\n\r\nhello, and more";
        assert_eq!(http_body(ok).unwrap(), b"hello");
        let chunked =
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n";
        assert_eq!(http_body(chunked).unwrap(), b"hello world");
        assert!(matches!(http_body(b"HTTP/1.1 301 Moved\r\nLocation: x\r\n\r\n"), Err(FetchError::Status(_))));
        assert!(matches!(http_body(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\nx"), Err(FetchError::MediaType(_))));
        assert!(matches!(http_body(b"HTTP/1.1 200 OK\r\n"), Err(FetchError::Malformed(_))));
        let truncated = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\nff\r\nshort";
        assert!(matches!(http_body(truncated), Err(FetchError::Malformed(_))));
        let short = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 50\r\n\r\nshort";
        assert!(matches!(http_body(short), Err(FetchError::Malformed(_))));
    }
}
