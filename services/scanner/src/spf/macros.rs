//! Macro expansion (RFC 7208 §7). The syntax was checked when the record was parsed;
//! what can still fail here is a letter used outside its place (c, r, t are for the
//! explanation text only).

use std::net::IpAddr;

use super::SpfSyntaxError;

/// The values the macro letters stand for.
pub struct MacroValues<'a> {
    pub sender: &'a str,
    pub local: &'a str,
    pub sender_domain: &'a str,
    pub domain: &'a str,
    pub ip: IpAddr,
    pub helo: &'a str,
    pub receiver: &'a str,
    /// The validated name of the client (%{p}), looked up only when a macro needs it.
    pub validated_name: Option<&'a str>,
}

/// Whether `spec` uses %{p}, which costs DNS lookups to expand.
pub fn needs_validated_name(spec: &str) -> bool {
    spec.contains("%{p") || spec.contains("%{P")
}

/// Expands `spec`; `explanation` allows the letters c, r and t. `Err` is a permerror.
pub fn expand(spec: &str, values: &MacroValues, explanation: bool) -> Result<String, SpfSyntaxError> {
    let mut out = String::with_capacity(spec.len() + 32);
    let mut rest = spec;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        match after.as_bytes().first() {
            Some(&escape @ (b'%' | b'_' | b'-')) => {
                out.push_str(match escape {
                    b'%' => "%",
                    b'_' => " ",
                    _ => "%20",
                });
                rest = &after[1..];
            }
            Some(b'{') => {
                let end = after.find('}').ok_or_else(|| SpfSyntaxError(format!("unclosed macro in {spec:?}")))?;
                out.push_str(&expand_one(&after[1..end], values, explanation)?);
                rest = &after[end + 1..];
            }
            _ => return Err(SpfSyntaxError(format!("invalid '%' in {spec:?}"))),
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// One `%{letter digits r delimiters}`.
fn expand_one(inner: &str, values: &MacroValues, explanation: bool) -> Result<String, SpfSyntaxError> {
    let mut chars = inner.chars();
    let letter = chars.next().ok_or_else(|| SpfSyntaxError("empty macro".into()))?;
    let value = match letter.to_ascii_lowercase() {
        's' => values.sender.to_string(),
        'l' => values.local.to_string(),
        'o' => values.sender_domain.to_string(),
        'd' => values.domain.to_string(),
        'i' => dotted(values.ip),
        'p' => values.validated_name.unwrap_or("unknown").to_string(),
        'v' => if values.ip.is_ipv4() { "in-addr" } else { "ip6" }.to_string(),
        'h' => values.helo.to_string(),
        'c' if explanation => values.ip.to_string(),
        'r' if explanation => values.receiver.to_string(),
        't' if explanation => std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()).to_string(),
        other => return Err(SpfSyntaxError(format!("macro letter {other:?} is not allowed here"))),
    };
    let transformers: String = chars.collect();
    let digits_end = transformers.find(|c: char| !c.is_ascii_digit()).unwrap_or(transformers.len());
    let keep: Option<usize> = transformers[..digits_end].parse().ok();
    let rest = &transformers[digits_end..];
    let (reverse, delimiters) = match rest.strip_prefix(['r', 'R']) {
        Some(d) => (true, d),
        None => (false, rest),
    };
    let delimiters = if delimiters.is_empty() { "." } else { delimiters };
    let mut parts: Vec<&str> = value.split(|c| delimiters.contains(c)).collect();
    if reverse {
        parts.reverse();
    }
    if let Some(n) = keep
        && n < parts.len()
    {
        parts.drain(..parts.len() - n);
    }
    let joined = parts.join(".");
    Ok(if letter.is_ascii_uppercase() { url_escape(&joined) } else { joined })
}

/// %{i}: dotted quad, or the 32 nibbles of an IPv6 address separated by dots.
fn dotted(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let hex: String = v6.octets().iter().map(|b| format!("{b:02x}")).collect();
            hex.chars().map(String::from).collect::<Vec<_>>().join(".")
        }
    }
}

/// Uppercase macro letters: RFC 3986 escaping of everything but unreserved characters.
fn url_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(ip: &str) -> MacroValues<'static> {
        MacroValues {
            sender: "strong-bad@email.example.com",
            local: "strong-bad",
            sender_domain: "email.example.com",
            domain: "email.example.com",
            ip: ip.parse().unwrap(),
            helo: "mx.example.org",
            receiver: "receiver.test",
            validated_name: None,
        }
    }

    /// The examples of RFC 7208 §7.4.
    #[test]
    fn rfc_examples() {
        let v = values("192.0.2.3");
        for (spec, expected) in [
            ("%{s}", "strong-bad@email.example.com"),
            ("%{o}", "email.example.com"),
            ("%{d}", "email.example.com"),
            ("%{d4}", "email.example.com"),
            ("%{d3}", "email.example.com"),
            ("%{d2}", "example.com"),
            ("%{d1}", "com"),
            ("%{dr}", "com.example.email"),
            ("%{d2r}", "example.email"),
            ("%{l}", "strong-bad"),
            ("%{l-}", "strong.bad"),
            ("%{lr}", "strong-bad"),
            ("%{lr-}", "bad.strong"),
            ("%{l1r-}", "strong"),
            ("%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com"),
            ("%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"),
            ("%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", "bad.strong.lp.3.2.0.192.in-addr._spf.example.com"),
            ("%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", "3.2.0.192.in-addr.strong.lp._spf.example.com"),
            ("%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net"),
            ("%%%_%-", "% %20"),
            ("%{S}", "strong-bad%40email.example.com"),
        ] {
            assert_eq!(expand(spec, &v, false).unwrap(), expected, "{spec}");
        }
        let v6 = values("2001:db8::cb01");
        assert_eq!(
            expand("%{ir}.%{v}._spf.%{d2}", &v6, false).unwrap(),
            "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com"
        );
    }

    #[test]
    fn explanation_letters_only_in_explanations() {
        let v = values("192.0.2.3");
        assert!(expand("%{c}.example.com", &v, false).is_err());
        assert_eq!(expand("%{c} via %{r}", &v, true).unwrap(), "192.0.2.3 via receiver.test");
    }
}
