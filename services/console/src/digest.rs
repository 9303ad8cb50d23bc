//! Digests: a periodic mail to each account listing the mail newly held for it, each
//! with a signed link (HMAC, valid as long as the retention) to a page that confirms a
//! release. The link never acts on GET: link scanners fetch every URL in a mail.
//! Sent through the relay like any message (null sender: a digest must not bounce).

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
    for (_, value) in accounts {
        let Ok(account) = serde_json::from_slice::<Account>(&value) else { continue };
        if account.disabled || account.role == Role::Operator {
            continue;
        }
        let mark = rempart_state::key(&["console", "digest", &account.email]);
        let since = store.get(&mark).await.map_err(crate::ConsoleError::Key)?.and_then(|v| v.try_into().ok().map(u64::from_le_bytes));
        let now = date::unix_now();
        let (quarantine, scope) = (console.quarantine.clone(), Scope::of(&account));
        // Each round covers [last mark, now): what is held during the second `now`
        // (after this query) falls in the next round, never between two. The first
        // digest looks one period back.
        let from = since.unwrap_or_else(|| now.saturating_sub(settings.every.as_secs()));
        let query = Query { since: Some(from), until: Some(now.saturating_sub(1)), ..Query::default() };
        let page = crate::blocking(move || quarantine.list(&scope, &query, 0, 200)).await?;
        let held: Vec<Entry> = page.entries.into_iter().filter(|e| e.status == Status::Held).collect();
        if !held.is_empty() {
            let (envelope, body) = digest_mail(console, settings, &account, &held, now);
            console.bus.publish(DELIVER_TOPIC, envelope.to_json(), body).await.map_err(crate::ConsoleError::Release)?;
            tracing::info!(account = %account.email, messages = held.len(), "quarantine digest sent");
        }
        store.put(&mark, &now.to_le_bytes(), None).await.map_err(crate::ConsoleError::Key)?;
    }
    Ok(())
}

fn digest_mail(console: &Console, settings: &DigestSettings, account: &Account, held: &[Entry], now: u64) -> (Envelope, Vec<u8>) {
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
        text.push_str(&format!(
            "{}  {}\r\n  {}  (score {:.2})\r\n  {}\r\n\r\n",
            crate::web::pages::when(e.at),
            e.sender,
            subject,
            e.score,
            link(console, &settings.public_url, &e.queue_id, &account.email, expires)
        ));
    }
    let body = format!(
        "From: Rempart quarantine <{from}>\r\nTo: <{to}>\r\nSubject: Quarantine: {n} new message(s) held for you\r\n\
         Date: {date}\r\nMessage-ID: <{id}@{host}>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: 8bit\r\nAuto-Submitted: auto-generated\r\n\r\n{text}",
        from = settings.from,
        to = account.email,
        n = held.len(),
        date = date::rfc5322(now),
        id = queue_id,
        host = settings.from.rsplit_once('@').map_or("localhost", |(_, d)| d),
    );
    let mut envelope = Envelope::new(queue_id, String::new(), vec![Recipient::new(account.email.clone())], now);
    envelope.body_8bit = true;
    (envelope, body.into_bytes())
}
