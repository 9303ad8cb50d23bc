//! A file's class from its bytes (infer, plus the few magics it lacks) and from its name.

use std::sync::LazyLock;

/// What a file is, as policies speak of it (`[policy.attachments]` keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    Executable,
    Script,
    Shortcut,
    DiskImage,
    Hta,
    Archive,
    Office,
    Pdf,
    Html,
    Image,
    Text,
    Other,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Executable => "executable",
            Class::Script => "script",
            Class::Shortcut => "shortcut",
            Class::DiskImage => "disk_image",
            Class::Hta => "hta",
            Class::Archive => "archive",
            Class::Office => "office",
            Class::Pdf => "pdf",
            Class::Html => "html",
            Class::Image => "image",
            Class::Text => "text",
            Class::Other => "other",
        }
    }
}

const BY_EXTENSION: &[(Class, &[&str])] = &[
    (Class::Executable, &["exe", "scr", "com", "pif", "cpl", "dll", "msi", "msp", "jar", "appx", "msix", "apk", "elf", "sys", "gadget"]),
    (Class::Script, &["js", "jse", "vbs", "vbe", "vb", "wsf", "wsh", "ws", "ps1", "psm1", "bat", "cmd", "sh", "reg", "msc", "inf", "scf"]),
    (Class::Shortcut, &["lnk", "settingcontent-ms", "library-ms", "appref-ms"]),
    (Class::DiskImage, &["iso", "img", "vhd", "vhdx", "dmg", "udf"]),
    (Class::Hta, &["hta"]),
    (Class::Archive, &["zip", "rar", "7z", "gz", "tgz", "tar", "cab", "ace", "arj", "lzh", "xz", "bz2", "z", "zst"]),
    (
        Class::Office,
        &[
            "doc", "docx", "docm", "dot", "dotm", "xls", "xlsx", "xlsm", "xlsb", "xlam", "xlt", "ppt", "pptx", "pptm", "ppsm", "odt",
            "ods", "odp", "rtf", "one",
        ],
    ),
    (Class::Pdf, &["pdf"]),
    (Class::Html, &["htm", "html", "shtml", "xhtml", "svg", "mht", "mhtml"]),
    (Class::Image, &["jpg", "jpeg", "png", "gif", "bmp", "webp", "tif", "tiff", "heic", "ico"]),
    (Class::Text, &["txt", "csv", "ics", "vcf", "xml", "json", "md", "log", "eml"]),
];

/// The lower-case extension of a file name ("" without one).
pub fn extension(name: &str) -> String {
    let base = name.trim().rsplit(['/', '\\']).next().unwrap_or("");
    base.rsplit_once('.').map(|(_, e)| e.trim().to_ascii_lowercase()).unwrap_or_default()
}

/// The class a name claims.
pub fn by_name(name: &str) -> Option<Class> {
    let ext = extension(name);
    BY_EXTENSION.iter().find(|(_, list)| list.contains(&ext.as_str())).map(|(class, _)| *class)
}

/// infer's matchers with the magics it lacks: Windows shortcuts, ISO 9660 and VHD images.
static INFER: LazyLock<infer::Infer> = LazyLock::new(|| {
    let mut i = infer::Infer::new();
    i.add("application/x-ms-shortcut", "lnk", |b| b.starts_with(&[0x4C, 0, 0, 0, 0x01, 0x14, 0x02, 0]));
    i.add("application/x-iso9660-image", "iso", |b| b.get(0x8001..0x8006) == Some(b"CD001"));
    i.add("application/x-vhd", "vhd", |b| b.starts_with(b"conectix") || b.starts_with(b"vhdxfile"));
    i
});

/// What the bytes say (infer's extension) and the class: bytes that say something
/// specific win; text has no magic, so the name (or HTML sniffing) decides.
pub fn classify(bytes: &[u8], name: &str) -> (Option<&'static str>, Class, Option<Class>) {
    let named = by_name(name);
    let real = INFER.get(bytes).map(|t| t.extension());
    let by_bytes = real.map(|ext| match ext {
        "exe" | "dll" | "elf" | "mach" | "dex" | "class" => Class::Executable,
        // Any OLE2 container infer cannot name (.msg, vbaProject.bin): an .msi is known
        // by its name.
        "msi" => Class::Office,
        "lnk" => Class::Shortcut,
        "iso" | "vhd" | "qcow2" | "dmg" => Class::DiskImage,
        "zip" | "tar" | "rar" | "gz" | "bz2" | "bz3" | "7z" | "xz" | "cab" | "zst" | "lz" | "lz4" | "Z" | "ar" | "cpio" | "rpm" | "deb"
        | "crx" => Class::Archive,
        "doc" | "docx" | "xls" | "xlsx" | "ppt" | "pptx" | "odt" | "ods" | "odp" | "rtf" | "epub" => Class::Office,
        "pdf" => Class::Pdf,
        "html" | "xml" => Class::Html,
        "jpg" | "png" | "gif" | "bmp" | "webp" | "tif" | "ico" | "heif" | "avif" | "jxr" | "psd" | "cr2" => Class::Image,
        _ => Class::Other,
    });
    let class = match (by_bytes, named) {
        (Some(Class::Other) | None, Some(n)) => n,
        (Some(b), _) => b,
        (None, None) => Class::Other,
    };
    // An HTML application is HTML that asks for the rights of a program.
    let class = if matches!(class, Class::Html | Class::Other | Class::Text) && looks_like_hta(bytes) { Class::Hta } else { class };
    (real, class, named)
}

fn looks_like_hta(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(64 << 10)];
    head.windows(16).any(|w| w.eq_ignore_ascii_case(b"<hta:application"))
}
