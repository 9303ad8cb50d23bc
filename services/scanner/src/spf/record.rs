//! SPF records (RFC 7208 §12) parsed strictly into terms: a record that does not
//! parse is a permerror (§4.6), whatever its earlier terms would have matched.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::SpfSyntaxError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qualifier {
    Pass,
    Fail,
    SoftFail,
    Neutral,
}

/// A mechanism; domain-specs are kept unexpanded (macros are expanded at evaluation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mechanism {
    All,
    Include(String),
    A { domain: Option<String>, v4: u8, v6: u8 },
    Mx { domain: Option<String>, v4: u8, v6: u8 },
    Ptr(Option<String>),
    Ip4(Ipv4Addr, u8),
    Ip6(Ipv6Addr, u8),
    Exists(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub directives: Vec<(Qualifier, Mechanism)>,
    pub redirect: Option<String>,
    pub exp: Option<String>,
}

/// Whether a TXT record is an SPF record: "v=spf1" alone or followed by a space (§4.5).
pub fn is_spf_record(text: &str) -> bool {
    text.len() >= 6 && text[..6].eq_ignore_ascii_case("v=spf1") && (text.len() == 6 || text.as_bytes()[6] == b' ')
}

/// Parses a record starting with "v=spf1"; `Err(reason)` when it is not valid SPF.
pub fn parse(record: &str) -> Result<Record, SpfSyntaxError> {
    if let Some(c) = record.chars().find(|c| !(' '..='~').contains(c)) {
        return Err(SpfSyntaxError(format!("invalid character {c:?}")));
    }
    let mut terms = record.split(' ').filter(|t| !t.is_empty());
    if !terms.next().is_some_and(|v| v.eq_ignore_ascii_case("v=spf1")) {
        return Err(SpfSyntaxError("does not start with v=spf1".into()));
    }
    let mut parsed = Record { directives: Vec::new(), redirect: None, exp: None };
    for term in terms {
        // A modifier is name=value where name has no ':' or '/' (RFC 7208 §12).
        if let Some((name, value)) = term.split_once('=')
            && !name.contains([':', '/'])
        {
            if name.is_empty()
                || !name.starts_with(|c: char| c.is_ascii_alphabetic())
                || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                return Err(SpfSyntaxError(format!("invalid modifier name in {term:?}")));
            }
            match name.to_ascii_lowercase().as_str() {
                "redirect" => {
                    domain_spec(value)?;
                    if parsed.redirect.replace(value.to_string()).is_some() {
                        return Err(SpfSyntaxError("more than one redirect=".into()));
                    }
                }
                "exp" => {
                    domain_spec(value)?;
                    if parsed.exp.replace(value.to_string()).is_some() {
                        return Err(SpfSyntaxError("more than one exp=".into()));
                    }
                }
                _ => macro_string(value, ALL_LETTERS)?, // unknown modifiers are ignored (§6)
            }
            continue;
        }
        let (qualifier, body) = match term.as_bytes()[0] {
            b'+' => (Qualifier::Pass, &term[1..]),
            b'-' => (Qualifier::Fail, &term[1..]),
            b'~' => (Qualifier::SoftFail, &term[1..]),
            b'?' => (Qualifier::Neutral, &term[1..]),
            _ => (Qualifier::Pass, term),
        };
        let (name, arg) = match body.find([':', '/']) {
            Some(i) => (body[..i].to_ascii_lowercase(), &body[i..]),
            None => (body.to_ascii_lowercase(), ""),
        };
        let required_domain = |arg: &str| -> Result<String, SpfSyntaxError> {
            let d = arg.strip_prefix(':').ok_or_else(|| SpfSyntaxError(format!("{name} needs a domain in {term:?}")))?;
            domain_spec(d)?;
            Ok(d.to_string())
        };
        let mechanism = match name.as_str() {
            "all" if arg.is_empty() => Mechanism::All,
            "include" => Mechanism::Include(required_domain(arg)?),
            "exists" => Mechanism::Exists(required_domain(arg)?),
            "a" | "mx" => {
                let (domain, v4, v6) = domain_and_cidr(arg)?;
                let domain = domain.map(required_domain).transpose()?;
                if name == "a" { Mechanism::A { domain, v4, v6 } } else { Mechanism::Mx { domain, v4, v6 } }
            }
            "ptr" if arg.is_empty() => Mechanism::Ptr(None),
            "ptr" => Mechanism::Ptr(Some(required_domain(arg)?)),
            "ip4" => {
                let value = arg.strip_prefix(':').ok_or_else(|| SpfSyntaxError("ip4 needs an address".into()))?;
                let (ip, len) = value.split_once('/').map_or((value, None), |(i, l)| (i, Some(l)));
                let ip = ip.parse::<Ipv4Addr>().map_err(|_| SpfSyntaxError(format!("bad ip4 address {ip:?}")))?;
                Mechanism::Ip4(ip, len.map_or(Ok(32), |l| cidr_length(l, 32))?)
            }
            "ip6" => {
                let value = arg.strip_prefix(':').ok_or_else(|| SpfSyntaxError("ip6 needs an address".into()))?;
                let (ip, len) = match value.rfind('/') {
                    Some(i) => (&value[..i], Some(&value[i + 1..])),
                    None => (value, None),
                };
                let ip = ip.parse::<Ipv6Addr>().map_err(|_| SpfSyntaxError(format!("bad ip6 address {ip:?}")))?;
                Mechanism::Ip6(ip, len.map_or(Ok(128), |l| cidr_length(l, 128))?)
            }
            _ => return Err(SpfSyntaxError(format!("unknown mechanism {term:?}"))),
        };
        parsed.directives.push((qualifier, mechanism));
    }
    Ok(parsed)
}

