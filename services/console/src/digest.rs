//! Digests: a periodic mail to each account listing the mail newly held for it, and to
//! each recipient without an account whose domain says so (`digest_every_recipient`,
//! the default), each entry naming whose mail it is and carrying a signed link (HMAC,
//! valid as long as the retention) to a page that confirms a release. The link never
//! acts on GET: link scanners fetch every URL in a mail. Sent through the relay like
//! any message (null sender: a digest must not bounce).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use rempart_bus::{Bus, DELIVER_TOPIC};
use rempart_model::{Envelope, QueueId, Recipient, date};
use tokio::sync::watch;

use crate::Console;
use crate::accounts::{Account, Role};
use crate::quarantine::{Entry, Query, Scope, Status};
use crate::web::auth::hex;

/// What the digests need from the configuration.
#[derive(Debug, Clone)]
pub struct DigestSettings {
    pub every: Duration,
    /// "https://console.example.net", no trailing slash.
    pub public_url: String,
    pub from: String,
    pub retention: Duration,
}

/// Held messages one digest round reads at most per reader.
const MAX_ROUND: usize = 1_000;

/// The data a digest link signs: the message, the account, the expiry.
pub fn link_data(queue_id: &str, email: &str, expires: u64) -> String {
    format!("digest:{queue_id}:{email}:{expires}")
}

/// `/d/{id}?u=…&exp=…&sig=…`
pub fn link(console: &Console, base: &str, queue_id: &str, email: &str, expires: u64) -> String {
    let sig = console.keys.sign(&link_data(queue_id, email, expires));
    format!("{base}/d/{queue_id}?u={}&exp={expires}&sig={sig}", hex(email.as_bytes()))
}

/// Sends the digests every `settings.every` until `shutdown`.
pub async fn run(console: Arc<Console>, settings: DigestSettings, mut shutdown: watch::Receiver<bool>) {
    if settings.every.is_zero() {
        return;
    }
    let mut tick = tokio::time::interval(settings.every);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        if let Err(e) = send_all(&console, &settings).await {
            tracing::warn!(error = %e, "digests not sent this round");
        }
    }
}

async fn send_all(console: &Console, settings: &DigestSettings) -> Result<(), crate::ConsoleError> {
    let store = &*console.state.store;
    let accounts = store.scan_prefix("console.account.", 100_000).await.map_err(crate::ConsoleError::Key)?;
    // The addresses an account reads: their held mail is in that account's digest.
    let mut covered = HashSet::new();
    for (_, value) in accounts {
        let Ok(account) = serde_json::from_slice::<Account>(&value) else { continue };
        covered.insert(account.email.clone());
        covered.extend(account.aliases.iter().filter(|a| !a.starts_with('@')).cloned());
        if account.disabled || account.role == Role::Operator {
            continue;
        }
        let (held, round) = newly_held(console, settings, &account.email, Scope::of(&account)).await?;
        if !round.claim(console).await? {
            continue;
        }
        if !held.is_empty()
            && let Err(e) = send(console, settings, &account.email, &Scope::of(&account), &held).await
        {
            round.give_back(console).await;
            return Err(e);
        }
    }
    to_recipients(console, settings, &covered).await
}

/// Where a reader's digests got to. A round is claimed in the shared store before its
/// digest goes (compare-and-set from the mark it was read at: of several consoles, one
/// sends it) and given back when the bus refuses the digest (tried again next round).
struct Round {
    mark: String,
    previous: Option<Vec<u8>>,
    now: u64,
}

impl Round {
    async fn claim(&self, console: &Console) -> Result<bool, crate::ConsoleError> {
        let now = self.now.to_le_bytes();
        console.state.store.compare_and_set(&self.mark, self.previous.as_deref(), &now, None).await.map_err(crate::ConsoleError::Key)
    }

    async fn give_back(&self, console: &Console) {
        let store = &*console.state.store;
        let now = self.now.to_le_bytes();
        let back = match &self.previous {
            Some(previous) => store.compare_and_set(&self.mark, Some(&now), previous, None).await.map(|_| ()),
            None => store.delete(&self.mark).await,
        };
        if let Err(e) = back {
            tracing::warn!(mark = %self.mark, error = %e, "a digest round that failed is not given back: its messages miss this digest");
        }
    }
}

/// The mail held for `scope` since the last digest of `reader`. Each round covers
/// [last mark, now): what is held during the second `now` (after this query) falls in
/// the next round, never between two. The first digest looks one period back.
async fn newly_held(
    console: &Console,
    settings: &DigestSettings,
    reader: &str,
    scope: Scope,
) -> Result<(Vec<Entry>, Round), crate::ConsoleError> {
    let store = &*console.state.store;
    let mark = rempart_state::key(&["console", "digest", reader]);
    let previous = store.get(&mark).await.map_err(crate::ConsoleError::Key)?;
    let since = previous.clone().and_then(|v| v.try_into().ok().map(u64::from_le_bytes));
    let now = date::unix_now();
    let from = since.unwrap_or_else(|| now.saturating_sub(settings.every.as_secs()));
    let query = Query { since: Some(from), until: Some(now.saturating_sub(1)), ..Query::default() };
    let quarantine = console.quarantine.clone();
    let page = crate::blocking(move || quarantine.list(&scope, &query, 0, MAX_ROUND)).await?;
    let held = page.entries.into_iter().filter(|e| e.status == Status::Held).collect();
    Ok((held, Round { mark, previous, now }))
}

