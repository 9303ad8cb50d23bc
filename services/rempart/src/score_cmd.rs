//! `rempart score`: the scanner's verdict on a message file, as the gateway would give
//! it in the SMTP session (same configuration, same checks).

use std::io::Read;
use std::path::{Path, PathBuf};

use clap::Args;
use rempart_model::{SessionFacts, Verdict};
use rempart_scanner::{ScanInput, Scanner};

#[derive(Args)]
pub struct ScoreArgs {
    /// The message (`-` for standard input).
    #[arg(required_unless_present = "batch")]
    file: Option<PathBuf>,
    /// Score every file of a directory, or every message of an mbox file, instead:
    /// one JSON line per message.
    #[arg(long, value_name = "DIR|MBOX", conflicts_with = "file")]
    batch: Option<PathBuf>,
    /// The client IP the message came from.
    #[arg(long, default_value = "127.0.0.1")]
    ip: std::net::IpAddr,
    /// What the client said in HELO/EHLO (empty: none, so no HELO checks).
    #[arg(long, default_value = "")]
    helo: String,
    /// The envelope sender (MAIL FROM).
    #[arg(long, default_value = "")]
    mail_from: String,
    /// An envelope recipient (its domain's policy applies); repeatable.
    #[arg(long = "rcpt")]
    rcpt: Vec<String>,
    /// Print one JSON document on stdout.
    #[arg(long)]
    json: bool,
    /// A DNS server to use, "IP:PORT" (repeatable); replaces `dns.servers`.
    #[arg(long = "resolver", value_name = "IP:PORT")]
    resolvers: Vec<std::net::SocketAddr>,
    /// Make no DNS lookup at all: DNS-based checks are skipped, and reported so.
    #[arg(long)]
    offline: bool,
    /// Language of the descriptions: en or fr.
    #[arg(long, default_value = "en", value_parser = ["en", "fr"])]
    lang: String,
}

pub fn run(args: ScoreArgs, config: Option<&Path>) -> Result<(), String> {
    let mut config = crate::load_config(config)?;
    if !args.resolvers.is_empty() {
        config.dns.servers = args.resolvers.clone();
    }
    config.dns.offline |= args.offline;
    let runtime = crate::runtime()?;
    let _entered = runtime.enter();
    let mut scanner = Scanner::new(&config).map_err(|e| format!("configuration: {e}"))?;
    // The same Bayes model and AWL history as `serve` (read only: scoring records nothing).
    match runtime.block_on(crate::open_state(&config, false)) {
        Ok(Some(state)) => scanner = scanner.with_state(state),
        Ok(None) => {}
        Err(e) => eprintln!("rempart: scoring without Bayes and AWL: {e}"),
    }
    let facts = SessionFacts { peer_ip: args.ip, helo: args.helo.clone(), tls: None };
    let scan = |bytes: &[u8]| {
        runtime.block_on(scanner.scan(&ScanInput { facts: &facts, return_path: &args.mail_from, recipients: &args.rcpt, message: bytes }))
    };
    if let Some(dir) = &args.batch {
        return batch(dir, &scan, &args.lang);
    }
    let file = args.file.as_deref().unwrap_or(Path::new("-"));
    let bytes = read_input(file)?;
    let verdict = scan(&bytes);
    if args.json {
        crate::emit(format_args!("{}", verdict_json(&verdict, &args.lang, None)));
    } else {
        print_table(&verdict, &args.lang);
    }
    Ok(())
}

fn read_input(file: &Path) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    if file == Path::new("-") {
        std::io::stdin().read_to_end(&mut bytes).map_err(|e| format!("standard input: {e}"))?;
    } else {
        bytes = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    }
    Ok(bytes)
}

fn batch(path: &Path, scan: &dyn Fn(&[u8]) -> Verdict, lang: &str) -> Result<(), String> {
    if path.is_file() {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let messages = rempart_model::mbox::split(&bytes);
        if messages.is_empty() {
            return Err(format!("{}: not an mbox file (no \"From \" separator line)", path.display()));
        }
        for (i, message) in messages.iter().enumerate() {
            crate::emit(verdict_json(&scan(message), lang, Some((path, Some(i + 1)))));
        }
        return Ok(());
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let mut failures = 0;
    for file in files {
        match std::fs::read(&file) {
            Ok(bytes) => crate::emit(verdict_json(&scan(&bytes), lang, Some((&file, None)))),
            Err(e) => {
                failures += 1;
                eprintln!("rempart: {}: {e}", file.display());
            }
        }
    }
    if failures > 0 { Err(format!("{failures} file(s) could not be read")) } else { Ok(()) }
}

fn description<'a>(s: &'a rempart_model::SymbolHit, lang: &str) -> &'a str {
    if lang == "fr" { &s.description_fr } else { &s.description }
}

/// The JSON verdict; `source` names the file (and the message's 1-based index in an
/// mbox) in batch mode.
fn verdict_json(v: &Verdict, lang: &str, source: Option<(&Path, Option<usize>)>) -> serde_json::Value {
    let symbols: Vec<serde_json::Value> = v
        .symbols
        .iter()
        .map(|s| serde_json::json!({ "name": s.name, "score": s.score, "group": s.group, "description": description(s, lang), "detail": s.detail }))
        .collect();
    let mut doc =
        serde_json::json!({ "score": v.score, "action": v.action, "symbols": symbols, "elapsed_us": v.elapsed_us, "offline": v.offline });
    if let Some(listed) = &v.listed {
        doc["listed"] = listed.clone().into();
    }
    if let Some((file, index)) = source {
        doc["file"] = file.display().to_string().into();
        if let Some(i) = index {
            doc["message"] = i.into();
        }
    }
    doc
}

fn print_table(v: &Verdict, lang: &str) {
    crate::emit(format_args!(
        "score {:.2}  action {}{}",
        v.score,
        v.action,
        v.listed.as_ref().map(|l| format!("  ({l})")).unwrap_or_default()
    ));
    let width = v.symbols.iter().map(|s| s.name.len()).max().unwrap_or(6).max(6);
    for s in &v.symbols {
        let detail = s.detail.as_ref().map(|d| format!(" [{d}]")).unwrap_or_default();
        crate::emit(format_args!("{:>6.2}  {:<width$}  {}{detail}", s.score, s.name, description(s, lang)));
    }
}
