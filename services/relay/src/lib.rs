//! Rempart's relay: takes messages off the delivery queue, delivers each recipient to
//! its domain's route, records every recipient's status before acknowledging, retries
//! temporary failures with backoff until the message expires, and reports failures to
//! the sender with a DSN (never to the null sender).

mod destinations;
mod dsn;
mod mta_sts;
pub mod probe;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rempart_bus::{Bus, DELIVER_TOPIC, Delivery};
use rempart_model::{Config, DeliveryStatus, Envelope, Live, Recipient, RouteTls, SessionFacts, Versioned, date};
use rempart_smtp::Reply;
use rempart_smtp::bounce::{Reason, reply_reason};
use rempart_state::Store;
use rempart_state::accounts::{self, Account};
use rempart_telemetry::metrics;
use tokio::sync::watch;
use tracing::Instrument;
use tracing::field::Empty;

use rempart_smtp_client::{Attempt, Client, Connectors, Destination, TlsSetupError, dane, mx};

/// What a reload may change for the relay: the configuration (routes, timeouts, retry
/// schedule) and the SMTP client built from it (route CA files, hostname).
pub struct RelayView {
    pub config: Arc<Config>,
    client: Client,
}

impl RelayView {
    /// Fails if a route's CA file cannot be used or the TLS library cannot build a
    /// client configuration.
    pub fn build(config: Arc<Config>) -> Result<RelayView, TlsSetupError> {
        let tls = Connectors::new(&config)?;
        let client = Client::new(config.smtp.hostname.clone(), config.relay.connect_timeout.0, config.relay.command_timeout.0, tls);
        Ok(RelayView { config, client })
    }
}

pub struct Relay<B> {
    /// Read on every use: a reload reaches the next delivery.
    live: Live<RelayView>,
    bus: B,
    /// For delivery by MX to domains we do not serve (`None`: DNS off).
    resolver: Option<mail_auth::hickory_resolver::TokioResolver>,
    /// Outside domains' MTA-STS policies.
    mta_sts: mta_sts::Policies,
    /// Where DANE's TLSA lookups go (`[dns]`'s servers, or the system's).
    dns_servers: Vec<std::net::SocketAddr>,
    /// Deliveries in progress per destination (`relay.per_destination`).
    destinations: destinations::Limiter,
    /// The shared store: MTA-STS policies, accounts' dead recipients and suspension.
    store: Option<Arc<dyn Store>>,
}

/// How long a worker waits for a slot of a destination that has
/// `relay.per_destination` deliveries in progress, and how long the message then waits
/// on the queue (not a failed attempt) while the worker goes on with other mail.
const BUSY_WAIT: Duration = Duration::from_secs(1);
const BUSY_DELAY: Duration = Duration::from_secs(1);

impl<B: Bus> Relay<B> {
    /// `store`: the shared store, where MTA-STS policies are kept beyond this process.
    /// The resolver, MTA-STS port and per-destination limit are set once.
    pub fn new(live: Live<RelayView>, bus: B, store: Option<Arc<dyn Store>>) -> Self {
        let config = live.load().config.clone();
        let resolver = mx::resolver(&config.dns);
        let mta_sts = mta_sts::Policies::new(config.relay.mta_sts_port, store.clone());
        let destinations = destinations::Limiter::new(config.relay.per_destination);
        let dns_servers = if config.dns.servers.is_empty() { mx::system_servers() } else { config.dns.servers.clone() };
        Self { live, bus, resolver, mta_sts, dns_servers, destinations, store }
    }

    /// The current view: one atomic load.
    fn view(&self) -> Arc<Versioned<RelayView>> {
        self.live.load()
    }

