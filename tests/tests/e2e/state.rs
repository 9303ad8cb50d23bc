//! Shared state end to end: greylisting and the AWL through the real SMTP edge with
//! swaks, greylisting shared by two gateways on one real nats-server, and the Bayes
//! classifier trained with `rempart learn` changing what `rempart score` says.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use rempart_tests::gateway::run_rempart as rempart;
use rempart_tests::nats::NatsServer;
use rempart_tests::{Gateway, Sink, SinkMode, message, training_message};

/// swaks from 127.0.0.1 (so from 127.0.0.0/24): the whole transcript and success.
fn swaks(gw: &Gateway, from: &str, to: &str) -> (bool, String) {
    let out = Command::new("swaks")
        .args(["--server", &gw.addr(), "--ehlo", "client.test", "--from", from, "--to", to, "--body", "Hello from the test"])
        .output()
        .expect("swaks is installed by scripts/setup.sh");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).to_string())
}

fn config(sink: &Sink, extra: &str) -> String {
    format!(
        "[smtp]\nhostname = \"gw.test\"\n[[smtp.listener]]\naddress = \"{{listen}}\"\n[queue]\ndata_dir = \"{{data}}\"\n{extra}\n\
         [[domain]]\nname = \"example.com\"\nroute = \"{route}\"\n\
         [[domain]]\nname = \"nogrey.example\"\nroute = \"{route}\"\ngreylisting = false\n\
         [[domain]]\nname = \"clean.example\"\nroute = \"{route}\"\npolicy = {{ greylist = 50.0 }}\n",
        route = sink.route()
    )
}

/// Every message is in the greylist band (threshold -100), retries wait 2 s.
const GREYLIST_EVERYTHING: &str = "[policy]\ngreylist = -100.0\n[greylist]\nmin_delay = \"2s\"\n";

#[test]
fn greylisting_first_attempt_451_retry_passes_then_known_network_passes_at_once() {
    let sink = Sink::start(SinkMode::Accept);
    let gw = Gateway::start(&config(&sink, GREYLIST_EVERYTHING));

    let (ok, first) = swaks(&gw, "alice@sender.test", "bob@example.com");
    assert!(!ok, "{first}");
    let line = first.lines().find(|l| l.contains("451 4.7.1")).unwrap_or_else(|| panic!("no 451 4.7.1:\n{first}"));
    assert!(line.contains("Greylisted (first delivery attempt): please retry in 1 minute(s)"), "{line}");

    let (ok, early) = swaks(&gw, "alice@sender.test", "bob@example.com");
    assert!(!ok && early.contains("451 4.7.1 Greylisted (retried too soon)"), "{early}");

    std::thread::sleep(Duration::from_millis(2200));
    let (ok, retry) = swaks(&gw, "alice@sender.test", "bob@example.com");
    assert!(ok, "the retry after the minimum delay passes:\n{retry}");

    // Next message from the same network and sender domain, another sender and
    // recipient: at once.
    let (ok, next) = swaks(&gw, "carol@sender.test", "dave@example.com");
    assert!(ok, "known network and sender domain pass at once:\n{next}");
    // Another sender domain is a stranger again.
    let (ok, stranger) = swaks(&gw, "eve@other.test", "bob@example.com");
    assert!(!ok && stranger.contains("451 4.7.1 Greylisted (first delivery attempt)"), "{stranger}");
    // A domain with greylisting off, and a domain whose band is above this score.
    let (ok, off) = swaks(&gw, "eve@other.test", "bob@nogrey.example");
    assert!(ok, "greylisting = false for this domain:\n{off}");
    let (ok, clean) = swaks(&gw, "frank@third.test", "bob@clean.example");
    assert!(ok, "clean mail (below the greylist band) is never delayed:\n{clean}");

    assert_eq!(sink.wait_for(4, Duration::from_secs(15)).len(), 4);
    assert!(gw.log().contains("greylisted") && gw.log().contains("greylisting passed"), "{}", gw.log());
}

#[test]
fn greylisting_survives_a_restart_of_the_gateway() {
    let sink = Sink::start(SinkMode::Accept);
    let mut gw = Gateway::start(&config(&sink, GREYLIST_EVERYTHING));
    let (ok, first) = swaks(&gw, "alice@sender.test", "bob@example.com");
    assert!(!ok, "{first}");
    assert!(gw.terminate(Duration::from_secs(10)));
    std::thread::sleep(Duration::from_millis(2200));
    gw.restart();
    let (ok, retry) = swaks(&gw, "alice@sender.test", "bob@example.com");
    assert!(ok, "the first attempt was remembered in the redb file:\n{retry}");
}

