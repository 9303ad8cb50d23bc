//! `rempart console …`: the console as its own process (a cluster's), and its API
//! tokens. Accounts: `rempart account` (account_cmd.rs).

use std::path::Path;

use clap::Subcommand;

#[derive(Subcommand)]
pub enum ConsoleCommand {
    /// Run the console alone (cluster: NATS bus and shared state): keep the quarantine
    /// and serve the portal on `[console] listen`.
    Serve,
    /// API tokens (`Authorization: Bearer …` on /api/v1).
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create a token for an account; it is printed once (the same as `rempart account
    /// token add`).
    Add { email: String },
}

pub fn run(command: ConsoleCommand, config_path: Option<&Path>) -> Result<(), String> {
    let config = crate::load_config(config_path)?;
    match command {
        ConsoleCommand::Serve => {
            rempart::serve::run(config, rempart::serve::CONSOLE, crate::config_file(config_path)).map_err(|e| e.to_string())
        }
        ConsoleCommand::Token(TokenCommand::Add { email }) => {
            let token = crate::account_cmd::TokenCommand::Add { email, label: String::new() };
            crate::account_cmd::run(crate::account_cmd::AccountCommand::Token(token), config_path)
        }
    }
}
