//! The time to show the first page of a quarantine of 100,000 messages: as the
//! operator (whole time index), as a domain admin of one domain in ten (domain index),
//! and with a subject search that matches nothing (the worst case: a full scan).
//!   cargo bench -p rempart-console --bench quarantine_list

use std::time::Instant;

use rempart_console::quarantine::{Entry, QuarantineStore, Query, Scope};
use rempart_model::{Action, Envelope, QueueId, Recipient, SymbolHit, Verdict};

const MESSAGES: usize = 100_000;
const DOMAINS: usize = 10;

fn entry(i: usize) -> Entry {
    let domain = format!("d{}.test", i % DOMAINS);
    let verdict = Verdict {
        score: 7.5,
        action: Action::Quarantine,
        symbols: vec![SymbolHit {
            name: "BAYES_99".into(),
            score: 3.5,
            group: "bayes".into(),
            description: "Bayes spam probability is 99 to 100%".into(),
            description_fr: "Probabilité bayésienne de spam de 99 à 100 %".into(),
            detail: None,
        }],
        listed: None,
        scanner_id: "bench".into(),
        elapsed_us: 0,
        offline: true,
        edits: Default::default(),
        refusal: None,
        malware: None,
    };
    let recipients = vec![Recipient::new(format!("user{}@{domain}", i % 500))];
    let mut envelope = Envelope::new(QueueId::from_string(format!("B{i:011}")), format!("sender{i}@spam.example"), recipients, 0);
    envelope.verdict = Some(verdict);
    let body = format!("Subject: Offer number {i}\r\n\r\nbody\r\n");
    Entry::from_envelope(envelope, body.as_bytes(), 1_700_000_000 + i as u64)
}

fn time(label: &str, runs: usize, mut f: impl FnMut() -> usize) {
    let mut best = f64::MAX;
    let mut total = 0.0;
    let mut shown = 0;
    for _ in 0..runs {
        let start = Instant::now();
        shown = f();
        let ms = start.elapsed().as_secs_f64() * 1000.0;
        best = best.min(ms);
        total += ms;
    }
    println!("{label:<58} {shown:>3} rows  best {best:>8.2} ms  mean {:>8.2} ms", total / runs as f64);
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = QuarantineStore::open(dir.path()).expect("open");
    let start = Instant::now();
    for chunk in (0..MESSAGES).collect::<Vec<_>>().chunks(10_000) {
        let batch: Vec<Entry> = chunk.iter().map(|&i| entry(i)).collect();
        store.index(&batch).expect("index");
    }
    println!("indexed {MESSAGES} entries in {:.1} s", start.elapsed().as_secs_f64());
    let page = |scope: &Scope, query: &Query| store.list(scope, query, 0, 50).expect("list").entries.len();
    time("operator, first page of 50", 20, || page(&Scope::All, &Query::default()));
    time("operator, page 100 (entries 5000-5049)", 5, || store.list(&Scope::All, &Query::default(), 100, 50).expect("list").entries.len());
    let one_domain = Scope::Domains(vec!["d3.test".into()]);
    time("domain admin (1 domain of 10), first page", 20, || page(&one_domain, &Query::default()));
    time("user (one address), first page", 5, || page(&Scope::Addresses(vec!["user3@d3.test".into()]), &Query::default()));
    let nothing = Query { subject: "no such subject".into(), ..Query::default() };
    time("operator, subject search matching nothing (full scan)", 3, || page(&Scope::All, &nothing));
}
