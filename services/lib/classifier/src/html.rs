//! A tolerant, single-pass HTML scanner: not a parser, just what the checks need
//! (visible text, title, images, links and how tags are written). It never recurses
//! and stops after `MAX_HTML` bytes, so hostile markup costs bounded time.

/// HTML beyond this many bytes of a part is not looked at.
const MAX_HTML: usize = 1 << 20;
/// Visible text kept for comparisons (its length is still counted in full).
const MAX_TEXT: usize = 256 * 1024;

#[derive(Debug, Default)]
pub struct Html {
    /// Bytes of visible text, whitespace runs counted once (SpamAssassin's "length").
    pub text_len: usize,
    pub text: String,
    pub titles: Vec<String>,
    pub images: usize,
    pub remote_images: usize,
    /// An `<img>` inside an `<a>`.
    pub linked_image: bool,
    pub has_html_tag: bool,
    /// An `href` attribute written neither `href` nor `HREF`.
    pub mixed_case_href: bool,
    /// A `center` tag written neither `center` nor `CENTER`.
    pub mixed_case_center: bool,
    pub anchors: Vec<Anchor>,
    /// Text a reader cannot see (inside an element styled `display:none`,
    /// `visibility:hidden`, a zero or 1px font, or zero opacity): bytes, and how many
    /// such elements held some. It is not part of `text`.
    pub hidden_text_len: usize,
    pub hidden_runs: usize,
}

#[derive(Debug, Default, Clone)]
pub struct Anchor {
    pub href: String,
    pub text: String,
}

/// Elements that hold no text (their style cannot hide any).
const VOID: &[&str] = &["area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"];

/// The element whose content is hidden, and how many of its kind are open inside it.
struct Hidden {
    name: String,
    depth: usize,
    had_text: bool,
}

enum Skip {
    None,
    /// Inside `<script>` or `<style>`: no visible text until the closing tag.
    Until(&'static str),
}

pub fn analyse(html: &str) -> Html {
    let html = &html[..floor_char_boundary(html, MAX_HTML)];
    let mut out = Html::default();
    let mut anchor: Option<Anchor> = None;
    let mut title: Option<String> = None;
    let mut skip = Skip::None;
    let mut hidden: Option<Hidden> = None;
    let mut last_was_space = true;
    let bytes = html.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'<' {
            let end = html[i..].find('<').map_or(html.len(), |p| i + p);
            if let (Skip::None, Some(h)) = (&skip, hidden.as_mut()) {
                let chars = html[i..end].split_whitespace().map(str::len).sum::<usize>();
                out.hidden_text_len += chars;
                h.had_text |= chars > 0;
            } else if matches!(skip, Skip::None) {
                let text = decode_entities(&html[i..end]);
                for c in text.chars() {
                    let space = c.is_whitespace();
                    if space && last_was_space {
                        continue;
                    }
                    last_was_space = space;
                    let c = if space { ' ' } else { c };
                    out.text_len += c.len_utf8();
                    if out.text.len() < MAX_TEXT {
                        out.text.push(c);
                    }
                    if let Some(a) = anchor.as_mut().filter(|a| a.text.len() < 1024) {
                        a.text.push(c);
                    }
                    if let Some(t) = title.as_mut().filter(|t| t.len() < 1024) {
                        t.push(c);
                    }
                }
            }
            i = end;
            continue;
        }
        if html[i..].starts_with("<!--") {
            i = html[i + 4..].find("-->").map_or(html.len(), |p| i + 4 + p + 3);
            continue;
        }
        let Some(close) = html[i..].find('>') else { break };
        let tag = &html[i + 1..i + close];
        i += close + 1;
        let (closing, name, attributes) = split_tag(tag);
        let lower = name.to_ascii_lowercase();
        if let Skip::Until(end) = skip {
            if closing && lower == end {
                skip = Skip::None;
            }
            continue;
        }
        if let Some(h) = hidden.as_mut().filter(|h| h.name == lower) {
            if closing {
                h.depth -= 1;
            } else {
                h.depth += 1;
            }
            if h.depth == 0 {
                out.hidden_runs += usize::from(h.had_text);
                hidden = None;
            }
        } else if hidden.is_none() && !closing && !VOID.contains(&lower.as_str()) && hides_content(attributes) {
            hidden = Some(Hidden { name: lower.clone(), depth: 1, had_text: false });
        }
        if lower == "center" && name != "center" && name != "CENTER" {
            out.mixed_case_center = true;
        }
        match (closing, lower.as_str()) {
            (false, "html") => out.has_html_tag = true,
            (false, "script") => skip = Skip::Until("script"),
            (false, "style") => skip = Skip::Until("style"),
            (false, "title") => title = Some(String::new()),
            (true, "title") => {
                if let Some(t) = title.take() {
                    out.titles.push(t.trim().to_string());
                }
            }
            (false, "a") => {
                let href = attribute(attributes, "href", &mut out.mixed_case_href).unwrap_or_default();
                if let Some(done) = anchor.replace(Anchor { href, text: String::new() }) {
                    out.anchors.push(done);
                }
            }
            (true, "a") => {
                if let Some(done) = anchor.take() {
                    out.anchors.push(done);
                }
            }
            (false, "img") => {
                out.images += 1;
                let src = attribute(attributes, "src", &mut false).unwrap_or_default().to_ascii_lowercase();
                if src.starts_with("http://") || src.starts_with("https://") || src.starts_with("//") {
                    out.remote_images += 1;
                }
                if anchor.is_some() {
                    out.linked_image = true;
                }
            }
            (false, "br" | "p" | "div" | "tr" | "td" | "li") if !last_was_space => {
                out.text_len += 1;
                out.text.push(' ');
                last_was_space = true;
            }
            _ => {}
        }
        if !closing && lower != "a" {
            // Other tags may still carry an href (area, base, link).
            attribute(attributes, "href", &mut out.mixed_case_href);
        }
    }
    if let Some(done) = anchor.take() {
        out.anchors.push(done);
    }
    if let Some(t) = title.take() {
        out.titles.push(t.trim().to_string());
    }
    out
}

