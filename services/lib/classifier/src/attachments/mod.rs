//! What each attachment really is and holds, from its bytes rather than its name: the
//! type (`infer`), the files inside archives (`zip`, gzip/tar with `flate2`/`tar`)
//! opened to a depth and within size, ratio and entry limits (a bomb is answered, never
//! followed), encrypted entries, macros in Office documents (OOXML `vbaProject.bin`,
//! OLE2 VBA storages with `cfb`), JavaScript and launch actions in PDFs, and HTML that
//! assembles a file in script (HTML smuggling). The scanner turns these into symbols
//! and each domain's policy into actions.

mod archive;
mod content;
mod kind;
pub mod samples;

pub use kind::{Class, extension};

/// How far archives are opened. A message's decompressed bytes are counted together, so
/// sixteen bombs cost no more than one.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Archives inside archives opened down to this depth (the attachment is depth 0).
    pub max_depth: usize,
    /// Entries listed per message, at most.
    pub max_entries: usize,
    /// Bytes decompressed per message, at most.
    pub max_total: u64,
    /// An entry claiming more than this many bytes is not read.
    pub max_entry: u64,
    /// Expansion ratio (size / compressed size) beyond which an entry of more than
    /// 1 MiB is a bomb.
    pub max_ratio: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_depth: 4, max_entries: 1000, max_total: 64 << 20, max_entry: 16 << 20, max_ratio: 100 }
    }
}

/// One attachment (a part with a file name, or a body part that is not text).
#[derive(Debug, Clone, PartialEq)]
pub struct Attachment {
    /// Its file name ("" when it has none).
    pub name: String,
    /// The declared Content-Type, lower case.
    pub declared: String,
    /// What its bytes say it is (infer's extension: "exe", "zip", "pdf"), if anything.
    pub real: Option<&'static str>,
    /// Its class: dangerous bytes win over a harmless name; scripts have no magic and are
    /// known by name.
    pub class: Class,
    /// The class its name claims (`None`: no extension we know).
    pub named: Option<Class>,
    /// Decoded size in bytes.
    pub size: usize,
    /// Where the part is in the raw message: from its first header to the end of its body.
    pub raw: (usize, usize),
    /// Files inside it (archives, nested), as "outer.zip/inner.zip/file.exe".
    pub inner: Vec<Inner>,
    pub findings: Vec<Finding>,
}

impl Attachment {
    /// Its name for messages: the file name, or "a part of type …".
    pub fn label(&self) -> String {
        if self.name.is_empty() { format!("a part of type {}", self.declared) } else { self.name.clone() }
    }

    /// Bytes say one dangerous thing, the name another ("invoice.pdf" that is an exe).
    pub fn disguised(&self) -> bool {
        let dangerous = matches!(self.class, Class::Executable | Class::Shortcut | Class::DiskImage | Class::Archive);
        let office_as_zip = self.class == Class::Archive && matches!(self.named, Some(Class::Office | Class::Archive));
        self.real.is_some() && dangerous && self.named.is_some_and(|n| n != self.class) && !office_as_zip
    }
}

/// A file inside an archive.
#[derive(Debug, Clone, PartialEq)]
pub struct Inner {
    pub path: String,
    pub class: Class,
}

/// What opening an attachment found.
#[derive(Debug, Clone, PartialEq)]
pub enum Finding {
    /// An encrypted archive or entry (its contents cannot be checked).
    Encrypted(String),
    /// An Office document with VBA macros.
    Macro(String),
    PdfJavaScript(String),
    PdfLaunch(String),
    /// HTML whose script builds a file from an embedded payload and offers it.
    HtmlSmuggling(String),
    /// Expands beyond the limits (ratio, size, entries): not followed.
    Bomb(String),
    /// Archives nested deeper than `max_depth`.
    TooDeep(String),
}

/// Inspects each attachment of `message` (parsed from `raw`), at most `max_parts`.
pub fn inspect(message: &mail_parser::Message<'_>, limits: &Limits, max_parts: usize) -> Vec<Attachment> {
    use mail_parser::MimeHeaders;
    let mut budget = archive::Budget::new(limits);
    let mut out = Vec::new();
    for part in message.parts.iter().take(max_parts).filter(|p| is_attachment(p)) {
        let declared = part
            .content_type()
            .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or("")).to_ascii_lowercase())
            .unwrap_or_else(|| "application/octet-stream".into());
        let bytes = part.contents();
        let name = part.attachment_name().unwrap_or_default().to_string();
        let (real, class, named) = kind::classify(bytes, &name);
        let mut attachment = Attachment {
            name: name.clone(),
            declared,
            real,
            class,
            named,
            size: bytes.len(),
            raw: (part.offset_header as usize, part.offset_end as usize),
            inner: Vec::new(),
            findings: Vec::new(),
        };
        let label = attachment.label();
        // One panic-proof door for every reader: a bug in a crate must not take the
        // scanner down; such an attachment is reported as unreadable, not as clean.
        let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut found = archive::Found::default();
            archive::open(bytes, &label, class, 0, &mut budget, &mut found);
            found
        }));
        match opened {
            Ok(found) => (attachment.inner, attachment.findings) = (found.inner, found.findings),
            Err(_) => {
                tracing::warn!(attachment = %label, "an archive or document reader failed; the attachment is treated as a bomb");
                attachment.findings.push(Finding::Bomb(format!("{label} could not be read")));
            }
        }
        out.push(attachment);
    }
    out
}

/// One file looked into as if attached under `name` (for the fuzzer and tools): its
/// class, inner files and findings.
pub fn inspect_bytes(bytes: &[u8], name: &str) -> (Class, Vec<Inner>, Vec<Finding>) {
    let (_, class, _) = kind::classify(bytes, name);
    let mut budget = archive::Budget::new(&Limits::default());
    let mut found = archive::Found::default();
    archive::open(bytes, name, class, 0, &mut budget, &mut found);
    (class, found.inner, found.findings)
}

/// Whether a part counts as an attachment: it has a file name, or a body that is not
/// text (an unnamed binary part). The analysis and the engines number them the same way.
pub fn is_attachment(part: &mail_parser::MessagePart<'_>) -> bool {
    use mail_parser::{MimeHeaders, PartType};
    part.attachment_name().is_some() || matches!(part.body, PartType::Binary(_) | PartType::InlineBinary(_))
}

#[cfg(test)]
mod tests;
