//! The load harness against the real `rempart serve`: short bounded runs whose counts
//! must reconcile exactly, a sink that fails for a window (retries, still zero loss),
//! tempfailed accounting, and the report files. No timing assertions.

use std::path::Path;
use std::process::{Command, Output};

use rempart_tests::gateway::loadtest_bin;
use rempart_tests::{Gateway, free_port};

fn gateway(sink_port: u16, extra: &str) -> Gateway {
    Gateway::start(&format!(
        "[smtp]\nhostname = \"gw.test\"\n[[smtp.listener]]\naddress = \"{{listen}}\"\n[queue]\ndata_dir = \"{{data}}\"\nretry = [\"1s\"]\n{extra}\n\
         [[domain]]\nname = \"example.com\"\nroute = \"smtp://127.0.0.1:{sink_port}\"\n"
    ))
}

fn run(gw: &Gateway, sink_port: u16, scenario: &str, out: &Path, extra: &[&str]) -> (Output, serde_json::Value) {
    let output = Command::new(loadtest_bin())
        .args([
            "run",
            "--json",
            "--target",
            &gw.addr(),
            "--sink-listen",
            &format!("127.0.0.1:{sink_port}"),
            "--scenario",
            scenario,
            "--out",
        ])
        .arg(out)
        .args(extra)
        .output()
        .expect("run rempart-loadtest");
    let report = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "not one JSON document ({e}):\n{}\nstderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output, report)
}

fn n(report: &serde_json::Value, field: &str) -> u64 {
    report["reconciliation"][field].as_u64().unwrap_or_else(|| panic!("no reconciliation.{field} in {report}"))
}

#[test]
fn smoke_run_reconciles_exactly_and_writes_its_reports() {
    let sink_port = free_port();
    let gw = gateway(sink_port, "[greylist]\nenabled = false\n");
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("short.toml");
    std::fs::write(
        &scenario,
        "rate = 40\nramp = \"1s\"\nsteady = \"3s\"\nrecipients_per_message = 2\nmessages_per_session = 2\ndrain = \"30s\"\n[mix]\ngenerated = true\n",
    )
    .unwrap();
    let out = dir.path().join("report");
    let (output, report) = run(&gw, sink_port, scenario.to_str().unwrap(), &out, &[]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let sent = n(&report, "sent");
    assert!(sent > 50, "{report}");
    assert_eq!(sent, n(&report, "accepted") + n(&report, "rejected") + n(&report, "tempfailed") + n(&report, "errors"));
    assert_eq!(n(&report, "accepted"), sent, "a plain gateway takes everything: {report}");
    assert_eq!(n(&report, "expected_deliveries"), 2 * n(&report, "accepted"));
    assert_eq!(n(&report, "delivered"), n(&report, "expected_deliveries"));
    assert_eq!((n(&report, "lost"), n(&report, "unexpected")), (0, 0));
    for stage in ["connect", "banner", "ehlo", "end_of_data", "end_to_end"] {
        assert!(report["latency"][stage]["count"].as_u64().unwrap() > 0, "{stage}: {report}");
    }

    // The files: JSON that parses to the same counts, Markdown, two SVG plots.
    let file: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(file["reconciliation"]["sent"].as_u64(), Some(sent));
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.starts_with("# Load test: short") && md.contains("| sent | accepted |") && md.contains("end_of_data"), "{md}");
    for svg in ["throughput.svg", "latency.svg"] {
        let text = std::fs::read_to_string(out.join(svg)).unwrap();
        assert!(text.starts_with("<svg") && text.trim_end().ends_with("</svg>") && text.contains("<path d=\"M"), "{svg}");
    }
}

#[test]
fn a_sink_failing_for_a_window_is_retried_with_no_loss() {
    let sink_port = free_port();
    let gw = gateway(sink_port, "[greylist]\nenabled = false\n");
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("window.toml");
    std::fs::write(
        &scenario,
        "rate = 30\nramp = \"0s\"\nsteady = \"4s\"\ndrain = \"40s\"\n[mix]\ngenerated = true\n[[sink_fault]]\nfrom = \"1s\"\nto = \"3s\"\ncode = 451\n",
    )
    .unwrap();
    let (output, report) = run(&gw, sink_port, scenario.to_str().unwrap(), &dir.path().join("r"), &[]);
    assert!(output.status.success(), "{}\n{report}", String::from_utf8_lossy(&output.stderr));
    assert!(report["sink_refusals"]["451"].as_u64().unwrap_or(0) > 0, "the window refused something: {report}");
    assert_eq!(n(&report, "lost"), 0, "{report}");
    assert_eq!(n(&report, "delivered"), n(&report, "expected_deliveries"), "{report}");
    assert!(gw.log().contains("451"), "the gateway saw the sink's 451s and retried");
}

#[test]
fn tempfails_and_sink_refusals_are_accounted_for() {
    let sink_port = free_port();
    // Everything is greylisted: every message is tempfailed, nothing is expected.
    let gw = gateway(sink_port, "[policy]\ngreylist = -100.0\n");
    let dir = tempfile::tempdir().unwrap();
    let (output, report) = run(&gw, sink_port, "smoke", &dir.path().join("r"), &["--steady", "2s"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let sent = n(&report, "sent");
    assert!(sent > 0 && n(&report, "tempfailed") == sent && n(&report, "expected_deliveries") == 0, "{report}");
    assert_eq!(report["replies"]["451"].as_u64(), Some(sent));

    // A sink that refuses a share for good: the gateway bounces those, none is lost.
    let sink_port = free_port();
    let gw = gateway(sink_port, "[greylist]\nenabled = false\n");
    let scenario = dir.path().join("refuse.toml");
    std::fs::write(
        &scenario,
        "rate = 30\nramp = \"0s\"\nsteady = \"2s\"\ndrain = \"30s\"\n[mix]\ngenerated = true\n[[sink_fault]]\nfrom = \"0s\"\nto = \"1h\"\ncode = 550\nshare = 0.3\n",
    )
    .unwrap();
    let (output, report) = run(&gw, sink_port, scenario.to_str().unwrap(), &dir.path().join("r2"), &[]);
    assert!(output.status.success(), "{}\n{report}", String::from_utf8_lossy(&output.stderr));
    assert!(n(&report, "refused_by_sink") > 0, "{report}");
    assert_eq!(n(&report, "delivered") + n(&report, "refused_by_sink"), n(&report, "expected_deliveries"), "{report}");
    assert_eq!(n(&report, "lost"), 0);
}

#[test]
fn bad_scenarios_and_usage() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "rate = 10\nsteady = \"nonsense\"\n").unwrap();
    let out = Command::new(loadtest_bin()).args(["run", "--target", "127.0.0.1:9", "--scenario"]).arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.toml:2:"), "names the file and line: {stderr}");
    let out = Command::new(loadtest_bin()).args(["run"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "no target is a usage error");
    let out = Command::new(loadtest_bin()).args(["scenario", "steady"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("rate = 100.0"), "{text}");
}