    /// Runs `relay.concurrency` workers until `shutdown` turns true; each finishes the
    /// message in hand first (unfinished ones come back after a restart).
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        let this = Arc::new(self);
        let depth = tokio::spawn(report_queue_depth(this.bus.clone(), shutdown.clone()));
        let (concurrency, lease) = {
            let view = this.view();
            (view.config.relay.concurrency, view.config.queue.visibility_timeout.0)
        };
        let workers: Vec<_> = (0..concurrency)
            .map(|_| {
                let (this, shutdown) = (this.clone(), shutdown.clone());
                tokio::spawn(async move {
                    rempart_bus::consume(&this.bus, DELIVER_TOPIC, lease, shutdown, |delivery| this.process(delivery)).await;
                })
            })
            .collect();
        for w in workers {
            let _ = w.await;
        }
        depth.abort();
    }

    /// One delivery attempt of one message, as the `deliver` span of its trace.
    async fn process(&self, delivery: Delivery) {
        let span = tracing::info_span!(
            "deliver",
            rempart.queue_id = Empty,
            rempart.attempt = delivery.deliveries,
            rempart.delivery_status = Empty,
        );
        rempart_telemetry::propagation::set_parent(&span, delivery.trace_parent.as_deref());
        if delivery.deliveries == 1 {
            let waited = date::unix_now_ms().saturating_sub(delivery.published_at_ms);
            metrics().queue_wait(DELIVER_TOPIC, Duration::from_millis(waited));
        }
        self.process_in(delivery, &span).instrument(span.clone()).await;
    }

    async fn process_in(&self, delivery: Delivery, span: &tracing::Span) {
        let mut envelope = match Envelope::from_json(&delivery.meta) {
            Ok(e) => e,
            Err(e) => {
                // Keep it (it is someone's mail) but out of the way, and say so loudly.
                tracing::error!(message = delivery.id, error = %e, "unreadable envelope; holding the message for an hour");
                let _ = self.bus.retry(delivery.id, delivery.meta, Duration::from_secs(3600)).await;
                return;
            }
        };
        envelope.attempts += 1;
        span.record("rempart.queue_id", envelope.queue_id.as_str());
        let Outcome { reports: newly_final, tried, busy } = match envelope.bounce_now.clone() {
            Some(by) => bounce_now(&mut envelope, &by),
            None => self.attempt(&mut envelope, &delivery.body).await,
        };
        let mut tried = tried;
        if !tried.iter().any(Option::is_some) {
            // Only busy destinations: no attempt was made.
            envelope.attempts -= 1;
        }
        if let Some(account) = envelope.submitted_by.clone() {
            self.unknown_recipients(&account, &envelope, &newly_final).await;
        }
        let now = date::unix_now();
        let expired = now.saturating_sub(envelope.received_at) >= self.view().config.queue.max_age.0.as_secs();
        let mut reports = newly_final;
        let waited = now.saturating_sub(envelope.received_at);
        if !expired && waited >= self.view().config.queue.delay_warning.0.as_secs() {
            for (i, r) in envelope.recipients.iter_mut().enumerate() {
                if r.wants_delay_report() {
                    r.delay_reported = true;
                    reports.push((i, dsn::Action::Delayed));
                }
            }
        }
        if expired {
            for (i, r) in envelope.recipients.iter_mut().enumerate() {
                if let DeliveryStatus::Pending { last_reply } = &r.status {
                    let reply = format!("4.4.7 Delivery time expired; last error: {}", last_reply.as_deref().unwrap_or("none"));
                    r.status = DeliveryStatus::Failed { status: "4.4.7".into(), reply, remote: None, at: now };
                    reports.push((i, dsn::Action::Failed));
                    tried[i].get_or_insert_with(Tried::default);
                }
            }
        }
        self.delivery_events(&envelope, &tried).await;
        // The DSN is durable before the original is acknowledged: no report is lost.
        if let Err(e) = self.send_reports(&envelope, &delivery.body, &reports).await {
            tracing::error!(queue_id = %envelope.queue_id, error = %e, "cannot queue a DSN; will retry the message");
            let _ = self.bus.retry(delivery.id, delivery.meta, self.view().config.queue.retry_delay(1)).await;
            return;
        }
        let pending = envelope.recipients.iter().any(|r| matches!(r.status, DeliveryStatus::Pending { .. }));
        let failed = envelope.recipients.iter().any(|r| matches!(r.status, DeliveryStatus::Failed { .. }));
        span.record(
            "rempart.delivery_status",
            if pending {
                "deferred"
            } else if failed {
                "failed"
            } else {
                "delivered"
            },
        );
        if pending || failed {
            rempart_telemetry::keep_trace(span);
        }
        let result = if pending {
            let delay = if busy { BUSY_DELAY } else { self.view().config.queue.retry_delay(envelope.attempts) };
            tracing::info!(queue_id = %envelope.queue_id, attempts = envelope.attempts, retry_in = ?delay, "deferred");
            self.bus.retry(delivery.id, envelope.to_json(), delay).await
        } else {
            self.bus.ack(delivery.id).await
        };
        if let Err(e) = result {
            tracing::error!(queue_id = %envelope.queue_id, error = %e, "cannot record delivery status; the message will be retried");
        }
    }

    /// Mail an account submitted that the receiving server refused as "user unknown":
    /// the recipients are remembered as dead and counted against the account, as the
    /// edge does for bounces that come back to it (the DSN this relay writes goes to
    /// the customer's server, never through an edge).
    async fn unknown_recipients(&self, email: &str, envelope: &Envelope, failed: &[(usize, dsn::Action)]) {
        let Some(store) = &self.store else { return };
        let dead: Vec<&str> = failed
            .iter()
            .filter(|(_, action)| *action == dsn::Action::Failed)
            .filter_map(|(i, _)| envelope.recipients.get(*i))
            .filter(
                |r| matches!(&r.status, DeliveryStatus::Failed { status, reply, .. } if reply_reason(reply, status) == Reason::UserUnknown),
            )
            .map(|r| r.address.as_str())
            .collect();
        if dead.is_empty() {
            return;
        }
        let account = match accounts::get(&**store, email).await {
            Ok(Some(account)) => account,
            Ok(None) => return,
            Err(e) => {
                tracing::error!(account = %email, error = %e, "account not read; unknown recipients not recorded");
                return;
            }
        };
        match accounts::unknown_recipients(&**store, &self.view().config.outbound, &account, &dead, date::unix_now()).await {
            Ok(Some(why)) => self.suspend(&**store, &account, &why).await,
            Ok(None) => {}
            Err(e) => tracing::error!(account = %email, error = %e, "unknown recipients not recorded"),
        }
    }

    /// Suspends the account from sending and tells it and its domain admins why.
    async fn suspend(&self, store: &dyn Store, account: &Account, why: &str) {
        rempart_notices::suspend(store, &self.bus, &self.view().config.smtp.hostname, account, why).await;
    }

    /// `rempart.events.delivery` for the recipients this attempt `tried` or gave up on
    /// (the console's reports and tracking).
    async fn delivery_events(&self, envelope: &Envelope, tried: &[Option<Tried>]) {
        let now_ms = date::unix_now_ms() as i64;
        for (r, tried) in envelope.recipients.iter().zip(tried).filter_map(|(r, t)| Some((r, t.as_ref()?))) {
            let reply = match &r.status {
                DeliveryStatus::Pending { last_reply } => last_reply.clone().unwrap_or_default(),
                DeliveryStatus::Delivered { reply, .. } | DeliveryStatus::Failed { reply, .. } => reply.clone(),
            };
            let status = r.status.label();
            let event = rempart_proto::v1::DeliveryEvent {
                queue_id: envelope.queue_id.to_string(),
                recipient: r.address.clone(),
                status: status.into(),
                reply,
                attempts: envelope.attempts,
                at: now_ms / 1000,
                at_ms: now_ms,
                remote: tried.remote.clone(),
                tls: tried.tls.clone().unwrap_or_default(),
            };
            self.bus.event(rempart_bus::DELIVERY_EVENTS, prost::Message::encode_to_vec(&event)).await;
        }
    }

    /// One delivery attempt for every pending recipient, a transaction per route, but
    /// for routes that already have `relay.per_destination` deliveries in progress.
    async fn attempt(&self, envelope: &mut Envelope, body: &[u8]) -> Outcome {
        // By route: a customer domain's (all its recipients in one transaction), or an
        // outside domain's MX hosts (mail a logged-in account submitted, or a DSN).
        // One view for the whole attempt: its routes and its client agree.
        let view = self.view();
        let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        let mut reports = Vec::new();
        for (i, r) in envelope.recipients.iter().enumerate() {
            if !matches!(r.status, DeliveryStatus::Pending { .. }) {
                continue;
            }
            let route = view.config.domain(r.domain()).map_or_else(|| r.domain().to_ascii_lowercase(), |d| d.name.clone());
            groups.entry(route).or_default().push(i);
        }
        let mut tried: Vec<Option<Tried>> = vec![None; envelope.recipients.len()];
        let mut busy = false;
        for (domain_name, indices) in groups {
            let Some(_permit) = self.destinations.acquire(&domain_name, BUSY_WAIT).await else {
                tracing::debug!(queue_id = %envelope.queue_id, destination = %domain_name, "destination busy; the message waits");
                busy = true;
                continue;
            };
            let customer = view.config.domain(&domain_name);
            let span = tracing::info_span!(
                "deliver.route",
                rempart.queue_id = %envelope.queue_id,
                rempart.route = %domain_name,
                rempart.remote = Empty,
                smtp.reply = Empty,
            );
            let attempt = match customer {
                Some(domain) => {
                    view.client.deliver(&Destination::of_domain(domain), envelope, &indices, body).instrument(span.clone()).await
                }
                None => self.deliver_by_mx(&domain_name, envelope, &indices, body).instrument(span.clone()).await,
            };
            // Metric labels stay bounded: outside domains are counted together.
            let label = if customer.is_some() { domain_name.as_str() } else { "outside" };
            span.record("rempart.remote", attempt.remote.as_str());
            let replies: Vec<String> = attempt.replies.iter().map(|r| r.to_string()).collect();
            span.record("smtp.reply", replies.join(" | "));
            let _entered = span.enter();
            let trace_id = rempart_telemetry::trace_id(&span);
            let (client, action) = (&envelope.session.peer_ip, envelope.verdict.as_ref().map_or("", |v| v.action.as_str()));
            let symbols = envelope.verdict.as_ref().map(|v| v.symbols.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(" "));
            let at = date::unix_now();
            for &i in &indices {
                tried[i] = Some(Tried { remote: attempt.remote.clone(), tls: attempt.tls.clone() });
            }
            for (&i, reply) in indices.iter().zip(&attempt.replies) {
                let r = &mut envelope.recipients[i];
                if reply.is_positive() {
                    r.status = DeliveryStatus::Delivered { reply: reply.to_string(), remote: attempt.remote.clone(), at };
                    if r.notify.is_some_and(|n| n.success) && !attempt.remote_dsn {
                        reports.push((i, dsn::Action::Relayed));
                    }
                } else if reply.is_permanent() {
                    r.status = DeliveryStatus::Failed {
                        status: reply.status_or_class(),
                        reply: reply.to_string(),
                        remote: Some(attempt.remote.clone()),
                        at,
                    };
                    reports.push((i, dsn::Action::Failed));
                } else {
                    r.status = DeliveryStatus::Pending { last_reply: Some(reply.to_string()) };
                }
                let result = r.status.label();
                metrics().delivery(label, result);
                tracing::info!(
                    queue_id = %envelope.queue_id, recipient = %r.address, %client, action, symbols = symbols.as_deref().unwrap_or(""),
                    remote = %attempt.remote, reply = %reply, %trace_id, result, "delivery"
                );
            }
        }
        Outcome { reports, tried, busy }
    }

    /// Tries the MX hosts of an outside domain in order, each of their addresses in
    /// turn, until one takes the transaction (a host that cannot be connected to, that
    /// refuses the session or, under MTA-STS enforce, fails TLS verification, moves on).
    /// Under an MTA-STS policy in mode enforce only the hosts it names are used, over
    /// verified TLS; in mode testing mismatches are logged and delivery goes on.
    async fn deliver_by_mx(&self, domain: &str, envelope: &Envelope, indices: &[usize], body: &[u8]) -> Attempt {
        let failed = |reply: Reply| Attempt {
            remote: domain.to_string(),
            replies: vec![reply; indices.len()],
            remote_dsn: false,
            opened: false,
            tls: None,
        };
        let hosts = match mx::hosts(self.resolver.as_ref(), domain, self.view().config.relay.mx_port).await {
            Ok(hosts) => hosts,
            Err(reply) => return failed(reply),
        };
        let policy = match &self.resolver {
            Some(resolver) => self.mta_sts.for_domain(resolver, || self.view().client.verifying_connector(), domain).await,
            None => None,
        };
        let enforce = policy.as_ref().is_some_and(|p| p.mode == mta_sts::Mode::Enforce);
        let dane_applies = self.dane_applies(domain).await;
        let mut last = None;
        for route in hosts {
            // DANE, where the host publishes secure TLSA records, comes before MTA-STS
            // (RFC 8461 §2).
            let tlsa = if dane_applies { self.tlsa(&route).await } else { dane::Tlsa::None };
            let (tls, dane) = match tlsa {
                dane::Tlsa::Failed(why) => {
                    tracing::warn!(%domain, host = %route.host, %why, "MX host skipped: its DANE TLSA records cannot be read");
                    last = Some(failed(Reply::new(451, "4.7.5", format!("DANE: {why}"))));
                    continue;
                }
                dane::Tlsa::Secure(records) => {
                    let usable = dane::Tlsa::usable(&records);
                    if usable.is_empty() { (RouteTls::Required, None) } else { (RouteTls::Verify, Some(usable)) }
                }
                dane::Tlsa::None => {
                    if let Some(policy) = policy.as_ref().filter(|p| p.mode != mta_sts::Mode::None && !p.allows(&route.host)) {
                        tracing::warn!(%domain, host = %route.host, mode = ?policy.mode, mx = ?policy.mx, "MX host not named by the domain's MTA-STS policy");
                        if enforce {
                            continue;
                        }
                    }
                    (if enforce { RouteTls::Verify } else { RouteTls::Opportunistic }, None)
                }
            };
            for ip in mx::addresses(self.resolver.as_ref(), &route.host).await {
                let destination = Destination { route: route.clone(), tls, ca_file: None, address: Some(ip), dane: dane.clone() };
                let attempt = self.view().client.deliver(&destination, envelope, indices, body).await;
                if attempt.opened {
                    return attempt;
                }
                last = Some(attempt);
            }
        }
        match (last, policy) {
            (Some(mut attempt), Some(policy)) if enforce => {
                for reply in attempt.replies.iter_mut().filter(|r| r.status.starts_with("4.7.")) {
                    reply.text = format!("MTA-STS policy of {domain} (id {}, enforce): {}", policy.id, reply.text);
                }
                attempt
            }
            (Some(attempt), _) => attempt,
            (None, Some(policy)) if enforce => failed(Reply::new(
                451,
                "4.7.5",
                format!("No MX host of {domain} is named by its MTA-STS policy (id {}, enforce; mx: {})", policy.id, policy.mx.join(", ")),
            )),
            (None, _) => failed(Reply::new(451, "4.4.4", format!("No mail server of {domain} has an address"))),
        }
    }

    /// Whether DANE applies to `domain`'s MX hosts: `relay.dane` is on and the MX
    /// RRset is DNSSEC-secure.
    async fn dane_applies(&self, domain: &str) -> bool {
        if !self.view().config.relay.dane {
            return false;
        }
        let secure = dane::Tlsa::mx_secure(&self.dns_servers, domain, self.dns_timeout()).await;
        if !secure {
            tracing::debug!(%domain, "DANE does not apply: the MX records are not DNSSEC-secure");
        }
        secure
    }

    /// The DANE TLSA records of an MX host.
    async fn tlsa(&self, route: &rempart_model::Route) -> dane::Tlsa {
        dane::Tlsa::lookup(&self.dns_servers, &route.host, route.port, self.dns_timeout()).await
    }

    /// A DNS question's whole time: every attempt's timeout.
    fn dns_timeout(&self) -> Duration {
        Duration::from_millis(self.view().config.dns.timeout_ms.saturating_mul(self.view().config.dns.attempts.max(1) as u64))
    }

    async fn send_reports(&self, envelope: &Envelope, body: &[u8], reports: &[(usize, dsn::Action)]) -> Result<(), rempart_bus::BusError> {
        if envelope.is_bounce() {
            if !reports.is_empty() {
                tracing::warn!(queue_id = %envelope.queue_id, "a bounce could not be delivered; no report is sent to the null sender");
            }
            return Ok(());
        }
        let wanted: Vec<dsn::Report<'_>> = reports
            .iter()
            .map(|&(i, action)| dsn::Report { recipient: &envelope.recipients[i], action })
            .filter(|r| match r.action {
                dsn::Action::Failed => r.recipient.wants_failure_report(),
                dsn::Action::Relayed | dsn::Action::Delayed => true,
            })
            .collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let retry_until = envelope.received_at + self.view().config.queue.max_age.0.as_secs();
        let report = dsn::build(&self.view().config.smtp.hostname, envelope, body, &wanted, retry_until);
        let mut notice =
            Envelope::new(report.queue_id.clone(), String::new(), vec![Recipient::new(envelope.return_path.clone())], date::unix_now());
        notice.session =
            SessionFacts { peer_ip: std::net::Ipv4Addr::LOCALHOST.into(), helo: self.view().config.smtp.hostname.clone(), tls: None };
        notice.smtputf8 = !envelope.return_path.is_ascii();
        self.bus.publish(DELIVER_TOPIC, notice.to_json(), report.message).await?;
        for r in &wanted {
            metrics().dsn(match r.action {
                dsn::Action::Failed => "failure",
                dsn::Action::Delayed => "delay",
                dsn::Action::Relayed => "success",
            });
        }
        tracing::info!(queue_id = %envelope.queue_id, dsn = %report.queue_id, to = %envelope.return_path, recipients = wanted.len(), "DSN queued");
        let about: Vec<String> = wanted.iter().map(|r| format!("{} ({})", r.recipient.address, r.action.as_str())).collect();
        let event = rempart_proto::v1::TrackEvent {
            queue_id: envelope.queue_id.to_string(),
            at_ms: date::unix_now_ms() as i64,
            kind: "dsn".into(),
            sender: String::new(),
            recipients: vec![envelope.return_path.clone()],
            reply: format!("DSN to {}: {}", envelope.return_path, about.join(", ")),
            outcome: report.queue_id.to_string(),
            ..Default::default()
        };
        self.bus.event(rempart_bus::TRACK_EVENTS, prost::Message::encode_to_vec(&event)).await;
        Ok(())
    }
}

