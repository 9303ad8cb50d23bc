//! What the scanner decides about a message: the symbols it found, their sum (the
//! score), and the action the domain's policy maps that score to.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Edits, Refusal};

/// What happens to a message, from the mildest to the harshest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Accept,
    /// Greylisting (`[greylist]`): deferred until a retry after the minimum delay.
    Greylist,
    /// Accepted with X-Spam-* headers (and an optional subject tag).
    AddHeader,
    /// Accepted and held aside instead of delivered.
    Quarantine,
    /// `451 4.7.1`: try again later.
    SoftReject,
    /// `550 5.7.1` in the SMTP session.
    Reject,
    /// Accepted with 250 and dropped.
    Discard,
}

impl Action {
    pub const ALL: [Action; 7] =
        [Action::Accept, Action::Greylist, Action::AddHeader, Action::Quarantine, Action::SoftReject, Action::Reject, Action::Discard];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Accept => "accept",
            Action::Greylist => "greylist",
            Action::AddHeader => "add_header",
            Action::Quarantine => "quarantine",
            Action::SoftReject => "soft_reject",
            Action::Reject => "reject",
            Action::Discard => "discard",
        }
    }

    /// Whether the sender is refused in the session (5xx or 4xx).
    pub fn refuses(self) -> bool {
        matches!(self, Action::Reject | Action::SoftReject)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One finding, with the score it contributed and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SymbolHit {
    pub name: String,
    /// The weight actually counted (after group limits).
    pub score: f64,
    pub group: String,
    pub description: String,
    pub description_fr: String,
    /// What triggered it, when that helps ("Reply-To: x@gmail.com").
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub detail: Option<String>,
}

/// A finding worth less than this (either way) is left out of replies and public pages.
pub const MEANINGFUL_POINTS: f64 = 0.1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub score: f64,
    pub action: Action,
    /// Highest score first.
    pub symbols: Vec<SymbolHit>,
    /// Set when an allow or block list decided, naming the entry that matched.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub listed: Option<String>,
    pub scanner_id: String,
    pub elapsed_us: u64,
    /// DNS-based checks were skipped (`dns.offline`): no symbol stands for them.
    #[serde(default)]
    pub offline: bool,
    /// What to change in the message if it is passed on (Authentication-Results,
    /// X-Spam-*, Subject tag), decided by the scanner.
    #[serde(default)]
    pub edits: Edits,
    /// The SMTP refusal when the action refuses (reject, soft_reject).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<Refusal>,
    /// When malware decided the action: what it is ("the virus Eicar-Test-Signature
    /// (found by clamd)", "invoice.exe (an executable)", "the virus scan could not be done …").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub malware: Option<String>,
}

impl Verdict {
    /// The names of the highest-scoring symbols, for a reply line.
    pub fn top_symbols(&self, n: usize) -> Vec<&str> {
        // Findings under 0.1 point explain nothing to a reader.
        self.symbols.iter().filter(|s| s.score >= MEANINGFUL_POINTS).take(n).map(|s| s.name.as_str()).collect()
    }
}

/// The outbound spam scale shown to accounts: 0 to 15, as the customers' former
/// providers showed it (SpamAssassin's scale, capped).
pub const OUTBOUND_SCALE: f64 = 15.0;

/// A score on the 0–15 outbound scale as a text bar of 15 cells, e.g.
/// `[■■■■□□□□□□□□□□□] 4.2 / 15`, for notices in plain text.
pub fn outbound_bar(score: f64) -> String {
    let shown = score.clamp(0.0, OUTBOUND_SCALE);
    let filled = shown.round() as usize;
    let cells: String = (0..OUTBOUND_SCALE as usize).map(|i| if i < filled { '■' } else { '□' }).collect();
    format!("[{cells}] {shown:.1} / {OUTBOUND_SCALE:.0}")
}

#[cfg(test)]
mod bar_tests {
    use super::*;

    #[test]
    fn the_outbound_bar_has_fifteen_cells_and_caps() {
        assert_eq!(outbound_bar(4.2), "[■■■■□□□□□□□□□□□] 4.2 / 15");
        assert_eq!(outbound_bar(-3.0), "[□□□□□□□□□□□□□□□] 0.0 / 15");
        assert_eq!(outbound_bar(40.0), "[■■■■■■■■■■■■■■■] 15.0 / 15");
    }
}
