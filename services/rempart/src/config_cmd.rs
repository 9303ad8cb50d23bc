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

/// The scanner settings (symbol names, expressions, list entries) are checked by
/// building the scanner, as `serve` does.
fn scanner_check(file: &Path, config: rempart_model::Config) -> Result<rempart_model::Config, rempart_model::ConfigError> {
    match rempart_scanner::Scanner::new(&config) {
        Ok(_) => Ok(config),
        Err(e) => {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            let line = rempart_model::config::locate_field(&text, &e.field);
            Err(rempart_model::ConfigError { file: file.display().to_string(), line, field: e.field, message: e.message })
        }
    }
}

fn check(file: Option<&Path>, json: bool) -> Result<(), String> {
    let file = file.unwrap_or(Path::new("rempart.toml"));
    match rempart_model::Config::load(file).and_then(|config| scanner_check(file, config)) {
        Ok(config) => {
            if json {
                let doc = serde_json::json!({ "file": file.display().to_string(), "valid": true, "domains": config.domains.len() });
                crate::emit(format_args!("{doc}"));
            } else {
                crate::emit(format_args!(
                    "{}: OK ({} domain(s), {} listener(s))",
                    file.display(),
                    config.domains.len(),
                    config.smtp.listeners.len()
                ));
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
