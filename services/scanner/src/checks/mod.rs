//! The built-in checks, by stage. Each looks at the session and the parsed message
//! and adds symbols by name; weights, groups and descriptions come from the registry.
//!
//! Stages: authentication (SPF, DKIM, DMARC over DNS, async) → connection → headers →
//! content (MIME and HTML) → composites. ARC and DNS lists, and the classifier (Bayes)
//! and reputation (AWL) stages, are not built yet: they come with the rest of the DNS
//! work and the shared-state issue (#5), at the places marked in `Scanner`.

pub mod auth;
pub mod connection;
pub mod content;
pub mod headers;
pub mod sender;

use rempart_model::SessionFacts;

use crate::message::Analysis;

/// What every check may look at.
pub struct Context<'a> {
    pub facts: &'a SessionFacts,
    pub return_path: &'a str,
    pub analysis: &'a Analysis<'a>,
    /// Our own host name (to spot clients that claim it).
    pub hostname: &'a str,
    pub freemail: &'a std::collections::HashSet<String>,
}

/// Symbols found so far, by name, with what triggered them.
#[derive(Debug, Default)]
pub struct Findings {
    pub hits: Vec<(String, Option<String>)>,
}

impl Findings {
    pub fn hit(&mut self, name: &str) {
        self.hit_with(name, None);
    }

    pub fn hit_with(&mut self, name: &str, detail: Option<String>) {
        if !self.has(name) {
            self.hits.push((name.to_string(), detail));
        }
    }

    pub fn has(&self, name: &str) -> bool {
        self.hits.iter().any(|(n, _)| n == name)
    }
}

/// The domain of an address, lower-cased.
pub fn domain_of(address: &str) -> Option<String> {
    address.rsplit_once('@').map(|(_, d)| d.trim_end_matches('.').to_ascii_lowercase()).filter(|d| !d.is_empty())
}
