//! `rempart dkim …`: DKIM keys for the mail customers submit. `generate` writes a key to
//! a file (for `[[domain.dkim]] key_file`); `add`, `list`, `rotate` and `remove` manage
//! the keys the store keeps, through the running gateway's management API, and every
//! node signs with them within seconds.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use hyper::Method;
use rempart_model::config::{check_domain_name, check_selector};
use rempart_state::dkim_keys::{self, Algorithm};
use serde_json::{Value, json};

use crate::admin_client::AdminClient;
use crate::manage_cmd::segment;

#[derive(Subcommand)]
pub enum DkimCommand {
    /// Create a key in a file (for `[[domain.dkim]] key_file`) and print its DNS TXT
    /// record.
    Generate(GenerateArgs),
    /// Create a key kept in the store (sealed with `[state] secret_file`); it signs the
    /// domain's submitted mail on every node within seconds.
    Add {
        domain: String,
        /// Default: "rs" and the date, e.g. "rs20261207".
        #[arg(long)]
        selector: Option<String>,
        /// ed25519 (RFC 8463) or rsa (RSA-2048, verified everywhere).
        #[arg(long, default_value = "rsa")]
        algorithm: String,
    },
    /// The domain's stored keys, their records and whether DNS publishes them.
    List { domain: String },
    /// A new key signs beside the current ones, which are retired after the overlap.
    Rotate {
        domain: String,
        #[arg(long)]
        selector: Option<String>,
        #[arg(long, default_value = "rsa")]
        algorithm: String,
        /// How long the old keys keep signing (hours).
        #[arg(long, default_value_t = 72)]
        overlap_hours: u64,
    },
    /// Stop signing with a stored key now.
    Remove { domain: String, selector: String },
}

#[derive(Args)]
pub struct GenerateArgs {
    domain: String,
    selector: String,
    /// ed25519 (RFC 8463) or rsa (RSA-2048).
    #[arg(long, default_value = "ed25519")]
    algorithm: String,
    /// Where to write the private key (PEM). Default `<selector>.<domain>.pem`.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

pub fn run(command: DkimCommand, config_path: Option<&std::path::Path>) -> Result<(), String> {
    match command {
        DkimCommand::Generate(args) => generate(args),
        managed => manage(managed, config_path),
    }
}

fn generate(args: GenerateArgs) -> Result<(), String> {
    check_domain_name(&args.domain)?;
    check_selector(&args.selector)?;
    let algorithm = Algorithm::parse(&args.algorithm)?;
    let domain = args.domain.trim_end_matches('.');
    let out = args.out.unwrap_or_else(|| PathBuf::from(format!("{}.{domain}.pem", args.selector)));
    let (pem, record) = dkim_keys::generate(algorithm)?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    file.write_all(pem.as_bytes()).map_err(|e| format!("{}: {e}", out.display()))?;
    eprintln!("private key written to {} (add it as [[domain.dkim]] key_file, selector {:?})", out.display(), args.selector);
    crate::emit(format!("{}._domainkey.{domain}. IN TXT \"{record}\"", args.selector));
    Ok(())
}

fn manage(command: DkimCommand, config_path: Option<&std::path::Path>) -> Result<(), String> {
    let (config, given) = crate::admin_config(config_path)?;
    crate::runtime()?.block_on(async {
        let api = AdminClient::connect(&config, given).await?;
        match command {
            DkimCommand::Generate(_) => Ok(()),
            DkimCommand::Add { domain, selector, algorithm } => {
                let body = json!({ "selector": selector, "algorithm": algorithm });
                let key = api.call(Method::POST, &format!("/api/v1/domains/{}/dkim", segment(&domain)), Some(body)).await?;
                print_record(&key);
                Ok(())
            }
            DkimCommand::Rotate { domain, selector, algorithm, overlap_hours } => {
                let body = json!({ "selector": selector, "algorithm": algorithm, "overlap_hours": overlap_hours });
                let key = api.call(Method::POST, &format!("/api/v1/domains/{}/dkim/rotate", segment(&domain)), Some(body)).await?;
                print_record(&key);
                eprintln!("the previous keys sign for {overlap_hours} more hours, then are retired");
                Ok(())
            }
            DkimCommand::List { domain } => {
                let answer = api.call(Method::GET, &format!("/api/v1/domains/{}/dkim", segment(&domain)), None).await?;
                for key in answer["keys"].as_array().into_iter().flatten() {
                    let published = match key["published"].as_bool() {
                        Some(true) => "published",
                        Some(false) => "NOT PUBLISHED",
                        None => "not checked",
                    };
                    let state = match key["retire_at"].as_u64() {
                        Some(at) => format!("retiring at {at}"),
                        None => "signing".into(),
                    };
                    crate::emit(format!("{}\t{}\t{state}\t[{published}]", text(key, "selector"), text(key, "algorithm")));
                }
                Ok(())
            }
            DkimCommand::Remove { domain, selector } => {
                api.call(Method::DELETE, &format!("/api/v1/domains/{}/dkim/{}", segment(&domain), segment(&selector)), None).await?;
                eprintln!("{selector} no longer signs {domain}'s mail");
                Ok(())
            }
        }
    })
}

fn text(value: &Value, key: &str) -> String {
    value[key].as_str().unwrap_or_default().to_string()
}

fn print_record(key: &Value) {
    eprintln!("publish this record; the key signs {}'s submitted mail from now on", text(key, "domain"));
    crate::emit(format!("{}. IN TXT \"{}\"", text(key, "record_name"), text(key, "record")));
}
