//! `rempart account …`: the accounts of the console and of SMTP submission (one login
//! for both), through the management API (`admin_client.rs`): the running gateway is
//! never stopped for them.

use std::io::Read;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use hyper::Method;
use serde_json::{Value, json};

use crate::admin_client::AdminClient;
use crate::manage_cmd::segment;

#[derive(Subcommand)]
pub enum AccountCommand {
    /// Create an account. The password is read from --password-file, else from
    /// standard input (first line).
    Add(AddArgs),
    List,
    Show {
        email: String,
    },
    /// Set a new password (from --password-file, else standard input); the account's
    /// tokens and console sessions stop working.
    Passwd {
        email: String,
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
    },
    /// Refuse the account's logins (console and SMTP) and tokens until enabled again.
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
    /// Delete the account and its tokens.
    Delete {
        email: String,
    },
    /// API tokens (`Authorization: Bearer …` on /api/v1).
    #[command(subcommand)]
    Token(TokenCommand),
    /// The console's second factor (TOTP, an authenticator app).
    #[command(subcommand)]
    Totp(TotpCommand),
}

#[derive(Subcommand)]
pub enum TotpCommand {
    /// Start setting it up: prints the secret and its otpauth:// URI for the app; the
    /// account's owner confirms with a code (`totp confirm` or the console's /account).
    Enroll { email: String },
    /// Confirm with the code the app shows: from then on console logins need a code.
    Confirm { email: String, code: String },
    /// Remove it (a lost device); the owner sets up a new one.
    Remove { email: String },
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create a token for an account; it is printed once.
    Add {
        email: String,
        #[arg(long, default_value = "")]
        label: String,
    },
    List {
        email: String,
    },
    /// Revoke a token by its id (`token list`).
    Revoke {
        id: String,
    },
}

