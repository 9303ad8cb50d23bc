//! `rempart dsn FILE|- [--json]`: what a bounce says, recipient by recipient — the
//! status, the remote server's words and a reason from a fixed vocabulary.

use std::io::Read;
use std::path::PathBuf;

use clap::Args;

#[derive(Args)]
pub struct DsnArgs {
    /// The bounce (a whole message); `-` reads it from standard input.
    file: PathBuf,
    /// One JSON object: `{"standard": bool, "recipients": [{recipient, action, status,
    /// reply_code, reason, hard, diagnostic, remote_mta}]}`.
    #[arg(long)]
    json: bool,
}

/// Largest message read.
const MAX_MESSAGE: u64 = 64 * 1024 * 1024;

pub fn run(args: DsnArgs) -> Result<(), String> {
    let name = args.file.display().to_string();
    let mut raw = Vec::new();
    let read = if name == "-" {
        std::io::stdin().take(MAX_MESSAGE).read_to_end(&mut raw)
    } else {
        std::fs::File::open(&args.file).and_then(|f| f.take(MAX_MESSAGE).read_to_end(&mut raw))
    };
    read.map_err(|e| format!("{name}: {e}"))?;
    let Some(report) = rempart_smtp::bounce::parse(&raw) else {
        return Err(format!("{name}: not a bounce (no delivery-status part, and neither its sender nor its subject is a mailer's)"));
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?);
        return Ok(());
    }
    for b in &report.recipients {
        let code = b.reply_code.map(|c| c.to_string()).unwrap_or_else(|| "-".into());
        let status = if b.status.is_empty() { "-" } else { b.status.as_str() };
        println!("{}\t{}\t{status}\t{code}\t{}\t{}", b.recipient, b.action, b.reason, if b.hard { "hard" } else { "soft" });
        if !b.diagnostic.is_empty() {
            println!("\t{}", b.diagnostic);
        }
    }
    Ok(())
}
