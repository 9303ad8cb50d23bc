//! The `rempart` command. This file only parses the command line; each subcommand
//! lives in its own module.

mod account_cmd;
mod admin_client;
mod check_sender_cmd;
mod config_cmd;
mod console_cmd;
mod dkim_cmd;
mod dsn_cmd;
mod learn_cmd;
mod manage_cmd;
mod probe_cmd;
mod queue_cmd;
mod score_cmd;
mod track_cmd;
mod tune_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use rempart::serve;

/// Exit codes, the same for every subcommand.
const AFTER_HELP: &str =
    "Exit status: 0 success; 1 the input or the remote side was bad (the message names the file, line or field); 2 usage error.";

#[derive(Parser)]
#[command(name = "rempart", version, about = "Rempart mail-filtering gateway", after_help = AFTER_HELP)]
struct Cli {
    /// Configuration file; defaults to ./rempart.toml when present, else built-in defaults.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole gateway in one process: SMTP edge, scanner, queue, relay.
    #[command(after_help = AFTER_HELP)]
    Serve,
    /// Run only the SMTP edge (with its scanner), publishing to the NATS bus.
    #[command(after_help = AFTER_HELP)]
    Edge,
    /// Run only the relay, consuming the NATS bus.
    #[command(after_help = AFTER_HELP)]
    Relay,
    /// Run only the scanner, as a gRPC service for edges (`scanner.listen`).
    #[command(after_help = AFTER_HELP)]
    Scanner,
    /// Work with configuration files.
    #[command(subcommand)]
    Config(config_cmd::ConfigCommand),
    /// Check the configuration file, then make the running gateway reload it (SIGHUP)
    /// and print the version it applied, or why it refused the file.
    #[command(after_help = AFTER_HELP)]
    Reload,
    /// Diagnose a sending domain and IP: PTR, SPF, DKIM key, DMARC, MX, DNS lists. Exits
    /// 1 when a check fails.
    #[command(after_help = AFTER_HELP)]
    CheckSender(check_sender_cmd::CheckSenderArgs),
    /// Score a message as the gateway would, with the same checks, DNS settings and
    /// state (Bayes, AWL).
    #[command(after_help = AFTER_HELP)]
    Score(score_cmd::ScoreArgs),
    /// Train the Bayes classifier with messages known to be spam or ham.
    #[command(after_help = AFTER_HELP)]
    Learn(learn_cmd::LearnArgs),
    /// The Bayes classifier's data.
    #[command(subcommand)]
    Bayes(learn_cmd::BayesCommand),
    /// Fit the symbol weights on a labelled corpus (ham/ and spam/) and measure them on
    /// a held-out part against the weights in use.
    #[command(after_help = AFTER_HELP)]
    Tune(tune_cmd::TuneArgs),
    /// The console: run it alone, manage its API tokens.
    #[command(subcommand)]
    Console(console_cmd::ConsoleCommand),
    /// Accounts: one login for the console and for SMTP submission; their API tokens.
    #[command(subcommand)]
    Account(account_cmd::AccountCommand),
    /// Tenants (customers), managed while the gateway runs.
    #[command(subcommand)]
    Tenant(manage_cmd::TenantCommand),
    /// Domains kept in the store, managed while the gateway runs (the configuration
    /// file's domains are listed, read-only).
    #[command(subcommand)]
    Domain(manage_cmd::DomainCommand),
    /// DKIM keys for the mail customers submit.
    #[command(subcommand)]
    Dkim(dkim_cmd::DkimCommand),
    /// Message tracking: find a message by sender, recipient, Message-ID, queue id,
    /// client IP, dates or status; with --queue-id, its timeline.
    Track(track_cmd::TrackArgs),
    /// The mail waiting for delivery: list, hold, release, retry now, bounce now, delete.
    #[command(subcommand)]
    Queue(queue_cmd::QueueCommand),
    /// Read a bounce: each recipient's status, the remote server's words and a reason
    /// (userunknown, mailboxfull, blocked, … Sisimai's words).
    Dsn(dsn_cmd::DsnArgs),
    /// Simulate sending to an address step by step (MX, connect, banner, EHLO,
    /// STARTTLS, MAIL, RCPT, optionally DATA), explaining each reply.
    Probe(probe_cmd::ProbeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve => run_roles(cli.config.as_deref(), serve::ALL),
        Command::Edge => run_roles(cli.config.as_deref(), serve::EDGE),
        Command::Relay => run_roles(cli.config.as_deref(), serve::RELAY),
        Command::Scanner => run_roles(cli.config.as_deref(), serve::SCANNER),
        Command::Config(cmd) => config_cmd::run(cmd, cli.config.as_deref()),
        Command::Reload => config_cmd::reload(cli.config.as_deref()),
        Command::Score(args) => score_cmd::run(args, cli.config.as_deref()),
        Command::CheckSender(args) => check_sender_cmd::run(args, cli.config.as_deref()),
        Command::Learn(args) => learn_cmd::learn(args, cli.config.as_deref()),
        Command::Tune(args) => tune_cmd::run(args, cli.config.as_deref()),
        Command::Bayes(cmd) => learn_cmd::bayes(cmd, cli.config.as_deref()),
        Command::Console(cmd) => console_cmd::run(cmd, cli.config.as_deref()),
        Command::Account(cmd) => account_cmd::run(cmd, cli.config.as_deref()),
        Command::Tenant(cmd) => manage_cmd::tenant(cmd, cli.config.as_deref()),
        Command::Domain(cmd) => manage_cmd::domain(cmd, cli.config.as_deref()),
        Command::Dkim(cmd) => dkim_cmd::run(cmd, cli.config.as_deref()),
        Command::Track(args) => track_cmd::run(args, cli.config.as_deref()),
        Command::Queue(cmd) => queue_cmd::run(cmd, cli.config.as_deref()),
        Command::Dsn(args) => dsn_cmd::run(args),
        Command::Probe(args) => probe_cmd::run(args, cli.config.as_deref()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("rempart: {message}");
            ExitCode::from(1)
        }
    }
}