#[derive(Args)]
pub struct AddArgs {
    /// The login: an e-mail address (a user's mailbox, which it may send from).
    email: String,
    /// user (their addresses: sees their mail, sends as them), tenant-admin (their
    /// tenant's domains, and any --domain), helpdesk (sees all, releases), auditor
    /// (sees all), operator (everything; sends nothing). Default user.
    #[arg(long, default_value = "user")]
    role: String,
    /// The tenant (customer) the account belongs to.
    #[arg(long)]
    tenant: Option<String>,
    /// A domain a tenant admin manages besides their tenant's (repeat for several).
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
    let (config, given) = crate::admin_config(config_path)?;
    // Read before connecting: standard input is the password, not a prompt.
    let password = match &command {
        AccountCommand::Add(args) => Some(read_password(args.password_file.as_deref())?),
        AccountCommand::Passwd { password_file, .. } => Some(read_password(password_file.as_deref())?),
        _ => None,
    };
    crate::runtime()?.block_on(async {
        let api = AdminClient::connect(&config, given).await?;
        let account_path = |email: &str| format!("/api/v1/accounts/{}", segment(email));
        let change = |email: String, body: Value, done: &'static str| {
            let api = &api;
            let path = account_path(&email);
            async move {
                api.call(Method::PATCH, &path, Some(body)).await?;
                eprintln!("account {email} {done}");
                Ok::<(), String>(())
            }
        };
        match command {
            AccountCommand::Add(args) => {
                let body = json!({
                    "email": args.email, "role": args.role, "tenant": args.tenant, "domains": args.domains,
                    "aliases": args.aliases, "password": password.unwrap_or_default(),
                });
                let answer = api.call(Method::POST, "/api/v1/accounts", Some(body)).await?;
                eprintln!(
                    "account {} ({}) saved",
                    answer["email"].as_str().unwrap_or_default(),
                    answer["role"].as_str().unwrap_or_default()
                );
            }
            AccountCommand::List => {
                let answer = api.call(Method::GET, "/api/v1/accounts", None).await?;
                for a in answer["accounts"].as_array().into_iter().flatten() {
                    let flags = [("disabled", a["disabled"].as_bool()), ("suspended", a["suspended"].as_bool())]
                        .iter()
                        .filter(|(_, on)| *on == Some(true))
                        .map(|(name, _)| *name)
                        .collect::<Vec<_>>()
                        .join(",");
                    crate::emit(format!(
                        "{}\t{}\t{}\t{}",
                        a["email"].as_str().unwrap_or_default(),
                        a["role"].as_str().unwrap_or_default(),
                        a["tenant"].as_str().unwrap_or("-"),
                        if flags.is_empty() { "active" } else { &flags }
                    ));
                }
            }
            AccountCommand::Show { email } => {
                let answer = api.call(Method::GET, &account_path(&email), None).await?;
                crate::emit(serde_json::to_string_pretty(&answer).unwrap_or_default());
            }
            AccountCommand::Passwd { email, .. } => {
                change(email, json!({ "password": password.unwrap_or_default() }), "password changed").await?
            }
            AccountCommand::Disable { email } => change(email, json!({ "disabled": true }), "disabled").await?,
            AccountCommand::Enable { email } => change(email, json!({ "disabled": false }), "enabled").await?,
            AccountCommand::Unsuspend { email } => change(email, json!({ "suspended": false }), "may send again").await?,
            AccountCommand::Delete { email } => {
                api.call(Method::DELETE, &account_path(&email), None).await?;
                eprintln!("account {email} deleted");
            }
            AccountCommand::Token(TokenCommand::Add { email, label }) => {
                let answer = api.call(Method::POST, &format!("{}/tokens", account_path(&email)), Some(json!({ "label": label }))).await?;
                crate::emit(answer["token"].as_str().unwrap_or_default());
            }
            AccountCommand::Token(TokenCommand::List { email }) => {
                let answer = api.call(Method::GET, &format!("{}/tokens", account_path(&email)), None).await?;
                for t in answer["tokens"].as_array().into_iter().flatten() {
                    let valid = if t["valid"].as_bool() == Some(true) { "valid" } else { "invalid (password changed or disabled)" };
                    crate::emit(format!(
                        "{}\t{}\t{}\t{valid}",
                        t["id"].as_str().unwrap_or_default(),
                        t["created"],
                        t["label"].as_str().unwrap_or_default()
                    ));
                }
            }
            AccountCommand::Totp(TotpCommand::Enroll { email }) => {
                let answer = api.call(Method::POST, &format!("{}/totp", account_path(&email)), None).await?;
                crate::emit(format!("secret\t{}", answer["secret"].as_str().unwrap_or_default()));
                crate::emit(format!("uri\t{}", answer["uri"].as_str().unwrap_or_default()));
                eprintln!("add it to the authenticator app, then confirm with a code: rempart account totp confirm {email} CODE");
            }
            AccountCommand::Totp(TotpCommand::Confirm { email, code }) => {
                api.call(Method::POST, &format!("{}/totp/confirm", account_path(&email)), Some(json!({ "code": code }))).await?;
                eprintln!("second factor on for {email}: console logins need a code");
            }
            AccountCommand::Totp(TotpCommand::Remove { email }) => {
                api.call(Method::DELETE, &format!("{}/totp", account_path(&email)), None).await?;
                eprintln!("second factor removed for {email}");
            }
            AccountCommand::Token(TokenCommand::Revoke { id }) => {
                api.call(Method::DELETE, &format!("/api/v1/tokens/{}", segment(&id)), None).await?;
                eprintln!("token {id} revoked");
            }
        }
        Ok(())
    })
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
    if password.chars().count() < rempart_console::web::accounts_api::MIN_PASSWORD {
        let from = file.map_or("standard input".to_string(), |p| p.display().to_string());
        return Err(format!(
            "{from}: line 1: the password must have at least {} characters",
            rempart_console::web::accounts_api::MIN_PASSWORD
        ));
    }
    Ok(password)
}
