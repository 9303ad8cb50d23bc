//! Learning on its own, safely (SpamAssassin's bayes_auto_learn and its safeguards): a
//! verdict far from the thresholds teaches Bayes and the campaign memory. The score
//! that decides leaves out what learning feeds (Bayes, the AWL, the campaign memory);
//! spam needs header and body findings to agree (3 points each); ham is learned only
//! from mail whose sender authenticated (a pass, no failure); and a cap per sender
//! domain, class and day
//! keeps one campaign from poisoning the model.

use std::time::Duration;

use rempart_classifier::bayes::Class;
use rempart_model::Verdict;
use rempart_model::config::BayesConfig;
use rempart_state::{SharedState, key, window};

/// Findings about who sent the message and how.
const HEADER_GROUPS: &[&str] = &["auth", "connection", "headers", "impersonation", "reputation", "dnsbl", "rbl"];
/// Findings about what it says.
const BODY_GROUPS: &[&str] = &["html", "mime", "links", "content", "uri", "attachments", "antivirus"];
/// What learning feeds: never part of the decision to learn.
const LEARNED_GROUPS: &[&str] = &["bayes", "fuzzy"];
/// Points header and body findings must each give before spam is learned.
const AGREEMENT: f64 = 3.0;
const DAY: Duration = Duration::from_secs(86_400);

#[derive(Debug, Clone, Copy)]
pub struct Autolearn {
    spam_from: f64,
    ham_to: f64,
    per_sender: u64,
}

impl Autolearn {
    pub fn from_config(config: &BayesConfig) -> Option<Autolearn> {
        (config.enabled && config.autolearn).then_some(Autolearn {
            spam_from: config.autolearn_spam,
            ham_to: config.autolearn_ham,
            per_sender: config.autolearn_per_sender,
        })
    }

    /// The class to learn `verdict`'s message as, if it is clear enough.
    pub fn class_of(&self, verdict: &Verdict) -> Option<Class> {
        if verdict.listed.is_some() || verdict.malware.is_some() {
            return None;
        }
        let points =
            |groups: &[&str]| -> f64 { verdict.symbols.iter().filter(|s| groups.contains(&s.group.as_str())).map(|s| s.score).sum() };
        let own =
            verdict.symbols.iter().filter(|s| !LEARNED_GROUPS.contains(&s.group.as_str()) && s.name != "AWL").map(|s| s.score).sum::<f64>();
        if own >= self.spam_from && points(HEADER_GROUPS) >= AGREEMENT && points(BODY_GROUPS) >= AGREEMENT {
            return Some(Class::Spam);
        }
        // Ham only from a sender whose domain authenticated (a pass, no failure): never
        // from mail that claims a domain it could not prove, nor when nothing was checked.
        let failed = verdict.symbols.iter().any(|s| s.group == "auth" && s.score > 0.0);
        let passed = verdict.symbols.iter().any(|s| s.group == "auth" && s.score < 0.0);
        (own <= self.ham_to && passed && !failed).then_some(Class::Ham)
    }

    /// Learns `message` as `class` unless the sender's cap for today is reached; true
    /// when it was learned.
    pub async fn learn(&self, state: &SharedState, return_path: &str, message: &[u8], class: Class) -> bool {
        let Some(bayes) = &state.bayes else { return false };
        let sender = return_path.rsplit_once('@').map_or("<>", |(_, d)| d).to_ascii_lowercase();
        let tag = if class == Class::Spam { "spam" } else { "ham" };
        let now = rempart_model::date::unix_now();
        let counter = key(&["autolearn", tag, &sender, &window::number(now, DAY).to_string()]);
        match window::add(&*state.store, &counter, 1, DAY).await {
            Ok(n) if n > self.per_sender as i64 => return false,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "autolearn: the per-sender count failed; not learning");
                return false;
            }
        }
        let (learnable, fingerprint) = rempart_classifier::tokens::learnable_with_fingerprint(message);
        let Some((identity, tokens)) = learnable else { return false };
        // Spam only: a campaign's first, clean-looking copies must not whitelist the rest.
        if class == Class::Spam
            && let Err(e) = rempart_state::fuzzy::remember(&*state.store, &fingerprint, class).await
        {
            tracing::warn!(error = %e, "autolearn: the campaign memory was not updated");
        }
        match bayes.learn(identity, class, &tokens).await {
            Ok(_) => true,
            Err(e) => {
                tracing::warn!(error = %e, "autolearn: Bayes was not taught");
                false
            }
        }
    }
}
