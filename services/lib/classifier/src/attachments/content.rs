//! Looking into documents: VBA storages in OLE2 files, actions in PDFs, file-building
//! script in HTML.

use std::io::Cursor;

use super::Finding;
use super::archive::Found;

/// Bytes of a PDF or HTML file looked at, at most.
const SCAN_LIMIT: usize = 16 << 20;
/// A base64 run this long in HTML script is a file carried inside the page.
const SMUGGLED_PAYLOAD: usize = 1000;

/// Whether an OLE2 compound file (doc, xls, ppt) holds VBA: Word keeps it under
/// `Macros`, Excel under `_VBA_PROJECT_CUR`, every host has a `VBA` storage with `dir`.
pub(super) fn ole_has_macros(bytes: &[u8]) -> bool {
    let Ok(file) = cfb::CompoundFile::open(Cursor::new(bytes)) else { return false };
    file.walk().take(10_000).any(|entry| {
        let name = entry.name().to_ascii_lowercase();
        matches!(name.as_str(), "vba" | "_vba_project" | "_vba_project_cur" | "macros" | "vbaproject.bin")
    })
}

/// PDF names that run something: `/JavaScript` or `/JS`, `/Launch`. Names may hide
/// letters as `#xx` escapes (`/J#61vaScript`), which are decoded first. (Objects inside
/// compressed object streams are not inflated: a known gap, ClamAV's PDF parser covers it.)
pub(super) fn pdf(bytes: &[u8], path: &str, found: &mut Found) {
    let bytes = &bytes[..bytes.len().min(SCAN_LIMIT)];
    let mut at = 0;
    while let Some(offset) = bytes[at..].iter().position(|&b| b == b'/') {
        let start = at + offset + 1;
        let mut name = Vec::new();
        let mut i = start;
        while i < bytes.len() && name.len() < 32 {
            match bytes[i] {
                b'#' if i + 2 < bytes.len() => {
                    let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
                    match hex {
                        Some(b) => {
                            name.push(b);
                            i += 3;
                        }
                        None => break,
                    }
                }
                b if b.is_ascii_alphanumeric() => {
                    name.push(b);
                    i += 1;
                }
                _ => break,
            }
        }
        match name.as_slice() {
            b"JavaScript" | b"JS" => found.add(Finding::PdfJavaScript(path.to_string())),
            b"Launch" => found.add(Finding::PdfLaunch(path.to_string())),
            _ => {}
        }
        at = i.max(start);
    }
}

/// HTML smuggling: script that turns an embedded payload into a file and hands it to
/// the browser (a Blob or `atob` with `createObjectURL`, `msSaveOrOpenBlob` or a
/// `download` link) and carries the payload: a long base64 run.
pub(super) fn html_smuggling(bytes: &[u8]) -> bool {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(SCAN_LIMIT)]).to_ascii_lowercase();
    if !text.contains("<script") {
        return false;
    }
    let builds = text.contains("new blob") || text.contains("atob(") || text.contains("uint8array");
    let offers =
        text.contains("createobjecturl") || text.contains("mssaveoropenblob") || text.contains("mssaveblob") || text.contains(".download");
    builds && offers && longest_base64_run(text.as_bytes()) >= SMUGGLED_PAYLOAD
}

fn longest_base64_run(bytes: &[u8]) -> usize {
    let (mut longest, mut run) = (0, 0);
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    longest
}
