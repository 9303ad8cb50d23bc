//! What operators see: one trace per message across real processes (edge, scanner,
//! relay) exported over real OTLP/gRPC to a receiver the test runs; Prometheus metrics
//! at /metrics that parse and move; sampling that keeps refused mail.

use std::io::{Read, Write};
use std::time::Duration;

use rempart_tests::nats::NatsServer;
use rempart_tests::otlp::{OtlpReceiver, ReceivedSpan};
use rempart_tests::{Gateway, Sink, SinkMode, SmtpClient, free_port, message, wait_until};

/// Scores 5.60 (see verdicts.rs): refused with `reject = 5.0`.
const SPAMMY: &str = "From: Promo <promo@sender.test>\r\nSubject: Great offer\r\nContent-Type: text/html\r\n\r\n<html><a hReF=\"http://shop.example\">Buy now</a></html>\r\n";

fn queue_id_of(reply_text: &str) -> String {
    reply_text.rsplit(' ').next().unwrap_or_default().trim().to_string()
}

fn one<'a>(spans: &'a [ReceivedSpan], what: &str, pick: impl Fn(&ReceivedSpan) -> bool) -> &'a ReceivedSpan {
    let found: Vec<&ReceivedSpan> = spans.iter().filter(|s| pick(s)).collect();
    assert_eq!(found.len(), 1, "expected one {what} span, got {}: {found:#?}", found.len());
    found[0]
}

fn send(edge: &Gateway, data: &str) -> rempart_tests::client::Reply {
    let mut c = SmtpClient::connect(&edge.addr());
    c.ehlo();
    c.send_mail("promo@sender.test", &["alice@example.com"], data)
}

