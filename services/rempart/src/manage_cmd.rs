//! `rempart tenant …` and `rempart domain …`: customers and their domains, managed
//! while the gateway runs, through its management API (`admin_client.rs`).

use clap::{Args, Subcommand};
use hyper::Method;
use serde_json::{Map, Value, json};

use crate::admin_client::AdminClient;

#[derive(Subcommand)]
pub enum TenantCommand {
    /// Add a tenant (a customer).
    Add {
        /// Short id: letters, digits, '-' or '_'.
        id: String,
        /// The customer's name as people write it (default: the id).
        #[arg(long)]
        name: Option<String>,
        /// Console logins of this tenant's accounts need a second factor.
        #[arg(long)]
        require_totp: bool,
    },
    List,
    Show {
        id: String,
    },
    /// Rename a tenant, or require (or not) a second factor of its accounts.
    Set {
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long, value_name = "true|false")]
        require_totp: Option<bool>,
    },
    /// Remove a tenant that owns no domain any more.
    Remove {
        id: String,
    },
}

#[derive(Subcommand)]
pub enum DomainCommand {
    /// Add a domain; the operator's are active at once, every node serves it within
    /// seconds.
    Add(AddDomain),
    /// Every domain: the configuration file's (read-only) and the store's.
    List,
    Show {
        name: String,
    },
    /// Change a stored domain's settings (the next message follows them).
    Set(SetDomain),
    Remove {
        name: String,
    },
    /// Check a pending domain's proof of control now.
    Verify {
        name: String,
    },
    /// The DNS records the domain should publish, and whether it does.
    Dns {
        name: String,
    },
}

#[derive(Args)]
pub struct AddDomain {
    name: String,
    /// The customer's server: smtp://host[:port].
    #[arg(long)]
    route: String,
    /// The tenant that owns it.
    #[arg(long)]
    tenant: Option<String>,
    /// Any other `[[domain]]` setting, as key=value (the value is JSON when it parses
    /// as JSON, else a string): --set greylisting=false --set route_tls=required.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    settings: Vec<String>,
}

#[derive(Args)]
pub struct SetDomain {
    name: String,
    #[arg(long)]
    route: Option<String>,
    /// Move the domain to another tenant (operator).
    #[arg(long)]
    tenant: Option<String>,
    #[arg(long = "set", value_name = "KEY=VALUE")]
    settings: Vec<String>,
}

/// `key=value` pairs as a JSON object.
fn settings(pairs: &[String]) -> Result<Map<String, Value>, String> {
    let mut out = Map::new();
    for pair in pairs {
        let (key, value) = pair.split_once('=').ok_or(format!("--set {pair}: expected KEY=VALUE"))?;
        let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_string()));
        out.insert(key.trim().to_string(), value);
    }
    Ok(out)
}

fn print(value: &Value) {
    crate::emit(serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string()));
}

fn text(value: &Value, key: &str) -> String {
    match value.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "-".into(),
        Some(other) => other.to_string(),
    }
}

pub fn tenant(command: TenantCommand, config_path: Option<&std::path::Path>) -> Result<(), String> {
    let (config, given) = crate::admin_config(config_path)?;
    crate::runtime()?.block_on(async {
        let api = AdminClient::connect(&config, given).await?;
        match command {
            TenantCommand::Add { id, name, require_totp } => {
                let body = json!({ "id": id, "name": name.unwrap_or_default(), "require_totp": require_totp });
                api.call(Method::POST, "/api/v1/tenants", Some(body)).await?;
                eprintln!("tenant {id} added");
            }
            TenantCommand::List => {
                let answer = api.call(Method::GET, "/api/v1/tenants", None).await?;
                for tenant in answer["tenants"].as_array().into_iter().flatten() {
                    crate::emit(format!("{}\t{}", text(tenant, "id"), text(tenant, "name")));
                }
            }
            TenantCommand::Set { id, name, require_totp } => {
                if name.is_none() && require_totp.is_none() {
                    return Err("nothing to change: give --name or --require-totp true|false".into());
                }
                let body = json!({ "name": name, "require_totp": require_totp });
                api.call(Method::PUT, &format!("/api/v1/tenants/{}", segment(&id)), Some(body)).await?;
                eprintln!("tenant {id} changed");
            }
            TenantCommand::Show { id } => print(&api.call(Method::GET, &format!("/api/v1/tenants/{}", segment(&id)), None).await?),
            TenantCommand::Remove { id } => {
                api.call(Method::DELETE, &format!("/api/v1/tenants/{}", segment(&id)), None).await?;
                eprintln!("tenant {id} removed");
            }
        }
        Ok(())
    })
}

pub fn domain(command: DomainCommand, config_path: Option<&std::path::Path>) -> Result<(), String> {
    let (config, given) = crate::admin_config(config_path)?;
    crate::runtime()?.block_on(async {
        let api = AdminClient::connect(&config, given).await?;
        match command {
            DomainCommand::Add(add) => {
                let body = json!({ "name": add.name, "route": add.route, "tenant": add.tenant, "settings": settings(&add.settings)? });
                let answer = api.call(Method::POST, "/api/v1/domains", Some(body)).await?;
                eprintln!("domain {} added ({})", text(&answer, "name"), text(&answer, "status"));
            }
            DomainCommand::List => {
                let answer = api.call(Method::GET, "/api/v1/domains", None).await?;
                for domain in answer["domains"].as_array().into_iter().flatten() {
                    crate::emit(format!(
                        "{}\t{}\t{}\t{}\t{}",
                        text(domain, "name"),
                        text(domain, "status"),
                        text(domain, "source"),
                        text(domain, "tenant"),
                        text(&domain["settings"], "route")
                    ));
                }
            }
            DomainCommand::Show { name } => print(&api.call(Method::GET, &format!("/api/v1/domains/{}", segment(&name)), None).await?),
            DomainCommand::Set(set) => {
                let mut body = settings(&set.settings)?;
                if let Some(route) = set.route {
                    body.insert("route".into(), Value::String(route));
                }
                if let Some(tenant) = set.tenant {
                    body.insert("tenant".into(), Value::String(tenant));
                }
                if body.is_empty() {
                    return Err("nothing to change: give --route, --tenant or --set KEY=VALUE".into());
                }
                api.call(Method::PUT, &format!("/api/v1/domains/{}", segment(&set.name)), Some(Value::Object(body))).await?;
                eprintln!("domain {} changed", set.name);
            }
            DomainCommand::Remove { name } => {
                api.call(Method::DELETE, &format!("/api/v1/domains/{}", segment(&name)), None).await?;
                eprintln!("domain {name} removed");
            }
            DomainCommand::Verify { name } => {
                let answer = api.call(Method::POST, &format!("/api/v1/domains/{}/verify", segment(&name)), None).await?;
                crate::emit(format!("{name}: {}", text(&answer, "status")));
            }
            DomainCommand::Dns { name } => {
                let answer = api.call(Method::GET, &format!("/api/v1/domains/{}/dns", segment(&name)), None).await?;
                for record in answer["records"].as_array().into_iter().flatten() {
                    let published = match record["published"].as_bool() {
                        Some(true) => "published",
                        Some(false) => "MISSING",
                        None => "not checked",
                    };
                    crate::emit(format!("{}\t{}\t{}\t[{published}]", text(record, "kind"), text(record, "name"), text(record, "value")));
                }
            }
        }
        Ok(())
    })
}

/// A path segment of the API, percent-encoded.
pub fn segment(s: &str) -> String {
    rempart_console::web::percent_encode(s)
}
