//! A run: the built-in sink, the senders (open loop at a rate with a ramp, or closed
//! loop with N sessions), the drain, and the report.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::Semaphore;

use crate::client::{Session, SessionOptions};
use crate::messages::{MessageSource, Rng};
use crate::report::{Report, Stats};
use crate::scenario::Scenario;
use crate::sink::Sink;

pub struct RunOptions {
    pub targets: Vec<SocketAddr>,
    pub sink_listen: SocketAddr,
    pub out: PathBuf,
    pub seed: u64,
}

struct Shared {
    scenario: Scenario,
    options: SessionOptions,
    targets: Vec<SocketAddr>,
    source: MessageSource,
    stats: Mutex<Stats>,
    next_id: AtomicU64,
    next_target: AtomicUsize,
    /// `scenario.recipients_file`'s addresses (empty: generated recipients).
    recipients: Vec<String>,
}

pub async fn run(scenario: Scenario, options: RunOptions) -> Result<Report, String> {
    let source = MessageSource::new(&scenario.mix)?;
    let recipients = scenario.recipient_list()?;
    let started = Instant::now();
    let sink = Sink::start(options.sink_listen, scenario.sink_faults.clone(), started)
        .await
        .map_err(|e| format!("sink: cannot listen on {}: {e}", options.sink_listen))?;
    let shared = Arc::new(Shared {
        options: SessionOptions {
            pipelining: scenario.pipelining,
            starttls: scenario.starttls,
            proxy_client: scenario.proxy_client,
            auth: scenario.auth_user.clone().zip(scenario.auth_password.clone()),
            timeout: Duration::from_secs(60),
        },
        targets: options.targets.clone(),
        source,
        stats: Mutex::new(Stats::new(started)),
        next_id: AtomicU64::new(0),
        next_target: AtomicUsize::new(0),
        recipients,
        scenario,
    });
    let duration = shared.scenario.duration();
    let progress = progress_bar(duration);
    let ticker = {
        let (shared, progress, sink) = (shared.clone(), progress.clone(), sink.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                let (sent, accepted) = shared.stats.lock().map(|s| (s.sent, s.accepted)).unwrap_or_default();
                let received = sink.snapshot(|r| r.received.len()).unwrap_or(0);
                progress.set_position(started.elapsed().as_secs().min(duration.as_secs()));
                progress.set_message(format!("sent {sent}, accepted {accepted}, received {received}"));
            }
        })
    };

    let mut tasks = tokio::task::JoinSet::new();
    if shared.scenario.rate > 0.0 {
        open_loop(&shared, &mut tasks, started).await;
    } else {
        for task in 0..shared.scenario.sessions {
            let shared = shared.clone();
            let mut rng = Rng::new(options.seed ^ (task as u64 + 1).wrapping_mul(0x9e37_79b9));
            tasks.spawn(async move {
                while started.elapsed() < duration {
                    session(&shared, &mut rng).await;
                }
            });
        }
    }
    while tasks.join_next().await.is_some() {}
    let sending = started.elapsed();

    // Drain: wait until everything the gateway took is at the sink.
    progress.set_message("draining: waiting for accepted mail to reach the sink");
    let drain_until = Instant::now() + shared.scenario.drain.0;
    loop {
        let done = match (shared.stats.lock(), sink.records.lock()) {
            (Ok(stats), Ok(records)) => stats.all_arrived(&records),
            _ => true,
        };
        if done || Instant::now() >= drain_until {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A moment more for duplicates still in flight.
    tokio::time::sleep(Duration::from_millis(500)).await;
    ticker.abort();
    progress.finish_and_clear();

    let stats = shared.stats.lock().map_err(|_| "statistics lock poisoned")?;
    let records = sink.records.lock().map_err(|_| "sink lock poisoned")?;
    let report = Report::build(
        &stats,
        &records,
        &shared.scenario,
        options.targets.iter().map(ToString::to_string).collect(),
        shared.source.description.clone(),
        sending,
    );
    report.write(&options.out)?;
    Ok(report)
}

/// Sessions started at the scenario's rate (ramping linearly to it), whatever the
/// replies' latency; beyond `max_in_flight` waiting sessions, a send is counted as
/// overload instead of delaying the schedule.
async fn open_loop(shared: &Arc<Shared>, tasks: &mut tokio::task::JoinSet<()>, started: Instant) {
    let s = &shared.scenario;
    let (rate, ramp, duration) = (s.rate, s.ramp.0.as_secs_f64(), s.duration().as_secs_f64());
    let per_session = s.messages_per_session as f64;
    // Messages due by time t: the integral of the rate (a linear ramp, then flat).
    let due = |t: f64| if t < ramp { rate * t * t / (2.0 * ramp) } else { rate * ramp / 2.0 + rate * (t - ramp) };
    let permits = Arc::new(Semaphore::new(s.max_in_flight.max(1)));
    let mut launched = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(2));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        let t = started.elapsed().as_secs_f64();
        if t >= duration {
            break;
        }
        let target = (due(t) / per_session).floor() as u64;
        while launched < target {
            launched += 1;
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                if let Ok(mut stats) = shared.stats.lock() {
                    stats.overload += s.messages_per_session as u64;
                }
                continue;
            };
            let shared = shared.clone();
            let mut rng = Rng::new(launched.wrapping_mul(0x2545_f491_4f6c_dd1d));
            tasks.spawn(async move {
                session(&shared, &mut rng).await;
                drop(permit);
            });
        }
    }
}

/// One session: connect, EHLO (STARTTLS), `messages_per_session` messages, QUIT.
async fn session(shared: &Shared, rng: &mut Rng) {
    let s = &shared.scenario;
    let target = shared.targets[shared.next_target.fetch_add(1, Ordering::Relaxed) % shared.targets.len()];
    let mut remaining = s.messages_per_session as u64;
    let mut session = match Session::open(target, shared.options.clone()).await {
        Ok((session, opened)) => {
            if let Ok(mut stats) = shared.stats.lock() {
                stats.opened(&opened);
            }
            session
        }
        Err(e) => {
            if let Ok(mut stats) = shared.stats.lock() {
                stats.error(remaining, &kind(&e.to_string()));
            }
            return;
        }
    };
    while remaining > 0 {
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        let recipients: Vec<String> = (0..s.recipients_per_message).map(|k| s.recipient(&shared.recipients, id, k)).collect();
        let sender = s.sender_for(id);
        let message = shared.source.message(id, rng, &sender);
        match session.send(&sender, &recipients, &message).await {
            Ok(sent) => {
                if let Ok(mut stats) = shared.stats.lock() {
                    stats.message(id, &sent);
                }
                remaining -= 1;
            }
            Err(e) => {
                if let Ok(mut stats) = shared.stats.lock() {
                    stats.error(remaining, &kind(&e.to_string()));
                }
                return;
            }
        }
    }
    session.quit().await;
}

/// An error's kind, without the parts that vary (addresses, counts).
fn kind(error: &str) -> String {
    error.split(" (os error").next().unwrap_or(error).chars().take(80).collect()
}

fn progress_bar(duration: Duration) -> ProgressBar {
    if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(duration.as_secs().max(1));
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} {bar:30} {pos}/{len} s  {msg}").unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}
