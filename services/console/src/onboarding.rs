//! Onboarding a tenant's domain: the DNS records it should publish, whether it does,
//! and the proof of control that turns a pending domain active (a TXT record
//! `_rempart-verify.<domain>` holding its token, or MX records at the gateway's hosts),
//! checked now on request and periodically for every pending domain.

use std::sync::Arc;

use rempart_model::date::unix_now;
use rempart_smtp_client::mx::{TokioResolver, published_mx, published_txt};
use rempart_state::Store;
use rempart_state::dkim_keys::DkimKey;
use rempart_state::domains::{self, DomainRecord, DomainStatus};
use serde::Serialize;

/// What the gateway tells tenants to publish.
#[derive(Clone)]
pub struct Onboarding {
    /// The hosts the domains' MX records point at.
    pub mx_hosts: Vec<String>,
    /// `include:` of the SPF record shown; empty: the MX hosts are named.
    pub spf_include: String,
    /// `None` when DNS is off (`[dns] offline`): nothing can be checked.
    pub resolver: Option<TokioResolver>,
    /// The gateway offers STARTTLS (`[tls]`): MTA-STS and TLS reporting are worth
    /// publishing.
    pub starttls: bool,
}

/// One record to publish and whether it is.
#[derive(Debug, Clone, Serialize)]
pub struct DnsRecord {
    pub kind: &'static str,
    pub name: String,
    pub value: String,
    pub purpose: &'static str,
    /// `Some(true)`: published as shown; `Some(false)`: not found; `None`: not checked.
    pub published: Option<bool>,
    /// What was found, when it differs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub found: Vec<String>,
}

impl Onboarding {
    /// The gateway's hosts (`[console] mx_hosts`, else `smtp.hostname`), SPF include
    /// and resolver (`[dns]`).
    pub fn of(config: &rempart_model::Config) -> Onboarding {
        let mx_hosts =
            if config.console.mx_hosts.is_empty() { vec![config.smtp.hostname.clone()] } else { config.console.mx_hosts.clone() };
        Onboarding {
            mx_hosts,
            spf_include: config.console.spf_include.clone(),
            resolver: rempart_smtp_client::mx::resolver(&config.dns),
            starttls: config.tls.cert.is_some(),
        }
    }

    fn spf(&self) -> String {
        if self.spf_include.is_empty() {
            let hosts: Vec<String> = self.mx_hosts.iter().map(|h| format!("a:{h}")).collect();
            format!("v=spf1 mx {} ~all", hosts.join(" "))
        } else {
            format!("v=spf1 mx include:{} ~all", self.spf_include)
        }
    }

    /// The records `record`'s domain should publish, each checked when DNS is on.
    pub async fn records(&self, record: &DomainRecord, stored: &[DkimKey]) -> Vec<DnsRecord> {
        let name = record.name();
        let (verify_name, verify_value) = record.verify_record();
        let mut wanted = vec![(
            "TXT",
            verify_name,
            verify_value,
            "proves that you control the domain (needed while it is pending; may be removed once it is active)",
        )];
        for (i, host) in self.mx_hosts.iter().enumerate() {
            wanted.push(("MX", name.to_string(), format!("{} {host}", 10 * (i + 1)), "sends the domain's mail through the gateway"));
        }
        wanted.push(("TXT", name.to_string(), self.spf(), "SPF: the servers that may send the domain's mail"));
        for key in &record.config.dkim {
            wanted.push((
                "TXT",
                format!("{}._domainkey.{name}", key.selector),
                "(the key's public record: rempart dkim generate prints it)".into(),
                "DKIM: the public key of a selector that signs the domain's mail",
            ));
        }
        for key in stored.iter().filter(|k| k.retire_at.is_none()) {
            wanted.push(("TXT", key.record_name(), key.record.clone(), "DKIM: the public key of a selector that signs the domain's mail"));
        }
        if self.starttls {
            let id = rempart_model::date::iso_day(unix_now()).replace('-', "");
            wanted.push((
                "TXT",
                format!("_mta-sts.{name}"),
                format!("v=STSv1; id={id}"),
                "MTA-STS (optional): senders insist on TLS to the gateway; also serve https://mta-sts.<domain>/.well-known/mta-sts.txt (version: STSv1, mode: testing, then enforce; one mx: line per gateway host; max_age: 604800)",
            ));
            wanted.push((
                "TXT",
                format!("_smtp._tls.{name}"),
                format!("v=TLSRPTv1; rua=mailto:postmaster@{name}"),
                "TLS reporting (optional, RFC 8460): where senders report TLS failures towards the gateway",
            ));
        }
        wanted.push((
            "TXT",
            format!("_dmarc.{name}"),
            format!("v=DMARC1; p=none; rua=mailto:postmaster@{name}"),
            "DMARC (suggested start: p=none; move to quarantine, then reject, once the reports are clean)",
        ));
        let mut out = Vec::new();
        for (kind, name, value, purpose) in wanted {
            let (published, found) = match &self.resolver {
                None => (None, Vec::new()),
                Some(resolver) => self.check(resolver, kind, &name, &value).await,
            };
            out.push(DnsRecord { kind, name, value, purpose, published, found });
        }
        out
    }

