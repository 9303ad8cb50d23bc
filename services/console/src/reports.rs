//! Reports: what the gateway did, per recipient domain and for the whole gateway (the
//! operator's scope, `*`). Counted from the events the edges and relays publish
//! (`rempart.events.verdict`, `rempart.events.delivery`; in process on a single node,
//! a NATS queue group in a cluster so that each event is counted once), summed in
//! memory and added to the shared store every few seconds as counters:
//!
//! `report.<scope>.<YYYYMMDD>.a.<HH>.<action>` messages by action and hour,
//! `….s.<SYMBOL>` rule hits, `….r.<sender>` refused senders, `….d.<status>` deliveries,
//! `….o.<account>.<what>` what logged-in accounts sent (`rempart.events.outbound`,
//! counted under the account's domain): sent, recipients, bytes, blocked, refused,
//! limited, deferred, login, suspended.
//!
//! A day is read with one prefix scan; days older than [`RETENTION_DAYS`] are swept.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use rempart_bus::{AnyBus, Bus, DELIVERY_EVENTS, OUTBOUND_EVENTS, TRACK_EVENTS, VERDICT_EVENTS};
use rempart_proto::v1::{DeliveryEvent, OutboundEvent, TrackEvent, VerdictEvent};
use rempart_state::{Store, StoreResult, key, unescape};
use serde::Serialize;
use tokio::sync::watch;

/// The operator's scope: every domain.
pub const ALL: &str = "*";
/// How long daily counters are kept.
pub const RETENTION_DAYS: u64 = 400;
/// How often the counts in memory go to the store.
pub const FLUSH_EVERY: Duration = Duration::from_secs(2);
/// Refused senders counted per scope and day, at most (a dictionary attack must not
/// fill the store): later ones are counted under "(others)".
pub const MAX_SENDERS_PER_DAY: usize = 1_000;
/// The queue group of the consoles counting events.
const GROUP: &str = "rempart-console-reports";

/// Actions in the order the charts stack them; `tempfail`: a message told to come back
/// because of us (no verdict: the scanner or the queue could not answer).
pub const ACTIONS: [&str; 8] = ["accept", "add_header", "greylist", "quarantine", "soft_reject", "reject", "discard", "tempfail"];

fn day_segment(at: u64) -> String {
    rempart_model::date::iso_day(at).replace('-', "")
}

fn day_prefix(scope: &str, at: u64) -> String {
    format!("{}.", key(&["report", scope, &day_segment(at)]))
}

/// Counts waiting to be added to the store.
#[derive(Default)]
pub struct Tally {
    deltas: HashMap<String, i64>,
    /// Distinct refused senders seen today per scope (bounded by MAX_SENDERS_PER_DAY).
    senders: HashMap<(String, String), std::collections::HashSet<String>>,
}

impl Tally {
    fn bump(&mut self, key: String, by: i64) {
        *self.deltas.entry(key).or_default() += by;
    }

