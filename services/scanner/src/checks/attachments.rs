//! Attachments: what their names claim and what their bytes are
//! (`rempart_classifier::attachments`: real types, archives opened within limits,
//! macros, PDF actions, HTML smuggling). Each finding is a symbol; what a policy does
//! with it beyond its weight is `engine::malware`'s.

use rempart_classifier::attachments::{Attachment, Class, Finding, extension};

use super::{Context, Findings};

/// Extensions of documents a double extension pretends to be.
const DOCUMENT: &[&str] = &["pdf", "doc", "docx", "xls", "xlsx", "ppt", "pptx", "txt", "jpg", "jpeg", "png", "gif", "zip", "rtf", "odt"];

/// Classes of files that run when opened.
pub fn runs_when_opened(class: Class) -> bool {
    matches!(class, Class::Executable | Class::Script | Class::Shortcut | Class::DiskImage | Class::Hta)
}

pub fn run(ctx: &Context<'_>, out: &mut Findings) {
    for (part, a) in ctx.analysis.attachments.iter().enumerate() {
        by_name(a, part, out);
        if a.disguised() {
            let real = a.real.unwrap_or("?");
            out.hit_in_part("MIME_BAD_ATTACHMENT", format!("{} is really {} ({real})", a.label(), article(a.class)), part);
        }
        if let Some(inner) = a.inner.iter().find(|i| runs_when_opened(i.class)) {
            out.hit_in_part("MIME_ARCHIVE_EXECUTABLE", format!("{} holds {}", a.label(), inner.path), part);
        }
        if let Some(inner) = a.inner.iter().find(|i| i.class == Class::Archive) {
            out.hit_in_part("MIME_ARCHIVE_IN_ARCHIVE", format!("{} holds {}", a.label(), inner.path), part);
        }
        for finding in &a.findings {
            let (symbol, detail) = symbol_of(finding);
            out.hit_in_part(symbol, detail, part);
        }
    }
}

/// What the name says: a program's extension, one hidden behind a document's, a page.
fn by_name(a: &Attachment, part: usize, out: &mut Findings) {
    if a.name.is_empty() {
        return;
    }
    if a.named.is_some_and(runs_when_opened) {
        out.hit_in_part("MIME_BAD_EXTENSION", a.name.clone(), part);
        // "invoice.pdf.exe": a document's extension shown before the real one.
        let stem = a.name.trim().rsplit_once('.').map_or("", |(stem, _)| stem);
        if stem.contains('.') && DOCUMENT.contains(&extension(stem).as_str()) {
            out.hit_in_part("MIME_DOUBLE_EXT", a.name.clone(), part);
        }
    }
    if a.named == Some(Class::Html) {
        out.hit_in_part("MIME_HTML_ATTACH", a.name.clone(), part);
    }
}

/// The symbol of a finding, with its detail.
pub fn symbol_of(finding: &Finding) -> (&'static str, String) {
    match finding {
        Finding::Encrypted(path) => ("MIME_ENCRYPTED_ARCHIVE", path.clone()),
        Finding::Macro(path) => ("MIME_OFFICE_MACRO", path.clone()),
        Finding::PdfJavaScript(path) => ("PDF_JAVASCRIPT", path.clone()),
        Finding::PdfLaunch(path) => ("PDF_LAUNCH", path.clone()),
        Finding::HtmlSmuggling(path) => ("HTML_SMUGGLING", path.clone()),
        Finding::Bomb(why) => ("MIME_ARCHIVE_BOMB", why.clone()),
        Finding::TooDeep(why) => ("MIME_ARCHIVE_TOO_DEEP", why.clone()),
    }
}

/// "an executable", "a disk image", … for details.
pub fn article(class: Class) -> &'static str {
    match class {
        Class::Executable => "an executable",
        Class::Script => "a script",
        Class::Shortcut => "a shortcut",
        Class::DiskImage => "a disk image",
        Class::Hta => "an HTML application",
        Class::Archive => "an archive",
        Class::Office => "an Office document",
        Class::Pdf => "a PDF",
        Class::Html => "a web page",
        Class::Image => "an image",
        Class::Text => "text",
        Class::Other => "a file",
    }
}
