//! `rempart-loadtest`: SMTP load against a Rempart deployment, with a built-in sink
//! for loss and duplicate accounting, latency histograms and reports.

mod client;
mod messages;
mod plot;
mod report;
mod run;
mod scenario;
mod sink;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use rempart_model::HumanDuration;

const AFTER_HELP: &str =
    "Exit status: 0 success; 1 the input or the remote side was bad (a run that lost mail, an unreadable scenario); 2 usage error.";

#[derive(Parser)]
#[command(name = "rempart-loadtest", version, about = "Load harness for Rempart", after_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Send load to the target(s) and account for every message at the built-in sink.
    #[command(after_help = AFTER_HELP)]
    Run {
        /// SMTP address of the gateway, HOST:PORT (repeatable, and every address a name
        /// resolves to is used: sessions are spread over them).
        #[arg(long = "target", required = true, value_name = "HOST:PORT")]
        targets: Vec<String>,
        /// A built-in scenario (smoke, steady, burst, greylist-storm, big-messages) or a TOML file.
        #[arg(long, default_value = "smoke")]
        scenario: String,
        /// Where the built-in sink listens: the gateway's routes must point here.
        #[arg(long, default_value = "127.0.0.1:2626")]
        sink_listen: SocketAddr,
        /// Directory for report.json, report.md and the SVG plots.
        #[arg(long, default_value = "loadtest-report")]
        out: PathBuf,
        /// Overrides the scenario's rate (messages/s; 0: closed loop).
        #[arg(long)]
        rate: Option<f64>,
        /// Overrides the scenario's steady phase, e.g. "60s".
        #[arg(long)]
        steady: Option<HumanDuration>,
        /// Overrides the scenario's ramp, e.g. "2s".
        #[arg(long)]
        ramp: Option<HumanDuration>,
        /// Overrides the scenario's closed-loop sessions.
        #[arg(long)]
        sessions: Option<usize>,
        /// Message choice seed (runs with the same seed send the same mix).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Real recipients, one address per line (overrides the scenario's
        /// `recipients_file`): measures the gateway's recipient checks (list, LDAP,
        /// callout); RCPT latency is measured with `pipelining = false`.
        #[arg(long, value_name = "FILE")]
        recipients: Option<PathBuf>,
        /// Print the JSON report on stdout instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Run only the sink (stands in for customer servers) until Ctrl-C.
    #[command(after_help = AFTER_HELP)]
    Sink {
        #[arg(long, default_value = "127.0.0.1:2626")]
        listen: SocketAddr,
        /// Refuse RCPTs with this code (4xx: the gateway retries; 5xx: it bounces).
        #[arg(long, requires = "fail_share")]
        fail_code: Option<u16>,
        /// Share of RCPTs refused (0 to 1).
        #[arg(long)]
        fail_share: Option<f64>,
    },
    /// Print a built-in scenario as TOML (a starting point for your own).
    #[command(after_help = AFTER_HELP)]
    Scenario {
        #[arg(value_parser = scenario::BUILT_IN.to_vec())]
        name: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("rempart-loadtest: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = match cli.command {
        Command::Run { targets, scenario, sink_listen, out, rate, steady, ramp, sessions, seed, recipients, json } => {
            runtime.block_on(async move {
                let mut scenario = scenario::Scenario::load(&scenario)?;
                if recipients.is_some() {
                    scenario.recipients_file = recipients;
                }
                if let Some(rate) = rate {
                    scenario.rate = rate;
                }
                if let Some(steady) = steady {
                    scenario.steady = steady;
                }
                if let Some(ramp) = ramp {
                    scenario.ramp = ramp;
                }
                if let Some(sessions) = sessions {
                    scenario.sessions = sessions;
                }
                let mut addresses = Vec::new();
                for target in &targets {
                    let resolved = tokio::net::lookup_host(target.as_str()).await.map_err(|e| format!("target {target}: {e}"))?;
                    addresses.extend(resolved);
                }
                let report = run::run(scenario, run::RunOptions { targets: addresses, sink_listen, out: out.clone(), seed }).await?;
                if json {
                    println!("{}", serde_json::to_string(&report).map_err(|e| e.to_string())?);
                } else {
                    print!("{}", report.table());
                    eprintln!("reports in {}", out.display());
                }
                let r = &report.reconciliation;
                if r.lost > 0 || !r.counts_add_up {
                    return Err(format!("{} message deliveries lost (see {})", r.lost, out.join("report.md").display()));
                }
                Ok(())
            })
        }
        Command::Sink { listen, fail_code, fail_share } => {
            let faults = match fail_code {
                Some(code) => vec![scenario::SinkFault {
                    from: HumanDuration::secs(0),
                    to: HumanDuration::secs(u64::from(u32::MAX)),
                    code,
                    share: fail_share.unwrap_or(1.0),
                }],
                None => Vec::new(),
            };
            runtime.block_on(sink::run_standalone(listen, faults))
        }
        Command::Scenario { name } => match scenario::Scenario::built_in(&name).map(|s| toml::to_string_pretty(&s)) {
            Some(Ok(text)) => {
                print!("{text}");
                Ok(())
            }
            _ => Err(format!("no scenario {name}")),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rempart-loadtest: {e}");
            ExitCode::from(1)
        }
    }
}
