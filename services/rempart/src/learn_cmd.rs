//! `rempart learn --spam|--ham PATH…` and `rempart bayes stats`: train the Bayes
//! classifier in the configured state store (the one `serve` and `score` use).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use rempart_scanner::tokens;
use rempart_state::bayes::{Bayes, Class, Learned};

#[derive(Args)]
#[command(group(clap::ArgGroup::new("class").required(true).args(["spam", "ham"])))]
pub struct LearnArgs {
    /// Learn the messages as spam.
    #[arg(long)]
    spam: bool,
    /// Learn the messages as ham (wanted mail).
    #[arg(long)]
    ham: bool,
    /// Message files, directories of them, or mbox files (`-`: one message on stdin).
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Print one JSON document on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
pub enum BayesCommand {
    /// Messages learned, tokens and model version.
    Stats {
        /// Print one JSON document on stdout.
        #[arg(long)]
        json: bool,
    },
}

/// Messages learned at once: enough for the embedded store to group-commit them.
const IN_FLIGHT: usize = 32;

#[derive(Default, serde::Serialize)]
struct Counts {
    learned: u64,
    moved: u64,
    duplicates: u64,
}

pub fn learn(args: LearnArgs, config_path: Option<&Path>) -> Result<(), String> {
    let config = crate::load_config(config_path)?;
    crate::say_which_store(&config, config_path);
    let class = if args.spam { Class::Spam } else { Class::Ham };
    let runtime = crate::runtime()?;
    let state = runtime.block_on(crate::open_state(&config, true))?.ok_or("the Bayes classifier needs a state store")?;
    let bayes = state.bayes.clone().ok_or("the Bayes classifier is disabled ([bayes] enabled = false)")?;

    // Gather the messages first (cheap: paths and mbox offsets), to size the progress bar.
    let mut errors = Vec::new();
    let mut sources = Vec::new();
    for path in &args.paths {
        collect(path, &mut sources, &mut errors);
    }
    let progress = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        let bar = ProgressBar::new(sources.len() as u64);
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} messages, {per_sec}, eta {eta} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut counts = Counts::default();
    runtime.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for source in sources {
            if tasks.len() >= IN_FLIGHT
                && let Some(done) = tasks.join_next().await
            {
                tally(&mut counts, &mut errors, done);
                progress.inc(1);
            }
            let (bayes, store) = (bayes.clone(), state.store.clone());
            tasks.spawn(async move { learn_one(&bayes, &*store, source, class).await });
        }
        while let Some(done) = tasks.join_next().await {
            tally(&mut counts, &mut errors, done);
            progress.inc(1);
        }
    });
    progress.finish_and_clear();
    runtime.block_on(rempart_state::announce_learning(&state));
    let class_name = if args.spam { "spam" } else { "ham" };
    if args.json {
        let mut doc = serde_json::to_value(&counts).map_err(|e| e.to_string())?;
        doc["class"] = class_name.into();
        doc["errors"] = errors.iter().map(|e| serde_json::Value::from(e.as_str())).collect();
        crate::emit(doc);
    } else {
        crate::emit(format_args!(
            "{class_name}: {} learned, {} moved from the other class, {} already learned",
            counts.learned, counts.moved, counts.duplicates
        ));
    }
    for e in &errors {
        eprintln!("rempart: {e}");
    }
    if errors.is_empty() { Ok(()) } else { Err(format!("{} input(s) could not be read", errors.len())) }
}

/// One message to learn: a file, or one message of an mbox.
enum Source {
    File(PathBuf),
    Bytes(String, Vec<u8>),
}

fn collect(path: &Path, out: &mut Vec<Source>, errors: &mut Vec<String>) {
    if path == Path::new("-") {
        let mut bytes = Vec::new();
        match std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes) {
            Ok(_) => out.push(Source::Bytes("standard input".into(), bytes)),
            Err(e) => errors.push(format!("standard input: {e}")),
        }
        return;
    }
    if path.is_dir() {
        let entries = match std::fs::read_dir(path) {
            Ok(entries) => entries,
            Err(e) => return errors.push(format!("{}: {e}", path.display())),
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
            .collect();
        files.sort();
        for file in files {
            collect(&file, out, errors);
        }
        return;
    }
    // An mbox is split here; any other file is one message, read when learned.
    let mut head = [0u8; 5];
    let is_mbox = std::fs::File::open(path).and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head)).is_ok() && &head == b"From ";
    if !is_mbox {
        return out.push(Source::File(path.to_path_buf()));
    }
    match std::fs::read(path) {
        Ok(bytes) => {
            let messages = rempart_model::mbox::split(&bytes);
            if messages.is_empty() {
                out.push(Source::Bytes(path.display().to_string(), bytes));
            }
            for (i, message) in messages.into_iter().enumerate() {
                out.push(Source::Bytes(format!("{} message {}", path.display(), i + 1), message));
            }
        }
        Err(e) => errors.push(format!("{}: {e}", path.display())),
    }
}