#[test]
fn greylisting_is_shared_by_two_gateways_on_nats() {
    let nats = NatsServer::start();
    let sink = Sink::start(SinkMode::Accept);
    let shared = format!("{GREYLIST_EVERYTHING}[state]\nbackend = \"nats\"\nnats_url = \"{}\"\n", nats.url());
    let edge_a = Gateway::start(&config(&sink, &shared));
    let edge_b = Gateway::start(&config(&sink, &shared));
    let (ok, first) = swaks(&edge_a, "alice@sender.test", "bob@example.com");
    assert!(!ok && first.contains("451 4.7.1"), "{first}");
    std::thread::sleep(Duration::from_millis(2200));
    let (ok, retry) = swaks(&edge_b, "alice@sender.test", "bob@example.com");
    assert!(ok, "the retry through the other gateway passes:\n{retry}");
    let (ok, next) = swaks(&edge_a, "carol@sender.test", "dave@example.com");
    assert!(ok, "and the pass is known to the first one:\n{next}");
}

#[test]
fn awl_pulls_a_senders_score_toward_its_history() {
    let sink = Sink::start(SinkMode::Accept);
    let gw = Gateway::start(&config(&sink, "[greylist]\nenabled = false\n[policy]\nadd_header = 5.0\n"));
    // A spammy message (see verdicts.rs), then a clean one from the same sender.
    let spammy = "From: Promo <promo@sender.test>\r\nSubject: Great offer\r\nContent-Type: text/html\r\n\r\n<html><a hReF=\"http://shop.example\">Buy now</a></html>\r\n";
    let swaks_data = |from: &str, data: &str| {
        let file = gw.dir.path().join("msg.eml");
        std::fs::write(&file, data).unwrap();
        let out = Command::new("swaks")
            .args(["--server", &gw.addr(), "--ehlo", "client.test", "--from", from, "--to", "bob@example.com", "--data"])
            .arg(format!("@{}", file.display()))
            .output()
            .expect("swaks is installed by scripts/setup.sh");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    };
    swaks_data("promo@sender.test", spammy);
    // The history is written in the background, after the reply (within 250 ms).
    std::thread::sleep(Duration::from_millis(1000));
    swaks_data("promo@sender.test", &message("clean"));
    // Another sender is not affected.
    swaks_data("someone@else.test", &message("clean"));
    sink.wait_for(3, Duration::from_secs(15));
    let log = gw.log();
    let verdicts: Vec<&str> = log.lines().filter(|l| l.contains("\"message\":\"verdict\"")).collect();
    assert_eq!(verdicts.len(), 3, "{log}");
    assert!(!verdicts[0].contains("AWL"), "no history yet: {}", verdicts[0]);
    // The clean message scores 0: the AWL pulls it halfway to the spammy one's score.
    let halfway = rempart_tests::rules_only_score(spammy).parse::<f64>().expect("a score") / 2.0;
    let score = verdicts[1].split("\"score\":").nth(1).and_then(|s| s.split([',', '}']).next()).and_then(|s| s.parse::<f64>().ok());
    assert!(
        verdicts[1].contains("AWL(") && score.is_some_and(|s| (s - halfway).abs() < 0.011),
        "pulled halfway to {halfway}: {}",
        verdicts[1]
    );
    assert!(!verdicts[2].contains("AWL"), "{}", verdicts[2]);
}