#[test]
fn one_trace_follows_each_message_through_edge_scanner_and_relay() {
    let receiver = OtlpReceiver::start();
    let nats = NatsServer::start();
    let sink = Sink::start(SinkMode::Accept);
    let telemetry = format!("[telemetry]\notlp_endpoint = \"{}\"\n", receiver.endpoint());
    let common = format!(
        "[state]\nbackend = \"nats\"\nnats_url = \"{url}\"\n[greylist]\nenabled = false\n[policy]\nreject = 5.0\n[dns]\noffline = true\n{telemetry}",
        url = nats.url()
    );
    let mut scanner = Gateway::start_role(
        &format!("{common}[bus]\nbackend = \"nats\"\nnats_url = \"{}\"\n[scanner]\nlisten = \"{{listen}}\"\n", nats.url()),
        "scanner",
    );
    let edge_cfg = format!(
        "[smtp]\nhostname = \"gw.test\"\n[[smtp.listener]]\naddress = \"{{listen}}\"\n[queue]\ndata_dir = \"{{data}}\"\n\
         [bus]\nbackend = \"nats\"\nnats_url = \"{url}\"\n{common}[scanner]\nendpoints = [\"http://{scanner}\"]\ntimeout = \"5s\"\n\
         [[domain]]\nname = \"example.com\"\nroute = \"{route}\"\nscanner_fallback = \"queue\"\n",
        url = nats.url(),
        scanner = scanner.addr(),
        route = sink.route()
    );
    let mut edge = Gateway::start_role(&edge_cfg, "edge");
    let mut relay = Gateway::start_role(&edge_cfg, "relay");

    // Scanned in the session over gRPC, then delivered.
    let clean = send(&edge, &message("traced"));
    assert_eq!(clean.code, 250, "{clean:?}");
    let clean_id = queue_id_of(&clean.text());
    let spam = send(&edge, SPAMMY);
    assert_eq!(spam.code, 550, "{spam:?}");
    assert_eq!(sink.wait_for(1, Duration::from_secs(20)).len(), 1);
    // No scanner up: accepted, scanned later from rempart.scan, then delivered.
    assert!(scanner.terminate(Duration::from_secs(10)), "the scanner stops on SIGTERM");
    let queued = send(&edge, &message("queued scan"));
    assert_eq!(queued.code, 250, "{queued:?}");
    let queued_id = queue_id_of(&queued.text());
    scanner.restart();
    assert_eq!(sink.wait_for(2, Duration::from_secs(30)).len(), 2);

    // SIGTERM flushes the spans still batched.
    for process in [&mut edge, &mut relay, &mut scanner] {
        assert!(process.terminate(Duration::from_secs(15)), "a role did not stop on SIGTERM");
    }
    let spans = receiver.spans();
    assert!(!spans.is_empty(), "no span reached the receiver");

    // The clean message: edge root → scanner's scan (with its stages) and relay's deliver.
    let has_id = |id: &str| {
        let id = id.to_string();
        move |s: &ReceivedSpan| s.attribute("rempart.queue_id") == Some(id.as_str())
    };
    let session = one(&spans, "edge session", |s| s.name == "smtp.session" && has_id(&clean_id)(s));
    assert_eq!(session.service, "rempart-edge");
    assert_eq!(session.parent_span_id, "", "the session span is the root of the message's trace");
    assert_eq!(session.attribute("rempart.action"), Some("accept"));
    assert_eq!(session.attribute("smtp.helo"), Some("client.test"), "{session:?}");
    assert!(session.events.iter().any(|e| e.contains("MAIL")) && session.events.iter().any(|e| e.contains("250")), "{session:?}");
    let trace: Vec<ReceivedSpan> = spans.iter().filter(|s| s.trace_id == session.trace_id).cloned().collect();
    let scan = one(&trace, "scan", |s| s.name == "scan");
    assert_eq!((scan.service.as_str(), scan.parent_span_id.as_str()), ("rempart-scanner", session.span_id.as_str()));
    assert_eq!(scan.attribute("rempart.queue_id"), Some(clean_id.as_str()));
    assert_eq!(scan.attribute("rempart.action"), Some("accept"));
    for stage in ["scan.network", "scan.content"] {
        let stage = one(&trace, stage, |s| s.name == stage);
        assert_eq!(stage.parent_span_id, scan.span_id, "{stage:?}");
        assert!(stage.attribute("rempart.queue_id").is_some());
    }
    let deliver = one(&trace, "deliver", |s| s.name == "deliver");
    assert_eq!((deliver.service.as_str(), deliver.parent_span_id.as_str()), ("rempart-relay", session.span_id.as_str()));
    assert_eq!(deliver.attribute("rempart.delivery_status"), Some("delivered"));
    assert_eq!(deliver.attribute("rempart.queue_id"), Some(clean_id.as_str()));
    let route = one(&trace, "deliver.route", |s| s.name == "deliver.route");
    assert_eq!(route.parent_span_id, deliver.span_id);
    assert!(route.attribute("smtp.reply").is_some_and(|r| r.starts_with("250")), "{route:?}");
    assert!(trace.iter().all(|s| s.attribute("rempart.queue_id") == Some(clean_id.as_str())), "QueueId on every span: {trace:#?}");
    // The JSON log lines carry the trace id beside the QueueId.
    let logged = |log: &str, message: &str| -> serde_json::Value {
        log.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|v| v["message"] == message && v["queue_id"] == clean_id.as_str())
            .unwrap_or_else(|| panic!("no {message:?} line for {clean_id}:\n{log}"))
    };
    let verdict = logged(&edge.log(), "verdict");
    assert_eq!(verdict["trace_id"], session.trace_id.as_str());
    assert_eq!((verdict["client"].as_str(), verdict["action"].as_str()), (Some("127.0.0.1"), Some("accept")), "{verdict}");
    assert!(verdict["symbols"].is_string(), "{verdict}");
    let delivery = logged(&relay.log(), "delivery");
    assert_eq!(delivery["trace_id"], session.trace_id.as_str());
    assert_eq!(delivery["result"], "delivered");

    // The refused message: its own trace, the verdict on the edge's span and the scan's.
    let refused = one(&spans, "refused session", |s| s.name == "smtp.session" && s.attribute("rempart.action") == Some("reject"));
    assert_eq!(refused.attribute("smtp.reply"), Some("550"));
    assert_ne!(refused.trace_id, session.trace_id, "one trace per message");
    let refused_scan = one(&spans, "refused scan", |s| s.name == "scan" && s.trace_id == refused.trace_id);
    assert_eq!(refused_scan.attribute("rempart.action"), Some("reject"));

    // Queued for a later scan: edge → scan.queued (scanner) → scan, and → deliver.
    let queued_session = one(&spans, "queued session", |s| s.name == "smtp.session" && has_id(&queued_id)(s));
    assert_eq!(queued_session.attribute("rempart.action"), Some("scan_later"));
    let trace: Vec<ReceivedSpan> = spans.iter().filter(|s| s.trace_id == queued_session.trace_id).cloned().collect();
    let later = one(&trace, "scan.queued", |s| s.name == "scan.queued");
    assert_eq!((later.service.as_str(), later.parent_span_id.as_str()), ("rempart-scanner", queued_session.span_id.as_str()));
    let scan = one(&trace, "queued scan", |s| s.name == "scan");
    assert_eq!(scan.parent_span_id, later.span_id);
    let deliver = one(&trace, "queued deliver", |s| s.name == "deliver");
    assert_eq!(deliver.parent_span_id, later.span_id, "delivery follows the post-queue scan");
    assert_eq!(deliver.attribute("rempart.delivery_status"), Some("delivered"));
}

