use std::time::{Duration, Instant};

use super::samples;
use super::*;

fn inspect_one(name: &str, content_type: &str, bytes: &[u8]) -> Attachment {
    let raw = samples::message_with(name, content_type, bytes);
    let message = mail_parser::MessageParser::default().parse(&raw).expect("a message");
    let mut all = inspect(&message, &Limits::default(), 100);
    assert_eq!(all.len(), 1, "{all:?}");
    all.remove(0)
}

const PE: &[u8] = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00This program cannot be run in DOS mode";

#[test]
fn the_real_type_comes_from_the_bytes_not_the_name() {
    let a = inspect_one("invoice.pdf", "application/pdf", PE);
    assert_eq!((a.real, a.class, a.named), (Some("exe"), Class::Executable, Some(Class::Pdf)));
    assert!(a.disguised());
    let a = inspect_one("invoice.pdf", "application/pdf", b"%PDF-1.4\n1 0 obj << >> endobj\n");
    assert_eq!(a.class, Class::Pdf);
    assert!(!a.disguised() && a.findings.is_empty());
    let a = inspect_one("run.js", "text/plain", b"WScript.Shell");
    assert_eq!(a.class, Class::Script, "scripts have no magic: the name says");
    let a = inspect_one("report.docx", "application/octet-stream", &samples::zip(&[("word/document.xml", b"<x/>")]));
    assert!(!a.disguised(), "an Office document is a ZIP");
    let lnk = [0x4C, 0, 0, 0, 0x01, 0x14, 0x02, 0, 0, 0];
    assert_eq!(inspect_one("photo.jpg", "image/jpeg", &lnk).class, Class::Shortcut);
}

#[test]
fn archives_are_opened_and_nested_ones_too() {
    let inner = samples::zip(&[("setup.exe", PE)]);
    let outer = samples::zip(&[("readme.txt", b"hello"), ("more.zip", &inner)]);
    let a = inspect_one("files.zip", "application/zip", &outer);
    let paths: Vec<(&str, Class)> = a.inner.iter().map(|i| (i.path.as_str(), i.class)).collect();
    assert_eq!(
        paths,
        [
            ("files.zip/readme.txt", Class::Text),
            ("files.zip/more.zip", Class::Archive),
            ("files.zip/more.zip/setup.exe", Class::Executable)
        ]
    );
    assert!(a.findings.is_empty(), "{:?}", a.findings);

    let tgz = samples::tar_gz(&[("docs/a.txt", b"x"), ("docs/tool.exe", PE)]);
    let a = inspect_one("docs.tar.gz", "application/gzip", &tgz);
    assert!(a.inner.iter().any(|i| i.path == "docs.tar.gz/docs/tool.exe" && i.class == Class::Executable), "{:?}", a.inner);
}

#[test]
fn encrypted_archives_and_macros_are_found() {
    let a = inspect_one("secret.zip", "application/zip", &samples::encrypted_zip(&[("invoice.exe", PE)]));
    assert_eq!(a.findings, [Finding::Encrypted("secret.zip".into())]);
    assert_eq!(a.inner.len(), 1, "listed by name though it cannot be read");
    let a = inspect_one("order.docm", "application/vnd.ms-word.document.macroEnabled.12", &samples::docm());
    assert!(a.findings.contains(&Finding::Macro("order.docm".into())), "{:?}", a.findings);
    let zipped = samples::zip(&[("order.docm", &samples::docm())]);
    let a = inspect_one("order.zip", "application/zip", &zipped);
    assert!(a.findings.contains(&Finding::Macro("order.zip/order.docm".into())), "{:?}", a.findings);
}

#[test]
fn a_bomb_is_answered_without_being_followed() {
    // 16 × 16 × 64 MiB = 16 GiB claimed; opened within the message's budget.
    let bomb = samples::zip_bomb(2, 16, 64);
    assert!(bomb.len() < 4 << 20, "the bomb itself is small: {}", bomb.len());
    let started = Instant::now();
    let a = inspect_one("42.zip", "application/zip", &bomb);
    assert!(started.elapsed() < Duration::from_secs(1), "took {:?}", started.elapsed());
    assert!(a.findings.iter().any(|f| matches!(f, Finding::Bomb(_))), "{:?}", a.findings);
    // Deeper than the limit: said, not opened.
    let mut nested = samples::zip(&[("x.txt", b"x")]);
    for i in 0..6 {
        nested = samples::zip(&[(&format!("{i}.zip"), &nested)]);
    }
    let a = inspect_one("deep.zip", "application/zip", &nested);
    assert!(a.findings.iter().any(|f| matches!(f, Finding::TooDeep(_))), "{:?}", a.findings);
}

#[test]
fn pdf_actions_and_html_smuggling_are_found() {
    let pdf = b"%PDF-1.7\n1 0 obj << /OpenAction << /S /J#61vaScript /JS (app.alert(1)) >> >> endobj\n2 0 obj << /S /Launch /F (cmd.exe) >> endobj";
    let a = inspect_one("doc.pdf", "application/pdf", pdf);
    assert_eq!(a.findings, [Finding::PdfJavaScript("doc.pdf".into()), Finding::PdfLaunch("doc.pdf".into())]);
    let payload = samples::base64(&[7u8; 3000]);
    let page = format!(
        "<html><body><script>var b=atob('{payload}');var blob=new Blob([b]);var a=document.createElement('a');a.href=URL.createObjectURL(blob);a.download='invoice.iso';a.click();</script></body></html>"
    );
    let a = inspect_one("invoice.html", "text/html", page.as_bytes());
    assert_eq!(a.findings, [Finding::HtmlSmuggling("invoice.html".into())]);
    let a = inspect_one("page.html", "text/html", b"<html><script>console.log(1)</script></html>");
    assert!(a.findings.is_empty());
}

#[test]
fn seven_zip_archives_are_listed() {
    use std::io::Cursor;
    let mut writer = sevenz_rust2::ArchiveWriter::new(Cursor::new(Vec::new())).expect("writer");
    for (name, content) in [("notes.txt", &b"hello"[..]), ("run/setup.exe", PE)] {
        writer.push_archive_entry(sevenz_rust2::ArchiveEntry::new_file(name), Some(content)).expect("entry");
    }
    let bytes = writer.finish().expect("7z").into_inner();
    let a = inspect_one("files.7z", "application/x-7z-compressed", &bytes);
    assert_eq!(a.class, Class::Archive);
    let paths: Vec<(&str, Class)> = a.inner.iter().map(|i| (i.path.as_str(), i.class)).collect();
    assert_eq!(paths, [("files.7z/notes.txt", Class::Text), ("files.7z/run/setup.exe", Class::Executable)]);
}
