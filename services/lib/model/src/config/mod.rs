//! The configuration file (`rempart.toml`). Every field has a default, so an empty file
//! (or no file) is a valid configuration: listen on 127.0.0.1:2525, relay for nobody.
//! `deploy/rempart.example.toml` documents every field; a test keeps it complete.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::HumanDuration;

mod antivirus;
mod console;
mod domain;
mod filtering;
mod outbound;
mod recipients;
mod reload;
mod screen;
mod smtp;
mod state;
mod telemetry;
pub use antivirus::{ATTACHMENT_KINDS, AntivirusConfig, EngineFailure, MalwareAction, ScanUnit, default_attachment_actions};
pub use console::ConsoleConfig;
pub use domain::{
    DkimKeyConfig, DomainCheckError, DomainConfig, DomainIndex, Route, RouteTls, ScannerFallback, StoredDkimKey, check_domain_name,
    check_selector,
};
pub use filtering::{BrandConfig, CompositeConfig, DnsConfig, DnsListConfig, PolicyConfig, PolicyOverride, ScannerConfig};
pub use outbound::{OutboundConfig, SendLimits};
pub use recipients::{Bounces, CalloutConfig, LdapConfig, RecipientSource, default_ldap_filter};
pub use screen::ScreenConfig;
pub use smtp::{ListenerConfig, ListenerKind, SmtpConfig};
pub use state::{AwlConfig, BayesConfig, BusBackend, BusConfig, GreylistConfig, StateBackend, StateConfig};
pub use telemetry::{LogFormat, TelemetryConfig};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub smtp: SmtpConfig,
    /// Checks on a client before its SMTP dialogue (postscreen-like).
    pub screen: ScreenConfig,
    /// Customer domains: mail is accepted only for these (never an open relay).
    #[serde(rename = "domain")]
    pub domains: Vec<DomainConfig>,
    pub queue: QueueConfig,
    pub relay: RelayConfig,
    pub tls: TlsConfig,
    pub scanner: ScannerConfig,
    /// Malware engines (clamd, ICAP, an external check); none by default.
    pub antivirus: AntivirusConfig,
    pub dns: DnsConfig,
    /// Default policy for every domain; a domain's `policy` table overrides fields.
    pub policy: PolicyConfig,
    pub bus: BusConfig,
    pub state: StateConfig,
    pub greylist: GreylistConfig,
    pub awl: AwlConfig,
    pub bayes: BayesConfig,
    pub telemetry: TelemetryConfig,
    pub console: ConsoleConfig,
    /// Limits on the mail customers' accounts submit.
    pub outbound: OutboundConfig,
    #[serde(skip)]
    pub domain_index: DomainIndex,
    /// The DKIM keys the store keeps, unsealed (never written to a file).
    #[serde(skip)]
    pub stored_dkim: Vec<StoredDkimKey>,
}

/// The durable queue between the edge and the relay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueConfig {
    /// Directory of the queue database (created if missing). Default "rempart-data".
    pub data_dir: PathBuf,
    /// fsync every commit (group-committed). Turning it off loses the no-loss guarantee
    /// on a power cut or kernel crash; only for benchmarks. Default true.
    pub fsync: bool,
    /// Delays between delivery attempts; the last one repeats.
    /// Default ["1m", "5m", "15m", "30m", "1h", "2h", "4h"].
    pub retry: Vec<HumanDuration>,
    /// A message still undelivered after this long is bounced (4.4.7). Default "5d".
    pub max_age: HumanDuration,
    /// Recipients that asked for NOTIFY=DELAY get one "delayed" report once their
    /// message has waited this long. Default "4h".
    pub delay_warning: HumanDuration,
    /// How long a relay worker holds a message before another may take it. Default "15m".
    pub visibility_timeout: HumanDuration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("rempart-data"),
            fsync: true,
            retry: ["1m", "5m", "15m", "30m", "1h", "2h", "4h"].iter().filter_map(|s| s.parse().ok()).collect(),
            max_age: HumanDuration::secs(5 * 86_400),
            delay_warning: HumanDuration::secs(4 * 3600),
            visibility_timeout: HumanDuration::secs(15 * 60),
        }
    }
}

impl QueueConfig {
    /// The delay before attempt `attempt + 1` after `attempt` failed attempts (1-based).
    pub fn retry_delay(&self, attempt: u32) -> std::time::Duration {
        let index = (attempt.max(1) as usize - 1).min(self.retry.len().saturating_sub(1));
        self.retry.get(index).map(|d| d.0).unwrap_or(std::time::Duration::from_secs(300))
    }
}

