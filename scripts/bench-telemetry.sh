#!/usr/bin/env bash
# What tracing costs on the SMTP path (not part of CI): `rempart serve` under the same
# load harness run, with
#  A. no trace export (the default),
#  B. every trace exported over OTLP/gRPC to a receiver on this machine,
#  C. sample_ratio = 0 with always_sample_failures (spans recorded, few exported).
# Closed-loop throughput (32 sessions) and end-of-DATA latency at 200 msg/s.
#   usage: scripts/bench-telemetry.sh [seconds]      (pip: grpcio opentelemetry-proto)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}
cargo build --release -q -p rempart -p rempart-loadtest
python3 -c 'import grpc, opentelemetry.proto' 2>/dev/null || python3 -m pip install -q grpcio opentelemetry-proto
bin=target/release
. scripts/bench-common.sh

sink_port=$(free_port)
otlp_port=$(free_port)
python3 scripts/otlp_counter.py "$otlp_port" > "$work/spans" &
otlp_pid=$!
pids+=($otlp_pid)
wait_port "$otlp_port"

run() { # label telemetry-section
    local smtp_port; smtp_port=$(free_port)
    cat > "$work/$1.toml" <<TOML
[smtp]
hostname = "bench.rempart"
max_connections = 5000
max_connections_per_ip = 5000
[[smtp.listener]]
address = "127.0.0.1:$smtp_port"
[queue]
data_dir = "$work/data-$1"
[relay]
concurrency = 32
[dns]
offline = true
[greylist]
enabled = false
[telemetry]
$2
[[domain]]
name = "example.com"
route = "smtp://127.0.0.1:$sink_port"
TOML
    RUST_LOG=warn $bin/rempart serve --config "$work/$1.toml" >/dev/null 2>>"$work/rempart.log" &
    local pid=$!
    pids+=($pid)
    wait_port "$smtp_port"
    $bin/rempart-loadtest run --target "127.0.0.1:$smtp_port" --sink-listen "127.0.0.1:$sink_port" --scenario steady \
        --rate 0 --sessions 32 --ramp 0s --steady "${secs}s" --out "$work/$1-closed" >/dev/null 2>>"$work/lt.log" || true
    $bin/rempart-loadtest run --target "127.0.0.1:$smtp_port" --sink-listen "127.0.0.1:$sink_port" --scenario steady \
        --rate 200 --ramp 0s --steady "${secs}s" --out "$work/$1-200" >/dev/null 2>>"$work/lt.log" || true
    kill "$pid"; wait "$pid" 2>/dev/null || true
    printf '%-40s closed loop %7.1f accepted/s | at 200 msg/s: end-of-DATA p50 %6.2f ms p99 %7.2f ms | lost %s\n' "$1" \
        "$(json "$work/$1-closed/report.json" 'r["accepted_per_second"]')" \
        "$(json "$work/$1-200/report.json" 'r["latency"]["end_of_data"]["p50_ms"]')" \
        "$(json "$work/$1-200/report.json" 'r["latency"]["end_of_data"]["p99_ms"]')" \
        "$(( $(json "$work/$1-closed/report.json" 'r["reconciliation"]["lost"]') + $(json "$work/$1-200/report.json" 'r["reconciliation"]["lost"]') ))"
}

run "A no export" ""
run "B OTLP export, ratio 1" "otlp_endpoint = \"http://127.0.0.1:$otlp_port\""
run "C OTLP export, ratio 0 + failures" "otlp_endpoint = \"http://127.0.0.1:$otlp_port\"
sample_ratio = 0.0"
kill "$otlp_pid"; wait "$otlp_pid" 2>/dev/null || true
echo "spans received by the OTLP receiver (B and C): $(cat "$work/spans")"
