//! What a reload can apply, and what needs a restart.
//!
//! Listener addresses, storage paths, bus and store backends, telemetry, the console's
//! listener, worker counts and the shared state's settings are read once at start;
//! everything else (domains, routes, policies, lists, weights, certificates, limits
//! per message) is read from the live snapshot on every use.

use super::Config;

impl Config {
    /// The settings that differ between `self` (running) and `new` and that a reload
    /// cannot apply: they are named in the log, never silently ignored.
    pub fn needs_restart(&self, new: &Config) -> Vec<&'static str> {
        let (a, b) = (self, new);
        let checks: [(&'static str, bool); 20] = [
            ("smtp.listener", a.smtp.listeners != b.smtp.listeners),
            ("smtp.max_connections", a.smtp.max_connections != b.smtp.max_connections),
            ("smtp.max_connections_per_ip", a.smtp.max_connections_per_ip != b.smtp.max_connections_per_ip),
            ("smtp.trusted_networks", a.smtp.trusted_networks != b.smtp.trusted_networks),
            ("smtp.max_data_in_flight", a.smtp.max_data_in_flight != b.smtp.max_data_in_flight),
            ("queue.data_dir", a.queue.data_dir != b.queue.data_dir),
            ("queue.fsync", a.queue.fsync != b.queue.fsync),
            ("queue.visibility_timeout", a.queue.visibility_timeout != b.queue.visibility_timeout),
            ("relay.concurrency", a.relay.concurrency != b.relay.concurrency),
            ("bus", a.bus != b.bus),
            ("state", a.state != b.state),
            ("greylist", a.greylist != b.greylist),
            ("awl", a.awl != b.awl),
            ("bayes", a.bayes != b.bayes),
            ("telemetry", a.telemetry != b.telemetry),
            ("console", a.console != b.console),
            ("dns", a.dns != b.dns),
            ("scanner.enabled", a.scanner.enabled != b.scanner.enabled),
            ("scanner.listen", a.scanner.listen != b.scanner.listen),
            ("scanner.endpoints", a.scanner.endpoints != b.scanner.endpoints || a.scanner.timeout != b.scanner.timeout),
        ];
        checks.into_iter().filter_map(|(name, changed)| changed.then_some(name)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_changes_need_no_restart_and_start_up_ones_are_named() {
        let running: Config = toml::from_str("[[domain]]\nname = \"a.test\"\nroute = \"smtp://127.0.0.1:25\"\n").unwrap();
        let mut new = running.clone();
        new.domains[0].route = "smtp://127.0.0.1:2526".parse().unwrap();
        new.policy.reject = Some(9.0);
        assert!(running.needs_restart(&new).is_empty());
        new.queue.data_dir = "/elsewhere".into();
        new.smtp.max_connections += 1;
        assert_eq!(running.needs_restart(&new), vec!["smtp.max_connections", "queue.data_dir"]);
    }
}
