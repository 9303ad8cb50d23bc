//! What a ZIP attachment holds, read from its central directory without decompressing
//! anything: the file names and whether any entry is encrypted (a password-protected
//! archive is how malware gets past scanners that cannot open it).

/// Entries read at most (a hostile archive can claim millions).
const MAX_ENTRIES: usize = 1000;
/// End of central directory record: signature, then 18 bytes, then a comment of up to
/// 65,535 bytes, so it starts within the last 65,557 bytes.
const EOCD_SIGNATURE: &[u8; 4] = b"PK\x05\x06";
const EOCD_LEN: usize = 22;
const CENTRAL_SIGNATURE: &[u8; 4] = b"PK\x01\x02";
const CENTRAL_HEADER_LEN: usize = 46;

#[derive(Debug, Default, PartialEq)]
pub struct Listing {
    pub names: Vec<String>,
    /// Some entry has the "encrypted" flag (general purpose bit 0).
    pub encrypted: bool,
}

/// Whether `bytes` starts like a ZIP file (a local file header or an empty archive).
pub fn is_zip(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(EOCD_SIGNATURE)
}

/// The entries of a ZIP archive; `None` when `bytes` has no readable central directory.
pub fn list_zip(bytes: &[u8]) -> Option<Listing> {
    let search_from = bytes.len().saturating_sub(EOCD_LEN + u16::MAX as usize);
    let eocd = (search_from..=bytes.len().checked_sub(EOCD_LEN)?).rev().find(|&i| bytes[i..].starts_with(EOCD_SIGNATURE))?;
    let entries = usize::from(u16_at(bytes, eocd + 10)?);
    let mut at = u32_at(bytes, eocd + 16)? as usize;
    let mut listing = Listing::default();
    for _ in 0..entries.min(MAX_ENTRIES) {
        let header = bytes.get(at..at + CENTRAL_HEADER_LEN)?;
        if !header.starts_with(CENTRAL_SIGNATURE) {
            return None;
        }
        let flags = u16_at(header, 8)?;
        let (name_len, extra_len, comment_len) =
            (usize::from(u16_at(header, 28)?), usize::from(u16_at(header, 30)?), usize::from(u16_at(header, 32)?));
        let name = bytes.get(at + CENTRAL_HEADER_LEN..at + CENTRAL_HEADER_LEN + name_len)?;
        listing.encrypted |= flags & 1 == 1;
        listing.names.push(String::from_utf8_lossy(name).into_owned());
        at += CENTRAL_HEADER_LEN + name_len + extra_len + comment_len;
    }
    Some(listing)
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

/// A stored (uncompressed) ZIP archive of `files` (name, content, encrypted flag): for
/// tests, so they need no archive tool.
pub fn build_zip(files: &[(&str, &[u8], bool)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, content, encrypted) in files {
        let offset = out.len() as u32;
        let flags: u16 = u16::from(*encrypted);
        let header = |signature: &[u8; 4], central_dir: bool| {
            let mut h = signature.to_vec();
            if central_dir {
                h.extend_from_slice(&20u16.to_le_bytes()); // made by
            }
            h.extend_from_slice(&20u16.to_le_bytes()); // needed to extract
            h.extend_from_slice(&flags.to_le_bytes());
            h.extend_from_slice(&0u16.to_le_bytes()); // stored
            h.extend_from_slice(&[0; 4]); // time, date
            h.extend_from_slice(&[0; 4]); // crc (not checked here)
            h.extend_from_slice(&(content.len() as u32).to_le_bytes());
            h.extend_from_slice(&(content.len() as u32).to_le_bytes());
            h.extend_from_slice(&(name.len() as u16).to_le_bytes());
            h.extend_from_slice(&0u16.to_le_bytes()); // extra
            if central_dir {
                h.extend_from_slice(&[0; 6]); // comment length, disk, internal attributes
                h.extend_from_slice(&[0; 4]); // external attributes
                h.extend_from_slice(&offset.to_le_bytes());
            }
            h.extend_from_slice(name.as_bytes());
            h
        };
        out.extend(header(b"PK\x03\x04", false));
        out.extend_from_slice(content);
        central.extend(header(CENTRAL_SIGNATURE, true));
    }
    let central_offset = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(EOCD_SIGNATURE);
    out.extend_from_slice(&[0; 4]); // disk numbers
    out.extend_from_slice(&(files.len() as u16).to_le_bytes());
    out.extend_from_slice(&(files.len() as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&central_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_names_and_the_encrypted_flag() {
        let zip = build_zip(&[("invoice.pdf", b"%PDF", false), ("docs/run.exe", b"MZ", true)]);
        assert!(is_zip(&zip));
        let listing = list_zip(&zip).expect("a readable archive");
        assert_eq!(listing.names, ["invoice.pdf", "docs/run.exe"]);
        assert!(listing.encrypted);
        let plain = list_zip(&build_zip(&[("a.txt", b"a", false)])).expect("readable");
        assert!(!plain.encrypted);
    }

    #[test]
    fn garbage_and_truncated_archives_are_none() {
        let zip = build_zip(&[("a.txt", b"hello", false)]);
        for cut in 0..zip.len() {
            // Any prefix: never a panic; the full archive only is readable.
            let _ = list_zip(&zip[..cut]);
        }
        assert_eq!(list_zip(b"PK\x05\x06"), None);
        assert_eq!(list_zip(b"not a zip at all, just text"), None);
        let mut lying = zip.clone();
        let n = lying.len();
        lying[n - 10..n - 6].copy_from_slice(&u32::MAX.to_le_bytes()); // central directory size
        lying[n - 6..n - 2].copy_from_slice(&u32::MAX.to_le_bytes()); // and offset out of range
        assert_eq!(list_zip(&lying), None);
    }
}
