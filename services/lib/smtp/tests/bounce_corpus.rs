//! The bounce reader against ../shared/testdata/bounces: real reports from ~70 MTAs
//! with Sisimai's expected reasons. Prints the agreement on the scored rows (kind
//! `bounce`) and every disagreement (`cargo test -p rempart-smtp --test bounce_corpus
//! -- --nocapture`). The goal, asserted, is 85 % (86.0 % today, 509 of 592).

use std::path::PathBuf;

/// The agreement the reader must reach.
const FLOOR: f64 = 0.85;

fn corpus() -> Option<PathBuf> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../../shared/testdata/bounces");
    if path.join("expected.tsv").exists() {
        Some(path)
    } else {
        eprintln!("skipped: {} not found", path.display());
        None
    }
}

#[test]
fn reasons_agree_with_sisimai_on_the_shared_bounces() {
    let Some(dir) = corpus() else { return };
    let expected = std::fs::read_to_string(dir.join("expected.tsv")).expect("expected.tsv");
    let (mut scored, mut agreed, mut found) = (0, 0, 0);
    let mut disagreements = Vec::new();
    let mut by_reason: std::collections::BTreeMap<String, (usize, usize)> = Default::default();
    for row in expected.lines().skip(1) {
        let cols: Vec<&str> = row.split('\t').collect();
        if cols.len() < 10 || cols[8] != "bounce" {
            continue;
        }
        let (file, recipient, reason) = (cols[0], cols[2], cols[3]);
        scored += 1;
        let raw = std::fs::read(dir.join(file)).expect("bounce file");
        let report = rempart_smtp::bounce::parse(&raw);
        let recipients = report.map(|r| r.recipients).unwrap_or_default();
        let ours = recipients
            .iter()
            .find(|b| b.recipient.eq_ignore_ascii_case(recipient))
            .or_else(|| (recipients.len() == 1).then(|| &recipients[0]));
        if recipients.iter().any(|b| b.recipient.eq_ignore_ascii_case(recipient)) {
            found += 1;
        }
        let entry = by_reason.entry(reason.to_string()).or_default();
        entry.0 += 1;
        match ours {
            Some(b) if b.reason.as_str() == reason => {
                agreed += 1;
                entry.1 += 1;
            }
            other => disagreements.push(format!(
                "{file}\t{recipient}\texpected {reason}\tgot {}",
                other.map_or("nothing".to_string(), |b| format!("{} ({}) [{}] {:.150}", b.reason, b.recipient, b.status, b.diagnostic))
            )),
        }
    }
    for d in &disagreements {
        println!("{d}");
    }
    for (reason, (total, ok)) in &by_reason {
        println!("{reason:>16}: {ok}/{total}");
    }
    let agreement = agreed as f64 / scored as f64;
    println!("reason agreement: {agreed}/{scored} = {:.1} %; recipient found: {found}/{scored}", agreement * 100.0);
    assert!(agreement >= FLOOR, "agreement {:.1} % is below the floor of {:.0} %", agreement * 100.0, FLOOR * 100.0);
}

#[test]
fn messages_that_are_not_bounces_are_not_read_as_ones() {
    let Some(dir) = corpus() else { return };
    for entry in std::fs::read_dir(dir.join("not-bounces")).expect("not-bounces") {
        let path = entry.expect("entry").path();
        let raw = std::fs::read(&path).expect("read");
        assert!(rempart_smtp::bounce::parse(&raw).is_none(), "{} read as a bounce", path.display());
    }
}