#[test]
fn with_a_zero_ratio_only_refused_mail_is_traced() {
    let receiver = OtlpReceiver::start();
    let sink = Sink::start(SinkMode::Accept);
    // The endpoint and the service name from the standard variables this time.
    let config = format!(
        "[smtp]\nhostname = \"gw.test\"\n[[smtp.listener]]\naddress = \"{{listen}}\"\n[queue]\ndata_dir = \"{{data}}\"\n\
         [policy]\nreject = 5.0\n[greylist]\nenabled = false\n[telemetry]\nsample_ratio = 0.0\n\
         [[domain]]\nname = \"example.com\"\nroute = \"{}\"\n",
        sink.route()
    );
    let endpoint = receiver.endpoint();
    let env = [("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()), ("OTEL_SERVICE_NAME", "mx-filter")];
    let mut gw = Gateway::start_with_env(&config, "serve", &env);
    assert_eq!(send(&gw, &message("not sampled")).code, 250);
    assert_eq!(send(&gw, SPAMMY).code, 550);
    assert_eq!(sink.wait_for(1, Duration::from_secs(10)).len(), 1);
    assert!(gw.terminate(Duration::from_secs(15)));
    let spans = receiver.spans();
    let sessions: Vec<&ReceivedSpan> = spans.iter().filter(|s| s.name == "smtp.session").collect();
    assert_eq!(sessions.len(), 1, "only the refused message's trace is kept: {sessions:#?}");
    assert_eq!(sessions[0].attribute("rempart.action"), Some("reject"));
    assert_eq!(sessions[0].service, "mx-filter", "OTEL_SERVICE_NAME is honoured");
    let trace: Vec<&ReceivedSpan> = spans.iter().filter(|s| s.trace_id == sessions[0].trace_id).collect();
    assert!(trace.iter().any(|s| s.name == "scan.content"), "the kept trace is whole: {trace:#?}");
    assert!(spans.iter().all(|s| s.trace_id == sessions[0].trace_id), "nothing of the accepted message: {spans:#?}");
}

/// GET over plain HTTP/1.0 on loopback: (status, body).
fn http_get(addr: &str, path: &str) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(addr).expect("connect to the metrics listener");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, body.to_string())
}

fn sample(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => v,
            prometheus_parse::Value::Histogram(ref buckets) => buckets.last().map_or(0.0, |b| b.count),
            _ => 0.0,
        })
        .sum()
}

fn scrape(addr: &str) -> prometheus_parse::Scrape {
    let (status, body) = http_get(addr, "/metrics");
    assert_eq!(status, 200, "{body}");
    prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).expect("the exposition parses")
}

