//! Return paths that carry tags: BATV (`prvs=KDDDSSSSSS=local@domain`) changes every
//! day and SRS (`SRS0=HHHH=TT=domain=local@forwarder`) names a forwarder. Keys meant to
//! follow a sender over time (greylisting, the AWL) use the address underneath.

/// The address underneath a BATV or SRS tag, lower-cased; other addresses lower-cased.
pub fn untagged(address: &str) -> String {
    let address = address.to_ascii_lowercase();
    let Some((local, domain)) = address.rsplit_once('@') else { return address };
    if let Some(original) = batv_local(local) {
        return format!("{original}@{domain}");
    }
    // SRS1=HHH=forwarder==HHHH=TT=domain=local@…: the SRS0 part after "==".
    let srs0 = match local.strip_prefix("srs1=") {
        Some(rest) => rest.split_once("==").map(|(_, srs0)| srs0),
        None => local.strip_prefix("srs0="),
    };
    if let Some(rest) = srs0 {
        let fields: Vec<&str> = rest.splitn(4, '=').collect();
        if let [_, _, original_domain, original_local] = fields.as_slice()
            && !original_domain.is_empty()
            && !original_local.is_empty()
        {
            return format!("{original_local}@{original_domain}");
        }
    }
    address
}

/// The local part under a BATV tag: `prvs=KDDDSSSSSS=local` → `local`.
pub fn batv_local(local: &str) -> Option<&str> {
    let rest = local.get(..5).filter(|p| p.eq_ignore_ascii_case("prvs="))?;
    let (tag, original) = local[rest.len()..].split_once('=')?;
    (tag.len() == 10 && tag.bytes().all(|b| b.is_ascii_hexdigit()) && !original.is_empty()).then_some(original)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_removed() {
        assert_eq!(untagged("prvs=0123abcdef=Alice@Example.com"), "alice@example.com");
        assert_eq!(untagged("SRS0=HHH=TT=orig.example=bob@forwarder.example"), "bob@orig.example");
        assert_eq!(untagged("SRS1=X=fwd1.example==HHH=TT=orig.example=bob@fwd2.example"), "bob@orig.example");
        assert_eq!(untagged("prvs=short=alice@example.com"), "prvs=short=alice@example.com", "not a BATV tag");
        assert_eq!(untagged("plain@example.com"), "plain@example.com");
        assert_eq!(untagged(""), "");
    }
}