/// The relay that delivers to customer servers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RelayConfig {
    /// Messages delivered at once. Default 16.
    pub concurrency: usize,
    /// TCP connect timeout towards a route. Default "30s".
    pub connect_timeout: HumanDuration,
    /// Time to wait for each reply of the remote server. Default "5m".
    pub command_timeout: HumanDuration,
    /// The port of outside domains' MX hosts (mail submitted by accounts, DSNs to
    /// outside senders). Default 25; another only for tests and unusual networks.
    pub mx_port: u16,
    /// The HTTPS port MTA-STS policies are fetched from (`https://mta-sts.DOMAIN/`).
    /// Default 443; another only for tests.
    pub mta_sts_port: u16,
    /// Deliveries in progress to one destination (a customer's route, an outside
    /// domain) at once, so one slow or throttling server cannot take every worker and
    /// a big mailing does not open `concurrency` connections to one host. Default 8.
    pub per_destination: usize,
    /// DANE (RFC 7672) towards outside MX hosts: their `_PORT._tcp` TLSA records are
    /// looked up and, when DNSSEC-secure, TLS with a matching certificate is required.
    /// Secure means the AD bit of `[dns]`'s resolvers (or the system's): turn this on
    /// only when they validate DNSSEC (a local unbound). Default false.
    pub dane: bool,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            concurrency: 16,
            connect_timeout: HumanDuration::secs(30),
            command_timeout: HumanDuration::secs(300),
            mx_port: 25,
            mta_sts_port: 443,
            per_destination: 8,
            dane: false,
        }
    }
}

/// The certificate for STARTTLS. STARTTLS is offered only when both are set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
}

/// A configuration problem, located as precisely as the file allows.
#[derive(Debug, thiserror::Error)]
#[error("{file}{}: {field}{}{message}", line.map(|l| format!(":{l}")).unwrap_or_default(), if field.is_empty() { "" } else { ": " })]
pub struct ConfigError {
    pub file: String,
    pub line: Option<usize>,
    pub field: String,
    pub message: String,
}

