//! RFC 3461 xtext, the encoding of `ENVID` and `ORCPT`: printable ASCII but `+` and
//! `=` as themselves, everything else as `+XX`. The edge checks it, the relay decodes
//! it into DSNs; one module so that both agree.

/// Whether `s` is xtext. An escape of a control character (`+0D`, `+0A`, `+00`…) is
/// refused: decoded, it would end a line of the DSN the value is copied into.
pub fn is_valid(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => {
                let Some(hex) = s.get(i + 1..i + 3).filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit())) else { return false };
                if u8::from_str_radix(hex, 16).map_or(true, |v| v < 0x20 || v == 0x7f) {
                    return false;
                }
                i += 3;
            }
            b'!'..=b'~' if b[i] != b'=' => i += 1,
            _ => return false,
        }
    }
    true
}

/// Encodes `s` (its UTF-8 bytes) as xtext.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'!'..=b'~' if b != b'+' && b != b'=' => out.push(char::from(b)),
            _ => out.push_str(&format!("+{b:02X}")),
        }
    }
    out
}

/// Decodes xtext (`+XX` escapes; a malformed escape is kept as it is). Control
/// characters come out as `?`: the edge refuses them, and an envelope from elsewhere
/// (an older queue) still never breaks a line of a report.
pub fn decode(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'+'
            && let Some(v) = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).chars().map(|c| if c.is_control() { '?' } else { c }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn examples() {
        assert!(is_valid("rfc822;a+2Bb@example.com"));
        assert!(!is_valid("a+2"));
        assert!(!is_valid("a b"));
        assert!(!is_valid("a=b"));
        assert!(!is_valid("id+0D+0ABcc:x"));
        assert!(is_valid("a+20b"));
        assert_eq!(decode("a+2Bb+3Dc"), "a+b=c");
        assert_eq!(decode("bad+Z"), "bad+Z");
        assert_eq!(decode("id+0D+0ABcc: x"), "id??Bcc: x");
    }

    proptest! {
        /// Any text without control characters encodes to valid xtext and back.
        #[test]
        fn encode_then_decode_gives_the_text_back(s in "[^\\p{Cc}]{0,64}") {
            let encoded = encode(&s);
            prop_assert!(is_valid(&encoded), "{encoded}");
            prop_assert_eq!(decode(&encoded), s);
        }

        /// Whatever is decoded holds no line break or other control character.
        #[test]
        fn nothing_decoded_breaks_a_line(s in "\\PC{0,64}") {
            prop_assert!(!decode(&s).chars().any(char::is_control));
        }
    }
}
