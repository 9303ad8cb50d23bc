//! An ICAP client (RFC 3507) for commercial scanners: the message is sent as the body
//! of an HTTP response in a `RESPMOD` request (`Allow: 204`, chunked). `204` means
//! clean; a `200` carries the verdict in `X-Infection-Found` (`Threat=NAME;`),
//! `X-Violations-Found` or `X-Virus-ID`, as c-icap, Squid's scanners and the commercial
//! gateways send it.

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use super::{EngineError, Verdict};

/// ICAP response headers read at most.
const MAX_HEADER: usize = 64 << 10;
/// An ICAP answer read at most (headers and the start of what it encapsulates).
const MAX_ANSWER: u64 = 1 << 20;

#[derive(Debug, Clone, PartialEq)]
pub struct Icap {
    /// "HOST:PORT".
    authority: String,
    /// "icap://HOST:PORT/SERVICE", as the request line names it.
    uri: String,
}

impl Icap {
    /// "icap://HOST[:PORT]/SERVICE" (port 1344 by default).
    pub fn parse(text: &str) -> Result<Icap, String> {
        let bad = || format!("{text:?} is not \"icap://HOST:PORT/SERVICE\"");
        let rest = text.strip_prefix("icap://").ok_or_else(bad)?;
        let (authority, service) = rest.split_once('/').ok_or_else(bad)?;
        if authority.is_empty() || service.is_empty() || authority.contains(['@', ' ']) {
            return Err(bad());
        }
        let authority = match authority.rsplit_once(':') {
            Some((_, port)) if port.parse::<u16>().is_ok() => authority.to_string(),
            Some((_, _)) if !authority.starts_with('[') => return Err(bad()),
            _ => format!("{authority}:1344"),
        };
        Ok(Icap { uri: format!("icap://{authority}/{service}"), authority })
    }

    /// Scans `data`; the caller bounds the time.
    pub async fn scan(&self, data: &[u8]) -> Result<Verdict, EngineError> {
        let stream = tokio::net::TcpStream::connect(self.authority.as_str()).await?;
        stream.set_nodelay(true)?;
        let (reader, mut writer) = stream.into_split();
        let http = "HTTP/1.1 200 OK\r\nContent-Type: message/rfc822\r\n\r\n";
        let host = self.authority.rsplit_once(':').map_or(self.authority.as_str(), |(h, _)| h);
        let request = format!(
            "RESPMOD {} ICAP/1.0\r\nHost: {host}\r\nAllow: 204\r\nConnection: close\r\nEncapsulated: res-hdr=0, res-body={}\r\n\r\n{http}",
            self.uri,
            http.len()
        );
        writer.write_all(request.as_bytes()).await?;
        writer.write_all(format!("{:x}\r\n", data.len()).as_bytes()).await?;
        writer.write_all(data).await?;
        writer.write_all(b"\r\n0\r\n\r\n").await?;
        writer.flush().await?;

        // The server's whole answer is read within a bound, like every network input.
        let mut reader = BufReader::new(reader.take(MAX_ANSWER));
        let mut status = String::new();
        reader.read_line(&mut status).await?;
        let code: u16 = status
            .strip_prefix("ICAP/1.0 ")
            .and_then(|s| s.get(..3))
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| EngineError::Protocol(format!("not an ICAP status line: {:?}", status.trim())))?;
        let mut headers = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).await? == 0 || line == "\r\n" || line == "\n" {
                break;
            }
            headers.push_str(&line);
            if headers.len() > MAX_HEADER {
                return Err(EngineError::Protocol("ICAP header too long".into()));
            }
        }
        match code {
            204 => Ok(Verdict::Clean),
            200 => {
                if let Some(name) = threat(&headers) {
                    return Ok(Verdict::Found(name));
                }
                // No verdict header: a 403 inside means blocked, anything else clean.
                let mut rest = Vec::new();
                let _ = reader.take(MAX_HEADER as u64).read_to_end(&mut rest).await;
                let blocked = String::from_utf8_lossy(&rest).lines().next().is_some_and(|l| l.contains(" 403 "));
                Ok(if blocked { Verdict::Found("blocked by the ICAP service".into()) } else { Verdict::Clean })
            }
            _ => Err(EngineError::Protocol(format!("ICAP server answered {}", status.trim()))),
        }
    }
}

/// The threat's name in an ICAP response's headers.
fn threat(headers: &str) -> Option<String> {
    let lines: Vec<&str> = headers.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let Some((name, value)) = line.split_once(':') else { continue };
        match name.trim().to_ascii_lowercase().as_str() {
            "x-infection-found" => {
                let found = value.split(';').find_map(|p| p.trim().strip_prefix("Threat=")).map(|t| t.trim().to_string());
                if let Some(t) = found.filter(|t| !t.is_empty()) {
                    return Some(t.trim_end_matches(".UNOFFICIAL").to_string());
                }
            }
            // Folded: filename, then the threat on the next line.
            "x-violations-found" => {
                if let Some(t) = lines.get(i + 2).map(|l| l.trim()).filter(|t| !t.is_empty()) {
                    return Some(t.trim_end_matches(".UNOFFICIAL").to_string());
                }
            }
            "x-virus-id" if !value.trim().is_empty() => return Some(value.trim().to_string()),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_and_threats() {
        assert_eq!(Icap::parse("icap://127.0.0.1:1344/avscan").map(|i| i.authority), Ok("127.0.0.1:1344".into()));
        assert_eq!(Icap::parse("icap://scanner/srv_clamav").map(|i| i.uri), Ok("icap://scanner:1344/srv_clamav".into()));
        assert!(Icap::parse("http://x/avscan").is_err());
        assert!(Icap::parse("icap://x:99999/a").is_err());
        assert!(Icap::parse("icap://x").is_err());
        let h = "ISTag: \"x\"\r\nX-Infection-Found: Type=0; Resolution=2; Threat=Eicar-Test-Signature.UNOFFICIAL;\r\n";
        assert_eq!(threat(h).as_deref(), Some("Eicar-Test-Signature"));
        let h = "X-Violations-Found: 1\r\n\t-\r\n\tWin.Trojan.X\r\n\t0\r\n\t0\r\n";
        assert_eq!(threat(h).as_deref(), Some("Win.Trojan.X"));
        assert_eq!(threat("X-Virus-ID: W32/Bad\r\n").as_deref(), Some("W32/Bad"));
        assert_eq!(threat("ISTag: x\r\n"), None);
    }
}
