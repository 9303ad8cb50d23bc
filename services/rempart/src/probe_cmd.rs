//! `rempart probe ADDRESS|DOMAIN [--data] [--json]`: simulate sending to an address, step
//! by step, printing each reply with what it means and what to do (the support desk's
//! "why does my mail not arrive?"). Uses the configuration's `[dns]` and hostname; a
//! customer domain is probed at its route.

use clap::Args;
use rempart_relay::probe::{Probe, ProbeOptions};

#[derive(Args)]
pub struct ProbeArgs {
    /// The address to probe (its RCPT is asked), or a domain (postmaster@ it is asked).
    target: String,
    /// The MAIL FROM of the probe. Default: postmaster@ this gateway's hostname.
    #[arg(long)]
    from: Option<String>,
    /// Also send a short test message after RCPT (it is delivered if accepted).
    #[arg(long)]
    data: bool,
    /// The port of outside MX hosts. Default: `[relay] mx_port` (25).
    #[arg(long)]
    port: Option<u16>,
    /// Longest wait for the connection and each reply, in seconds.
    #[arg(long, default_value_t = 15)]
    timeout: u64,
    /// One JSON object: `{target, recipient, accepted, steps: [{step, sent, code, reply,
    /// ok, meaning, advice, millis}]}`.
    #[arg(long)]
    json: bool,
}

/// Exit status 0 when the recipient (and the message, with --data) would be accepted;
/// the error names the step that failed.
pub fn run(args: ProbeArgs, config_path: Option<&std::path::Path>) -> Result<(), String> {
    let config = crate::load_config(config_path)?;
    if args.target.trim().is_empty() {
        return Err("probe: give an address or a domain".into());
    }
    let options = ProbeOptions {
        target: args.target.clone(),
        from: args.from.clone().unwrap_or_else(|| format!("postmaster@{}", config.smtp.hostname)),
        data: args.data,
        port: args.port.unwrap_or(config.relay.mx_port),
        timeout: std::time::Duration::from_secs(args.timeout.max(1)),
    };
    let probe = crate::runtime()?.block_on(async {
        let resolver = rempart_smtp_client::mx::resolver(&config.dns);
        rempart_relay::probe::probe(&config, resolver.as_ref(), &options).await
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&probe).map_err(|e| e.to_string())?);
    } else {
        print_steps(&probe);
    }
    if probe.accepted {
        return Ok(());
    }
    let failed = probe.steps.iter().rfind(|s| !s.ok).map(|s| s.step).unwrap_or("probe");
    Err(format!("mail to {} would not be delivered now (failed at: {failed})", probe.recipient))
}

fn print_steps(probe: &Probe) {
    println!("Probing delivery to {}", probe.recipient);
    for (i, step) in probe.steps.iter().enumerate() {
        let mark = if step.ok { "ok " } else { "!! " };
        println!("{:>2}. {mark}{} ({} ms)", i + 1, step.step, step.millis);
        if let Some(sent) = &step.sent {
            println!("      -> {sent}");
        }
        println!("      <- {}", step.reply);
        println!("      {}", step.meaning);
        if let Some(advice) = &step.advice {
            println!("      what to do: {advice}");
        }
    }
    println!("{}", if probe.accepted { "Result: this mail would be accepted." } else { "Result: this mail would NOT be accepted now." });
}
