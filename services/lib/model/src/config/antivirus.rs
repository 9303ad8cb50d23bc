//! `[antivirus]`: the engines the scanner asks (clamd, ICAP, an external check), and the
//! actions a policy takes on what they and the attachment checks find.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::HumanDuration;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AntivirusConfig {
    /// ClamAV's daemon: "unix:/run/clamav/clamd.ctl" or "HOST:PORT". Default unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clamd: Option<String>,
    /// An ICAP server's RESPMOD service (RFC 3507): "icap://HOST:PORT/SERVICE". Default unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub icap: Option<String>,
    /// A program given the message on standard input, answering one line: `OK`,
    /// `VIRUS <name>` or `SCORE <points>` (as Proxmox's custom check). Default unset.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub external: Vec<String>,
    /// Each engine's answer is awaited this long. Default "30s".
    pub timeout: HumanDuration,
    /// Bigger messages (or parts) are not sent to the engines; the verdict says so
    /// (`ANTIVIRUS_SKIPPED`). Default 25 MiB (clamd's StreamMaxLength default).
    pub max_size: u64,
    /// Connections to clamd kept open and used at once. Default 8.
    pub connections: usize,
    /// "message" (the whole message, once) or "parts" (each attachment apart, so a
    /// virus can be stripped). Default "message".
    pub scan: ScanUnit,
}

impl Default for AntivirusConfig {
    fn default() -> Self {
        AntivirusConfig {
            clamd: None,
            icap: None,
            external: Vec::new(),
            timeout: HumanDuration::secs(30),
            max_size: 25 << 20,
            connections: 8,
            scan: ScanUnit::Message,
        }
    }
}

impl AntivirusConfig {
    pub fn any_engine(&self) -> bool {
        self.clamd.is_some() || self.icap.is_some() || !self.external.is_empty()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScanUnit {
    Message,
    Parts,
}

/// What a policy does with a malware finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MalwareAction {
    /// Only the symbol's weight counts.
    Score,
    /// Delivered with an `X-Rempart-Malware` header naming it.
    Header,
    /// The part replaced by a short text naming what was removed; the rest delivered.
    /// Where no part can be named (a whole-message engine finding), the message is
    /// refused instead.
    Strip,
    /// Held in the quarantine.
    Quarantine,
    /// `554 5.7.1` in the SMTP session, naming it.
    Reject,
}

impl MalwareAction {
    pub fn as_str(self) -> &'static str {
        match self {
            MalwareAction::Score => "score",
            MalwareAction::Header => "header",
            MalwareAction::Strip => "strip",
            MalwareAction::Quarantine => "quarantine",
            MalwareAction::Reject => "reject",
        }
    }
}

/// When no engine answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EngineFailure {
    /// `451 4.7.0`: the sender tries again later (fail closed).
    Tempfail,
    /// Accepted with the engine's `_FAIL` symbol (fail open).
    Accept,
}

/// The kinds of attachment findings a policy acts on (`[policy.attachments]` keys).
pub const ATTACHMENT_KINDS: &[&str] = &[
    "executable",
    "script",
    "shortcut",
    "disk_image",
    "hta",
    "html_smuggling",
    "archive_bomb",
    "archive_too_deep",
    "encrypted_archive",
    "office_macro",
    "pdf_javascript",
    "pdf_launch",
];

/// The default action per kind: what runs when opened is refused; what may be
/// legitimate (encrypted archives, macros, PDF scripts) only weighs.
pub fn default_attachment_actions() -> BTreeMap<String, MalwareAction> {
    ATTACHMENT_KINDS
        .iter()
        .map(|kind| {
            let action = match *kind {
                "executable" | "script" | "shortcut" | "disk_image" | "hta" | "html_smuggling" | "archive_bomb" => MalwareAction::Reject,
                _ => MalwareAction::Score,
            };
            (kind.to_string(), action)
        })
        .collect()
}
