//! MIME structure and HTML, with SpamAssassin's bands and semantics (attachments:
//! `attachments.rs`).

use std::collections::HashSet;

use super::{Context, Findings};

/// Hidden text beyond this many bytes, or in this many hidden elements, is a message
/// written for filters rather than readers (a preheader is a single short element).
const HIDDEN_TEXT_BYTES: usize = 200;
const HIDDEN_RUNS: usize = 5;
/// Zero-width characters inside words (they split words so filters miss them).
const ZERO_WIDTH_IN_WORDS: usize = 3;

pub fn run(ctx: &Context<'_>, out: &mut Findings) {
    let a = ctx.analysis;
    if a.html_parts > 0 {
        out.hit("HTML_MESSAGE");
        if a.plain_parts == 0 {
            out.hit("MIME_HTML_ONLY");
            if a.multipart {
                out.hit("MIME_HTML_ONLY_MULTI");
            }
        }
    }
    let hidden: usize = a.html.iter().map(|h| h.hidden_text_len).sum();
    let hidden_runs: usize = a.html.iter().map(|h| h.hidden_runs).sum();
    if hidden >= HIDDEN_TEXT_BYTES || hidden_runs >= HIDDEN_RUNS {
        out.hit_with("HTML_HIDDEN_TEXT", Some(format!("{hidden} bytes of hidden text in {hidden_runs} places")));
    }
    let texts = std::iter::once(a.plain_text.as_str()).chain(a.html.iter().map(|h| h.text.as_str()));
    let zero_width: usize = texts.chain(a.subject()).map(zero_width_inside_words).sum();
    if zero_width >= ZERO_WIDTH_IN_WORDS {
        out.hit_with("TEXT_ZERO_WIDTH", Some(format!("{zero_width} invisible characters inside words")));
    }
    let visible_text = a.plain_text.trim().is_empty() && a.html.iter().all(|h| h.text.trim().is_empty());
    let nothing_else = a.attachment_names.is_empty() && a.html.iter().all(|h| h.images == 0);
    if a.message.is_some() && visible_text && nothing_else {
        out.hit("EMPTY_MESSAGE");
    }
    let Some(html) = a.html.first() else { return };
    if a.alternative && a.plain_parts > 0 && alternative_difference(&a.plain_text, &html.text) >= 0.99 {
        out.hit("MPART_ALT_DIFF");
    }
    let images = a.html.iter().any(|h| h.images > 0);
    let length = html.text_len;
    if images {
        let bands = [
            (0, 400, "04"),
            (400, 800, "08"),
            (800, 1200, "12"),
            (1200, 1600, "16"),
            (1600, 2000, "20"),
            (2000, 2400, "24"),
            (2400, 2800, "28"),
            (2800, 3200, "32"),
        ];
        // SpamAssassin's html_image_only: min < length <= max (0 counts in the first band).
        if let Some((_, _, band)) = bands.iter().find(|(min, max, _)| (length > *min || *min == 0) && length <= *max) {
            out.hit(&format!("HTML_IMAGE_ONLY_{band}"));
        }
    }
    if a.html.iter().any(|h| h.linked_image) {
        let band = match length {
            0..1024 => Some(1),
            1024..1536 => Some(2),
            1536..2048 => Some(3),
            _ => None,
        };
        if let Some(n) = band {
            out.hit(&format!("HTML_SHORT_LINK_IMG_{n}"));
        }
    }
    // SpamAssassin: longest title / subject length > 3.5, unless there are attachments.
    if let Some(subject) = a.subject().filter(|s| !s.is_empty())
        && a.attachment_names.is_empty()
    {
        let longest = a.html.iter().flat_map(|h| h.titles.iter()).map(|t| t.chars().count()).max().unwrap_or(0);
        if longest as f64 / subject.chars().count() as f64 > 3.5 {
            out.hit("HTML_TITLE_SUBJ_DIFF");
        }
    }
    if a.html.iter().any(|h| h.remote_images > 0) {
        out.hit("T_REMOTE_IMAGE");
    }
    if a.html.iter().any(|h| h.mixed_case_href) {
        out.hit("MIXED_HREF_CASE");
    }
    if a.html.iter().any(|h| h.mixed_case_center) {
        out.hit("MIXED_CENTER_CASE");
    }
    if let Some(detail) = a.html.iter().flat_map(|h| h.anchors.iter()).find_map(|anchor| deceptive_link(&anchor.text, &anchor.href)) {
        out.hit_with("PHISHING", Some(detail));
    }
}

/// Zero-width and soft-hyphen characters between two letters.
fn zero_width_inside_words(text: &str) -> usize {
    let invisible = |c: char| matches!(c, '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{2060}' | '\u{FEFF}' | '\u{00AD}');
    let (mut count, mut run, mut previous_is_letter) = (0, 0, false);
    for c in text.chars().take(1 << 16) {
        if invisible(c) {
            run += 1;
            continue;
        }
        if run > 0 && previous_is_letter && c.is_alphabetic() {
            count += run;
        }
        (run, previous_is_letter) = (0, c.is_alphabetic());
    }
    count
}

/// Share of the HTML's words that are absent from the text part (0 to 1).
fn alternative_difference(plain: &str, html: &str) -> f64 {
    let words = |s: &str| -> HashSet<String> {
        s.split(|c: char| !c.is_alphanumeric()).filter(|w| w.chars().count() >= 3).map(str::to_lowercase).collect()
    };
    let (plain, html) = (words(plain), words(html));
    if html.len() < 5 {
        return 0.0;
    }
    html.iter().filter(|w| !plain.contains(*w)).count() as f64 / html.len() as f64
}

/// When a link's text looks like an address on one site and its target is another
/// site: "text shows a.example, goes to b.example".
fn deceptive_link(text: &str, href: &str) -> Option<String> {
    let shown = host_of(text.trim())?;
    if !shown.contains('.') || shown.contains(' ') {
        return None;
    }
    let target = host_of(href.trim())?;
    let (a, b) = (registrable(&shown), registrable(&target));
    (a != b).then(|| format!("text shows {shown}, link goes to {target}"))
}

pub(crate) use rempart_classifier::hosts::{host_of, registrable};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deceptive_links() {
        assert!(deceptive_link("www.mybank.example", "http://evil.example/login").is_some());
        assert!(deceptive_link("https://mybank.example/account", "https://login.evil.example").is_some());
        assert!(deceptive_link("www.mybank.example", "https://secure.mybank.example/x").is_none(), "same site");
        assert!(deceptive_link("Click here", "http://evil.example").is_none(), "text is not an address");
        assert!(deceptive_link("bbc.co.uk", "https://www.bbc.co.uk/news").is_none());
        assert!(deceptive_link("version 2.0", "http://x.example").is_none());
    }

    #[test]
    fn alternative_difference_counts_html_words_missing_from_text() {
        assert!(alternative_difference("hello world this is fine", "hello world this is fine") < 0.01);
        assert!(alternative_difference("unsubscribe nothing", "cheap pills online pharmacy discount") > 0.99);
    }
}