    /// The recipients' domains (each once) and the operator's scope.
    fn scopes<'a>(recipients: impl Iterator<Item = &'a str>) -> Vec<String> {
        let mut scopes: Vec<String> = recipients.filter_map(|r| r.rsplit_once('@')).map(|(_, d)| d.to_ascii_lowercase()).collect();
        scopes.sort();
        scopes.dedup();
        scopes.push(ALL.to_string());
        scopes
    }

    pub fn verdict(&mut self, event: &VerdictEvent) {
        let Some(verdict) = &event.verdict else { return };
        let at = u64::try_from(event.at).unwrap_or(0);
        let day = day_segment(at);
        let hour = format!("{:02}", (at % 86_400) / 3600);
        let refused = matches!(verdict.action.as_str(), "reject" | "soft_reject" | "discard");
        for scope in Self::scopes(event.recipients.iter().map(String::as_str)) {
            self.bump(key(&["report", &scope, &day, "a", &hour, &verdict.action]), 1);
            // Malware findings count though they weigh nothing (the policy acted on them).
            for symbol in verdict.symbols.iter().filter(|s| s.score > 0.0 || matches!(s.group.as_str(), "antivirus" | "attachments")) {
                self.bump(key(&["report", &scope, &day, "s", &symbol.name]), 1);
            }
            if refused {
                let sender = if event.return_path.is_empty() { "<>".to_string() } else { event.return_path.to_ascii_lowercase() };
                let seen = self.senders.entry((scope.clone(), day.clone())).or_default();
                let counted = seen.contains(&sender) || seen.len() < MAX_SENDERS_PER_DAY;
                if counted {
                    seen.insert(sender.clone());
                }
                let name = if counted { sender } else { "(others)".to_string() };
                self.bump(key(&["report", &scope, &day, "r", &name]), 1);
            }
        }
    }

    /// A transaction the edge answered with a temporary failure of its own (no verdict
    /// was made, so no verdict event counts it).
    pub fn tracked(&mut self, event: &TrackEvent) {
        if event.kind != "session" || event.outcome != "tempfail" || !event.action.is_empty() || !event.account.is_empty() {
            return;
        }
        let at = u64::try_from(event.at_ms / 1000).unwrap_or(0);
        let (day, hour) = (day_segment(at), format!("{:02}", (at % 86_400) / 3600));
        for scope in Self::scopes(event.recipients.iter().map(String::as_str)) {
            self.bump(key(&["report", &scope, &day, "a", &hour, "tempfail"]), 1);
        }
    }

    pub fn delivery(&mut self, event: &DeliveryEvent) {
        let at = u64::try_from(event.at).unwrap_or(0);
        let day = day_segment(at);
        for scope in Self::scopes(std::iter::once(event.recipient.as_str())) {
            self.bump(key(&["report", &scope, &day, "d", &event.status]), 1);
        }
    }

    /// What a logged-in account did, under its domain and the operator's scope.
    pub fn outbound(&mut self, event: &OutboundEvent) {
        let at = u64::try_from(event.at).unwrap_or(0);
        let day = day_segment(at);
        let account = event.account.to_ascii_lowercase();
        let mut counts = vec![(event.result.as_str(), 1)];
        if event.result == "sent" {
            counts.push(("recipients", i64::from(event.recipients)));
            counts.push(("bytes", i64::try_from(event.bytes).unwrap_or(i64::MAX)));
        }
        for scope in Self::scopes(std::iter::once(account.as_str())) {
            for (what, by) in &counts {
                self.bump(key(&["report", &scope, &day, "o", &account, what]), *by);
            }
        }
    }

    /// Adds the counts to the store; kept in memory for the next flush if that fails.
    pub async fn flush(&mut self, store: &dyn Store) -> StoreResult<()> {
        if self.deltas.is_empty() {
            return Ok(());
        }
        let mut deltas: Vec<(String, i64)> = self.deltas.drain().collect();
        let scopes: std::collections::BTreeSet<String> =
            deltas.iter().filter_map(|(k, _)| k.strip_prefix("report.")?.split('.').next().map(str::to_string)).collect();
        deltas.extend(scopes.into_iter().map(|s| (format!("report.scopes.{s}"), 1)));
        if let Err(e) = store.add(&deltas).await {
            for (k, v) in deltas.into_iter().filter(|(k, _)| !k.starts_with("report.scopes.")) {
                self.bump(k, v);
            }
            return Err(e);
        }
        // Yesterday's sender sets are no longer needed.
        let today = day_segment(rempart_model::date::unix_now());
        self.senders.retain(|(_, day), _| *day >= today);
        Ok(())
    }
}

/// Subscribes to the events reports count; done before the edge takes mail, so that
/// nothing it does goes uncounted.
pub async fn subscribe(bus: &AnyBus) -> Option<rempart_bus::EventReceiver> {
    match bus.subscribe_events(GROUP).await {
        Ok(events) => Some(events),
        Err(e) => {
            tracing::error!(error = %e, "reports cannot subscribe to the gateway's events: no reports will be counted");
            None
        }
    }
}

