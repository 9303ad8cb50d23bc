//! `rempart queue …`: the mail waiting for delivery and the mail held, through the
//! running gateway's management API (`admin_client.rs`).

use clap::Subcommand;
use hyper::Method;
use serde_json::Value;

use crate::admin_client::AdminClient;
use crate::manage_cmd::segment;

#[derive(Subcommand)]
pub enum QueueCommand {
    /// The messages waiting (oldest first): queue id, received, attempts, next
    /// attempt or "held", sender, pending recipients, last reply.
    List {
        /// Held messages only.
        #[arg(long)]
        held: bool,
        /// A sender or recipient address or domain (part of it).
        #[arg(long)]
        address: Option<String>,
    },
    /// One message, as JSON.
    Show { queue_id: String },
    /// Keep it aside: the relay does not try it until it is released.
    Hold { queue_id: String },
    /// Deliver a held message again.
    Release { queue_id: String },
    /// Try it now instead of at its next scheduled attempt.
    Retry { queue_id: String },
    /// Give up now: its sender gets a DSN for the recipients not delivered yet.
    Bounce { queue_id: String },
    /// Remove it for good: not delivered, nobody told.
    Delete { queue_id: String },
}

pub fn run(command: QueueCommand, config_path: Option<&std::path::Path>) -> Result<(), String> {
    let (config, given) = crate::admin_config(config_path)?;
    crate::runtime()?.block_on(async {
        let api = AdminClient::connect(&config, given).await?;
        let act = |queue_id: &str, action: &str| format!("/api/v1/queue/{}/{action}", segment(queue_id));
        let (queue_id, action) = match &command {
            QueueCommand::List { held, address } => {
                let mut path = format!("/api/v1/queue?held={held}");
                if let Some(address) = address {
                    path.push_str(&format!("&address={}", segment(address)));
                }
                let answer = api.call(Method::GET, &path, None).await?;
                for m in answer["messages"].as_array().into_iter().flatten() {
                    crate::emit(line(m));
                }
                return Ok(());
            }
            QueueCommand::Show { queue_id } => {
                crate::emit(
                    serde_json::to_string_pretty(&api.call(Method::GET, &format!("/api/v1/queue/{}", segment(queue_id)), None).await?)
                        .unwrap_or_default(),
                );
                return Ok(());
            }
            QueueCommand::Hold { queue_id } => (queue_id, "hold"),
            QueueCommand::Release { queue_id } => (queue_id, "release"),
            QueueCommand::Retry { queue_id } => (queue_id, "retry"),
            QueueCommand::Bounce { queue_id } => (queue_id, "bounce"),
            QueueCommand::Delete { queue_id } => (queue_id, "delete"),
        };
        api.call(Method::POST, &act(queue_id, action), None).await?;
        eprintln!("{queue_id}: {action} done");
        Ok(())
    })
}

fn line(m: &Value) -> String {
    let text = |v: &Value, k: &str| v[k].as_str().unwrap_or("").to_string();
    let pending: Vec<&Value> = m["recipients"].as_array().into_iter().flatten().filter(|r| r["status"] == "pending").collect();
    let next = if m["held"].as_bool() == Some(true) {
        format!("held ({})", text(m, "held_reason"))
    } else if m["in_delivery"].as_bool() == Some(true) {
        "being delivered".into()
    } else {
        match m["next_attempt_ms"].as_u64() {
            Some(ms) if ms > 0 => rempart_model::date::iso_minute(ms / 1000),
            _ => "-".into(),
        }
    };
    format!(
        "{}\t{}\t{}\t{}\t{}\t{}\t{}",
        text(m, "queue_id"),
        rempart_model::date::iso_minute(m["received_at"].as_u64().unwrap_or(0)),
        m["attempts"].as_u64().unwrap_or(0),
        next,
        if text(m, "sender").is_empty() { "<>".into() } else { text(m, "sender") },
        pending.iter().map(|r| text(r, "address")).collect::<Vec<_>>().join(","),
        pending.first().map(|r| text(r, "reply")).unwrap_or_default()
    )
}