#[test]
fn bayes_trained_from_the_cli_changes_score_verdicts() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    std::fs::write(cwd.join("rempart.toml"), "[queue]\ndata_dir = \"data\"\n[dns]\noffline = true\n[bayes]\nmin_learned = 20\n").unwrap();
    for class in ["spam", "ham"] {
        std::fs::create_dir_all(cwd.join(class)).unwrap();
        for i in 0..25 {
            std::fs::write(cwd.join(class).join(format!("{i}.eml")), training_message(class, i)).unwrap();
        }
    }
    let probe = "From: x@new.test\r\nTo: bob@example.com\r\nSubject: Cheap pills\r\nMessage-ID: <probe@new.test>\r\nDate: Mon, 23 Nov 2026 11:00:00 +0000\r\n\r\nBest offer on viagra pills, order now\r\n";
    std::fs::write(cwd.join("probe.eml"), probe).unwrap();
    let score = |cwd: &Path| -> serde_json::Value {
        let out = rempart(&["score", "--json", "probe.eml"], cwd, None);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("one JSON document")
    };
    let before = score(cwd);
    assert!(before["symbols"].as_array().unwrap().iter().all(|s| !s["name"].as_str().unwrap().starts_with("BAYES")), "{before}");

    // `bayes stats` before anything is learned creates nothing.
    let out = rempart(&["bayes", "stats", "--json"], cwd, None);
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((stats["spam"].as_i64(), stats["votes"].as_bool()), (Some(0), Some(false)), "{stats}");
    assert_eq!(stats["weights"], "rules_only", "{stats}");
    assert!(!cwd.join("data").exists());

    let out = rempart(&["learn", "--spam", "spam", "--json"], cwd, None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let learned: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(learned["learned"], 25, "{learned}");
    assert!(out.stderr.is_empty(), "no progress bar when stderr is not a terminal: {}", String::from_utf8_lossy(&out.stderr));
    let out = rempart(&["learn", "--ham", "ham"], cwd, None);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ham: 25 learned, 0 moved from the other class, 0 already learned");

    // Learned twice: counted once. Relearned as the other class: moved.
    let out = rempart(&["learn", "--spam", "spam", "--json"], cwd, None);
    let again: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((again["learned"].as_u64(), again["duplicates"].as_u64()), (Some(0), Some(25)), "{again}");
    let out = rempart(&["learn", "--ham", "-", "--json"], cwd, Some(training_message("spam", 0).as_bytes()));
    let moved: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(moved["moved"], 1, "{moved}");

    let out = rempart(&["bayes", "stats", "--json"], cwd, None);
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((stats["spam"].as_i64(), stats["ham"].as_i64(), stats["votes"].as_bool()), (Some(24), Some(26), Some(true)), "{stats}");
    assert_eq!(stats["weights"], "with_bayes", "{stats}");
    assert!(stats["tokens"].as_u64().unwrap() > 20 && stats["version"].as_i64().unwrap() == 51, "{stats}");

    let after = score(cwd);
    let names: Vec<&str> = after["symbols"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"BAYES_99"), "{after}");
    // The vote is shown, and the words it learned count toward spam. (Once Bayes votes
    // the weights fitted with it apply: the rules that Bayes explains weigh less, so a
    // model of 25 + 25 messages need not raise the whole score.)
    let regression =
        after["symbols"].as_array().unwrap().iter().find(|s| s["name"] == "TOKEN_REGRESSION").map(|s| s["score"].as_f64().unwrap());
    assert!(regression.is_some_and(|points| points > 0.0), "before {before}\nafter {after}");

    // Bad input: named, exit 1; usage errors exit 2.
    let out = rempart(&["learn", "--spam", "missing-dir/x.eml"], cwd, None);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing-dir/x.eml"), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(rempart(&["learn", "spam"], cwd, None).status.code(), Some(2), "--spam or --ham is required");
    std::fs::write(cwd.join("notes.txt"), "just some notes\nkey: value\n").unwrap();
    std::fs::write(cwd.join("image.png"), b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR").unwrap();
    let out = rempart(&["learn", "--spam", "notes.txt", "image.png"], cwd, None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("notes.txt: not a mail message") && stderr.contains("image.png: not a mail message"), "{stderr}");

    // Without a configuration, it says which store it uses.
    let bare = tempfile::tempdir().unwrap();
    let out = rempart(&["learn", "--ham", "-"], bare.path(), Some(training_message("ham", 0).as_bytes()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.contains("no --config and no ./rempart.toml") && stderr.contains("rempart-data"), "{stderr}");
    assert_eq!(rempart(&["learn", "--spam", "--ham", "spam"], cwd, None).status.code(), Some(2));
}

#[test]
fn learn_reads_mbox_files() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    std::fs::write(cwd.join("rempart.toml"), "[queue]\ndata_dir = \"data\"\n").unwrap();
    let mut mbox = String::new();
    for i in 0..3 {
        mbox.push_str(&format!("From spam{i}@spam.test Mon Nov 23 10:00:00 2026\n{}\n", training_message("spam", i).replace("\r\n", "\n")));
    }
    std::fs::write(cwd.join("spam.mbox"), mbox).unwrap();
    let out = rempart(&["learn", "--spam", "spam.mbox", "--json"], cwd, None);
    let learned: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(learned["learned"], 3, "{learned}");
}

/// A node scans the store several times a second (the managed domains, the pending
/// ones, the DKIM keys): each scan's consumer is removed at once. Before, they lived
/// 30 s on the server and every scan was refused once the stream's consumer limit
/// was reached ("maximum consumers limit reached", seen under the cluster test).
#[test]
fn thousands_of_scans_on_nats_leave_no_consumer_behind() {
    use rempart_state::Store;
    let nats = NatsServer::start();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let consumers = runtime.block_on(async {
        let store = rempart_state::NatsStore::connect(&nats.url(), "scans", 1).await.expect("store");
        store.put("domain.a", b"1", None).await.expect("put");
        for i in 0..2_000 {
            let found = store.scan_prefix("domain.", 10).await.unwrap_or_else(|e| panic!("scan {i}: {e}"));
            assert_eq!(found.len(), 1);
            assert!(store.scan_prefix("nothing.", 10).await.expect("empty scan").is_empty());
        }
        let client = async_nats::connect(nats.url()).await.expect("connect");
        let mut stream = async_nats::jetstream::new(client).get_stream("KV_scans").await.expect("the bucket's stream");
        stream.info().await.expect("info").state.consumer_count
    });
    assert_eq!(consumers, 0, "scan consumers left on the server");
}