/// Counts `events` until `shutdown`, then flushes what is left.
pub async fn run(mut events: rempart_bus::EventReceiver, store: Arc<dyn Store>, mut shutdown: watch::Receiver<bool>) {
    let mut tally = Tally::default();
    let mut flush = tokio::time::interval(FLUSH_EVERY);
    loop {
        tokio::select! {
            event = events.recv() => {
                let Some(event) = event else { break };
                match event.subject.as_str() {
                    VERDICT_EVENTS => match VerdictEvent::decode(event.payload.as_slice()) {
                        Ok(e) => tally.verdict(&e),
                        Err(e) => tracing::debug!(error = %e, "undecodable verdict event"),
                    },
                    DELIVERY_EVENTS => match DeliveryEvent::decode(event.payload.as_slice()) {
                        Ok(e) => tally.delivery(&e),
                        Err(e) => tracing::debug!(error = %e, "undecodable delivery event"),
                    },
                    TRACK_EVENTS => match TrackEvent::decode(event.payload.as_slice()) {
                        Ok(e) => tally.tracked(&e),
                        Err(e) => tracing::debug!(error = %e, "undecodable tracking event"),
                    },
                    OUTBOUND_EVENTS => match OutboundEvent::decode(event.payload.as_slice()) {
                        Ok(e) => tally.outbound(&e),
                        Err(e) => tracing::debug!(error = %e, "undecodable outbound event"),
                    },
                    _ => {}
                }
            }
            _ = flush.tick() => {
                if let Err(e) = tally.flush(&*store).await {
                    tracing::warn!(error = %e, "report counts not saved yet; will retry");
                }
            }
            _ = shutdown.changed() => break,
        }
    }
    if let Err(e) = tally.flush(&*store).await {
        tracing::warn!(error = %e, "report counts of the last seconds lost at shutdown");
    }
}

/// Deletes the counters of days past the retention, once a day.
pub async fn sweep(store: Arc<dyn Store>, mut shutdown: watch::Receiver<bool>) {
    let mut every = tokio::time::interval(Duration::from_secs(24 * 3600));
    loop {
        tokio::select! {
            _ = every.tick() => {
                if let Err(e) = sweep_once(&*store, rempart_model::date::unix_now()).await {
                    tracing::warn!(error = %e, "report sweep failed");
                }
            }
            _ = shutdown.changed() => return,
        }
    }
}

/// Deletes, for every scope, the 30 days just past the retention (a daily sweep
/// catches every day; a gateway off for longer leaves older counters to an operator).
pub async fn sweep_once(store: &dyn Store, now: u64) -> StoreResult<usize> {
    let mut deleted = 0;
    for (scope_key, _) in store.scan_prefix("report.scopes.", 100_000).await? {
        let Some(scope) = scope_key.strip_prefix("report.scopes.").and_then(unescape) else { continue };
        for back in RETENTION_DAYS..RETENTION_DAYS + 30 {
            let day = now.saturating_sub(back * 86_400);
            for (k, _) in store.scan_prefix(&day_prefix(&scope, day), 1_000_000).await? {
                store.delete(&k).await?;
                deleted += 1;
            }
        }
    }
    Ok(deleted)
}

/// One bar of a chart: messages by action from `start` (a day, or an hour).
#[derive(Debug, Clone, Serialize)]
pub struct Bucket {
    pub start: u64,
    pub actions: BTreeMap<String, i64>,
}

