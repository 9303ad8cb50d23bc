//! A strict check of an SPF record's syntax (RFC 7208 §12), run on the sender's own
//! record before evaluation: a record that does not parse is a permerror (§4.6), which
//! mail-auth's lenient parser does not always report.

/// `Err(reason)` when `record` (starting with "v=spf1") is not valid SPF.
pub fn validate(record: &str) -> Result<(), String> {
    if let Some(c) = record.chars().find(|c| !(' '..='~').contains(c)) {
        return Err(format!("invalid character {c:?}"));
    }
    let mut terms = record.split(' ').filter(|t| !t.is_empty());
    if !terms.next().is_some_and(|v| v.eq_ignore_ascii_case("v=spf1")) {
        return Err("does not start with v=spf1".into());
    }
    let (mut redirect, mut exp) = (false, false);
    for term in terms {
        let lower = term.to_ascii_lowercase();
        // A modifier is name=value where name has no ':' or '/' (RFC 7208 §12).
        if let Some((name, value)) = term.split_once('=')
            && !name.contains([':', '/'])
        {
            if name.is_empty()
                || !name.starts_with(|c: char| c.is_ascii_alphabetic())
                || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                return Err(format!("invalid modifier name in {term:?}"));
            }
            match name.to_ascii_lowercase().as_str() {
                "redirect" => {
                    if std::mem::replace(&mut redirect, true) {
                        return Err("more than one redirect=".into());
                    }
                    domain_spec(value)?;
                }
                "exp" => {
                    if std::mem::replace(&mut exp, true) {
                        return Err("more than one exp=".into());
                    }
                    domain_spec(value)?;
                }
                _ => macro_string(value)?,
            }
            continue;
        }
        let body = lower.strip_prefix(['+', '-', '?', '~']).unwrap_or(&lower);
        let (name, arg) = match body.find([':', '/']) {
            Some(i) => (&body[..i], &body[i..]),
            None => (body, ""),
        };
        // The original case matters for macros only, so check with the original text.
        let original_arg = &term[term.len() - arg.len()..];
        match name {
            "all" if arg.is_empty() => {}
            "include" | "exists" => domain_spec(original_arg.strip_prefix(':').ok_or_else(|| format!("{name} needs a domain"))?)?,
            "a" | "mx" => {
                if let Some(d) = domain_before_cidr(original_arg)? {
                    domain_spec(d.strip_prefix(':').ok_or_else(|| format!("bad {name} term {term:?}"))?)?;
                }
            }
            "ptr" if arg.is_empty() => {}
            "ptr" => domain_spec(original_arg.strip_prefix(':').ok_or_else(|| format!("bad ptr term {term:?}"))?)?,
            "ip4" => {
                let value = original_arg.strip_prefix(':').ok_or("ip4 needs an address")?;
                let (ip, len) = value.split_once('/').map_or((value, None), |(i, l)| (i, Some(l)));
                ip.parse::<std::net::Ipv4Addr>().map_err(|_| format!("bad ip4 address {ip:?}"))?;
                if let Some(l) = len {
                    cidr_length(l, 32)?;
                }
            }
            "ip6" => {
                let value = original_arg.strip_prefix(':').ok_or("ip6 needs an address")?;
                let (ip, len) = match value.rfind('/') {
                    Some(i) => (&value[..i], Some(&value[i + 1..])),
                    None => (value, None),
                };
                ip.parse::<std::net::Ipv6Addr>().map_err(|_| format!("bad ip6 address {ip:?}"))?;
                if let Some(l) = len {
                    cidr_length(l, 128)?;
                }
            }
            _ => return Err(format!("unknown mechanism {term:?}")),
        }
    }
    Ok(())
}

/// Checks the CIDR suffix of `[":" domain-spec] [dual-cidr-length]` and returns what
/// comes before it.
fn domain_before_cidr(arg: &str) -> Result<Option<&str>, String> {
    // The CIDR part is the shortest suffix "/N", "//N" or "/N//M" of digits.
    let mut domain = arg;
    if let Some(i) = arg.find("//") {
        cidr_length(&arg[i + 2..], 128)?;
        domain = &arg[..i];
    }
    if let Some(i) = domain.rfind('/')
        && domain[i + 1..].chars().all(|c| c.is_ascii_digit())
    {
        cidr_length(&domain[i + 1..], 32)?;
        domain = &domain[..i];
    } else if domain.ends_with('/') {
        return Err("empty CIDR length".into());
    }
    Ok((!domain.is_empty()).then_some(domain))
}

/// RFC 7208: "0" or a number without leading zeros, at most `max`.
fn cidr_length(s: &str, max: u32) -> Result<(), String> {
    let valid = !s.is_empty() && s.chars().all(|c| c.is_ascii_digit()) && (s == "0" || !s.starts_with('0')) && s.len() <= 3;
    match s.parse::<u32>() {
        Ok(n) if valid && n <= max => Ok(()),
        _ => Err(format!("bad CIDR length {s:?}")),
    }
}

/// domain-spec = macro-string domain-end; domain-end = "." toplabel ["."] / macro-expand.
fn domain_spec(s: &str) -> Result<(), String> {
    macro_string(s)?;
    if s.is_empty() {
        return Err("empty domain".into());
    }
    if s.ends_with('}') || s.ends_with("%%") || s.ends_with("%_") || s.ends_with("%-") {
        return Ok(()); // ends with a macro-expand
    }
    let trimmed = s.strip_suffix('.').unwrap_or(s);
    let Some((_, top)) = trimmed.rsplit_once('.') else { return Err(format!("{s:?} has no top-level label")) };
    let alnum = |c: char| c.is_ascii_alphanumeric();
    let top_ok = !top.is_empty()
        && top.chars().all(|c| alnum(c) || c == '-')
        && top.chars().any(|c| c.is_ascii_alphabetic())
        && top.starts_with(alnum)
        && top.ends_with(alnum);
    if top_ok { Ok(()) } else { Err(format!("{s:?} has an invalid top-level label")) }
}

/// macro-string = *( macro-expand / macro-literal ).
fn macro_string(s: &str) -> Result<(), String> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'%' {
            if !(0x21..=0x7e).contains(&b[i]) {
                return Err(format!("invalid character in {s:?}"));
            }
            i += 1;
            continue;
        }
        match b.get(i + 1) {
            Some(b'%' | b'_' | b'-') => i += 2,
            Some(b'{') => {
                let end = s[i..].find('}').map(|e| i + e).ok_or_else(|| format!("unclosed macro in {s:?}"))?;
                let inner = &s[i + 2..end];
                let mut chars = inner.chars();
                if !chars.next().is_some_and(|c| "slodiphcrtvSLODIPHCRTV".contains(c)) {
                    return Err(format!("invalid macro letter in {s:?}"));
                }
                let rest: String = chars.collect();
                let digits_end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
                let after = rest[digits_end..].strip_prefix(['r', 'R']).unwrap_or(&rest[digits_end..]);
                if !after.chars().all(|c| ".-+,/_=".contains(c)) {
                    return Err(format!("invalid macro transformer in {s:?}"));
                }
                i = end + 1;
            }
            _ => return Err(format!("invalid '%' in {s:?}")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::validate;

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
            "v=spf1 include",
            "v=spf1 frobnicate",
            "v=spf1 ip4:192.0.2.5\n include:x.example",
            "v=spf1 a:caf\u{e9}.example",
        ] {
            assert!(validate(r).is_err(), "{r} should be invalid");
        }
    }
}
