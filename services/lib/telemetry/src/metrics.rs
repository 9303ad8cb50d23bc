//! Prometheus metrics, one registry per process, served at /metrics. Every label has a
//! bounded set of values (commands, reply classes, configured domains, symbol names,
//! routes): never an address or a free-form string.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels<const N: usize> = [(&'static str, String); N];
type HistogramFamily<const N: usize> = Family<Labels<N>, Histogram, fn() -> Histogram>;

/// Every metric of the gateway. Names and labels are documented in docs/operations.md.
pub struct Metrics {
    registry: Registry,
    connections: Family<Labels<2>, Counter>,
    replies: Family<Labels<2>, Counter>,
    messages: Family<Labels<2>, Counter>,
    symbols: Family<Labels<1>, Counter>,
    scan_seconds: HistogramFamily<1>,
    antivirus_seconds: HistogramFamily<2>,
    end_of_data_seconds: HistogramFamily<1>,
    queue_depth: Family<Labels<1>, Gauge>,
    queue_oldest_seconds: Family<Labels<1>, Gauge>,
    queue_wait_seconds: HistogramFamily<1>,
    deliveries: Family<Labels<2>, Counter>,
    dsns: Family<Labels<1>, Counter>,
    greylist: Family<Labels<1>, Counter>,
    tracked_events: Counter,
    outbound_messages: Family<Labels<2>, Counter>,
    outbound_recipients: Family<Labels<1>, Counter>,
    outbound_bytes: Family<Labels<1>, Counter>,
    store_seconds: HistogramFamily<2>,
    bus_seconds: HistogramFamily<2>,
    panics: Family<Labels<1>, Counter>,
    parked: Family<Labels<1>, Counter>,
    queue_writable: Gauge,
    bayes_voting: Gauge,
}

/// 0.25 ms to 8 s, doubling.
fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
}

/// 1 s to 9 h, doubling: time spent queued.
fn waiting() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 2.0, 16))
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    &METRICS
}

fn label(value: &str) -> String {
    value.to_string()
}

impl Metrics {
    fn new() -> Metrics {
        let mut m = Metrics {
            connections: Family::default(),
            replies: Family::default(),
            messages: Family::default(),
            symbols: Family::default(),
            scan_seconds: Family::new_with_constructor(latency),
            antivirus_seconds: Family::new_with_constructor(latency),
            end_of_data_seconds: Family::new_with_constructor(latency),
            queue_depth: Family::default(),
            queue_oldest_seconds: Family::default(),
            queue_wait_seconds: Family::new_with_constructor(waiting),
            deliveries: Family::default(),
            dsns: Family::default(),
            greylist: Family::default(),
            tracked_events: Counter::default(),
            outbound_messages: Family::default(),
            outbound_recipients: Family::default(),
            outbound_bytes: Family::default(),
            store_seconds: Family::new_with_constructor(latency),
            bus_seconds: Family::new_with_constructor(latency),
            panics: Family::default(),
            parked: Family::default(),
            queue_writable: Gauge::default(),
            bayes_voting: Gauge::default(),
            registry: Registry::with_prefix("rempart"),
        };
        let r = &mut m.registry;
        r.register("smtp_connections", "SMTP connections by result (accepted, refused) and refusal reason", m.connections.clone());
        r.register("smtp_replies", "SMTP replies by command and code class (2xx, 4xx, 5xx)", m.replies.clone());
        r.register("messages", "Messages by verdict action and recipient domain", m.messages.clone());
        r.register("symbols", "Symbols found by the scanner, by name", m.symbols.clone());
        r.register("scan_duration_seconds", "Time to scan one message, by where (local, remote, queued)", m.scan_seconds.clone());
        r.register(
            "antivirus_duration_seconds",
            "Time a malware engine took to answer, by engine (clamd, icap, external) and result (clean, found, failed, skipped)",
            m.antivirus_seconds.clone(),
        );
        r.register(
            "end_of_data_duration_seconds",
            "From the end of the message data to the reply, by listener kind",
            m.end_of_data_seconds.clone(),
        );
        r.register("queue_depth", "Messages waiting in a queue topic", m.queue_depth.clone());
        r.register(
            "queue_oldest_age_seconds",
            "Age of the oldest message waiting in a queue topic (0: empty)",
            m.queue_oldest_seconds.clone(),
        );
        r.register(
            "queue_wait_seconds",
            "Time a message waited in the queue before a delivery attempt, by topic",
            m.queue_wait_seconds.clone(),
        );
        r.register("delivery_attempts", "Delivery attempts by route and result (delivered, deferred, failed)", m.deliveries.clone());
        r.register("dsns_sent", "Delivery status notifications sent, by kind (failure, delay, success)", m.dsns.clone());
        r.register("tracked_events", "Events folded into the console's message tracking index", m.tracked_events.clone());
        r.register("greylist", "Greylisting outcomes: greylisted, too_soon, passed (retried in time), known, skipped_network, skipped (domain opted out), unavailable", m.greylist.clone());
        r.register(
            "outbound_messages",
            "Submitted messages by the account's domain (\"other\" if not a customer domain) and result: sent, blocked, refused, limited, deferred",
            m.outbound_messages.clone(),
        );
        r.register("outbound_recipients", "Recipients of submitted messages sent, by the account's domain", m.outbound_recipients.clone());
        r.register("outbound_bytes", "Bytes of submitted messages sent, by the account's domain", m.outbound_bytes.clone());
        r.register("store_operation_duration_seconds", "Shared-state store operations by backend and operation", m.store_seconds.clone());
        r.register("bus_operation_duration_seconds", "Bus publish (until stored) and ack, by backend", m.bus_seconds.clone());
        r.register("panics", "Panics caught and contained, by where (session, consumer, console)", m.panics.clone());
        r.register(
            "queue_writable",
            "1 while the embedded queue accepts writes; 0 after a write failed (a full disk) until the file is reopened",
            m.queue_writable.clone(),
        );
        r.register(
            "bayes_voting",
            "1 when Bayes has learned enough to vote and the weights fitted with it apply; 0 while the rule-only weights apply",
            m.bayes_voting.clone(),
        );
        r.register("messages_parked", "Messages parked on rempart.held after a consumer panicked on them, by topic", m.parked.clone());
        m
    }

