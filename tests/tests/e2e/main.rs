//! The end-to-end tests, one binary (linking thirteen was most of their build time):
//! a module per area. Protocol tests run the gateway in this process; crash, cluster,
//! CLI and telemetry tests run the real binary.

mod auth;
mod bounces;
mod chaos;
mod cluster;
mod config;
mod console;
mod console_lists;
mod console_reports;
mod console_volume;
mod crash;
mod fuzzy;
mod hardening;
mod loadtest;
mod malware;
mod management;
mod management_cluster;
mod mta_sts;
mod outbound;
mod probe;
mod protocol;
mod quarantine_cluster;
mod queue;
mod recipients;
mod relay;
mod relay_tls;
mod reload;
mod score;
mod screen;
mod starttls;
mod state;
mod submission;
mod telemetry;
mod tracking;
mod tune;
mod verdicts;