/// An element whose `style` (or `hidden` attribute) makes its content invisible.
fn hides_content(attributes: &str) -> bool {
    let mut ignored = false;
    if attribute(attributes, "hidden", &mut ignored).is_some() {
        return true;
    }
    let Some(style) = attribute(attributes, "style", &mut ignored) else { return false };
    let style: String = style.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_lowercase();
    let declarations = style.split(';').filter_map(|d| d.split_once(':'));
    declarations.into_iter().any(|(property, value)| {
        let value = value.trim_end_matches("!important");
        let zero_size = |v: &str| {
            let number = v.trim_end_matches(|c: char| c.is_ascii_alphabetic() || c == '%');
            number.parse::<f64>().is_ok_and(|n| n < 1.5 && (n == 0.0 || v.ends_with("px") || v.ends_with("pt")))
        };
        match property {
            "display" => value == "none",
            "visibility" => value == "hidden",
            "font-size" => zero_size(value),
            "opacity" => value.parse::<f64>().is_ok_and(|n| n == 0.0),
            _ => false,
        }
    })
}

/// `/name attrs` → (closing, name, attrs).
fn split_tag(tag: &str) -> (bool, &str, &str) {
    let tag = tag.trim_start();
    let (closing, rest) = match tag.strip_prefix('/') {
        Some(r) => (true, r),
        None => (false, tag),
    };
    let end = rest.find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(rest.len());
    (closing, &rest[..end], &rest[end..])
}