#[test]
fn metrics_parse_and_move_with_a_known_session() {
    let sink = Sink::start(SinkMode::Accept);
    let metrics_addr = format!("127.0.0.1:{}", free_port());
    let mut gw = Gateway::start(&format!(
        "[smtp]\nhostname = \"gw.test\"\n[[smtp.listener]]\naddress = \"{{listen}}\"\n[queue]\ndata_dir = \"{{data}}\"\n\
         [policy]\nreject = 5.0\n[greylist]\nenabled = false\n[telemetry]\nlisten = \"{metrics_addr}\"\n\
         [[domain]]\nname = \"example.com\"\nroute = \"{}\"\n",
        sink.route()
    ));
    assert!(wait_until(Duration::from_secs(10), || http_get(&metrics_addr, "/readyz").0 == 200), "ready once serving");
    assert_eq!(http_get(&metrics_addr, "/healthz").0, 200);
    let before = scrape(&metrics_addr);
    assert_eq!(send(&gw, &message("counted")).code, 250);
    assert_eq!(send(&gw, SPAMMY).code, 550);
    let mut c = SmtpClient::connect(&gw.addr());
    c.ehlo();
    assert_eq!(c.cmd("RCPT TO:<alice@example.com>").code, 503);
    assert_eq!(sink.wait_for(1, Duration::from_secs(10)).len(), 1);
    let delivered = |s: &prometheus_parse::Scrape| sample(s, "rempart_delivery_attempts_total", &[("result", "delivered")]);
    assert!(wait_until(Duration::from_secs(10), || delivered(&scrape(&metrics_addr)) >= 1.0));
    let after = scrape(&metrics_addr);
    let moved = |name: &str, labels: &[(&str, &str)]| sample(&after, name, labels) - sample(&before, name, labels);
    assert_eq!(moved("rempart_smtp_connections_total", &[("result", "accepted")]), 3.0);
    assert_eq!(moved("rempart_messages_total", &[("action", "accept"), ("domain", "example.com")]), 1.0);
    assert_eq!(moved("rempart_messages_total", &[("action", "reject"), ("domain", "example.com")]), 1.0);
    assert_eq!(moved("rempart_smtp_replies_total", &[("command", "RCPT"), ("class", "5xx")]), 1.0);
    assert_eq!(moved("rempart_smtp_replies_total", &[("command", "DATA"), ("class", "5xx")]), 1.0);
    assert_eq!(moved("rempart_symbols_total", &[("symbol", "MIXED_HREF_CASE")]), 1.0);
    assert_eq!(moved("rempart_scan_duration_seconds_count", &[("where", "local")]), 2.0);
    assert_eq!(moved("rempart_end_of_data_duration_seconds_count", &[("command", "DATA")]), 2.0);
    assert_eq!(moved("rempart_delivery_attempts_total", &[("route", "example.com"), ("result", "delivered")]), 1.0);
    assert!(sample(&after, "rempart_bus_operation_duration_seconds_count", &[("backend", "embedded"), ("operation", "publish")]) >= 1.0);
    assert!(sample(&after, "rempart_store_operation_duration_seconds_count", &[("backend", "embedded")]) >= 1.0);
    let queue_gauges = ["rempart_queue_depth", "rempart_queue_oldest_age_seconds"];
    for gauge in queue_gauges {
        assert!(after.samples.iter().any(|s| s.metric == gauge && s.labels.get("topic") == Some("rempart.deliver")), "{gauge}");
    }
    // Labels stay bounded: no client address anywhere.
    let (_, text) = http_get(&metrics_addr, "/metrics");
    assert!(!text.contains("127.0.0.1"), "{text}");
    // SIGTERM with a message in DATA: not ready any more, but the message may finish.
    let mut c = SmtpClient::connect(&gw.addr());
    c.ehlo();
    assert_eq!(c.cmd("MAIL FROM:<sender@sender.test>").code, 250);
    assert_eq!(c.cmd("RCPT TO:<alice@example.com>").code, 250);
    assert_eq!(c.cmd("DATA").code, 354);
    c.send_raw(b"Subject: draining\r\n\r\nstill coming\r\n");
    gw.sigterm();
    assert!(wait_until(Duration::from_secs(10), || http_get(&metrics_addr, "/readyz").0 == 503), "not ready while draining");
    assert_eq!(http_get(&metrics_addr, "/healthz").0, 200, "alive while draining");
    c.send_raw(b".\r\n");
    assert_eq!(c.read_reply().code, 250, "the session in DATA finishes");
    assert!(wait_until(Duration::from_secs(15), || gw.exited()), "exits once drained");
    // Accepted while the relay was stopping: queued, and delivered after the restart.
    gw.restart();
    assert_eq!(sink.wait_for(2, Duration::from_secs(15)).len(), 2, "the message accepted while draining is delivered");
}
