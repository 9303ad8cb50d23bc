//! `rempart dkim generate DOMAIN SELECTOR`: a new ed25519 signing key, written to a file
//! only its owner can read, and the DNS record to publish for it.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};

#[derive(Subcommand)]
pub enum DkimCommand {
    /// Create an ed25519 key (RFC 8463) and print its DNS TXT record. RSA keys come from
    /// `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048`; both load
    /// through `[[domain.dkim]] key_file`.
    Generate(GenerateArgs),
}

#[derive(Args)]
pub struct GenerateArgs {
    domain: String,
    selector: String,
    /// Where to write the private key (PEM). Default `<selector>.<domain>.pem`.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

pub fn run(command: DkimCommand) -> Result<(), String> {
    let DkimCommand::Generate(args) = command;
    let out = args.out.unwrap_or_else(|| PathBuf::from(format!("{}.{}.pem", args.selector, args.domain)));
    let (pem, record) = rempart_edge::dkim::generate_ed25519()?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    file.write_all(pem.as_bytes()).map_err(|e| format!("{}: {e}", out.display()))?;
    eprintln!("private key written to {} (add it as [[domain.dkim]] key_file, selector {:?})", out.display(), args.selector);
    println!("{}._domainkey.{}. IN TXT \"{record}\"", args.selector, args.domain.trim_end_matches('.'));
    Ok(())
}