/// Digests to the recipients no account reads, in the domains that want them.
async fn to_recipients(console: &Console, settings: &DigestSettings, covered: &HashSet<String>) -> Result<(), crate::ConsoleError> {
    let (held, round) = newly_held(console, settings, "=recipients", Scope::All).await?;
    if !round.claim(console).await? {
        return Ok(());
    }
    let mut wants: HashMap<String, bool> = HashMap::new();
    let mut by_recipient: BTreeMap<String, Vec<Entry>> = BTreeMap::new();
    for entry in held.iter().filter(|e| e.envelope.submitted_by.is_none()) {
        for recipient in &entry.recipients {
            let recipient = recipient.to_ascii_lowercase();
            let domain = recipient.rsplit_once('@').map_or("", |(_, d)| d).to_string();
            if covered.contains(&recipient) || entry.released_to.contains(&recipient) {
                continue;
            }
            let wanted = match wants.get(&domain) {
                Some(wanted) => *wanted,
                None => {
                    let wanted = domain_wants_digests(console, &domain).await;
                    wants.insert(domain, wanted);
                    wanted
                }
            };
            if wanted {
                by_recipient.entry(recipient).or_default().push(entry.clone());
            }
        }
    }
    for (recipient, entries) in by_recipient {
        if let Err(e) = send(console, settings, &recipient, &Scope::Addresses(vec![recipient.clone()]), &entries).await {
            round.give_back(console).await;
            return Err(e);
        }
    }
    Ok(())
}

/// Whether `domain` (one this gateway serves) sends digests to recipients without an
/// account.
pub async fn domain_wants_digests(console: &Console, domain: &str) -> bool {
    if let Some(file) = console.admin.file_domains.iter().find(|d| d.name == domain) {
        return file.digest_every_recipient;
    }
    match rempart_state::domains::get_domain(&*console.state.store, domain).await {
        Ok(Some(record)) => record.config.digest_every_recipient,
        _ => false,
    }
}

async fn send(console: &Console, settings: &DigestSettings, to: &str, scope: &Scope, held: &[Entry]) -> Result<(), crate::ConsoleError> {
    let (envelope, body) = digest_mail(console, settings, to, scope, held, date::unix_now());
    console.bus.publish(DELIVER_TOPIC, envelope.to_json(), body).await.map_err(crate::ConsoleError::Release)?;
    tracing::info!(to, messages = held.len(), "quarantine digest sent");
    Ok(())
}

fn digest_mail(console: &Console, settings: &DigestSettings, to: &str, scope: &Scope, held: &[Entry], now: u64) -> (Envelope, Vec<u8>) {
    let queue_id = QueueId::generate();
    let expires = now + settings.retention.as_secs();
    let mut text = format!(
        "{} message(s) were held for you as suspected spam.\r\n\
         Open a link to see a message and release it if it is legitimate (links are valid {} days).\r\n\
         {} message(s) ont été retenus pour vous comme spam probable.\r\n\
         Ouvrez un lien pour voir un message et le libérer s'il est légitime.\r\n\r\n",
        held.len(),
        settings.retention.as_secs() / 86_400,
        held.len()
    );
    for e in held {
        let subject: String = e.subject.chars().filter(|c| !c.is_control()).take(120).collect();
        let whose: Vec<&str> = e.recipients.iter().filter(|r| scope.allows_recipient(r)).map(String::as_str).collect();
        text.push_str(&format!(
            "{}  from {}  for / pour {}\r\n  {}  (score {:.2})\r\n  {}\r\n\r\n",
            crate::web::pages::when(e.at),
            e.sender,
            whose.join(", "),
            subject,
            e.score,
            link(console, &settings.public_url, &e.queue_id, to, expires)
        ));
    }
    let body = format!(
        "From: Rempart quarantine <{from}>\r\nTo: <{to}>\r\nSubject: Quarantine: {n} new message(s) held for you\r\n\
         Date: {date}\r\nMessage-ID: <{id}@{host}>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: 8bit\r\nAuto-Submitted: auto-generated\r\n\r\n{text}",
        from = settings.from,
        to = to,
        n = held.len(),
        date = date::rfc5322(now),
        id = queue_id,
        host = settings.from.rsplit_once('@').map_or("localhost", |(_, d)| d),
    );
    let mut envelope = Envelope::new(queue_id, String::new(), vec![Recipient::new(to.to_string())], now);
    envelope.body_8bit = true;
    (envelope, body.into_bytes())
}
