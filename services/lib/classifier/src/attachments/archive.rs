//! Opening archives within limits, recursively: ZIP (with `zip`), gzip and tar (with
//! `flate2` and `tar`), 7z listed (`sevenz-rust2`); the documents found on the way are
//! looked into (`content`). RAR has no maintained reader in Rust: known by its bytes
//! (an archive) and left to the engines.
//! Nothing is written to disk; every byte decompressed counts against the message's
//! budget, and an entry is read only up to what it claims (a lying header is a bomb).

use std::io::{Cursor, Read};

use super::kind::{self, Class};
use super::{Finding, Inner, Limits, content};

/// An entry must expand more than this before its ratio is judged.
const RATIO_FLOOR: u64 = 1 << 20;

pub(super) struct Budget {
    limits: Limits,
    bytes_left: u64,
    entries_left: usize,
}

impl Budget {
    pub(super) fn new(limits: &Limits) -> Self {
        Budget { limits: *limits, bytes_left: limits.max_total, entries_left: limits.max_entries }
    }
}

#[derive(Default)]
pub(super) struct Found {
    pub(super) inner: Vec<Inner>,
    pub(super) findings: Vec<Finding>,
}

impl Found {
    pub(super) fn add(&mut self, finding: Finding) {
        if !self.findings.contains(&finding) {
            self.findings.push(finding);
        }
    }
}

/// Looks into `bytes` (called `path`, of `class`, `depth` archives deep).
pub(super) fn open(bytes: &[u8], path: &str, class: Class, depth: usize, budget: &mut Budget, found: &mut Found) {
    if matches!(class, Class::Archive | Class::Office) && depth >= budget.limits.max_depth {
        found.add(Finding::TooDeep(format!("{path} is nested more than {} archives deep", budget.limits.max_depth)));
        return;
    }
    match class {
        Class::Archive | Class::Office if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") => {
            open_zip(bytes, path, depth, budget, found)
        }
        Class::Archive if bytes.starts_with(&[0x1f, 0x8b]) => open_gzip(bytes, path, depth, budget, found),
        Class::Archive if bytes.starts_with(b"7z\xBC\xAF\x27\x1C") => list_7z(bytes, path, depth, budget, found),
        Class::Archive if bytes.get(257..262) == Some(b"ustar") => open_tar(bytes, path, depth, budget, found),
        Class::Office if bytes.starts_with(&[0xD0, 0xCF, 0x11, 0xE0]) && content::ole_has_macros(bytes) => {
            found.add(Finding::Macro(path.to_string()))
        }
        Class::Pdf => content::pdf(bytes, path, found),
        Class::Html | Class::Hta if content::html_smuggling(bytes) => found.add(Finding::HtmlSmuggling(path.to_string())),
        _ => {}
    }
}

/// One file found inside an archive: listed, then looked into.
fn inner_file(bytes: Option<&[u8]>, path: String, depth: usize, budget: &mut Budget, found: &mut Found) {
    let (_, class, _) = kind::classify(bytes.unwrap_or_default(), &path);
    found.inner.push(Inner { path: path.clone(), class });
    if let Some(bytes) = bytes {
        open(bytes, &path, class, depth + 1, budget, found);
    }
}

fn open_zip(bytes: &[u8], path: &str, depth: usize, budget: &mut Budget, found: &mut Found) {
    let Ok(mut zip) = zip::ZipArchive::new(Cursor::new(bytes)) else { return };
    let total = zip.len();
    for index in 0..total {
        if budget.entries_left == 0 {
            found.add(Finding::Bomb(format!("{path} holds more than {} files", budget.limits.max_entries)));
            return;
        }
        budget.entries_left -= 1;
        let (name, size, compressed, encrypted, is_dir) = match zip.by_index_raw(index) {
            Ok(entry) => (
                entry.name().map(|n| n.into_owned()).unwrap_or_else(|_| format!("entry {index}")),
                entry.size(),
                entry.compressed_size(),
                entry.encrypted(),
                entry.is_dir(),
            ),
            Err(_) => return,
        };
        if is_dir {
            continue;
        }
        let inner_path = format!("{path}/{name}");
        if name.to_ascii_lowercase().ends_with("vbaproject.bin") {
            found.add(Finding::Macro(path.to_string()));
        }
        if encrypted {
            found.add(Finding::Encrypted(path.to_string()));
            inner_file(None, inner_path, depth, budget, found);
            continue;
        }
        if size > RATIO_FLOOR && size / compressed.max(1) > budget.limits.max_ratio {
            found.add(Finding::Bomb(format!("{inner_path} expands {size} bytes from {compressed}")));
            return;
        }
        // Too big to read (a large but ordinary file): listed by name only.
        if size > budget.limits.max_entry || size > budget.bytes_left {
            inner_file(None, inner_path, depth, budget, found);
            continue;
        }
        let mut content = Vec::new();
        let read = match zip.by_index(index) {
            // One byte more than claimed tells a lying header.
            Ok(entry) => entry.take(size + 1).read_to_end(&mut content),
            Err(_) => Ok(0),
        };
        budget.bytes_left = budget.bytes_left.saturating_sub(content.len() as u64);
        if content.len() as u64 > size {
            found.add(Finding::Bomb(format!("{inner_path} is larger than its header says")));
            return;
        }
        inner_file(read.is_ok().then_some(content.as_slice()), inner_path, depth, budget, found);
    }
}