    async fn check(&self, resolver: &TokioResolver, kind: &str, name: &str, value: &str) -> (Option<bool>, Vec<String>) {
        let found = match kind {
            "MX" => published_mx(resolver, name).await,
            _ => published_txt(resolver, name).await,
        };
        let Ok(found) = found else { return (None, Vec::new()) };
        let published = match kind {
            "MX" => value.split_whitespace().last().is_some_and(|host| found.iter().any(|f| f.eq_ignore_ascii_case(host))),
            _ if name.starts_with("_dmarc.") => found.iter().any(|f| f.starts_with("v=DMARC1")),
            _ if value.starts_with("v=spf1") => found.iter().any(|f| f.starts_with("v=spf1")),
            _ if value.starts_with('(') => found.iter().any(|f| f.contains("p=")),
            _ if value.starts_with("v=STSv1") => found.iter().any(|f| f.starts_with("v=STSv1")),
            _ if value.starts_with("v=TLSRPTv1") => found.iter().any(|f| f.starts_with("v=TLSRPTv1")),
            _ if value.starts_with("v=DKIM1") => found.iter().any(|f| dkim_public_key(f) == dkim_public_key(value)),
            _ => found.iter().any(|f| f.trim() == value),
        };
        (Some(published), if published { Vec::new() } else { found })
    }

    /// Whether DNS publishes a stored key's record (`None`: DNS could not say, or is off).
    pub async fn key_published(&self, key: &DkimKey) -> Option<bool> {
        let resolver = self.resolver.as_ref()?;
        self.check(resolver, "TXT", &key.record_name(), &key.record).await.0
    }

    /// Whether the domain proves control now: its TXT token, or an MX record at one of
    /// the gateway's hosts. `Err`: DNS could not say.
    pub async fn proves_control(&self, record: &DomainRecord) -> Result<bool, String> {
        let Some(resolver) = &self.resolver else { return Err("DNS is off ([dns] offline): control cannot be checked".into()) };
        let (name, value) = record.verify_record();
        if published_txt(resolver, &name).await?.iter().any(|t| t.trim() == value) {
            return Ok(true);
        }
        let mx = published_mx(resolver, record.name()).await?;
        Ok(mx.iter().any(|host| self.mx_hosts.iter().any(|h| h.eq_ignore_ascii_case(host))))
    }

    /// Checks a pending domain; turns it active when it proves control. Gives its record
    /// as it is now.
    pub async fn verify(&self, store: &dyn Store, mut record: DomainRecord) -> Result<DomainRecord, String> {
        if record.status != DomainStatus::Pending {
            return Ok(record);
        }
        if !self.proves_control(&record).await? {
            return Ok(record);
        }
        record.status = DomainStatus::Active;
        record.verified_at = Some(unix_now());
        let record = domains::update_domain(store, record).await.map_err(|e| e.to_string())?;
        tracing::info!(domain = record.name(), tenant = ?record.tenant, "domain verified: now active");
        Ok(record)
    }
}

/// How often rotated-out DKIM keys are looked for.
const RETIRE_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Checks every pending domain each `every`, and retires the DKIM keys whose overlap
/// ended, until `stopped`. Two consoles doing it at once write the same outcome.
pub async fn run(
    onboarding: Onboarding,
    store: Arc<dyn Store>,
    every: std::time::Duration,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    let verifying = onboarding.resolver.is_some() && !every.is_zero();
    // Rotated DKIM keys are retired at the end of their overlap, checked as often.
    let every = if verifying { every.min(RETIRE_EVERY) } else { RETIRE_EVERY };
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stopped.wait_for(|stop| *stop) => return,
        }
        if let Err(e) = rempart_state::dkim_keys::retire_due(&*store, unix_now()).await {
            tracing::warn!(error = %e, "cannot retire the DKIM keys whose overlap ended");
        }
        if !verifying {
            continue;
        }
        let pending = match domains::domains(&*store).await {
            Ok(all) => all.into_iter().filter(|d| d.status == DomainStatus::Pending),
            Err(e) => {
                tracing::warn!(error = %e, "cannot list the pending domains");
                continue;
            }
        };
        for record in pending {
            let name = record.name().to_string();
            if let Err(e) = onboarding.verify(&*store, record).await {
                tracing::info!(domain = %name, error = %e, "pending domain not verified yet");
            }
        }
    }
}

/// The `p=` of a DKIM record, without the spaces DNS tools insert when they split it.
fn dkim_public_key(record: &str) -> String {
    record
        .split(';')
        .find_map(|tag| tag.trim().strip_prefix("p="))
        .map(|p| p.chars().filter(|c| !c.is_whitespace()).collect())
        .unwrap_or_default()
}