impl Config {
    /// Reads and validates a configuration file; relative paths inside it are taken
    /// relative to the file's directory. `-` reads standard input.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let name = path.display().to_string();
        let text = if name == "-" { std::io::read_to_string(std::io::stdin()) } else { std::fs::read_to_string(path) }
            .map_err(|e| ConfigError { file: name.clone(), line: None, field: String::new(), message: e.to_string() })?;
        let base = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        Self::parse(&text, &name, base)
    }

    /// Parses and validates configuration text; `file` names it in errors.
    pub fn parse(text: &str, file: &str, base_dir: &Path) -> Result<Self, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start));
            ConfigError { file: file.into(), line, field: String::new(), message: e.message().trim().to_string() }
        })?;
        config.resolve_paths(base_dir);
        config.validate(text, file)?;
        Ok(config)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() && base != Path::new(".") {
                *p = base.join(&*p);
            }
        };
        fix(&mut self.queue.data_dir);
        let state_files =
            [&mut self.state.path, &mut self.state.fdb_cluster_file, &mut self.state.nats_credentials_file, &mut self.state.nats_ca_file];
        let bus_files = [&mut self.bus.nats_credentials_file, &mut self.bus.nats_ca_file];
        for p in state_files.into_iter().chain(bus_files).flatten() {
            fix(p);
        }
        for p in [&mut self.tls.cert, &mut self.tls.key].into_iter().flatten() {
            fix(p);
        }
        for d in &mut self.domains {
            for p in [&mut d.recipients_file, &mut d.route_ca_file].into_iter().flatten() {
                fix(p);
            }
            for key in &mut d.dkim {
                fix(&mut key.key_file);
            }
            if let Some(ldap) = &mut d.ldap {
                for p in [&mut ldap.ca_file, &mut ldap.bind_password_file].into_iter().flatten() {
                    fix(p);
                }
            }
        }
    }

    fn validate(&mut self, text: &str, file: &str) -> Result<(), ConfigError> {
        let err = |field: String, message: String| ConfigError { file: file.into(), line: locate_field(text, &field), field, message };
        let smtp = &self.smtp;
        for (key, value) in [
            ("max_recipients", smtp.max_recipients as u64),
            ("max_errors", smtp.max_errors as u64),
            ("max_connections", smtp.max_connections as u64),
            ("max_connections_per_ip", smtp.max_connections_per_ip as u64),
            ("max_message_size", smtp.max_message_size),
            ("max_data_in_flight", smtp.max_data_in_flight),
        ] {
            if value == 0 {
                return Err(err(format!("smtp.{key}"), "must be greater than 0".into()));
            }
        }
        if smtp.max_command_line < 512 {
            return Err(err("smtp.max_command_line".into(), "must be at least 512 (RFC 5321)".into()));
        }
        if smtp.max_data_line.is_some_and(|n| n < 1000) {
            return Err(err("smtp.max_data_line".into(), "must be at least 1000 (RFC 5321)".into()));
        }
        if let Some((i, bad)) = smtp.trusted_networks.iter().enumerate().find(|(_, n)| crate::net::Network::parse(n).is_err()) {
            let message = format!("{bad:?} is not an IP address or CIDR network");
            return Err(err(format!("smtp.trusted_networks[{i}]"), message));
        }
        for (i, listener) in smtp.listeners.iter().enumerate() {
            if let Some((j, bad)) = listener.proxy_from.iter().enumerate().find(|(_, n)| crate::net::Network::parse(n).is_err()) {
                let message = format!("{bad:?} is not an IP address or CIDR network");
                return Err(err(format!("smtp.listener[{i}].proxy_from[{j}]"), message));
            }
            if listener.proxy_protocol && listener.proxy_from.is_empty() {
                let message = "proxy_protocol needs proxy_from: the load balancers' networks (anyone else could claim any address)";
                return Err(err(format!("smtp.listener[{i}].proxy_protocol"), message.into()));
            }
        }
        if let Some((i, bad)) = self.console.trusted_proxies.iter().enumerate().find(|(_, n)| crate::net::Network::parse(n).is_err()) {
            let message = format!("{bad:?} is not an IP address or CIDR network");
            return Err(err(format!("console.trusted_proxies[{i}]"), message));
        }
        for (i, host) in self.console.mx_hosts.iter().enumerate() {
            check_domain_name(host).map_err(|m| err(format!("console.mx_hosts[{i}]"), m))?;
        }
        if smtp.proxy_timeout.0.is_zero() || smtp.max_session_time.0.is_zero() {
            let key = if smtp.proxy_timeout.0.is_zero() { "proxy_timeout" } else { "max_session_time" };
            return Err(err(format!("smtp.{key}"), "must be greater than 0".into()));
        }
        if smtp.hostname.is_empty() || smtp.hostname.contains(char::is_whitespace) {
            return Err(err("smtp.hostname".into(), "must be a host name".into()));
        }
        if self.queue.retry.is_empty() {
            return Err(err("queue.retry".into(), "needs at least one delay".into()));
        }
        if self.dns.timeout_ms == 0 || self.dns.attempts == 0 {
            let key = if self.dns.timeout_ms == 0 { "timeout_ms" } else { "attempts" };
            return Err(err(format!("dns.{key}"), "must be greater than 0".into()));
        }
        if self.relay.concurrency == 0 || self.relay.per_destination == 0 {
            let key = if self.relay.concurrency == 0 { "concurrency" } else { "per_destination" };
            return Err(err(format!("relay.{key}"), "must be greater than 0".into()));
        }
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return Err(err("tls".into(), "set both cert and key, or neither".into()));
        }
        if let Some(i) = self.smtp.listeners.iter().position(|l| l.kind.is_submission())
            && self.tls.cert.is_none()
        {
            let message = "submission needs TLS: AUTH is offered only over TLS; set [tls] cert and key".to_string();
            return Err(err(format!("smtp.listener[{i}].kind"), message));
        }
        for (key, path) in [("cert", &self.tls.cert), ("key", &self.tls.key)] {
            if let Some(p) = path.as_ref().filter(|p| !p.is_file()) {
                return Err(err(format!("tls.{key}"), format!("{} is not a readable file", p.display())));
            }
        }
        let raw: toml::Table = text.parse().unwrap_or_default();
        let policy_table = |t: &toml::Table| t.get("policy").and_then(toml::Value::as_table).cloned().unwrap_or_default();
        PolicyConfig::check_order(&policy_table(&raw)).map_err(|message| err("policy".into(), message))?;
        let raw_domains = raw.get("domain").and_then(toml::Value::as_array).cloned().unwrap_or_default();
        for (i, domain) in raw_domains.iter().enumerate() {
            let table = domain.as_table().map(policy_table).unwrap_or_default();
            PolicyConfig::check_order(&table).map_err(|message| err(format!("domain[{i}].policy"), message))?;
        }
        let mut seen = HashSet::new();
        for (i, domain) in self.domains.iter_mut().enumerate() {
            domain.check().map_err(|e| err(format!("domain[{i}].{}", e.field), e.message))?;
            if !seen.insert(domain.name.clone()) {
                return Err(err(format!("domain[{i}].name"), format!("domain {} is configured twice", domain.name)));
            }
        }
        if let Some(postmaster) = &self.smtp.postmaster {
            let domain = postmaster.rsplit_once('@').map(|(local, d)| (local, d.trim_end_matches('.').to_ascii_lowercase()));
            let served = domain.as_ref().is_some_and(|(local, d)| !local.is_empty() && self.domains.iter().any(|c| &c.name == d));
            if !served {
                let message = format!(
                    "{postmaster:?} must be an address in one of the configured domains (mail to it is relayed to that domain's route)"
                );
                return Err(err("smtp.postmaster".into(), message));
            }
        }
        let grey = &self.greylist;
        if let Some((i, bad)) = grey.skip_networks.iter().enumerate().find(|(_, n)| crate::net::Network::parse(n).is_err()) {
            let message = format!("{bad:?} is not an IP address or CIDR network");
            return Err(err(format!("greylist.skip_networks[{i}]"), message));
        }
        if grey.min_delay >= grey.expiry {
            let message = format!("min_delay ({}) must be shorter than expiry ({})", grey.min_delay, grey.expiry);
            return Err(err("greylist.min_delay".into(), message));
        }
        if !(0.0..=1.0).contains(&self.awl.factor) {
            return Err(err("awl.factor".into(), "must be between 0 and 1".into()));
        }
        if self.scanner.resolve_every.0 < std::time::Duration::from_secs(1) {
            return Err(err("scanner.resolve_every".into(), "must be at least 1s".into()));
        }
        if !(0.0..=1.0).contains(&self.telemetry.sample_ratio) {
            return Err(err("telemetry.sample_ratio".into(), "must be between 0 and 1".into()));
        }
        if self.state.backend == StateBackend::Nats && self.state.nats_bucket.is_empty() {
            return Err(err("state.nats_bucket".into(), "must not be empty".into()));
        }
        Ok(())
    }

    /// Where mail to the bare `postmaster` goes: `smtp.postmaster`, else postmaster@ the
    /// first configured domain; `None` when the gateway serves no domain.
    pub fn postmaster(&self) -> Option<String> {
        self.smtp.postmaster.clone().or_else(|| self.domains.first().map(|d| format!("postmaster@{}", d.name)))
    }

    /// The configured domain for `domain`, if any (case-insensitive, trailing dot ignored).
    pub fn domain(&self, domain: &str) -> Option<&DomainConfig> {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        self.domain_index.find(&self.domains, &domain)
    }

    /// This configuration with the domains the store keeps added: a domain of the file
    /// stays as the file says (the store cannot override it).
    pub fn with_managed(&self, managed: Vec<DomainConfig>, dkim: Vec<StoredDkimKey>) -> Config {
        let mut config = self.clone();
        let from_file: HashSet<String> = self.domains.iter().map(|d| d.name.clone()).collect();
        config.domains.extend(managed.into_iter().filter(|d| !from_file.contains(&d.name)));
        config.domain_index = DomainIndex::default();
        config.stored_dkim = dkim;
        config
    }
}

