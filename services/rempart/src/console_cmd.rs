//! `rempart console …`: the console as its own process (a cluster's), and its
//! accounts and API tokens.

use std::io::Read;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use rempart_console::accounts::{self, Account, Role};

#[derive(Subcommand)]
pub enum ConsoleCommand {
    /// Run the console alone (cluster: NATS bus and shared state): keep the quarantine
    /// and serve the portal on `[console] listen`.
    Serve,
    /// Console accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// API tokens (`Authorization: Bearer …` on /api/v1).
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Subcommand)]
pub enum UserCommand {
    /// Create or replace an account. The password is read from --password-file, else
    /// from standard input (first line).
    Add(UserAddArgs),
}

#[derive(Args)]
pub struct UserAddArgs {
    /// The login: an e-mail address.
    email: String,
    /// operator (everything), domain-admin (their --domain), user (their address and --alias).
    #[arg(long)]
    role: String,
    /// A domain a domain admin manages (repeat for several).
    #[arg(long = "domain")]
    domains: Vec<String>,
    /// Another address a user receives mail at (repeat for several).
    #[arg(long = "alias")]
    aliases: Vec<String>,
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create a token for an account; it is printed once.
    Add { email: String },
}

pub fn run(command: ConsoleCommand, config_path: Option<&Path>) -> Result<(), String> {
    let config = crate::load_config(config_path)?;
    match command {
        ConsoleCommand::Serve => rempart::serve::run(config, rempart::serve::CONSOLE).map_err(|e| e.to_string()),
        ConsoleCommand::User(UserCommand::Add(args)) => {
            let password = read_password(args.password_file.as_deref())?;
            let role: Role = args.role.parse().map_err(|e: accounts::AccountError| e.to_string())?;
            let lower = |v: Vec<String>| v.into_iter().map(|s| s.trim().to_ascii_lowercase()).collect::<Vec<_>>();
            let account = Account {
                email: args.email.trim().to_ascii_lowercase(),
                role,
                domains: lower(args.domains),
                aliases: lower(args.aliases),
                password_hash: accounts::hash_password(&password).map_err(|e| e.to_string())?,
                disabled: false,
            };
            crate::runtime()?.block_on(async {
                let state = crate::open_state(&config, true).await?.ok_or("no state store")?;
                accounts::put(&*state.store, &account).await.map_err(|e| e.to_string())
            })?;
            eprintln!("account {} ({}) saved", account.email, args.role);
            Ok(())
        }
        ConsoleCommand::Token(TokenCommand::Add { email }) => {
            let token = crate::runtime()?.block_on(async {
                let state = crate::open_state(&config, true).await?.ok_or("no state store")?;
                rempart_console::web::api::add_token(&*state.store, &email).await.map_err(|e| e.to_string())
            })?;
            println!("{token}");
            Ok(())
        }
    }
}

fn read_password(file: Option<&Path>) -> Result<String, String> {
    let text = match file {
        Some(path) => std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?,
        None => {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text).map_err(|e| format!("standard input: {e}"))?;
            text
        }
    };
    let password = text.lines().next().unwrap_or("").to_string();
    if password.chars().count() < 10 {
        let from = file.map_or("standard input".to_string(), |p| p.display().to_string());
        return Err(format!("{from}: line 1: the password must have at least 10 characters"));
    }
    Ok(password)
}
