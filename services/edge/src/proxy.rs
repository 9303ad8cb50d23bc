//! PROXY protocol v1 and v2 (HAProxy), read before the banner on listeners behind a
//! load balancer, so policy applies to the real client address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("connection closed before the PROXY header")]
    Eof,
    #[error("invalid PROXY header: {0}")]
    Invalid(&'static str),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Reads a PROXY header. Returns the client's address, or `None` for `UNKNOWN`/`LOCAL`
/// (health checks from the balancer itself: keep the socket's peer address).
pub async fn read_header<R: AsyncBufRead + Unpin>(reader: &mut R) -> Result<Option<SocketAddr>, ProxyError> {
    let first = reader.fill_buf().await?;
    if first.is_empty() {
        return Err(ProxyError::Eof);
    }
    if first[0] == b'\r' {
        let mut fixed = [0u8; 16];
        reader.read_exact(&mut fixed).await.map_err(|_| ProxyError::Eof)?;
        if &fixed[..12] != V2_SIGNATURE {
            return Err(ProxyError::Invalid("bad v2 signature"));
        }
        let len = u16::from_be_bytes([fixed[14], fixed[15]]) as usize;
        let mut rest = vec![0u8; len];
        reader.read_exact(&mut rest).await.map_err(|_| ProxyError::Eof)?;
        return parse_v2(fixed[12], fixed[13], &rest);
    }
    let mut line = Vec::with_capacity(108);
    // v1 headers are at most 107 bytes.
    let mut limited = reader.take(107);
    limited.read_until(b'\n', &mut line).await?;
    parse_v1(&line)
}

fn parse_v1(line: &[u8]) -> Result<Option<SocketAddr>, ProxyError> {
    let line = line.strip_suffix(b"\r\n").ok_or(ProxyError::Invalid("v1 header not ended by CRLF"))?;
    let text = std::str::from_utf8(line).map_err(|_| ProxyError::Invalid("v1 header not ASCII"))?;
    let mut parts = text.split(' ');
    if parts.next() != Some("PROXY") {
        return Err(ProxyError::Invalid("missing PROXY signature"));
    }
    match parts.next() {
        Some("UNKNOWN") => return Ok(None),
        Some("TCP4" | "TCP6") => {}
        _ => return Err(ProxyError::Invalid("v1 protocol must be TCP4, TCP6 or UNKNOWN")),
    }
    let (Some(src), Some(_dst), Some(sport), Some(_dport), None) = (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ProxyError::Invalid("v1 header needs 4 address fields"));
    };
    let ip: IpAddr = src.parse().map_err(|_| ProxyError::Invalid("bad v1 source address"))?;
    let port: u16 = sport.parse().map_err(|_| ProxyError::Invalid("bad v1 source port"))?;
    Ok(Some(SocketAddr::new(ip, port)))
}

fn parse_v2(version_command: u8, family: u8, rest: &[u8]) -> Result<Option<SocketAddr>, ProxyError> {
    if version_command >> 4 != 2 {
        return Err(ProxyError::Invalid("unsupported v2 version"));
    }
    match version_command & 0x0f {
        0 => return Ok(None), // LOCAL
        1 => {}
        _ => return Err(ProxyError::Invalid("unsupported v2 command")),
    }
    match family >> 4 {
        1 if rest.len() >= 12 => {
            let ip = Ipv4Addr::new(rest[0], rest[1], rest[2], rest[3]);
            Ok(Some(SocketAddr::new(ip.into(), u16::from_be_bytes([rest[8], rest[9]]))))
        }
        2 if rest.len() >= 36 => {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&rest[..16]);
            Ok(Some(SocketAddr::new(Ipv6Addr::from(octets).into(), u16::from_be_bytes([rest[32], rest[33]]))))
        }
        0 => Ok(None),
        _ => Err(ProxyError::Invalid("unsupported or truncated v2 address")),
    }
}

/// Encodes a v2 header (for tests and the load harness).
pub fn encode_v2(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let mut out = V2_SIGNATURE.to_vec();
    out.push(0x21);
    match (src, dst) {
        (SocketAddr::V4(s), SocketAddr::V4(d)) => {
            out.extend_from_slice(&[0x11, 0, 12]);
            out.extend_from_slice(&s.ip().octets());
            out.extend_from_slice(&d.ip().octets());
            out.extend_from_slice(&s.port().to_be_bytes());
            out.extend_from_slice(&d.port().to_be_bytes());
        }
        (s, d) => {
            let v6 = |a: SocketAddr| match a.ip() {
                IpAddr::V4(v4) => v4.to_ipv6_mapped(),
                IpAddr::V6(v6) => v6,
            };
            out.extend_from_slice(&[0x21, 0, 36]);
            out.extend_from_slice(&v6(s).octets());
            out.extend_from_slice(&v6(d).octets());
            out.extend_from_slice(&s.port().to_be_bytes());
            out.extend_from_slice(&d.port().to_be_bytes());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read(bytes: &[u8]) -> Result<Option<SocketAddr>, ProxyError> {
        let mut r = tokio::io::BufReader::new(bytes);
        read_header(&mut r).await
    }

    #[tokio::test]
    async fn v1_and_v2() {
        let v1 = read(b"PROXY TCP4 192.0.2.7 198.51.100.1 56324 25\r\nEHLO").await.unwrap();
        assert_eq!(v1, Some("192.0.2.7:56324".parse().unwrap()));
        let v1_6 = read(b"PROXY TCP6 2001:db8::1 2001:db8::2 1000 25\r\n").await.unwrap();
        assert_eq!(v1_6, Some("[2001:db8::1]:1000".parse().unwrap()));
        assert_eq!(read(b"PROXY UNKNOWN\r\n").await.unwrap(), None);
        let v2 = encode_v2("203.0.113.9:4000".parse().unwrap(), "10.0.0.1:25".parse().unwrap());
        assert_eq!(read(&v2).await.unwrap(), Some("203.0.113.9:4000".parse().unwrap()));
        let v2_6 = encode_v2("[2001:db8::9]:4000".parse().unwrap(), "[2001:db8::1]:25".parse().unwrap());
        assert_eq!(read(&v2_6).await.unwrap(), Some("[2001:db8::9]:4000".parse().unwrap()));
    }

    #[tokio::test]
    async fn garbage_is_an_error_not_a_panic() {
        for bad in [
            &b"EHLO me\r\n"[..],
            b"PROXY TCP4 x y z w\r\n",
            b"PROXY TCP4 1.2.3.4\r\n",
            b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x02ab",
            b"",
            &[b'P'; 300],
        ] {
            assert!(read(bad).await.is_err(), "{bad:?}");
        }
    }
}
