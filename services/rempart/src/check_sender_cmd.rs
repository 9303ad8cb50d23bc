//! `rempart check-sender`: why would a receiver refuse mail from this domain and IP?

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use clap::Args;
use rempart_scanner::Scanner;
use rempart_scanner::service::diagnose::{Request, Status};

#[derive(Args)]
pub struct CheckSenderArgs {
    /// The sending domain.
    #[arg(long)]
    domain: String,
    /// The sending server's address.
    #[arg(long)]
    ip: IpAddr,
    /// What the server says in HELO/EHLO (its SPF is checked too).
    #[arg(long)]
    helo: Option<String>,
    /// The envelope sender to check SPF for (default postmaster@DOMAIN).
    #[arg(long)]
    mail_from: Option<String>,
    /// A DKIM selector whose key should be published.
    #[arg(long)]
    selector: Option<String>,
    /// A DNS server to use, "IP:PORT" (repeatable); replaces `dns.servers`.
    #[arg(long = "resolver", value_name = "IP:PORT")]
    resolvers: Vec<SocketAddr>,
    /// Print one JSON document on stdout.
    #[arg(long)]
    json: bool,
}

pub fn run(args: CheckSenderArgs, config: Option<&Path>) -> Result<(), String> {
    let mut config = crate::load_config(config)?;
    if !args.resolvers.is_empty() {
        config.dns.servers = args.resolvers.clone();
    }
    if config.dns.offline {
        return Err("check-sender needs DNS, but dns.offline is set".into());
    }
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| format!("cannot start the runtime: {e}"))?;
    let _entered = runtime.enter();
    let scanner = Scanner::new(&config).map_err(|e| format!("configuration: {e}"))?;
    let request = Request {
        domain: &args.domain,
        ip: args.ip,
        helo: args.helo.as_deref(),
        mail_from: args.mail_from.as_deref(),
        selector: args.selector.as_deref(),
    };
    let findings = runtime.block_on(scanner.check_sender(&request)).ok_or("DNS is offline")?;
    let failed = findings.iter().filter(|f| f.status == Status::Fail).count();
    if args.json {
        let doc = serde_json::json!({ "domain": args.domain, "ip": args.ip, "checks": findings, "failed": failed });
        crate::emit(doc);
    } else {
        for f in &findings {
            let mark = match f.status {
                Status::Ok => "  ok ",
                Status::Warn => " warn",
                Status::Fail => " FAIL",
            };
            crate::emit(format_args!("{mark}  {:<8} {}", f.check, f.detail));
            if !f.advice.is_empty() {
                crate::emit(format_args!("                -> {}", f.advice));
            }
        }
    }
    if failed > 0 { Err(format!("{failed} check(s) failed for {} from {}", args.domain, args.ip)) } else { Ok(()) }
}
