//! Scenarios: what load to send, for how long, with which messages, and what the sink
//! does meanwhile. From a TOML file or one of the built-in names.

use std::path::{Path, PathBuf};

use rempart_model::HumanDuration;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    /// Open loop: messages per second to reach (after `ramp`) and hold (for `steady`),
    /// whatever the latency, so slow replies are seen and not hidden (coordinated
    /// omission). 0 means closed loop.
    pub rate: f64,
    /// Closed loop: sessions sending back to back (used when `rate` is 0).
    pub sessions: usize,
    /// Open loop: most sessions in flight (beyond it, a send is counted as "overload").
    pub max_in_flight: usize,
    pub ramp: HumanDuration,
    pub steady: HumanDuration,
    pub messages_per_session: usize,
    pub recipients_per_message: usize,
    pub pipelining: bool,
    pub starttls: bool,
    /// Send a PROXY v1 header with this client address first (the listener must expect it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_client: Option<std::net::IpAddr>,
    /// Log in as this account (AUTH PLAIN after STARTTLS, which it needs): a submission
    /// load. Messages must then be from `sender`, the account (`generated = true`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_password: Option<String>,
    /// Recipient domain of the generated recipients (`lt<id>r<k>@domain`).
    pub recipient_domain: String,
    /// Real recipients instead (one address per line, # comments): the gateway checks
    /// them against its list, LDAP or callout. Each message's recipient k is the next
    /// address of the list, sub-addressed `local+lt<id>r<k>@domain` so the sink still
    /// tells the deliveries apart (the gateway checks the address without it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipients_file: Option<PathBuf>,
    /// Envelope sender.
    pub sender: String,
    pub mix: Mix,
    /// What the built-in sink does during the run.
    #[serde(rename = "sink_fault")]
    pub sink_faults: Vec<SinkFault>,
    /// After sending, how long to wait for accepted mail to reach the sink.
    pub drain: HumanDuration,
}

/// Which messages to send.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Mix {
    /// A directory of .eml files and mbox files (recursively, with "spam" in a path
    /// meaning spam); empty: `../shared/corpus/train` when it exists, else generated.
    pub corpus: Option<PathBuf>,
    /// Share of spam among corpus messages (0 to 1).
    pub spam_ratio: f64,
    /// Generated messages (when there is no corpus, or `generated = true`): sizes in
    /// bytes with their weights.
    pub generated: bool,
    pub sizes: Vec<SizeWeight>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SizeWeight {
    pub bytes: usize,
    pub weight: f64,
}

/// The sink answers `code` to a `share` of RCPTs (all of them by default) from `from`
/// to `to` seconds into the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkFault {
    pub from: HumanDuration,
    pub to: HumanDuration,
    pub code: u16,
    #[serde(default = "all")]
    pub share: f64,
}

fn all() -> f64 {
    1.0
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            name: "custom".into(),
            rate: 50.0,
            sessions: 10,
            max_in_flight: 500,
            ramp: HumanDuration::secs(5),
            steady: HumanDuration::secs(30),
            messages_per_session: 1,
            recipients_per_message: 1,
            pipelining: true,
            starttls: false,
            proxy_client: None,
            auth_user: None,
            auth_password: None,
            recipient_domain: "example.com".into(),
            recipients_file: None,
            sender: "loadtest@loadtest.example".into(),
            mix: Mix::default(),
            sink_faults: Vec::new(),
            drain: HumanDuration::secs(60),
        }
    }
}

impl Default for Mix {
    fn default() -> Self {
        Mix {
            corpus: None,
            spam_ratio: 0.5,
            generated: false,
            sizes: vec![
                SizeWeight { bytes: 4_096, weight: 0.6 },
                SizeWeight { bytes: 20_480, weight: 0.3 },
                SizeWeight { bytes: 200_000, weight: 0.1 },
            ],
        }
    }
}

pub const BUILT_IN: &[&str] = &["smoke", "steady", "burst", "greylist-storm", "big-messages"];

