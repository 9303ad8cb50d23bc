//! `rempart track`: where is a message? Searches the console's message tracking
//! through the management API (`admin_client.rs`): a list, newest first, or with
//! `--queue-id` one message's recipients and timeline.

use clap::Args;
use hyper::Method;
use serde_json::Value;

use crate::admin_client::AdminClient;

#[derive(Args)]
pub struct TrackArgs {
    /// The sender: an address, or a domain (example.com).
    #[arg(long)]
    sender: Option<String>,
    /// A recipient: an address, or a domain.
    #[arg(long)]
    recipient: Option<String>,
    #[arg(long)]
    message_id: Option<String>,
    /// One message: its recipients and timeline.
    #[arg(long)]
    queue_id: Option<String>,
    #[arg(long)]
    client_ip: Option<String>,
    /// From this day (YYYY-MM-DD).
    #[arg(long)]
    since: Option<String>,
    /// Until this day, included (YYYY-MM-DD).
    #[arg(long)]
    until: Option<String>,
    /// refused, greylisted, tempfail, queued, deferred, delivered, bounced,
    /// quarantined, held, discarded, deleted.
    #[arg(long)]
    status: Option<String>,
    /// At most this many messages (default 100, at most 1000).
    #[arg(long)]
    limit: Option<usize>,
    /// The API's JSON as it came.
    #[arg(long)]
    json: bool,
}

pub fn run(args: TrackArgs, config_path: Option<&std::path::Path>) -> Result<(), String> {
    let (config, given) = crate::admin_config(config_path)?;
    crate::runtime()?.block_on(async {
        let api = AdminClient::connect(&config, given).await?;
        if let Some(queue_id) = &args.queue_id {
            let message = api.call(Method::GET, &format!("/api/v1/tracking/{}", crate::manage_cmd::segment(queue_id)), None).await?;
            if args.json {
                crate::emit(message.to_string());
            } else {
                show(&message);
            }
            return Ok(());
        }
        let fields = [
            ("sender", &args.sender),
            ("recipient", &args.recipient),
            ("message_id", &args.message_id),
            ("client_ip", &args.client_ip),
            ("since", &args.since),
            ("until", &args.until),
            ("status", &args.status),
        ];
        let mut query: Vec<String> =
            fields.iter().filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", crate::manage_cmd::segment(v)))).collect();
        if let Some(limit) = args.limit {
            query.push(format!("limit={limit}"));
        }
        let answer = api.call(Method::GET, &format!("/api/v1/tracking?{}", query.join("&")), None).await?;
        if args.json {
            crate::emit(answer.to_string());
            return Ok(());
        }
        for m in answer["messages"].as_array().into_iter().flatten() {
            let recipients: Vec<&str> = m["recipients"].as_array().into_iter().flatten().filter_map(|r| r["address"].as_str()).collect();
            crate::emit(format!(
                "{}\t{}\t{}\t{}\t{}\t{}",
                when(m),
                text(m, "queue_id"),
                text(m, "status"),
                if text(m, "sender").is_empty() { "<>" } else { text(m, "sender") },
                recipients.join(","),
                text(m, "subject")
            ));
        }
        if answer["truncated"].as_bool() == Some(true) {
            eprintln!("rempart: the search stopped early; narrow it (a sender, a recipient, dates)");
        }
        Ok(())
    })
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or("")
}

fn when(m: &Value) -> String {
    rempart_model::date::iso_minute(m["first_ms"].as_u64().unwrap_or(0) / 1000)
}

fn show(m: &Value) {
    crate::emit(format!("queue id:   {}", text(m, "queue_id")));
    crate::emit(format!("status:     {}", text(m, "status")));
    crate::emit(format!("received:   {} from {} (HELO {})", when(m), text(m, "client_ip"), text(m, "helo")));
    crate::emit(format!("sender:     {}", text(m, "sender")));
    crate::emit(format!("subject:    {}", text(m, "subject")));
    crate::emit(format!("message-id: {}", text(m, "message_id")));
    for r in m["recipients"].as_array().into_iter().flatten() {
        crate::emit(format!("recipient:  {}\t{}\t{}", text(r, "address"), text(r, "status"), text(r, "reply")));
    }
    for step in m["timeline"].as_array().into_iter().flatten() {
        let at = rempart_model::date::iso_minute(step["at_ms"].as_u64().unwrap_or(0) / 1000);
        crate::emit(format!("  {at}  {:<13} {}", text(step, "what"), text(step, "detail")));
    }
}
