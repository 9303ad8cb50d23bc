//! Callout: the customer's own server (its route) is asked `RCPT TO` with a configured
//! probe sender. Answers are cached in the store: "exists" for days, "unknown" for an
//! hour, so a dictionary attack costs the customer's server one question per address.
//! A server that accepts a random local part is a catch-all: a callout cannot tell its
//! unknown users, which the log says once per positive TTL.

use std::sync::Arc;

use rempart_model::config::CalloutConfig;
use rempart_model::{Config, DomainConfig, Lookup};
use rempart_smtp_client::{Client, Connectors, Destination};
use rempart_state::{Store, key};

use crate::DirectoryError;

pub struct Callout {
    store: Arc<dyn Store>,
    client: Client,
}

const EXISTS: &[u8] = b"1";
const UNKNOWN: &[u8] = b"0";

impl Callout {
    pub fn new(config: &Config, store: Arc<dyn Store>) -> Result<Self, DirectoryError> {
        let tls = Connectors::new(config)?;
        // Timeouts are per domain (`callout.timeout`), applied around each question.
        let client = Client::new(config.smtp.hostname.clone(), config.relay.connect_timeout.0, config.relay.command_timeout.0, tls);
        Ok(Self { store, client })
    }

    pub async fn lookup(&self, domain: &DomainConfig, callout: &CalloutConfig, address: &str) -> Lookup {
        let cache_key = key(&["callout", &domain.name, address]);
        match self.store.get(&cache_key).await {
            Ok(Some(v)) if v == EXISTS => return Lookup::Exists,
            Ok(Some(v)) if v == UNKNOWN => return Lookup::Unknown,
            Ok(_) => {}
            // The cache is an optimisation: ask the server.
            Err(e) => tracing::warn!(domain = %domain.name, error = %e, "callout cache unreadable"),
        }
        let catch_all_key = key(&["callout-catch-all", &domain.name]);
        let known_catch_all = matches!(self.store.get(&catch_all_key).await, Ok(Some(_)));
        let random = rempart_smtp_client::unlikely_address(&domain.name);
        let mut asked = vec![address];
        if !known_catch_all {
            asked.push(&random);
        }
        let destination = Destination::of_domain(domain);
        let question = self.client.ask(&destination, &callout.probe_sender, &asked);
        let replies = match tokio::time::timeout(callout.timeout.0, question).await {
            Ok(Ok(replies)) => replies,
            Ok(Err(reply)) => return Lookup::Unavailable(format!("callout to {}: {reply}", domain.route.host)),
            Err(_) => return Lookup::Unavailable(format!("callout to {}: timed out", domain.route.host)),
        };
        let Some(answer) = replies.first() else {
            return Lookup::Unavailable(format!("callout to {}: no answer", domain.route.host));
        };
        if let Some(random_answer) = replies.get(1) {
            // Remembered either way, so the random question is asked once per TTL.
            let marker: &[u8] = if random_answer.is_positive() { EXISTS } else { UNKNOWN };
            let _ = self.store.put(&catch_all_key, marker, Some(callout.positive_ttl.0)).await;
            if random_answer.is_positive() {
                tracing::warn!(
                    domain = %domain.name, route = %domain.route.host, probe = %random,
                    "the route accepts any local part (catch-all): a callout cannot tell unknown recipients"
                );
            }
        }
        let (lookup, value, ttl) = if answer.is_positive() {
            (Lookup::Exists, EXISTS, callout.positive_ttl.0)
        } else if answer.is_permanent() {
            (Lookup::Unknown, UNKNOWN, callout.negative_ttl.0)
        } else {
            // 4xx (greylisting our question, a full disk): not an answer about the user.
            return Lookup::Unavailable(format!("callout to {}: {answer}", domain.route.host));
        };
        tracing::info!(domain = %domain.name, %address, answer = %answer, "callout");
        if let Err(e) = self.store.put(&cache_key, value, Some(ttl)).await {
            tracing::warn!(domain = %domain.name, error = %e, "callout answer not cached");
        }
        lookup
    }
}
