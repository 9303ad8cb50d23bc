//! The built-in checks, by stage. Each looks at the session and the parsed message
//! and adds symbols by name; weights, groups and descriptions come from the registry.
//!
//! Stages: authentication (SPF, DKIM, DMARC, ARC over DNS, async) → connection →
//! headers → content (MIME, archives, HTML) → wording → links → impersonation → DNS lists → classifier (Bayes, `Scanner::bayes`)
//! → composites → reputation (AWL, applied to the score in `Scanner`). Bayes and the AWL
//! read the shared state (`rempart-state`), so they live in `Scanner`, not here.

pub mod attachments;
pub mod auth;
pub mod connection;
pub mod content;
pub mod dnslists;
pub mod headers;
pub mod impersonation;
pub mod links;
pub mod sender;
pub mod wording;

use rempart_model::SessionFacts;

use crate::message::Analysis;

/// Free-mail providers (SpamAssassin's idea of a freemail domain), extended by
/// `scanner.freemail_domains`.
pub const FREEMAIL: &[&str] = &[
    "gmail.com",
    "googlemail.com",
    "yahoo.com",
    "yahoo.fr",
    "yahoo.co.uk",
    "ymail.com",
    "hotmail.com",
    "hotmail.fr",
    "outlook.com",
    "outlook.fr",
    "live.com",
    "live.fr",
    "msn.com",
    "aol.com",
    "aol.fr",
    "icloud.com",
    "me.com",
    "mail.com",
    "gmx.com",
    "gmx.de",
    "gmx.fr",
    "gmx.net",
    "web.de",
    "laposte.net",
    "orange.fr",
    "wanadoo.fr",
    "free.fr",
    "sfr.fr",
    "neuf.fr",
    "bbox.fr",
    "yandex.ru",
    "yandex.com",
    "mail.ru",
    "protonmail.com",
    "proton.me",
    "zoho.com",
    "tutanota.com",
    "qq.com",
    "163.com",
    "126.com",
];

/// What every check may look at.
pub struct Context<'a> {
    pub facts: &'a SessionFacts,
    pub analysis: &'a Analysis<'a>,
    /// Our own host name (to spot clients that claim it).
    pub hostname: &'a str,
    pub freemail: &'a std::collections::HashSet<String>,
    /// The envelope recipients (their domains are the ones a spoofer imitates).
    pub recipients: &'a [String],
    pub brands: &'a [impersonation::Brand],
}

/// One symbol found, with what triggered it and, rarely, its own weight (a DNS list's
/// weight for the answer it gave).
#[derive(Debug)]
pub struct Hit {
    pub name: String,
    pub detail: Option<String>,
    pub weight: Option<f64>,
    /// The attachments it was found in (empty: the message as a whole). A symbol found
    /// only in parts the policy strips weighs nothing: they are not delivered.
    pub parts: Vec<usize>,
}

/// Symbols found so far.
#[derive(Debug, Default)]
pub struct Findings {
    pub hits: Vec<Hit>,
}

impl Findings {
    pub fn hit(&mut self, name: &str) {
        self.hit_with(name, None);
    }

    pub fn hit_with(&mut self, name: &str, detail: Option<String>) {
        self.hit_weighted(name, detail, None);
    }

    pub fn hit_weighted(&mut self, name: &str, detail: Option<String>, weight: Option<f64>) {
        if !self.has(name) {
            self.hits.push(Hit { name: name.to_string(), detail, weight, parts: Vec::new() });
        }
    }

    /// A symbol found in attachment `part`.
    pub fn hit_in_part(&mut self, name: &str, detail: String, part: usize) {
        match self.hits.iter_mut().find(|h| h.name == name) {
            Some(hit) if !hit.parts.is_empty() => hit.parts.push(part),
            Some(_) => {}
            None => self.hits.push(Hit { name: name.to_string(), detail: Some(detail), weight: None, parts: vec![part] }),
        }
    }

    /// Symbols found only in `stripped` parts weigh nothing, and say so.
    pub fn discount_stripped(&mut self, stripped: &[usize]) {
        for hit in self.hits.iter_mut().filter(|h| !h.parts.is_empty() && h.parts.iter().all(|p| stripped.contains(p))) {
            hit.weight = Some(0.0);
            if let Some(detail) = &mut hit.detail {
                detail.push_str(" (removed)");
            }
        }
    }

    pub fn has(&self, name: &str) -> bool {
        self.hits.iter().any(|h| h.name == name)
    }
}

/// The domain of an address, lower-cased.
pub fn domain_of(address: &str) -> Option<String> {
    address.rsplit_once('@').map(|(_, d)| d.trim_end_matches('.').to_ascii_lowercase()).filter(|d| !d.is_empty())
}