/// Decompresses at most what the budget allows; more than that is a bomb.
fn inflate_within(reader: impl Read, path: &str, budget: &mut Budget, found: &mut Found) -> Option<Vec<u8>> {
    let allowed = budget.bytes_left.min(budget.limits.max_entry);
    let mut out = Vec::new();
    let _ = reader.take(allowed + 1).read_to_end(&mut out);
    budget.bytes_left = budget.bytes_left.saturating_sub(out.len() as u64);
    if out.len() as u64 > allowed {
        found.add(Finding::Bomb(format!("{path} expands beyond {allowed} bytes")));
        return None;
    }
    Some(out)
}

fn open_gzip(bytes: &[u8], path: &str, depth: usize, budget: &mut Budget, found: &mut Found) {
    let decoder = flate2::read::GzDecoder::new(bytes);
    let inner_name = decoder.header().and_then(|h| h.filename()).map(|n| String::from_utf8_lossy(n).into_owned());
    let Some(content) = inflate_within(decoder, path, budget, found) else { return };
    if content.get(257..262) == Some(b"ustar") {
        open_tar(&content, path, depth, budget, found);
        return;
    }
    let name = inner_name.unwrap_or_else(|| path.trim_end_matches(".gz").trim_end_matches(".GZ").to_string());
    inner_file(Some(&content), format!("{path}/{name}"), depth, budget, found);
}

/// A 7z archive is listed, not unpacked (its solid blocks would have to be decoded whole):
/// the names and their classes, and whether the content or the names are encrypted.
fn list_7z(bytes: &[u8], path: &str, depth: usize, budget: &mut Budget, found: &mut Found) {
    // Header dictionaries up to 16 MiB: a header claiming more is not read.
    let archive = match sevenz_rust2::Archive::read_with_memory_limit(&mut Cursor::new(bytes), &sevenz_rust2::Password::empty(), 16 << 10) {
        Ok(archive) => archive,
        Err(sevenz_rust2::Error::PasswordRequired) => {
            found.add(Finding::Encrypted(path.to_string()));
            return;
        }
        Err(_) => return,
    };
    for (index, entry) in archive.files.iter().enumerate() {
        if budget.entries_left == 0 {
            found.add(Finding::Bomb(format!("{path} holds more than {} files", budget.limits.max_entries)));
            return;
        }
        budget.entries_left -= 1;
        if entry.is_directory {
            continue;
        }
        if archive.is_file_encrypted(index) {
            found.add(Finding::Encrypted(path.to_string()));
        }
        inner_file(None, format!("{path}/{}", entry.name), depth, budget, found);
    }
}

fn open_tar(bytes: &[u8], path: &str, depth: usize, budget: &mut Budget, found: &mut Found) {
    let mut archive = tar::Archive::new(bytes);
    let Ok(entries) = archive.entries() else { return };
    for entry in entries {
        let Ok(entry) = entry else { return };
        if budget.entries_left == 0 {
            found.add(Finding::Bomb(format!("{path} holds more than {} files", budget.limits.max_entries)));
            return;
        }
        budget.entries_left -= 1;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry.path().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
        let inner_path = format!("{path}/{name}");
        let size = entry.size();
        if size > budget.limits.max_entry || size > budget.bytes_left {
            inner_file(None, inner_path, depth, budget, found);
            continue;
        }
        // A tar entry's bytes are already decompressed (counted by the gzip around it).
        let mut content = Vec::new();
        let read = entry.take(size).read_to_end(&mut content);
        inner_file(read.is_ok().then_some(content.as_slice()), inner_path, depth, budget, found);
    }
}