/// Splits `[":" domain-spec] [dual-cidr-length]` into the domain part (with its ':')
/// and the IPv4 and IPv6 prefix lengths (32 and 128 when absent).
fn domain_and_cidr(arg: &str) -> Result<(Option<&str>, u8, u8), SpfSyntaxError> {
    // The CIDR part is the shortest suffix "/N", "//N" or "/N//M" of digits.
    let (mut domain, mut v4, mut v6) = (arg, 32, 128);
    if let Some(i) = arg.find("//") {
        v6 = cidr_length(&arg[i + 2..], 128)?;
        domain = &arg[..i];
    }
    if let Some(i) = domain.rfind('/')
        && domain[i + 1..].chars().all(|c| c.is_ascii_digit())
    {
        v4 = cidr_length(&domain[i + 1..], 32)?;
        domain = &domain[..i];
    } else if domain.ends_with('/') {
        return Err(SpfSyntaxError("empty CIDR length".into()));
    }
    Ok(((!domain.is_empty()).then_some(domain), v4, v6))
}

/// RFC 7208: "0" or a number without leading zeros, at most `max`.
fn cidr_length(s: &str, max: u8) -> Result<u8, SpfSyntaxError> {
    let valid = !s.is_empty() && s.chars().all(|c| c.is_ascii_digit()) && (s == "0" || !s.starts_with('0')) && s.len() <= 3;
    match s.parse::<u8>() {
        Ok(n) if valid && n <= max => Ok(n),
        _ => Err(SpfSyntaxError(format!("bad CIDR length {s:?}"))),
    }
}

/// domain-spec = macro-string domain-end; domain-end = "." toplabel ["."] / macro-expand.
fn domain_spec(s: &str) -> Result<(), SpfSyntaxError> {
    macro_string(s, DOMAIN_LETTERS)?;
    if s.is_empty() {
        return Err(SpfSyntaxError("empty domain".into()));
    }
    if s.ends_with('}') || s.ends_with("%%") || s.ends_with("%_") || s.ends_with("%-") {
        return Ok(()); // ends with a macro-expand
    }
    let trimmed = s.strip_suffix('.').unwrap_or(s);
    let Some((_, top)) = trimmed.rsplit_once('.') else { return Err(SpfSyntaxError(format!("{s:?} has no top-level label"))) };
    let alnum = |c: char| c.is_ascii_alphanumeric();
    let top_ok = !top.is_empty()
        && top.chars().all(|c| alnum(c) || c == '-')
        && top.chars().any(|c| c.is_ascii_alphabetic())
        && top.starts_with(alnum)
        && top.ends_with(alnum);
    if top_ok { Ok(()) } else { Err(SpfSyntaxError(format!("{s:?} has an invalid top-level label"))) }
}