/// What one delivery attempt of a message did.
struct Outcome {
    /// Recipients whose status became final and who should get a report.
    reports: Vec<(usize, dsn::Action)>,
    /// Recipients whose delivery was tried (their route was not busy), and where.
    tried: Vec<Option<Tried>>,
    /// A route had `relay.per_destination` deliveries in progress: some wait.
    busy: bool,
}

/// "Bounce now" from queue management: every pending recipient fails (a DSN goes to
/// the sender as for any failure), nothing is tried.
fn bounce_now(envelope: &mut Envelope, by: &str) -> Outcome {
    let at = date::unix_now();
    let mut outcome = Outcome { reports: Vec::new(), tried: vec![None; envelope.recipients.len()], busy: false };
    for (i, r) in envelope.recipients.iter_mut().enumerate() {
        if let DeliveryStatus::Pending { last_reply } = &r.status {
            let last = last_reply.as_deref().map(|l| format!("; last error: {l}")).unwrap_or_default();
            let reply = format!("5.0.0 Delivery cancelled by the gateway's operator ({by}){last}");
            r.status = DeliveryStatus::Failed { status: "5.0.0".into(), reply, remote: None, at };
            outcome.reports.push((i, dsn::Action::Failed));
            outcome.tried[i] = Some(Tried::default());
        }
    }
    tracing::info!(queue_id = %envelope.queue_id, by, recipients = outcome.reports.len(), "bounced now by queue management");
    outcome
}

/// Where one recipient's delivery was tried (empty when it expired untried).
#[derive(Debug, Clone, Default)]
struct Tried {
    remote: String,
    tls: Option<String>,
}

/// Keeps `rempart_queue_depth` and `rempart_queue_oldest_age_seconds` of the delivery
/// topic current.
async fn report_queue_depth<B: Bus>(bus: B, mut shutdown: watch::Receiver<bool>) {
    while !*shutdown.borrow() {
        if let Ok(depth) = bus.pending(DELIVER_TOPIC).await {
            metrics().queue_depth(DELIVER_TOPIC, depth);
        }
        if let Ok(oldest) = bus.oldest_published_ms(DELIVER_TOPIC).await {
            let age = oldest.map_or(0, |published| date::unix_now_ms().saturating_sub(published));
            metrics().queue_oldest_age(DELIVER_TOPIC, Duration::from_millis(age));
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            _ = shutdown.changed() => {}
        }
    }
}