/// Teaches Bayes and the memory of campaigns one message.
async fn learn_one(bayes: &Bayes, store: &dyn rempart_state::Store, source: Source, class: Class) -> Result<Learned, String> {
    let (name, bytes) = match source {
        Source::File(path) => {
            let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            (path.display().to_string(), bytes)
        }
        Source::Bytes(name, bytes) => (name, bytes),
    };
    let not_mail = || format!("{name}: not a mail message (no From, To, Date, Subject, Received or Message-ID header): not learned");
    if !looks_like_mail(&bytes) {
        return Err(not_mail());
    }
    let (learnable, fingerprint) = tokens::learnable_with_fingerprint(&bytes);
    let (identity, tokens) = learnable.ok_or_else(not_mail)?;
    rempart_state::fuzzy::remember(store, &fingerprint, class).await.map_err(|e| format!("{name}: {e}"))?;
    bayes.learn(identity, class, &tokens).await.map_err(|e| format!("{name}: {e}"))
}

/// Whether `bytes` start with a header block naming at least one header every mail
/// has: a text file, an image or an archive learned by mistake would teach the model
/// noise.
fn looks_like_mail(bytes: &[u8]) -> bool {
    const HEADERS: [&[u8]; 7] = [b"from", b"to", b"date", b"subject", b"received", b"message-id", b"return-path"];
    let head = &bytes[..bytes.len().min(64 * 1024)];
    for line in head.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return false;
        }
        if line.contains(&0) {
            return false;
        }
        if let Some(colon) = line.iter().position(|&b| b == b':') {
            let name = line[..colon].trim_ascii();
            if HEADERS.iter().any(|h| name.eq_ignore_ascii_case(h)) {
                return true;
            }
        }
    }
    false
}

fn tally(counts: &mut Counts, errors: &mut Vec<String>, done: Result<Result<Learned, String>, tokio::task::JoinError>) {
    match done {
        Ok(Ok(Learned::New)) => counts.learned += 1,
        Ok(Ok(Learned::Moved)) => counts.moved += 1,
        Ok(Ok(Learned::Duplicate)) => counts.duplicates += 1,
        Ok(Err(e)) => errors.push(e),
        Err(e) => errors.push(format!("learning task failed: {e}")),
    }
}

pub fn bayes(command: BayesCommand, config_path: Option<&Path>) -> Result<(), String> {
    let BayesCommand::Stats { json } = command;
    let config = crate::load_config(config_path)?;
    crate::say_which_store(&config, config_path);
    let runtime = crate::runtime()?;
    let state: Option<Arc<rempart_state::SharedState>> = runtime.block_on(crate::open_state(&config, false))?;
    let bayes = state.as_ref().and_then(|s| s.bayes.clone());
    let stats = match &bayes {
        Some(bayes) => runtime.block_on(bayes.stats()).map_err(|e| format!("state: {e}"))?,
        None => rempart_state::bayes::BayesStats { version: 0, spam_messages: 0, ham_messages: 0, tokens: 0 },
    };
    let min = config.bayes.min_learned;
    let votes = bayes.is_some() && stats.spam_messages >= min as i64 && stats.ham_messages >= min as i64;
    if json {
        crate::emit(serde_json::json!({
            "backend": format!("{:?}", config.state.backend).to_lowercase(),
            "enabled": config.bayes.enabled,
            "spam": stats.spam_messages,
            "ham": stats.ham_messages,
            "tokens": stats.tokens,
            "version": stats.version,
            "min_learned": min,
            "votes": votes,
            "weights": if votes { "with_bayes" } else { "rules_only" },
        }));
    } else {
        crate::emit(format_args!("backend      {:?}", config.state.backend));
        crate::emit(format_args!("spam         {}", stats.spam_messages));
        crate::emit(format_args!("ham          {}", stats.ham_messages));
        crate::emit(format_args!("tokens       {}", stats.tokens));
        crate::emit(format_args!("version      {}", stats.version));
        let why = if votes { "yes".to_string() } else { format!("no (needs {min} spam and {min} ham)") };
        crate::emit(format_args!("votes        {why}"));
        let weights = if votes { "with Bayes ([weights])" } else { "rules only ([weights_without_bayes]) until Bayes votes" };
        crate::emit(format_args!("weights      {weights}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::looks_like_mail;

    #[test]
    fn only_mail_is_learned() {
        assert!(looks_like_mail(b"Received: from x\r\nSubject: hi\r\n\r\nbody"));
        assert!(looks_like_mail(b"X-Spam: yes\nFrom: a@b.test\n\nbody"));
        assert!(!looks_like_mail(b"just some text\nwith lines\n"));
        assert!(!looks_like_mail(b"key: value\nother: thing\n\nbody"));
        assert!(!looks_like_mail(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"));
        assert!(!looks_like_mail(b""));
    }
}
