//! `rempart account …`: the accounts of the console and of SMTP submission (one login
//! for both), in the shared store.

use std::io::Read;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use rempart_state::Store;
use rempart_state::accounts::{self, Account, AccountError, Role};

#[derive(Subcommand)]
pub enum AccountCommand {
    /// Create or replace an account. The password is read from --password-file, else
    /// from standard input (first line).
    Add(AddArgs),
    /// Set a new password (from --password-file, else standard input).
    Passwd {
        email: String,
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
    },
    /// Refuse the account's logins (console and SMTP) until enabled again.
    Disable {
        email: String,
    },
    Enable {
        email: String,
    },
    /// Let a suspended account send again.
    Unsuspend {
        email: String,
    },
}

#[derive(Args)]
pub struct AddArgs {
    /// The login: an e-mail address (a user's mailbox, which it may send from).
    email: String,
    /// user (their addresses: sees their mail, sends as them), domain-admin (their
    /// --domain), operator (everything; sends nothing). Default user.
    #[arg(long, default_value = "user")]
    role: String,
    /// A domain a domain admin manages (repeat for several).
    #[arg(long = "domain")]
    domains: Vec<String>,
    /// Another address of the user (repeat for several); "@example.com" lets the
    /// account send as any address of that domain.
    #[arg(long = "alias")]
    aliases: Vec<String>,
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
}

pub fn run(command: AccountCommand, config_path: Option<&Path>) -> Result<(), String> {
    let config = crate::load_config(config_path)?;
    crate::runtime()?.block_on(async {
        let state = crate::open_state(&config, true).await?.ok_or("no state store")?;
        let store: &dyn Store = &*state.store;
        match command {
            AccountCommand::Add(args) => {
                let password = read_password(args.password_file.as_deref())?;
                let role: Role = args.role.parse().map_err(|e: AccountError| e.to_string())?;
                let lower = |v: Vec<String>| v.into_iter().map(|s| s.trim().to_ascii_lowercase()).collect::<Vec<_>>();
                let account = Account {
                    email: args.email.trim().to_ascii_lowercase(),
                    role,
                    domains: lower(args.domains),
                    aliases: lower(args.aliases),
                    password_hash: accounts::hash_password(&password).map_err(|e| e.to_string())?,
                    disabled: false,
                    suspended: false,
                };
                accounts::put(store, &account).await.map_err(|e| e.to_string())?;
                eprintln!("account {} ({}) saved", account.email, args.role);
            }
            AccountCommand::Passwd { email, password_file } => {
                let password = read_password(password_file.as_deref())?;
                let hash = accounts::hash_password(&password).map_err(|e| e.to_string())?;
                update(store, &email, |a| a.password_hash = hash).await?;
                eprintln!("account {email}: password changed");
            }
            AccountCommand::Disable { email } => {
                update(store, &email, |a| a.disabled = true).await?;
                eprintln!("account {email} disabled");
            }
            AccountCommand::Enable { email } => {
                update(store, &email, |a| a.disabled = false).await?;
                eprintln!("account {email} enabled");
            }
            AccountCommand::Unsuspend { email } => {
                update(store, &email, |a| a.suspended = false).await?;
                eprintln!("account {email} may send again");
            }
        }
        Ok(())
    })
}

/// Reads, changes and saves an account; an unknown one is an error.
async fn update(store: &dyn Store, email: &str, change: impl FnOnce(&mut Account)) -> Result<(), String> {
    let mut account = accounts::get(store, email).await.map_err(|e| e.to_string())?.ok_or(format!("no account {email}"))?;
    change(&mut account);
    accounts::put(store, &account).await.map_err(|e| e.to_string())
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