    /// The text exposition format (what /metrics serves).
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }

    /// A panic caught where it happened (`session`, `consumer`, `console`,
    /// `queue_writer`): counted; gives its message for the caller's log line.
    pub fn panic(&self, place: &'static str, payload: &(dyn std::any::Any + Send)) -> String {
        self.panics.get_or_create(&[("place", label(place))]).inc();
        payload.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| payload.downcast_ref::<String>().cloned()).unwrap_or_default()
    }

    /// Whether the embedded queue accepts writes.
    pub fn queue_writable(&self, writable: bool) {
        self.queue_writable.set(i64::from(writable));
    }

    /// A message moved to `rempart.held` from `topic`.
    pub fn parked(&self, topic: &str) {
        self.parked.get_or_create(&[("topic", label(topic))]).inc();
    }

    /// One submitted message; recipients and bytes are counted for sent ones.
    pub fn outbound(&self, domain: &str, result: &'static str, recipients: usize, bytes: usize) {
        self.outbound_messages.get_or_create(&[("domain", label(domain)), ("result", label(result))]).inc();
        if result == "sent" {
            self.outbound_recipients.get_or_create(&[("domain", label(domain))]).inc_by(recipients as u64);
            self.outbound_bytes.get_or_create(&[("domain", label(domain))]).inc_by(bytes as u64);
        }
    }

    pub fn connection(&self, result: &'static str, reason: &'static str) {
        self.connections.get_or_create(&[("result", label(result)), ("reason", label(reason))]).inc();
    }

    /// `command` is the verb ("MAIL", "DATA", "connect" for the banner).
    pub fn reply(&self, command: &str, code: u16) {
        let class = match code / 100 {
            2 => "2xx",
            3 => "3xx",
            4 => "4xx",
            _ => "5xx",
        };
        self.replies.get_or_create(&[("command", label(command)), ("class", label(class))]).inc();
    }

    pub fn message(&self, action: &str, domain: &str) {
        self.messages.get_or_create(&[("action", label(action)), ("domain", label(domain))]).inc();
    }

    pub fn symbol(&self, name: &str) {
        self.symbols.get_or_create(&[("symbol", label(name))]).inc();
    }

    pub fn scan(&self, place: &'static str, took: Duration) {
        self.scan_seconds.get_or_create(&[("where", label(place))]).observe(took.as_secs_f64());
    }

    /// One malware engine's answer and how long it took.
    pub fn antivirus(&self, engine: &'static str, result: &'static str, took: Duration) {
        self.antivirus_seconds.get_or_create(&[("engine", label(engine)), ("result", label(result))]).observe(took.as_secs_f64());
    }

    /// Which weight set the last scan used: with Bayes (it voted) or rules only.
    pub fn bayes_voting(&self, voting: bool) {
        self.bayes_voting.set(i64::from(voting));
    }

    pub fn end_of_data(&self, command: &'static str, took: Duration) {
        self.end_of_data_seconds.get_or_create(&[("command", label(command))]).observe(took.as_secs_f64());
    }

    pub fn queue_depth(&self, topic: &str, depth: usize) {
        self.queue_depth.get_or_create(&[("topic", label(topic))]).set(depth as i64);
    }

    pub fn queue_oldest_age(&self, topic: &str, age: Duration) {
        self.queue_oldest_seconds.get_or_create(&[("topic", label(topic))]).set(age.as_secs() as i64);
    }

    pub fn queue_wait(&self, topic: &str, waited: Duration) {
        self.queue_wait_seconds.get_or_create(&[("topic", label(topic))]).observe(waited.as_secs_f64());
    }

    pub fn delivery(&self, route: &str, result: &'static str) {
        self.deliveries.get_or_create(&[("route", label(route)), ("result", label(result))]).inc();
    }

    pub fn dsn(&self, kind: &'static str) {
        self.dsns.get_or_create(&[("kind", label(kind))]).inc();
    }

    pub fn greylist(&self, outcome: &'static str) {
        self.greylist.get_or_create(&[("outcome", label(outcome))]).inc();
    }

    pub fn tracked(&self, events: usize) {
        self.tracked_events.inc_by(events as u64);
    }

    pub fn store_operation(&self, backend: &'static str, operation: &'static str, took: Duration) {
        self.store_seconds.get_or_create(&[("backend", label(backend)), ("operation", label(operation))]).observe(took.as_secs_f64());
    }

    pub fn bus_operation(&self, backend: &'static str, operation: &'static str, took: Duration) {
        self.bus_seconds.get_or_create(&[("backend", label(backend)), ("operation", label(operation))]).observe(took.as_secs_f64());
    }
}
