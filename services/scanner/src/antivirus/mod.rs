//! The malware engines (`[antivirus]`): clamd, ICAP, an external check. Each is asked
//! about the whole message or, with `scan = "parts"`, about each part apart (so a
//! policy can strip the infected one), within the timeout and the size limit. What
//! they answer becomes symbols (`CLAM_VIRUS` with the signature, `CLAM_VIRUS_FAIL`,
//! ClamAV's heuristics as `CLAM_ENCRYPTED`, `CLAM_MACRO`, `CLAM_PHISHING`) and, through
//! each domain's policy, actions (`engine::malware`).

pub mod clamd;
pub mod external;
pub mod icap;

use std::time::Duration;

use rempart_model::config::{AntivirusConfig, ScanUnit};

use crate::ScannerError;

/// What one engine said about one piece.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Clean,
    /// A signature's (or a heuristic's) name.
    Found(String),
    /// Points to add (the external check's `SCORE n`).
    Score(f64),
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Protocol(String),
    #[error("no answer within the timeout")]
    Timeout,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Clamd,
    Icap,
    External,
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Engine::Clamd => "clamd",
            Engine::Icap => "icap",
            Engine::External => "external check",
        }
    }

    /// Its name as a metric label.
    fn name_label(self) -> &'static str {
        match self {
            Engine::Clamd => "clamd",
            Engine::Icap => "icap",
            Engine::External => "external",
        }
    }

    /// The prefix of its symbols, rspamd's for ClamAV.
    fn symbol_prefix(self) -> &'static str {
        match self {
            Engine::Clamd => "CLAM",
            Engine::Icap => "ICAP",
            Engine::External => "EXTERNAL",
        }
    }
}

/// What an engine said about a piece of the message.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub engine: Engine,
    /// The attachment (index in the analysis) when parts are scanned apart and the
    /// piece was one; `None` for the whole message or a body part.
    pub part: Option<usize>,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Said(Verdict),
    /// The engine could not answer (unreachable, timeout, protocol error).
    Failed(String),
    /// Larger than `max_size`: not sent.
    Skipped(u64),
}

/// What a finding means to the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meaning {
    Virus,
    Failure,
    /// A heuristic that is an attachment kind (`[policy.attachments]`).
    Kind(&'static str),
    /// Only its weight counts.
    Weight,
}

impl Answer {
    /// The symbol, its detail and what it means to the policy (`None`: clean).
    pub fn symbol(&self) -> Option<(String, String, Meaning)> {
        let prefix = self.engine.symbol_prefix();
        match &self.outcome {
            Outcome::Said(Verdict::Clean) => None,
            Outcome::Said(Verdict::Found(name)) if self.engine != Engine::External && name.starts_with("Heuristics.") => {
                let (symbol, meaning) = if name.starts_with("Heuristics.Encrypted") {
                    ("CLAM_ENCRYPTED", Meaning::Kind("encrypted_archive"))
                } else if name.contains("OLE2.ContainsMacros") || name.contains("Macros") {
                    ("CLAM_MACRO", Meaning::Kind("office_macro"))
                } else if name.starts_with("Heuristics.Phishing") {
                    ("CLAM_PHISHING", Meaning::Weight)
                } else {
                    ("CLAM_HEURISTIC", Meaning::Weight)
                };
                Some((symbol.to_string(), name.clone(), meaning))
            }
            Outcome::Said(Verdict::Found(name)) => Some((format!("{prefix}_VIRUS"), name.clone(), Meaning::Virus)),
            Outcome::Said(Verdict::Score(points)) => Some(("EXTERNAL_SCORE".into(), format!("{points}"), Meaning::Weight)),
            Outcome::Failed(why) => Some((format!("{prefix}_VIRUS_FAIL"), format!("{}: {why}", self.engine.name()), Meaning::Failure)),
            Outcome::Skipped(size) => Some(("ANTIVIRUS_SKIPPED".into(), format!("{size} bytes, over the scan limit"), Meaning::Weight)),
        }
    }
}

/// The configured engines.
pub struct Engines {
    clamd: Option<clamd::Clamd>,
    icap: Option<icap::Icap>,
    external: Option<external::External>,
    timeout: Duration,
    max_size: u64,
    unit: ScanUnit,
}

impl Engines {
    /// `None` when no engine is configured; the addresses are checked here.
    pub fn from_config(config: &AntivirusConfig) -> Result<Option<Engines>, ScannerError> {
        if !config.any_engine() {
            return Ok(None);
        }
        let error = |field: &str, message: String| ScannerError { field: format!("antivirus.{field}"), message };
        let clamd = config
            .clamd
            .as_deref()
            .map(|a| clamd::Address::parse(a).map(|a| clamd::Clamd::new(a, config.connections)))
            .transpose()
            .map_err(|e| error("clamd", e))?;
        let icap = config.icap.as_deref().map(icap::Icap::parse).transpose().map_err(|e| error("icap", e))?;
        let external = (!config.external.is_empty())
            .then(|| external::External::new(&config.external))
            .transpose()
            .map_err(|e| error("external", e.to_string()))?;
        if config.timeout.0.is_zero() {
            return Err(error("timeout", "must be more than 0".into()));
        }
        Ok(Some(Engines { clamd, icap, external, timeout: config.timeout.0, max_size: config.max_size, unit: config.scan }))
    }

