//! `rempart config check`.

use std::path::{Path, PathBuf};

use clap::Subcommand;

#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Validate a configuration file; errors name the file, line and field.
    #[command(after_help = crate::AFTER_HELP)]
    Check {
        /// The file to check (`-` for standard input); defaults to --config or ./rempart.toml.
        file: Option<PathBuf>,
        /// Print one JSON document on stdout instead of text.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(command: ConfigCommand, config: Option<&Path>) -> Result<(), String> {
    match command {
        ConfigCommand::Check { file, json } => check(file.as_deref().or(config), json),
    }
}

/// `rempart reload`: checks the file as `serve` would, then asks the running gateway
/// (its pid in `<data_dir>/rempart.pid`) to reload it with SIGHUP and waits for the
/// outcome it writes to `<data_dir>/reload.status`.
pub fn reload(config_path: Option<&Path>) -> Result<(), String> {
    let file = crate::config_file(config_path).ok_or("no configuration file: give --config FILE")?;
    let config = rempart_model::Config::load(&file).map_err(|e| e.to_string())?;
    let config = complete_check(&file, config).map_err(|e| e.to_string())?;
    let pid_path = rempart::reload::pid_path(&config);
    let pid = std::fs::read_to_string(&pid_path)
        .map_err(|e| format!("{}: {e} (is `rempart serve` running with this data_dir?)", pid_path.display()))?;
    let pid = pid.trim();
    if pid.parse::<u32>().is_err() {
        return Err(format!("{}: not a process id: {pid:?}", pid_path.display()));
    }
    // A stale pid file must not send SIGHUP to some other program.
    if let Ok(name) = std::fs::read_to_string(format!("/proc/{pid}/comm"))
        && !name.trim().starts_with("rempart")
    {
        return Err(format!("pid {pid} (from {}) is {}, not rempart: is the gateway running?", pid_path.display(), name.trim()));
    }
    let status_path = rempart::reload::status_path(&config);
    let before = std::fs::metadata(&status_path).and_then(|m| m.modified()).ok();
    let sent = std::process::Command::new("kill").args(["-HUP", pid]).status().map_err(|e| format!("kill: {e}"))?;
    if !sent.success() {
        return Err(format!("no gateway with pid {pid} (from {}): is it running?", pid_path.display()));
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        let now = std::fs::metadata(&status_path).and_then(|m| m.modified()).ok();
        if now.is_some() && now != before {
            let status = std::fs::read_to_string(&status_path).unwrap_or_default();
            let status = status.trim();
            crate::emit(format_args!("{}: {status}", file.display()));
            return if status.starts_with("refused") { Err("the gateway refused the configuration".into()) } else { Ok(()) };
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Err(format!("pid {pid} got SIGHUP but wrote no outcome to {} in 30 s; see its log", status_path.display()))
}

/// What a parse cannot check (certificate, DKIM keys, route CAs, the scanner's rules
/// and policies) is checked by building it, as `serve` and a reload do.
fn complete_check(file: &Path, config: rempart_model::Config) -> Result<rempart_model::Config, rempart_model::ConfigError> {
    let config = std::sync::Arc::new(config);
    rempart::reload::check(&config).map_err(|e| e.located(file))?;
    Ok(std::sync::Arc::unwrap_or_clone(config))
}

fn check(file: Option<&Path>, json: bool) -> Result<(), String> {
    let file = file.unwrap_or(Path::new("rempart.toml"));
    match rempart_model::Config::load(file).and_then(|config| complete_check(file, config)) {
        Ok(config) => {
            // What each domain's thresholds do, as bands (the harshest action reached wins).
            let bands: Vec<(String, String)> = std::iter::once(("[policy]".to_string(), config.policy.bands_line()))
                .chain(config.domains.iter().map(|d| (d.name.clone(), config.policy.with(&d.policy).bands_line())))
                .collect();
            if json {
                let doc = serde_json::json!({
                    "file": file.display().to_string(),
                    "valid": true,
                    "domains": config.domains.len(),
                    "bands": bands.iter().map(|(scope, line)| serde_json::json!({ "scope": scope, "bands": line })).collect::<Vec<_>>(),
                });
                crate::emit(format_args!("{doc}"));
            } else {
                crate::emit(format_args!(
                    "{}: OK ({} domain(s), {} listener(s))",
                    file.display(),
                    config.domains.len(),
                    config.smtp.listeners.len()
                ));
                let width = bands.iter().map(|(scope, _)| scope.len()).max().unwrap_or(0);
                crate::emit(format_args!("score bands (the harshest action reached applies):"));
                for (scope, line) in &bands {
                    crate::emit(format_args!("  {scope:width$}  {line}"));
                }
            }
            Ok(())
        }
        Err(e) => {
            if json {
                let doc = serde_json::json!({ "file": e.file, "valid": false, "line": e.line, "field": e.field, "error": e.message });
                crate::emit(format_args!("{doc}"));
            }
            Err(e.to_string())
        }
    }
}