fn run_roles(config: Option<&std::path::Path>, roles: serve::Roles) -> Result<(), String> {
    serve::run(load_config(config)?, roles, config_file(config)).map_err(|e| e.to_string())
}

/// The file `load_config` reads, if any: what a reload reads again.
pub(crate) fn config_file(explicit: Option<&std::path::Path>) -> Option<PathBuf> {
    let default = std::path::Path::new("rempart.toml");
    match explicit {
        Some(path) => Some(path.to_path_buf()),
        None if default.exists() => Some(default.to_path_buf()),
        None => None,
    }
}

/// Prints one line on stdout. When the reader has gone away (`| head`), stops quietly
/// like other Unix tools instead of failing.
pub(crate) fn emit(line: impl std::fmt::Display) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{line}") {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("rempart: cannot write to standard output: {e}");
        std::process::exit(1);
    }
}

/// The configuration every subcommand uses: `--config FILE`, else `./rempart.toml`
/// when present, else the built-in defaults.
pub(crate) fn load_config(explicit: Option<&std::path::Path>) -> Result<rempart_model::Config, String> {
    match config_file(explicit) {
        Some(path) => rempart_model::Config::load(&path).map_err(|e| e.to_string()),
        None => Ok(rempart_model::Config::default()),
    }
}

/// Without a configuration file, tells on stderr which store a command reads or writes
/// (the built-in defaults' `./rempart-data`), so that nobody trains or inspects a store
/// other than the gateway's without knowing it.
pub(crate) fn say_which_store(config: &rempart_model::Config, explicit: Option<&std::path::Path>) {
    if config_file(explicit).is_some() {
        return;
    }
    let store = match rempart_state::settings(config) {
        rempart_state::StoreSettings::Embedded { path, .. } => path.display().to_string(),
        _ => format!("{:?}", config.state.backend).to_lowercase(),
    };
    eprintln!("rempart: no --config and no ./rempart.toml: using the built-in defaults, with the store {store}");
}

/// The configuration of a management command, and whether a file was given (without
/// one, such a command refuses to guess which gateway's store to change).
pub(crate) fn admin_config(explicit: Option<&std::path::Path>) -> Result<(rempart_model::Config, bool), String> {
    Ok((load_config(explicit)?, config_file(explicit).is_some()))
}

/// The runtime of the one-shot subcommands.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().map_err(|e| format!("cannot start the runtime: {e}"))
}

/// The state `serve` uses with this configuration. With `create` false, an embedded
/// store that does not exist yet is `None` (nothing was ever learned) rather than a
/// new file.
pub(crate) async fn open_state(
    config: &rempart_model::Config,
    create: bool,
) -> Result<Option<std::sync::Arc<rempart_state::SharedState>>, String> {
    let settings = rempart_state::settings(config);
    if let rempart_state::StoreSettings::Embedded { path, .. } = &settings
        && !create
        && !path.exists()
    {
        return Ok(None);
    }
    match rempart_state::SharedState::open(config).await {
        Ok(state) => Ok(Some(std::sync::Arc::new(state))),
        Err(e) => {
            let hint = match settings {
                rempart_state::StoreSettings::Embedded { .. } => {
                    " (the embedded state belongs to one process: is `rempart serve` running with this configuration?)"
                }
                _ => "",
            };
            Err(format!("state: {e}{hint}"))
        }
    }
}