/// The line where the file writes a field named like `smtp.max_errors`,
/// `scanner.composite[0].expression`, `scanner.weights.FOO`, `domain[1].policy.allow`
/// or `greylist.skip_networks[2]`, from toml's own spans: the key (or array item) when
/// it is written, else the nearest table that is.
pub fn locate_field(text: &str, field: &str) -> Option<usize> {
    use toml::de::{DeTable, DeValue};
    let document = DeTable::parse(text).ok()?;
    let mut table: &DeTable = document.get_ref();
    let mut line = None;
    for segment in field.split('.') {
        let (name, index) = match segment.strip_suffix(']').and_then(|s| s.split_once('[')) {
            Some((name, index)) => (name, Some(index.parse::<usize>().ok()?)),
            None => (segment, None),
        };
        let Some((key, mut value)) = table.iter().find(|(k, _)| k.get_ref() == name) else { return line };
        line = Some(line_of(text, key.span().start));
        if let Some(index) = index {
            let DeValue::Array(items) = value.get_ref() else { return line };
            let Some(item) = items.get(index) else { return line };
            line = Some(line_of(text, item.span().start));
            value = item;
        }
        match value.get_ref() {
            DeValue::Table(inner) => table = inner,
            _ => return line,
        }
    }
    line
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, "t.toml", Path::new("."))
    }

    #[test]
    fn empty_file_is_safe_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c.smtp.listeners[0].address.to_string(), "127.0.0.1:2525");
        assert!(c.domains.is_empty());
        assert_eq!(c, Config::default());
    }

    #[test]
    fn routes_parse() {
        assert_eq!("smtp://mx.example:2525".parse::<Route>().unwrap(), Route { host: "mx.example".into(), port: 2525 });
        assert_eq!("smtp://mx.example".parse::<Route>().unwrap().port, 25);
        assert_eq!("smtp://[::1]:26".parse::<Route>().unwrap(), Route { host: "::1".into(), port: 26 });
        for bad in ["mx.example", "http://x", "smtp://", "smtp://h:99999"] {
            assert!(bad.parse::<Route>().is_err(), "{bad}");
        }
    }

    #[test]
    fn errors_name_line_and_field() {
        let text = "[smtp]\nhostname = \"mx\"\n\n[[domain]]\nname = \"a.example\"\nroute = \"smtp://h:1\"\n\n[[domain]]\nname = \"b.example\"\nroute = \"ftp://h\"\n";
        let e = parse(text).unwrap_err();
        assert_eq!(e.line, Some(10), "{e}");
        assert!(e.to_string().starts_with("t.toml:10: "), "{e}");

        let dup = "[[domain]]\nname = \"a.example\"\nroute = \"smtp://h:1\"\n[[domain]]\nname = \"A.example.\"\nroute = \"smtp://h:1\"\n";
        let e = parse(dup).unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (Some(5), "domain[1].name"), "{e}");

        let e = parse("[smtp]\nmax_recipients = 0\n").unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (Some(2), "smtp.max_recipients"));

        let e = parse("[smtp]\nhostnme = \"x\"\n").unwrap_err();
        assert_eq!(e.line, Some(2));
        assert!(e.message.contains("hostnme"), "{e}");

        let e = parse("[[domain]]\nname = \"a.example\"\nroute = \"smtp://h\"\nrecipients_file = \"/nonexistent/x\"\n").unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (Some(4), "domain[0].recipients_file"));
        let e = parse("[[domain]]\nname = \"a.example\"\nroute = \"smtp://h\"\nrecipient_source = \"ldap\"\n").unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (Some(4), "domain[0].recipient_source"), "{e}");
        let ldap = "[[domain]]\nname = \"a.example\"\nroute = \"smtp://h\"\n[domain.ldap]\nurl = \"http://dc\"\nbase = \"dc=a\"\n";
        let e = parse(ldap).unwrap_err();
        assert_eq!(e.field, "domain[0].ldap.url", "{e}");
        let callout = "[[domain]]\nname = \"a.example\"\nroute = \"smtp://h\"\n[domain.callout]\nprobe_sender = \"nobody\"\n";
        assert_eq!(parse(callout).unwrap_err().field, "domain[0].callout.probe_sender");
    }

    #[test]
    fn state_sections_are_checked() {
        let e = parse("[greylist]\nmin_delay = \"5m\"\nskip_networks = [\"10.0.0.0/8\", \"10.0.0.0/99\"]\n").unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (Some(3), "greylist.skip_networks[1]"), "{e}");
        let e = parse("[greylist]\nmin_delay = \"5h\"\nexpiry = \"4h\"\n").unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (Some(2), "greylist.min_delay"), "{e}");
        let e = parse("[awl]\nfactor = 1.5\n").unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (Some(2), "awl.factor"), "{e}");
        let e = parse("[state]\nbackend = \"redis\"\n").unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
        let ok = parse("[state]\nbackend = \"nats\"\nnats_url = \"nats://10.0.0.1:4222\"\n[bayes]\nmin_learned = 50\n").unwrap();
        assert_eq!((ok.state.backend, ok.bayes.min_learned), (StateBackend::Nats, 50));
    }

    #[test]
    fn retry_schedule_repeats_last() {
        let q = QueueConfig { retry: vec![HumanDuration::secs(1), HumanDuration::secs(5)], ..Default::default() };
        assert_eq!(q.retry_delay(1).as_secs(), 1);
        assert_eq!(q.retry_delay(2).as_secs(), 5);
        assert_eq!(q.retry_delay(9).as_secs(), 5);
    }
}
