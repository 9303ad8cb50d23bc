//! Files the tests build themselves (no archive tool, no downloaded sample): archives,
//! an encrypted ZIP, a macro document, a bomb, EICAR's test string, and a message
//! carrying one of them.

use std::io::{Cursor, Write};

use zip::write::SimpleFileOptions;

/// EICAR's anti-virus test file (every engine detects it; it is harmless).
pub const EICAR: &[u8] = br"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

/// A deflated ZIP archive of `files` (name, content).
pub fn zip(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, content) in files {
        // Writing to memory cannot fail but for a bug; the tests would see it.
        let _ = writer.start_file(*name, options);
        let _ = writer.write_all(content);
    }
    writer.finish().map(Cursor::into_inner).unwrap_or_default()
}

/// A ZIP whose entries carry the "encrypted" flag (general purpose bit 0), as a
/// password-protected archive's do; its content is stored as is.
pub fn encrypted_zip(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, content) in files {
        let _ = writer.start_file(*name, options);
        let _ = writer.write_all(content);
    }
    let mut bytes = writer.finish().map(Cursor::into_inner).unwrap_or_default();
    // Set bit 0 of the flags in every local (offset 6) and central (offset 8) header.
    let mut i = 0;
    while i + 10 < bytes.len() {
        match &bytes[i..i + 4] {
            b"PK\x03\x04" => bytes[i + 6] |= 1,
            b"PK\x01\x02" => bytes[i + 8] |= 1,
            _ => {}
        }
        i += 1;
    }
    bytes
}

/// A gzip-compressed tar archive of `files`.
pub fn tar_gz(files: &[(&str, &[u8])]) -> Vec<u8> {
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut builder = tar::Builder::new(encoder);
    for (name, content) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        let _ = builder.append_data(&mut header, name, *content);
    }
    builder.into_inner().and_then(|e| e.finish()).unwrap_or_default()
}

/// A Word document with a macro (`.docm`): an OOXML package holding `word/vbaProject.bin`.
pub fn docm() -> Vec<u8> {
    zip(&[
        ("[Content_Types].xml", br#"<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Override PartName="/word/document.xml" ContentType="application/vnd.ms-word.document.macroEnabled.main+xml"/></Types>"#),
        ("word/document.xml", b"<w:document/>"),
        ("word/vbaProject.bin", b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1 Sub AutoOpen() Shell \"calc\" End Sub"),
    ])
}

/// A 42.zip-like bomb: `copies` ZIPs inside a ZIP, `levels` deep, each leaf a file of
/// `leaf_mib` MiB of zeros (deflated to about 1/1000 of that).
pub fn zip_bomb(levels: usize, copies: usize, leaf_mib: usize) -> Vec<u8> {
    let mut current = zip(&[("0.bin", &vec![0u8; leaf_mib << 20])]);
    for _ in 0..levels {
        let names: Vec<String> = (0..copies).map(|i| format!("{i}.zip")).collect();
        let files: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), current.as_slice())).collect();
        current = zip(&files);
    }
    current
}

/// A message with a text part and `bytes` attached (base64) as `name`.
pub fn message_with(name: &str, content_type: &str, bytes: &[u8]) -> Vec<u8> {
    let encoded = base64(bytes);
    let lines: Vec<&str> = encoded.as_bytes().chunks(76).map(|c| std::str::from_utf8(c).unwrap_or_default()).collect();
    format!(
        "From: Alice <alice@sender.example>\r\nTo: bob@example.com\r\nSubject: files\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <1@sender.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n--b\r\nContent-Type: {content_type}\r\nContent-Disposition: attachment; filename=\"{name}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n--b--\r\n",
        lines.join("\r\n")
    )
    .into_bytes()
}

/// Standard base64 (RFC 4648), for the messages above.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
        out.push_str(&"=".repeat(3 - chunk.len()));
    }
    out
}