/// The value of attribute `wanted` (case-insensitive); notes when its name is written
/// in mixed case.
fn attribute(attributes: &str, wanted: &str, mixed_case: &mut bool) -> Option<String> {
    let mut rest = attributes;
    let mut found = None;
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == '/');
        if rest.is_empty() {
            return found;
        }
        let name_end = rest.find(|c: char| c.is_whitespace() || c == '=' || c == '/').unwrap_or(rest.len());
        let name = &rest[..name_end];
        rest = rest[name_end..].trim_start();
        let mut value = "";
        if let Some(after) = rest.strip_prefix('=') {
            let after = after.trim_start();
            let (v, next) = match after.chars().next() {
                Some(q @ ('"' | '\'')) => match after[1..].find(q) {
                    Some(end) => (&after[1..1 + end], &after[end + 2..]),
                    None => (&after[1..], ""),
                },
                _ => {
                    let end = after.find(char::is_whitespace).unwrap_or(after.len());
                    (&after[..end], &after[end..])
                }
            };
            value = v;
            rest = next;
        }
        if name.eq_ignore_ascii_case(wanted) {
            if name != wanted && name != wanted.to_ascii_uppercase() {
                *mixed_case = true;
            }
            if found.is_none() {
                found = Some(decode_entities(value.trim()));
            }
        }
        if name.is_empty() {
            // Stray `=` or quote: skip one character so the loop always advances.
            rest = rest.get(1..).unwrap_or("");
        }
    }
}

/// The few entities that change what text looks like.
fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(p) = rest.find('&') {
        out.push_str(&rest[..p]);
        rest = &rest[p..];
        let end = rest[..floor_char_boundary(rest, 12)].find(';');
        let decoded = end.and_then(|e| {
            let name = &rest[1..e];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some(' '),
                _ => name
                    .strip_prefix("#x")
                    .or_else(|| name.strip_prefix("#X"))
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .or_else(|| name.strip_prefix('#').and_then(|d| d.parse().ok()))
                    .and_then(char::from_u32),
            };
            c.map(|c| (c, e + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    if i >= s.len() {
        return s.len();
    }
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_images_links_and_case() {
        let h = analyse(
            "<HTML><head><title>Big  title</title><style>p{}</style></head><body><CeNtEr>Hi &amp; bye</CeNtEr>\
             <a HrEf=\"http://evil.example/x\">www.bank.example</a><a href='http://ok.example'><img src=\"https://img.example/a.png\"></a>\
             <script>var hidden = 1;</script><!-- comment --></body></html>",
        );
        assert!(h.has_html_tag && h.mixed_case_center && h.mixed_case_href && h.linked_image);
        assert_eq!((h.images, h.remote_images), (1, 1));
        assert_eq!(h.titles, vec!["Big title"]);
        assert_eq!(h.anchors[0].href, "http://evil.example/x");
        assert_eq!(h.anchors[0].text, "www.bank.example");
        assert!(h.text.contains("Hi & bye") && !h.text.contains("hidden") && !h.text.contains("comment"), "{}", h.text);
    }

    #[test]
    fn hidden_text_is_counted_apart_from_the_visible_text() {
        let h = analyse(
            "<p>Pass<span style=\"font-size: 0px\">zq</span>word</p><div style='DISPLAY:none !important'>salt <div>more</div> salt</div>\
             <p hidden>gone</p><span style=\"opacity:0.5\">half</span><div style=\"display:block\">shown</div>",
        );
        assert!(h.text.contains("Password") && h.text.contains("half") && h.text.contains("shown"), "{}", h.text);
        assert!(!h.text.contains("salt") && !h.text.contains("gone") && !h.text.contains("zq"), "{}", h.text);
        assert_eq!(h.hidden_runs, 3);
        assert_eq!(h.hidden_text_len, "zqsaltmoresaltgone".len());
        let preheader = analyse("<div style=\"display:none\"><img src=x></div><p>text</p>");
        assert_eq!((preheader.hidden_runs, preheader.text.trim()), (0, "text"));
    }

    #[test]
    fn plain_case_is_not_mixed_and_garbage_is_fine() {
        let h = analyse("<a href=x>a</a><A HREF=y>b</A><center>c</center>");
        assert!(!h.mixed_case_href && !h.mixed_case_center);
        for junk in [
            "<",
            "<a href=\"unterminated",
            "<<<>>>",
            "&#xZZ; &#99999999; &",
            "<img src=",
            "<a =\"x\" = ' >",
            "&ééééééé;",
            "<a href=\"&ééééé\">",
        ] {
            analyse(junk);
        }
    }
}