/// Macro letters of a domain-spec; c, r and t are for explanation text only (§7.1).
const DOMAIN_LETTERS: &str = "slodiphv";
const ALL_LETTERS: &str = "slodiphcrtv";

/// macro-string = *( macro-expand / macro-literal ).
fn macro_string(s: &str, letters: &str) -> Result<(), SpfSyntaxError> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'%' {
            if !(0x21..=0x7e).contains(&b[i]) {
                return Err(SpfSyntaxError(format!("invalid character in {s:?}")));
            }
            i += 1;
            continue;
        }
        match b.get(i + 1) {
            Some(b'%' | b'_' | b'-') => i += 2,
            Some(b'{') => {
                let end = s[i..].find('}').map(|e| i + e).ok_or_else(|| SpfSyntaxError(format!("unclosed macro in {s:?}")))?;
                let inner = &s[i + 2..end];
                let mut chars = inner.chars();
                if !chars.next().is_some_and(|c| letters.contains(c.to_ascii_lowercase())) {
                    return Err(SpfSyntaxError(format!("invalid macro letter in {s:?}")));
                }
                let rest: String = chars.collect();
                let digits_end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
                // "If a DIGIT is specified, the value MUST be nonzero" (§7.3).
                if digits_end > 0 && rest[..digits_end].parse::<u32>().is_ok_and(|n| n == 0) {
                    return Err(SpfSyntaxError(format!("zero labels requested in {s:?}")));
                }
                let after = rest[digits_end..].strip_prefix(['r', 'R']).unwrap_or(&rest[digits_end..]);
                if !after.chars().all(|c| ".-+,/_=".contains(c)) {
                    return Err(SpfSyntaxError(format!("invalid macro transformer in {s:?}")));
                }
                i = end + 1;
            }
            _ => return Err(SpfSyntaxError(format!("invalid '%' in {s:?}"))),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse as validate;

    #[test]
    fn valid_records() {
        for r in [
            "v=spf1 -all",
            "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 a mx:mail.example.com/24//64 include:_spf.example.net ~all",
            "v=spf1 a:%{d}.example.com exists:%{ir}.%{l1r+-}._spf.%{d} -all",
            "v=spf1 redirect=_spf.example.com",
            "v=spf1 ptr ?all moo.cow-far_out=man:dog/cat",
            "v=spf1 a/24 mx//64 -all",
            "v=spf1 a:foo.example.com. -all",
        ] {
            assert!(validate(r).is_ok(), "{r}: {:?}", validate(r));
        }
    }

    #[test]
    fn invalid_records() {
        for r in [
            "v=spf1 ip4:192.0.2.300 -all",
            "v=spf1 ip4:1.2.3.4/33",
            "v=spf1 ip4:1.2.3.4/032",
            "v=spf1 ip6:::1/129",
            "v=spf1 a/33",
            "v=spf1 a:museum",
            "v=spf1 a:abc.123",
            "v=spf1 a:foo.example.com\u{0}",
            "v=spf1 redirect=a.example redirect=b.example",
            "v=spf1 =nothing",
            "v=spf1 exp=%{z}.example",
            "v=spf1 -all exp=%{r}.example.com",
            "v=spf1 exists:%{d0}.example.com",
            "v=spf1 include",
            "v=spf1 frobnicate",
            "v=spf1 ip4:192.0.2.5\n include:x.example",
            "v=spf1 a:caf\u{e9}.example",
        ] {
            assert!(validate(r).is_err(), "{r} should be invalid");
        }
    }
}