impl Bucket {
    pub fn total(&self) -> i64 {
        self.actions.values().sum()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub scope: String,
    /// Midnight (UTC) of the first day.
    pub since: u64,
    pub days: u64,
    /// One per day, or one per hour for a one-day report.
    pub buckets: Vec<Bucket>,
    pub totals: BTreeMap<String, i64>,
    pub top_symbols: Vec<(String, i64)>,
    pub top_refused_senders: Vec<(String, i64)>,
    pub deliveries: BTreeMap<String, i64>,
    /// Per account that logged in to send: sent, recipients, bytes, blocked, refused,
    /// limited, deferred, login, suspended.
    pub outbound: BTreeMap<String, BTreeMap<String, i64>>,
}

/// The domains that have counts (the operator's picker and per-domain table).
pub async fn domains(store: &dyn Store) -> StoreResult<Vec<String>> {
    let mut domains: Vec<String> = store
        .scan_prefix("report.scopes.", 100_000)
        .await?
        .into_iter()
        .filter_map(|(k, _)| k.strip_prefix("report.scopes.").and_then(unescape))
        .filter(|scope| scope != ALL)
        .collect();
    domains.sort();
    Ok(domains)
}

/// Domains the per-domain table shows at most (each is read day by day).
pub const MAX_DOMAINS_TABLE: usize = 200;

/// Each domain's messages by action over the `days` days ending today.
pub async fn per_domain(store: &dyn Store, days: u64, now: u64) -> StoreResult<Vec<(String, BTreeMap<String, i64>)>> {
    let mut rows = Vec::new();
    for domain in domains(store).await?.into_iter().take(MAX_DOMAINS_TABLE) {
        let report = load(store, &domain, days, now).await?;
        rows.push((domain, report.totals));
    }
    rows.sort_by(|a, b| b.1.values().sum::<i64>().cmp(&a.1.values().sum::<i64>()).then_with(|| a.0.cmp(&b.0)));
    Ok(rows)
}

/// How many rules and senders the "top" lists show.
pub const TOP: usize = 20;

/// The report of `scope` for the `days` days ending with today (UTC).
pub async fn load(store: &dyn Store, scope: &str, days: u64, now: u64) -> StoreResult<Report> {
    let days = days.clamp(1, RETENTION_DAYS);
    let today = now - now % 86_400;
    let since = today - (days - 1) * 86_400;
    let hourly = days == 1;
    let mut buckets: Vec<Bucket> = if hourly {
        (0..24).map(|h| Bucket { start: since + h * 3600, actions: BTreeMap::new() }).collect()
    } else {
        (0..days).map(|d| Bucket { start: since + d * 86_400, actions: BTreeMap::new() }).collect()
    };
    let (mut totals, mut deliveries, mut outbound) = (BTreeMap::new(), BTreeMap::new(), BTreeMap::<String, BTreeMap<String, i64>>::new());
    let (mut symbols, mut senders): (HashMap<String, i64>, HashMap<String, i64>) = Default::default();
    for d in 0..days {
        let day = since + d * 86_400;
        let prefix = day_prefix(scope, day);
        for (k, value) in store.scan_prefix(&prefix, 1_000_000).await? {
            let count = rempart_state::counter(&k, Some(&value))?;
            let rest: Vec<&str> = k[prefix.len()..].split('.').collect();
            let Some(name) = rest.last().and_then(|s| unescape(s)) else { continue };
            match rest.as_slice() {
                ["a", hour, _] => {
                    let hour: u64 = hour.parse().unwrap_or(0);
                    let index = if hourly { hour as usize } else { d as usize };
                    if let Some(bucket) = buckets.get_mut(index) {
                        *bucket.actions.entry(name.clone()).or_default() += count;
                    }
                    *totals.entry(name).or_default() += count;
                }
                ["s", _] => *symbols.entry(name).or_default() += count,
                ["r", _] => *senders.entry(name).or_default() += count,
                ["d", _] => *deliveries.entry(name).or_default() += count,
                ["o", account, _] => {
                    let Some(account) = unescape(account) else { continue };
                    *outbound.entry(account).or_default().entry(name).or_default() += count;
                }
                _ => {}
            }
        }
    }
    let top = |counts: HashMap<String, i64>| {
        let mut v: Vec<(String, i64)> = counts.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v.truncate(TOP);
        v
    };
    Ok(Report {
        scope: scope.to_string(),
        since,
        days,
        buckets,
        totals,
        top_symbols: top(symbols),
        top_refused_senders: top(senders),
        deliveries,
        outbound,
    })
}

impl Report {
    /// The report as CSV in long form: `period,kind,name,count` (kind: action, symbol,
    /// refused_sender, delivery, outbound_<what> with the account as name); actions per
    /// bucket, the rest for the whole period.
    pub fn csv(&self) -> String {
        let field = |s: &str| {
            if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
        };
        let hourly = self.days == 1;
        let mut out = String::from("period,kind,name,count\r\n");
        for bucket in &self.buckets {
            let period = if hourly { rempart_model::date::iso_minute(bucket.start) } else { rempart_model::date::iso_day(bucket.start) };
            for (action, count) in &bucket.actions {
                out.push_str(&format!("{period},action,{},{count}\r\n", field(action)));
            }
        }
        let whole =
            format!("{}/{}", rempart_model::date::iso_day(self.since), rempart_model::date::iso_day(self.since + (self.days - 1) * 86_400));
        for (kind, rows) in [("symbol", &self.top_symbols), ("refused_sender", &self.top_refused_senders)] {
            for (name, count) in rows {
                out.push_str(&format!("{whole},{kind},{},{count}\r\n", field(name)));
            }
        }
        for (status, count) in &self.deliveries {
            out.push_str(&format!("{whole},delivery,{},{count}\r\n", field(status)));
        }
        for (account, counts) in &self.outbound {
            for (what, count) in counts {
                out.push_str(&format!("{whole},outbound_{what},{},{count}\r\n", field(account)));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rempart_proto::v1::{Symbol, Verdict};

    fn verdict(action: &str, from: &str, to: &[&str], at: i64, symbols: &[(&str, f64)]) -> VerdictEvent {
        VerdictEvent {
            queue_id: "Q".into(),
            client_ip: "192.0.2.1".into(),
            return_path: from.into(),
            recipients: to.iter().map(|s| s.to_string()).collect(),
            verdict: Some(Verdict {
                action: action.into(),
                symbols: symbols.iter().map(|(n, s)| Symbol { name: n.to_string(), score: *s, ..Default::default() }).collect(),
                ..Default::default()
            }),
            at,
        }
    }

    #[tokio::test]
    async fn events_are_counted_per_domain_and_for_the_operator() {
        let dir = tempfile::tempdir().unwrap();
        let store = rempart_state::EmbeddedStore::open(&dir.path().join("state.redb"), false).unwrap();
        let now = rempart_model::date::parse_iso_day("2026-12-04").unwrap() + 10 * 3600 + 5;
        let yesterday = now - 86_400;
        let mut tally = Tally::default();
        tally.verdict(&verdict(
            "reject",
            "Spam@Bad.test",
            &["a@one.test", "b@one.test", "c@two.test"],
            now as i64,
            &[("BAYES_99", 3.5), ("AWL", -1.0)],
        ));
        tally.verdict(&verdict("accept", "friend@ok.test", &["a@one.test"], now as i64, &[]));
        tally.verdict(&verdict("quarantine", "x@y.test", &["a@one.test"], yesterday as i64, &[("BAYES_99", 3.5)]));
        tally.delivery(&DeliveryEvent { recipient: "a@one.test".into(), status: "delivered".into(), at: now as i64, ..Default::default() });
        let sent = |result: &str| OutboundEvent {
            account: "Alice@one.test".into(),
            result: result.into(),
            recipients: 3,
            bytes: 1000,
            at: now as i64,
            ..Default::default()
        };
        for result in ["login", "sent", "sent", "blocked"] {
            tally.outbound(&sent(result));
        }
        tally.flush(&store).await.unwrap();

        let one = load(&store, "one.test", 1, now).await.unwrap();
        assert_eq!(one.buckets.len(), 24);
        assert_eq!(one.buckets[10].actions.get("reject"), Some(&1), "one message to two addresses of one domain counts once");
        assert_eq!(one.totals.values().sum::<i64>(), 2);
        assert_eq!(one.top_symbols, [("BAYES_99".to_string(), 1)], "rules that took points off are not listed");
        assert_eq!(one.top_refused_senders, [("spam@bad.test".to_string(), 1)]);
        assert_eq!(one.deliveries.get("delivered"), Some(&1));
        let alice = &one.outbound["alice@one.test"];
        let count = |what: &str| alice.get(what).copied().unwrap_or(0);
        assert_eq!((count("login"), count("sent"), count("recipients"), count("bytes"), count("blocked")), (1, 2, 6, 2000, 1));
        assert_eq!(one.totals.values().sum::<i64>(), 2, "outbound usage is not inbound mail");

        let week = load(&store, ALL, 7, now).await.unwrap();
        assert_eq!(week.buckets.len(), 7);
        assert_eq!(week.buckets[5].actions.get("quarantine"), Some(&1));
        assert_eq!(week.buckets[6].total(), 2);
        assert_eq!(week.top_symbols, [("BAYES_99".to_string(), 2)]);
        let two = load(&store, "two.test", 7, now).await.unwrap();
        assert_eq!(two.totals.get("reject"), Some(&1));
        assert_eq!(two.deliveries.len(), 0);
        assert!(two.outbound.is_empty(), "an account's usage is under its own domain");
        assert_eq!(week.outbound["alice@one.test"]["sent"], 2, "and the operator's");

        let csv = week.csv();
        assert!(csv.starts_with("period,kind,name,count\r\n2026-12-03,action,quarantine,1\r\n"), "{csv}");
        assert!(csv.contains("2026-11-28/2026-12-04,refused_sender,spam@bad.test,1\r\n"), "{csv}");

        // Past the retention, a day's counters go; not before.
        assert_eq!(sweep_once(&store, now + (RETENTION_DAYS - 2) * 86_400).await.unwrap(), 0);
        let later = now + RETENTION_DAYS * 86_400;
        assert!(sweep_once(&store, later).await.unwrap() >= 5);
        assert!(load(&store, ALL, 7, now).await.unwrap().totals.is_empty());
        assert_eq!(load(&store, ALL, 7, later).await.unwrap().totals.len(), 0);
    }

    #[test]
    fn refused_senders_per_day_are_bounded() {
        let mut tally = Tally::default();
        for i in 0..MAX_SENDERS_PER_DAY + 10 {
            tally.verdict(&verdict("reject", &format!("s{i}@spam.test"), &["a@one.test"], 1_796_342_400, &[]));
        }
        let others = tally.deltas.iter().filter(|(k, _)| k.ends_with(".r.=28others=29")).map(|(_, v)| *v).sum::<i64>();
        assert_eq!(others, 20, "10 over the bound, for the domain and the operator");
    }

    #[tokio::test]
    async fn our_own_tempfails_are_counted_and_the_operator_sees_each_domain() {
        let dir = tempfile::tempdir().unwrap();
        let store = rempart_state::EmbeddedStore::open(&dir.path().join("state.redb"), false).unwrap();
        let now = rempart_model::date::parse_iso_day("2026-12-04").unwrap() + 10 * 3600;
        let mut tally = Tally::default();
        let tempfail = |to: &str, action: &str, account: &str| TrackEvent {
            kind: "session".into(),
            at_ms: now as i64 * 1000,
            outcome: "tempfail".into(),
            recipients: vec![to.into()],
            action: action.into(),
            account: account.into(),
            ..Default::default()
        };
        tally.tracked(&tempfail("a@one.test", "", ""));
        tally.tracked(&tempfail("b@one.test", "greylist", ""));
        tally.tracked(&tempfail("c@two.test", "", "someone@two.test"));
        tally.verdict(&verdict("accept", "x@ok.test", &["c@two.test"], now as i64, &[]));
        tally.flush(&store).await.unwrap();
        let one = load(&store, "one.test", 1, now).await.unwrap();
        assert_eq!(one.totals.get("tempfail"), Some(&1), "greylisting is counted from its verdict, not twice");
        assert_eq!(domains(&store).await.unwrap(), ["one.test", "two.test"]);
        let rows = per_domain(&store, 1, now).await.unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows.iter().find(|(d, _)| d == "two.test").map(|(_, c)| c.get("accept")), Some(Some(&1)));
    }
}