impl Scenario {
    /// A built-in scenario by name, or a TOML file.
    pub fn load(name_or_file: &str) -> Result<Scenario, String> {
        if let Some(s) = Self::built_in(name_or_file) {
            return Ok(s);
        }
        let path = Path::new(name_or_file);
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("{name_or_file}: {e} (built-in scenarios: {})", BUILT_IN.join(", ")))?;
        let mut scenario: Scenario = toml::from_str(&text).map_err(|e| {
            let line = e.span().map(|s| text[..s.start].matches('\n').count() + 1);
            format!("{}:{}: {}", path.display(), line.map_or("?".into(), |l| l.to_string()), e.message().trim())
        })?;
        if scenario.name == "custom" {
            scenario.name = path.file_stem().map_or("custom".into(), |s| s.to_string_lossy().into_owned());
        }
        scenario.validate().map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(scenario)
    }

    pub fn built_in(name: &str) -> Option<Scenario> {
        let base = Scenario { name: name.to_string(), ..Scenario::default() };
        Some(match name {
            // A few messages, quickly: does the deployment work at all?
            "smoke" => Scenario {
                rate: 20.0,
                ramp: HumanDuration::secs(1),
                steady: HumanDuration::secs(4),
                drain: HumanDuration::secs(30),
                ..base
            },
            // The steady rate operators compare runs with.
            "steady" => Scenario { rate: 100.0, ramp: HumanDuration::secs(10), steady: HumanDuration::secs(60), ..base },
            // A jump to a high rate with no ramp.
            "burst" => Scenario { rate: 500.0, ramp: HumanDuration::secs(0), steady: HumanDuration::secs(20), ..base },
            // Many new senders at once: every message from a new sender domain
            // (the sender gets a unique domain per message, see `sender_for`).
            "greylist-storm" => Scenario { rate: 100.0, steady: HumanDuration::secs(30), sender: "storm@{n}.storm.example".into(), ..base },
            "big-messages" => Scenario {
                rate: 10.0,
                steady: HumanDuration::secs(30),
                mix: Mix {
                    generated: true,
                    sizes: vec![SizeWeight { bytes: 1_048_576, weight: 0.7 }, SizeWeight { bytes: 10_485_760, weight: 0.3 }],
                    ..Mix::default()
                },
                ..base
            },
            _ => return None,
        })
    }

    fn validate(&self) -> Result<(), String> {
        if self.rate < 0.0 || !self.rate.is_finite() {
            return Err("rate must be 0 (closed loop) or a positive number".into());
        }
        if self.rate == 0.0 && self.sessions == 0 {
            return Err("a closed loop (rate = 0) needs sessions > 0".into());
        }
        if self.messages_per_session == 0 || self.recipients_per_message == 0 {
            return Err("messages_per_session and recipients_per_message must be at least 1".into());
        }
        if !(0.0..=1.0).contains(&self.mix.spam_ratio) {
            return Err("mix.spam_ratio must be between 0 and 1".into());
        }
        if self.mix.sizes.is_empty() || self.mix.sizes.iter().any(|s| s.weight < 0.0 || s.bytes == 0) {
            return Err("mix.sizes needs at least one size with bytes > 0 and weight >= 0".into());
        }
        if self.auth_user.is_some() != self.auth_password.is_some() {
            return Err("auth_user and auth_password go together".into());
        }
        if self.auth_user.is_some() && !self.starttls {
            return Err("AUTH needs starttls = true (the gateway offers it only over TLS)".into());
        }
        for f in &self.sink_faults {
            if f.from >= f.to || !(400..600).contains(&f.code) || !(0.0..=1.0).contains(&f.share) {
                return Err(format!("bad sink_fault {f:?}: from < to, a 4xx or 5xx code, share 0 to 1"));
            }
        }
        Ok(())
    }

    /// The addresses of `recipients_file` (empty without one); the error names the file
    /// and line.
    pub fn recipient_list(&self) -> Result<Vec<String>, String> {
        let Some(path) = &self.recipients_file else { return Ok(Vec::new()) };
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut list = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let address = line.split('#').next().unwrap_or("").trim();
            if address.is_empty() {
                continue;
            }
            match address.rsplit_once('@') {
                Some((local, domain)) if !local.is_empty() && domain.contains('.') && !address.contains(char::is_whitespace) => {
                    list.push(address.to_string());
                }
                _ => return Err(format!("{}:{}: {address:?} is not an address", path.display(), i + 1)),
            }
        }
        if list.is_empty() {
            return Err(format!("{}: no address in the file", path.display()));
        }
        Ok(list)
    }

    /// Recipient `k` of message `id`: generated, or from `list` with a sub-address
    /// naming the delivery.
    pub fn recipient(&self, list: &[String], id: u64, k: usize) -> String {
        if list.is_empty() {
            return format!("lt{id}r{k}@{}", self.recipient_domain);
        }
        let base = &list[(id as usize * self.recipients_per_message + k) % list.len()];
        match base.rsplit_once('@') {
            Some((local, domain)) => format!("{local}+lt{id}r{k}@{domain}"),
            None => base.clone(),
        }
    }

    /// The whole sending time.
    pub fn duration(&self) -> std::time::Duration {
        self.ramp.0 + self.steady.0
    }

    /// The envelope sender of message `n` ("{n}" in the sender becomes n).
    pub fn sender_for(&self, n: u64) -> String {
        self.sender.replace("{n}", &format!("s{n}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_ins_are_valid_and_files_name_their_line() {
        for name in BUILT_IN {
            Scenario::built_in(name).unwrap().validate().unwrap();
        }
        let dir = std::env::temp_dir().join(format!("lt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("bad.toml");
        std::fs::write(&file, "rate = 10\nsteady = \"5s\"\nfrobnicate = 1\n").unwrap();
        let e = Scenario::load(file.to_str().unwrap()).unwrap_err();
        assert!(e.contains("bad.toml:3:") && e.contains("frobnicate"), "{e}");
        std::fs::write(&file, "rate = 10\n[[sink_fault]]\nfrom = \"5s\"\nto = \"2s\"\ncode = 451\n").unwrap();
        assert!(Scenario::load(file.to_str().unwrap()).unwrap_err().contains("bad sink_fault"));
        std::fs::write(&file, "rate = 10\nsteady = \"5s\"\n[[sink_fault]]\nfrom = \"1s\"\nto = \"2s\"\ncode = 451\n").unwrap();
        let s = Scenario::load(file.to_str().unwrap()).unwrap();
        assert_eq!((s.name.as_str(), s.sink_faults[0].share), ("bad", 1.0));
        assert!(Scenario::load("no-such-scenario").unwrap_err().contains("smoke"));
        std::fs::write(&file, "auth_user = \"a@example.com\"\nauth_password = \"p\"\n").unwrap();
        assert!(Scenario::load(file.to_str().unwrap()).unwrap_err().contains("starttls"));
        std::fs::write(&file, "starttls = true\nauth_user = \"a@example.com\"\n").unwrap();
        assert!(Scenario::load(file.to_str().unwrap()).unwrap_err().contains("go together"));

        let list = dir.join("rcpts.txt");
        std::fs::write(&list, "# users\nalice@example.com\nbob@example.com\n").unwrap();
        let s = Scenario { recipients_file: Some(list.clone()), recipients_per_message: 2, ..Scenario::default() };
        let addresses = s.recipient_list().unwrap();
        assert_eq!(s.recipient(&addresses, 3, 1), "bob+lt3r1@example.com");
        assert_eq!(s.recipient(&[], 3, 1), "lt3r1@example.com");
        std::fs::write(&list, "alice@example.com\nnot an address\n").unwrap();
        assert!(s.recipient_list().unwrap_err().contains("rcpts.txt:2:"));
    }
}