    /// Asks every engine about the message (or each of its parts), engines at once.
    pub async fn scan(&self, message: &[u8]) -> Vec<Answer> {
        let pieces = self.pieces(message);
        let ask = |engine: Engine| {
            let pieces = &pieces;
            async move {
                let mut answers = Vec::new();
                if !self.has(engine) {
                    return answers;
                }
                for (part, bytes) in pieces {
                    let started = std::time::Instant::now();
                    let outcome = if bytes.len() as u64 > self.max_size {
                        Outcome::Skipped(bytes.len() as u64)
                    } else {
                        match tokio::time::timeout(self.timeout, self.ask(engine, bytes)).await {
                            Ok(Ok(verdict)) => Outcome::Said(verdict),
                            Ok(Err(e)) => Outcome::Failed(e.to_string()),
                            Err(_) => Outcome::Failed(EngineError::Timeout.to_string()),
                        }
                    };
                    let result = match &outcome {
                        Outcome::Said(Verdict::Found(_)) => "found",
                        Outcome::Said(_) => "clean",
                        Outcome::Failed(_) => "failed",
                        Outcome::Skipped(_) => "skipped",
                    };
                    rempart_telemetry::metrics().antivirus(engine.name_label(), result, started.elapsed());
                    if let Outcome::Failed(why) = &outcome {
                        tracing::warn!(engine = engine.name(), error = %why, "the malware engine did not answer");
                    }
                    answers.push(Answer { engine, part: *part, outcome });
                }
                answers
            }
        };
        let (a, b, c) = tokio::join!(ask(Engine::Clamd), ask(Engine::Icap), ask(Engine::External));
        [a, b, c].concat()
    }

    fn has(&self, engine: Engine) -> bool {
        match engine {
            Engine::Clamd => self.clamd.is_some(),
            Engine::Icap => self.icap.is_some(),
            Engine::External => self.external.is_some(),
        }
    }

    async fn ask(&self, engine: Engine, bytes: &[u8]) -> Result<Verdict, EngineError> {
        match engine {
            Engine::Clamd => match &self.clamd {
                Some(clamd) => clamd.scan(bytes).await,
                None => Ok(Verdict::Clean),
            },
            Engine::Icap => match &self.icap {
                Some(icap) => icap.scan(bytes).await,
                None => Ok(Verdict::Clean),
            },
            Engine::External => match &self.external {
                Some(external) => external.scan(bytes).await,
                None => Ok(Verdict::Clean),
            },
        }
    }

    /// The pieces sent: the message, or each leaf part decoded (attachments numbered as
    /// the analysis numbers them).
    fn pieces(&self, message: &[u8]) -> Vec<(Option<usize>, Vec<u8>)> {
        if self.unit == ScanUnit::Message {
            return vec![(None, message.to_vec())];
        }
        let parsed = std::panic::catch_unwind(|| mail_parser::MessageParser::default().parse(message)).ok().flatten();
        let Some(parsed) = parsed else { return vec![(None, message.to_vec())] };
        let mut pieces = Vec::new();
        let mut attachment = 0;
        for part in parsed.parts.iter().take(rempart_classifier::message::MAX_PARTS) {
            if matches!(part.body, mail_parser::PartType::Multipart(_)) {
                continue;
            }
            if rempart_classifier::attachments::is_attachment(part) {
                pieces.push((Some(attachment), part.contents().to_vec()));
                attachment += 1;
            } else {
                pieces.push((None, part.contents().to_vec()));
            }
        }
        if pieces.is_empty() {
            pieces.push((None, message.to_vec()));
        }
        pieces
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn symbol(engine: Engine, outcome: Outcome) -> Option<(String, String, Meaning)> {
        Answer { engine, part: None, outcome }.symbol()
    }

    #[test]
    fn answers_become_symbols_with_what_they_mean_to_the_policy() {
        let found = |name: &str| Outcome::Said(Verdict::Found(name.into()));
        assert_eq!(symbol(Engine::Clamd, Outcome::Said(Verdict::Clean)), None);
        assert_eq!(
            symbol(Engine::Clamd, found("Win.Trojan.Agent")),
            Some(("CLAM_VIRUS".into(), "Win.Trojan.Agent".into(), Meaning::Virus))
        );
        let heuristic = |name: &str| symbol(Engine::Clamd, found(name)).map(|(s, _, m)| (s, m));
        assert_eq!(heuristic("Heuristics.Encrypted.Zip"), Some(("CLAM_ENCRYPTED".into(), Meaning::Kind("encrypted_archive"))));
        assert_eq!(heuristic("Heuristics.OLE2.ContainsMacros"), Some(("CLAM_MACRO".into(), Meaning::Kind("office_macro"))));
        assert_eq!(heuristic("Heuristics.Phishing.Email.SpoofedDomain"), Some(("CLAM_PHISHING".into(), Meaning::Weight)));
        assert_eq!(heuristic("Heuristics.Limits.Exceeded"), Some(("CLAM_HEURISTIC".into(), Meaning::Weight)));
        assert_eq!(symbol(Engine::Icap, found("Eicar")).map(|(s, _, m)| (s, m)), Some(("ICAP_VIRUS".into(), Meaning::Virus)));
        let failed = symbol(Engine::Clamd, Outcome::Failed("connection refused".into()));
        assert_eq!(failed, Some(("CLAM_VIRUS_FAIL".into(), "clamd: connection refused".into(), Meaning::Failure)));
        let score = symbol(Engine::External, Outcome::Said(Verdict::Score(2.5)));
        assert_eq!(score, Some(("EXTERNAL_SCORE".into(), "2.5".into(), Meaning::Weight)));
        assert_eq!(symbol(Engine::Clamd, Outcome::Skipped(30 << 20)).map(|(s, _, _)| s), Some("ANTIVIRUS_SKIPPED".into()));
    }
}
